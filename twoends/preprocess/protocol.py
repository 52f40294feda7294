"""The one input protocol: every kind of input (image, text, audio) is a spec and a plan.

A **spec** (``InputSpec``) is what a model wants, as plain JSON-able data: it is
settled once, with where it came from, and shown by ``describe()``. Its
``plan(limits)`` is that spec made ready to apply: an ``InputPlan``. The
Classifier, the server and the runners talk only to the plan, through the
methods below, and never ask what kind of input it is:

==================  =====================================================================
``is_single(x)``    one input (one Prediction) or many
``items(x)``        a lazy stream of ``Item`` s, one per input (never raises)
``decode(payload)`` one raw input -> a decoded value (an image, a text, a waveform);
                    limits are checked before the work they bound
``apply(decoded)``  one decoded value -> one model input (in a decoding thread), or
                    ``Windows``: several model inputs standing for one input (a long
                    audio clip cut into windows; the head combines their outputs)
``apply_batch(..)`` decoded values of a batch -> model inputs, in the model's thread,
                    for plans with ``per_batch = True`` (e.g. a Hugging Face processor)
``check_ready(x)``  an already preprocessed model input, checked against the plan
``output_shape``    the shape of one model input, or None when it varies (text)
``draft_size``      a lower bound of the resize target for draft decoding, or None
``warmup_input()``  one model input of zeros for a warm-up run, or None
``describe()``      one line for people
==================  =====================================================================

A new modality is one module with a spec and a plan implementing this; nothing
else in the package changes (``tests/preprocess/test_protocol.py`` checks each).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..timing import timed
from .audio import DEFAULT_MAX_SECONDS
from .image import DEFAULT_MAX_PIXELS
from .sources import Item

__all__ = ["DataSpec", "InputPlan", "InputSpec", "Limits", "Windows", "resolve_input_spec", "stack_inputs"]


@dataclass(frozen=True)
class Limits:
    """What one input may cost, checked before the work: decoded and resized pixels, seconds of audio."""

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_seconds: float | None = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        v = self.max_pixels
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"max_pixels must be a whole number >= 1 or None (no limit), got {v!r}")
        s = self.max_seconds
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0):
            raise ConfigError(f"max_seconds must be a number of seconds > 0 or None (no limit), got {s!r}")


@dataclass(frozen=True, eq=False)
class Windows:
    """Several model inputs standing for one input: a long clip cut into windows.

    ``inputs`` holds one model input per window (e.g. a [n, samples] array);
    ``starts`` / ``ends`` say where each window's own part of the clip lies, in
    seconds; a backend whose model carries a state from one window to the next
    (a recurrent voice detector) runs a clip's windows in order. ``merge_gap``:
    segments of the same label closer than this many seconds are one segment.
    The backend runs every window; the head combines a clip's window outputs
    into its one Prediction (``twoends.head.windows``).
    """

    inputs: Any
    starts: np.ndarray
    ends: np.ndarray
    merge_gap: float = 0.0

    def __len__(self) -> int:
        return len(self.starts)


class InputPlan(abc.ABC):
    """A spec made ready to apply to inputs (see the module docstring for the contract)."""

    #: "image", "text", "audio": what a raw input is for this plan (for messages and pages)
    kind: ClassVar[str]
    #: True: ``apply_batch`` runs in the model's thread on a whole batch of decoded values
    per_batch: ClassVar[bool] = False
    spec: Any

    @abc.abstractmethod
    def is_single(self, x: Any) -> bool:
        """True when ``x`` is one input (one Prediction), False when it is many."""

    @abc.abstractmethod
    def items(self, x: Any) -> Iterator[Item]:
        """One ``Item`` per input, lazily; a bad input is an Item whose decoding fails."""

    @abc.abstractmethod
    def decode(self, payload: Any) -> Any:
        """One raw input -> a decoded value, the plan's limits checked before the work."""

    @abc.abstractmethod
    def apply(self, decoded: Any) -> Any:
        """One decoded value -> one model input."""

    def apply_batch(self, decoded: list[Any]) -> list[Any]:
        """Decoded values of one batch -> model inputs (per-batch plans override this)."""
        return [self.apply(d) for d in decoded]

    def prepare(self, item: Item, timings: Any = None) -> Any:
        """An Item -> a model input (``apply`` deferred to the batch for per-batch plans).

        ``timings`` (a ``twoends.timing.PhaseTimes``) records decode and preprocess times.
        """
        if item.ready:
            return self.check_ready(item.payload)
        with timed(timings, "decode"):
            decoded = self.decode(item.payload)
        if self.per_batch:
            return Deferred(decoded)
        with timed(timings, "preprocess"):
            return self.apply(decoded)

    def check_ready(self, x: Any) -> Any:
        """An already preprocessed input, passed as is (plans with a fixed shape check it)."""
        return x

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return None

    @property
    def draft_size(self) -> Any:
        return None

    def warmup_input(self) -> Any:
        return None

    def describe(self) -> str:
        return self.spec.describe()


