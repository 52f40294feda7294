"""TextSpec: how a text model wants its input; TextPlan: the per-input part of it.

A text classifier's input end is its tokenizer, which belongs to the model's
framework, so it runs in the backend (``Backend.collate`` tokenizes a whole
batch and pads it to its longest text, as Hugging Face pipelines and
sentence-transformers do). What is framework-free lives here: the settings
(max length, truncation, padding) as plain JSON-able data, and turning what a
user passes into texts.

What is a text is decided by the model's spec, never guessed from the value:
for a text model a ``str`` is the text itself (``"Is this spam?"`` is not a
glob, ``"README.md"`` is not a file) and an ``os.PathLike`` is a UTF-8 text
file. A list, tuple or generator of those is many inputs. Each yields exactly
one output; anything else becomes one error row.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Iterator, Mapping, NamedTuple

from ..errors import ConfigError, DecodeError, InputError
from .files import open_regular_file
from .protocol import DataSpec, InputPlan, Limits, resolve_input_spec
from .sources import Item

__all__ = ["TextSpec", "TextPlan", "TextInput", "is_single_text", "iter_texts", "resolve_text_spec"]

PADDINGS = ("longest", "max_length")
DEFAULT_MAX_CHARS = 1_000_000  # a guard against feeding a whole book to the tokenizer by mistake


@dataclass(frozen=True)
class TextSpec(DataSpec):
    """Tokenizer settings a text model runs with (JSON-serialisable).

    max_length: tokens per input including special tokens; ``None`` means the
      tokenizer's own limit (``model_max_length``, capped by the model's
      position embeddings).
    truncation: True cuts longer texts to ``max_length`` (what sentence-transformers
      does); False makes a too-long text an error row instead (the Hugging Face
      text-classification pipeline's default lets the model fail on it).
    padding: ``"longest"`` pads each batch to its longest text (fast, the usual
      choice); ``"max_length"`` pads every input to ``max_length`` (fixed shapes,
      e.g. for exported graphs). With an attention mask both give the same logits.
    max_chars: inputs longer than this many characters are refused (None: no limit).
    """

    kind: ClassVar[str] = "text"

    max_length: int | None = None
    truncation: bool = True
    padding: str = "longest"
    max_chars: int | None = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        for name in ("max_length", "max_chars"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive int or None, got {value!r}")
        if not isinstance(self.truncation, bool):
            raise ConfigError(f"truncation must be True or False, got {self.truncation!r}")
        if self.padding not in PADDINGS:
            raise ConfigError(f"padding must be one of {list(PADDINGS)}, got {self.padding!r}")
        if self.padding == "max_length" and self.max_length is None:
            raise ConfigError(
                "padding='max_length' needs max_length set, e.g. TextSpec(max_length=128, padding='max_length')"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        length = "the tokenizer's max length" if self.max_length is None else f"{self.max_length} tokens"
        cut = "truncated" if self.truncation else "refused (error row)"
        return f"text: texts over {length} are {cut}; padding to the {self.padding.replace('_', ' ')}"

    def plan(self, limits: Limits | None = None) -> "TextPlan":
        return TextPlan(self)  # a text's limit (max_chars) is part of its spec


class TextInput(NamedTuple):
    """One prepared text and the spec its batch is tokenized with (plan once, apply per batch)."""

    text: str
    spec: TextSpec


class TextPlan(InputPlan):
    """The per-input step of a text model: a ``str`` (or a text file) -> a ``TextInput``.

    The tokenizer belongs to the model's framework and runs per batch in the backend.
    """

    kind = "text"

    def __init__(self, spec: TextSpec) -> None:
        if not isinstance(spec, TextSpec):
            raise ConfigError(f"TextPlan needs a TextSpec, got {type(spec).__name__}")
        self.spec = spec

    def __repr__(self) -> str:
        return f"TextPlan({self.spec.describe()})"

    def is_single(self, x: Any) -> bool:
        return is_single_text(x)

    def items(self, x: Any) -> Iterator[Item]:
        return iter_texts(x)

    def __call__(self, payload: Any) -> TextInput:
        return self.apply(self.decode(payload))

    def apply(self, text: str) -> TextInput:
        return TextInput(text, self.spec)

    def decode(self, payload: Any) -> str:
        if isinstance(payload, InputError):
            raise payload
        if isinstance(payload, os.PathLike):
            text = _read_text(os.fspath(payload), self.spec.max_chars)
        elif isinstance(payload, str):
            text = payload
        elif isinstance(payload, (bytes, bytearray, memoryview)):  # e.g. a request body: UTF-8 text
            text = _utf8(bytes(payload), self.spec.max_chars)
        else:
            raise InputError(
                f"a text model takes str inputs, got {type(payload).__name__}; "
                "pass the text itself (or a pathlib.Path to a UTF-8 text file)"
            )
        limit = self.spec.max_chars
        if limit is not None and len(text) > limit:
            raise InputError(
                f"text of {len(text)} characters is over the limit of {limit}; "
                "split it, or raise the limit with spec={'max_chars': N} (None: no limit)"
            )
        return text


def _utf8(data: bytes, max_chars: int | None) -> str:
    if max_chars is not None and len(data) > 4 * max_chars:  # UTF-8: at most 4 bytes a char
        raise InputError(f"a text of {len(data)} bytes is over the {max_chars}-character limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"the bytes are not UTF-8 text ({e.reason} at byte {e.start}); send UTF-8") from None


def _read_text(path: str, max_chars: int | None) -> str:
    try:
        if max_chars is not None and os.path.getsize(path) > 4 * max_chars:  # UTF-8: at most 4 bytes a char
            raise InputError(f"{path} is {os.path.getsize(path)} bytes, over the {max_chars}-character limit")
        with open_regular_file(path, what="read") as f:  # a FIFO or a device is refused, never read
            limit = -1 if max_chars is None else 4 * max_chars + 1
            return f.read(limit).decode("utf-8")
    except FileNotFoundError:
        raise DecodeError(
            f"no such file: {path}; for a text model a str is the text itself, a Path is a file"
        ) from None
    except UnicodeDecodeError as e:
        raise DecodeError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); re-encode it as UTF-8") from None
    except IsADirectoryError:
        raise DecodeError(f"{path} is a folder; pass its text files, e.g. sorted(Path(folder).glob('*.txt'))") from None
    except OSError as e:
        raise DecodeError(f"cannot read {path}: {e.strerror or e}") from None


def is_single_text(x: Any) -> bool:
    """One input for a text model: a str or a path-like; anything iterable is many."""
    return isinstance(x, (str, os.PathLike))


def iter_texts(x: Any) -> Iterator[Item]:
    """One ``Item`` per text: ids are ``<text #i>`` (by position) or the file path."""
    elements = [x] if is_single_text(x) else x
    if isinstance(elements, (bytes, Mapping)) or not hasattr(elements, "__iter__"):
        yield Item("<input #0>", InputError(_not_text(x)))
        return
    for i, element in enumerate(elements):
        if isinstance(element, str):
            yield Item(f"<text #{i}>", element)
        elif isinstance(element, os.PathLike):
            yield Item(os.fsdecode(os.fspath(element)), element)
        else:
            yield Item(f"<input #{i}>", InputError(_not_text(element)))


def _not_text(x: Any) -> str:
    return f"a text model takes a str, a pathlib.Path to a text file, or a list of these; got {type(x).__name__}"


def resolve_text_spec(explicit: Any = None, bundled: TextSpec | None = None) -> tuple[TextSpec, str]:
    """Pick the text spec and say where it came from (explicit > the model's own > defaults).

    ``explicit`` may be a full ``TextSpec`` or a dict of overrides on top of the bundled one.
    """
    return resolve_input_spec(explicit, bundled, TextSpec())  # type: ignore[return-value]
