"""AudioSpec: how an audio model wants its clips; AudioPlan: that spec applied to clips.

The steps, in order, each from the spec (so a model's own rule, not a guess):

1. decode (``twoends.preprocess.audio``): float32 samples in [-1, 1] at the clip's rate;
2. down-mix to mono by ``mixdown`` ("mean" of the channels, as FFmpeg's ``-ac 1``,
   torchaudio users and Silero do; or the "first" channel);
3. resample to ``sample_rate`` with soxr (its "HQ" quality) when the rates differ;
4. cut into windows of ``window`` samples every ``hop`` samples (None: the whole
   clip is one window), each with the ``context`` samples before it, the last
   one zero-padded to the full window when ``pad`` is True; a clip shorter
   than a window is one window;
5. normalise each window: "zero_mean_unit_var" is ``(x - mean) / sqrt(var + 1e-7)``
   in float32, what Wav2Vec2's feature extractor does with ``do_normalize``.

Steps 1-3 run in the decoding threads (``decode``), 4-5 in ``apply``; a Hugging
Face feature extractor that has no exact spec runs after them once per batch
(``twoends.backends.transformers_audio``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from ..errors import ConfigError, InputError
from .audio import AUDIO_EXTENSIONS, AudioClip, decode_audio, is_clip_tuple
from .protocol import DataSpec, InputPlan, Limits, Windows, resolve_input_spec
from .sources import _BYTES, Item, _glob, _is_glob, _walk

__all__ = ["AudioPlan", "AudioSpec", "is_single_clip", "iter_clips", "resolve_audio_spec"]

MIXDOWNS = ("mean", "first")
NORMALIZATIONS = ("none", "zero_mean_unit_var")


@dataclass(frozen=True)
class AudioSpec(DataSpec):
    """What an audio model takes (JSON-serialisable; sample counts are at ``sample_rate``).

    sample_rate: Hz the model was trained at; every clip is resampled to it.
    mixdown: "mean" or "first": how a multi-channel clip becomes mono.
    normalize: "none" or "zero_mean_unit_var" (per window).
    window: samples per model input; None = the whole clip is one input.
    hop: samples between window starts (None = ``window``: no overlap).
    context: samples before each window prepended to it (zeros before the clip).
    pad: zero-pad the last window to ``window`` samples (fixed-size models).
    merge_gap: seconds; segments of the same label closer than this are joined.
    """

    kind: ClassVar[str] = "audio"

    sample_rate: int = 16000
    mixdown: str = "mean"
    normalize: str = "none"
    window: int | None = None
    hop: int | None = None
    context: int = 0
    pad: bool = False
    merge_gap: float = 0.0

    def __post_init__(self) -> None:
        _whole("sample_rate", self.sample_rate, minimum=1)
        for name in ("window", "hop"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), minimum=1)
        _whole("context", self.context, minimum=0)
        if self.hop is not None and self.window is None:
            raise ConfigError("hop needs a window: e.g. spec={'window': 16000, 'hop': 8000} (samples)")
        if self.hop is not None and self.hop > self.window:
            raise ConfigError(f"hop ({self.hop}) is longer than the window ({self.window}): samples would be skipped")
        if self.mixdown not in MIXDOWNS:
            raise ConfigError(f"mixdown must be one of {list(MIXDOWNS)}, got {self.mixdown!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {list(NORMALIZATIONS)}, got {self.normalize!r}")
        if not isinstance(self.pad, bool):
            raise ConfigError(f"pad must be True or False, got {self.pad!r}")
        if isinstance(self.merge_gap, bool) or not isinstance(self.merge_gap, (int, float)) or self.merge_gap < 0:
            raise ConfigError(f"merge_gap must be a number of seconds >= 0, got {self.merge_gap!r}")

    @property
    def step(self) -> int | None:
        return self.hop or self.window

    # ---- serialisation: from_dict / to_json / from_json / replace come from DataSpec ----
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        rate = self.sample_rate
        if self.window is None:
            cut = "the whole clip as one input"
        else:
            cut = f"windows of {self.window / rate:g} s every {self.step / rate:g} s"
            cut += f" (+{self.context} samples of context)" if self.context else ""
            cut += ", the last zero-padded" if self.pad else ""
        norm = "" if self.normalize == "none" else f", {self.normalize.replace('_', ' ')} per window"
        return f"audio: {self.mixdown} of the channels, resampled to {rate} Hz, {cut}{norm}"

    def plan(self, limits: Limits | None = None) -> "AudioPlan":
        return AudioPlan(self, limits)


def _whole(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum} (samples), got {value!r}")


class AudioPlan(InputPlan):
    """An AudioSpec applied: ``decode`` -> mono float32 at the model's rate; ``apply`` -> ``Windows``."""

    kind = "audio"

    def __init__(self, spec: AudioSpec, limits: Limits | None = None) -> None:
        if not isinstance(spec, AudioSpec):
            raise ConfigError(f"AudioPlan needs an AudioSpec, got {type(spec).__name__}")
        self.spec = spec  # what is shown; a subclass may show more (an extractor run after it)
        self.audio = spec  # the audio steps read this
        self.limits = limits or Limits()

    def __repr__(self) -> str:
        return f"AudioPlan({self.spec.describe()})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable for worker processes: rebuilt from the spec
        return type(self), (self.spec, self.limits)

    def is_single(self, x: Any) -> bool:
        return is_single_clip(x)

    def items(self, x: Any) -> Iterator[Item]:
        return iter_clips(x)

    def decode(self, payload: Any) -> np.ndarray:
        """One clip -> mono float32 samples at the model's rate."""
        return self.to_model_rate(decode_audio(payload, self.limits.max_seconds))

    def to_model_rate(self, clip: AudioClip) -> np.ndarray:
        x = clip.samples
        x = x.mean(axis=1, dtype=np.float32) if self.audio.mixdown == "mean" else x[:, 0]
        if clip.rate != self.audio.sample_rate:
            import soxr

            x = soxr.resample(x, clip.rate, self.audio.sample_rate, quality="HQ").astype(np.float32, copy=False)
        if x.shape[0] == 0:
            raise InputError(f"the clip is shorter than one sample at {self.audio.sample_rate} Hz")
        return np.ascontiguousarray(x, dtype=np.float32)

    def __call__(self, payload: Any) -> Windows:
        return self.apply(self.decode(payload))

    def apply(self, samples: np.ndarray) -> Windows:
        """Mono samples at the model's rate -> the clip's windows (normalised) and their times."""
        frames, starts, ends = self.windows(samples)
        if self.audio.normalize == "zero_mean_unit_var":
            frames = [_zero_mean_unit_var(w) for w in frames]
        inputs = frames if isinstance(frames, np.ndarray) or len({w.shape for w in frames}) > 1 else np.stack(frames)
        return Windows(inputs, starts, ends, merge_gap=float(self.audio.merge_gap))

    def windows(self, x: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
        """The windows of ``x`` (with their context: a [count, samples] array, or a list when the
        last one is short) and each one's own span in seconds."""
        spec, n = self.audio, x.shape[0]
        rate = float(spec.sample_rate)
        if spec.window is None:
            return x[None], np.array([0.0]), np.array([n / rate])
        size, step, ctx = spec.window, spec.step, spec.context
        count = 1 + -(-max(0, n - size) // step)  # windows covering the clip; none lies wholly in an overlap
        padded = np.zeros(ctx + (count - 1) * step + size, dtype=np.float32)
        padded[ctx : ctx + n] = x
        if spec.pad or (count - 1) * step + size <= n:  # every window whole: one strided copy
            frames = np.lib.stride_tricks.sliding_window_view(padded, ctx + size)[::step].copy()
        else:
            frames = [padded[i * step : ctx + min(i * step + size, n)] for i in range(count)]
        starts = np.arange(count) * step / rate
        # each window's own part: up to where the next one starts (so segments never overlap)
        ends = np.minimum(np.append(starts[1:], np.inf), np.minimum(starts + size / rate, n / rate))
        return frames, starts, ends

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        s = self.audio
        return None if s.window is None or not s.pad else (s.window + s.context,)

    def warmup_input(self) -> Any:
        """One second (or one window) of silence, cut and preprocessed as a clip is."""
        return self.apply(np.zeros(self.audio.window or self.audio.sample_rate, np.float32))

    def check_ready(self, x: Any) -> Any:
        raise InputError(
            "audio inputs are clips: a path, bytes, a file object, AudioClip(samples, rate) or (samples, rate); "
            "got an array marked as a ready model input"
        )


def _zero_mean_unit_var(x: np.ndarray) -> np.ndarray:
    # the same float32 arithmetic as transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


# ---------------------------------------------------------------------------- what a clip is


def is_single_clip(x: Any) -> bool:
    """One clip: a file path (not a folder or glob), bytes, a file object, an AudioClip or (samples, rate)."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(x))
        return not os.path.isdir(path) and (os.path.isfile(path) or not _is_glob(path))
    if isinstance(x, (AudioClip, *_BYTES)) or is_clip_tuple(x) or hasattr(x, "read") or hasattr(x, "shape"):
        return True
    return isinstance(x, Mapping) or not hasattr(x, "__iter__")


def iter_clips(x: Any) -> Iterator[Item]:
    """One ``Item`` per clip: folders and globs yield their audio files (sorted), lists their elements."""
    elements = [x] if is_single_clip(x) or isinstance(x, (str, os.PathLike)) else x
    if isinstance(elements, Mapping) or not hasattr(elements, "__iter__"):
        yield Item("<input #0>", InputError(_not_audio(x)))
        return
    n = 0
    for element in elements:
        for name, payload in _clip_entries(element):
            yield Item(name if isinstance(name, str) else f"<{name[0]} #{n}>", payload)
            n += 1


def _clip_entries(x: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(x, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(x))
        if os.path.isdir(path):
            yield from ((p, payload) for p, payload, _ in _walk(path, AUDIO_EXTENSIONS))
        elif os.path.isfile(path) or not _is_glob(path):
            yield path, path
        else:
            yield from ((p, p) for p in _glob(path, AUDIO_EXTENSIONS))
    elif isinstance(x, AudioClip) or is_clip_tuple(x):
        yield ("audio",), x
    elif isinstance(x, _BYTES):
        yield ("bytes",), x
    elif hasattr(x, "read"):
        name = getattr(x, "name", None)
        yield (name if isinstance(name, str) else ("file",)), x
    elif hasattr(x, "shape"):
        yield ("array",), x  # decode_audio says how to pass its rate
    else:
        yield ("input",), InputError(_not_audio(x))


def _not_audio(x: Any) -> str:
    return (
        f"an audio model takes a path, folder, glob, bytes, a binary file object, AudioClip(samples, rate), "
        f"a (samples, rate) tuple, or a list of these; got {type(x).__name__}"
    )


def resolve_audio_spec(explicit: Any = None, bundled: AudioSpec | None = None) -> tuple[AudioSpec, str]:
    """Pick the audio spec and say where it came from (explicit > the model's own > defaults)."""
    return resolve_input_spec(explicit, bundled, AudioSpec())  # type: ignore[return-value]