class InputSpec(abc.ABC):
    """What a model wants as input, as plain data; ``plan()`` makes it ready to apply."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def plan(self, limits: Limits | None = None) -> InputPlan:
        """This spec, ready to apply, within ``limits``."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (what ``describe()`` of a Classifier and the sidecars show)."""

    @abc.abstractmethod
    def replace(self, **changes: Any) -> "InputSpec":
        """A copy with some fields changed (a dict ``spec=`` overrides the model's own this way)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for people."""


class DataSpec(InputSpec):
    """The serialisation every dataclass spec shares: from_dict (unknown fields refused), JSON, replace."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError(f"a {cls.__name__} dict was expected, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Any:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"a {cls.__name__} JSON object was expected, got invalid JSON: {e}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Any:
        return type(self).from_dict({**self.to_dict(), **changes})


def stack_inputs(inputs: Sequence[Any], dtype: Any = None) -> np.ndarray:
    """Model inputs of one shape -> one contiguous (N, ...) NumPy batch; another shape is an InputError."""
    if len(inputs) == 0:
        raise InputError("a batch needs at least one input, got an empty list")
    if isinstance(inputs[0], Windows):  # a long clip's windows: every window is one row
        inputs = [w for v in inputs for w in v.inputs]
    first = tuple(inputs[0].shape)
    for i, x in enumerate(inputs):
        if tuple(x.shape) != first:
            raise InputError(
                f"inputs of one batch must have one shape; input 0 is {first}, input {i} is {tuple(x.shape)}: "
                "preprocess them with the model's spec, or pass them in separate calls"
            )
    batch = np.stack([np.asarray(x) for x in inputs])
    return np.ascontiguousarray(batch if dtype is None else batch.astype(dtype, copy=False))


class Deferred:
    """A decoded value waiting for a per-batch plan (applied in the model's thread)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def apply_deferred(plan: InputPlan, values: list[Any]) -> list[Any]:
    """Run a per-batch plan on the deferred values of a batch; other values pass as they are."""
    where = [i for i, v in enumerate(values) if isinstance(v, Deferred)]
    if not where:
        return values
    done = plan.apply_batch([values[i].value for i in where])
    out = list(values)
    for i, x in zip(where, done, strict=True):
        out[i] = x
    return out


def resolve_input_spec(explicit: Any, bundled: InputSpec | None, default: InputSpec) -> tuple[InputSpec, str]:
    """The spec to use and where it came from: explicit > the model's own > default.

    ``explicit`` is a whole spec (source "explicit") or a dict of fields changed on
    top of the model's own ("model+explicit") or the default ("default+explicit").
    """
    if isinstance(explicit, InputSpec):
        return _with_model_owned(explicit, bundled)
    base, source = (bundled, "model") if bundled is not None else (default, "default")
    if explicit is None:
        return base, source
    if not isinstance(explicit, Mapping):
        raise ConfigError(
            f"spec must be {_a(type(base).__name__)} or a dict of its fields to change, got "
            f"{type(explicit).__name__}; e.g. spec={_example(base)}"
        )
    if not explicit:
        return base, source
    return base.replace(**dict(explicit)), source + "+explicit"


def _with_model_owned(explicit: InputSpec, bundled: InputSpec | None) -> tuple[InputSpec, str]:
    """An explicit whole spec, with the fields the model itself dictates taken from the model
    where the explicit spec left them at their default.

    Some fields are the model's, not a preference: the layout is fixed by its graph (Flax and
    Keras convolutions are channels-last). ``ImageSpec(input_size=(32, 32))`` says nothing
    about the layout, so it must not turn a known NHWC model into an NCHW one. To force a
    value equal to the default, change it on top of the model's spec: ``spec={"layout": "NCHW"}``.
    """
    owned = getattr(type(explicit), "model_owned", ())
    if bundled is None or type(bundled) is not type(explicit) or not owned:
        return explicit, "explicit"
    defaults: dict[str, Any] = (
        {f.name: f.default for f in dataclasses.fields(explicit)} if dataclasses.is_dataclass(explicit) else {}
    )
    taken = {
        name: getattr(bundled, name)
        for name in owned
        if name in defaults and getattr(explicit, name) == defaults[name] != getattr(bundled, name)
    }
    if not taken:
        return explicit, "explicit"
    shown = ", ".join(f"{k} {v}" for k, v in taken.items())
    return explicit.replace(**taken), f"explicit ({shown} from the model)"


def _a(name: str) -> str:
    return ("an " if name[0] in "AEIOU" else "a ") + name


_EXAMPLES = {"text": "{'max_length': 128}", "audio": "{'window': 16000, 'hop': 8000}"}


def _example(spec: InputSpec) -> str:
    return _EXAMPLES.get(spec.kind, "{'input_size': (256, 256)}")
