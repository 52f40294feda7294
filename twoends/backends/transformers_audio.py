"""Hugging Face audio classifiers (AST, Wav2Vec2 / HuBERT / WavLM, Whisper encoder) with their own two ends.

The input end is the model's feature extractor, at its own sampling rate:

* ``Wav2Vec2FeatureExtractor`` (Wav2Vec2, HuBERT, WavLM, ...) becomes an exact
  ``AudioSpec``: the whole clip, normalised to zero mean and unit variance when
  ``do_normalize`` (the same float32 arithmetic), with an attention mask of ones
  when the extractor returns one, as the pipeline feeds it.
* Other extractors (AST's filter banks, Whisper's log-mel) run themselves
  (``ExtractorSpec``), once per batch in the model's thread, on windows of the
  length the extractor keeps: AST's ``max_length`` frames (10.24 s), Whisper's
  30 s. A clip within one window gets what the pipeline feeds the model; a
  longer clip (which the pipeline silently truncates) is cut into windows and
  combined (``twoends.head.windows``).

Windows of different lengths (whole clips of a Wav2Vec2 model, the last window
of a long clip) never share a forward pass: padding would change a model that
takes no attention mask, so each length runs as its own sub-batch, and every
answer is the pipeline's to float precision (tests: 1e-5).

The output end is ``transformers.activation_for`` (the pipelines' rule), the
logits always kept. Importing this module imports torch and transformers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from twoends.backends.base import ModelInfo
from twoends.backends.torch import TorchBackend
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions
from twoends.preprocess.audio_spec import AudioPlan, AudioSpec
from twoends.preprocess.protocol import InputSpec, Limits, Windows

__all__ = ["ExtractorSpec", "HFAudioBackend", "is_audio_model", "spec_from_extractor", "wrap_audio"]


# --------------------------------------------------------------------------- the input end


class ExtractorSpec(InputSpec):
    """The model's HF feature extractor, run as is on each window that ``audio`` cuts."""

    kind = "audio"

    def __init__(self, extractor: Any, audio: AudioSpec, reason: str):
        self.extractor, self.audio, self.reason = extractor, audio, reason

    def plan(self, limits: Limits | None = None) -> "_ExtractorPlan":
        return _ExtractorPlan(self, limits)

    def to_dict(self) -> dict:
        return {
            **self.audio.to_dict(),
            "hf_feature_extractor": type(self.extractor).__name__,
            "why_not_an_audio_spec": self.reason,
        }

    def replace(self, **changes: Any) -> "ExtractorSpec":
        if "sample_rate" in changes and changes["sample_rate"] != self.audio.sample_rate:
            raise ConfigError(
                f"{type(self.extractor).__name__} runs at {self.audio.sample_rate} Hz, the rate the model was "
                "trained at; clips are resampled to it. Leave sample_rate alone"
            )
        return ExtractorSpec(self.extractor, self.audio.replace(**changes), self.reason)

    def describe(self) -> str:
        return f"{self.audio.describe()}; then the model's {type(self.extractor).__name__} on each window"


class _ExtractorPlan(AudioPlan):
    per_batch = True  # the extractor runs once per batch, in the model's thread (as HF image processors do)

    def __init__(self, spec: ExtractorSpec, limits: Limits | None = None):
        super().__init__(spec.audio, limits)
        self.extractor = spec.extractor
        self.spec = spec

    def __reduce__(self) -> tuple[Any, ...]:
        return _ExtractorPlan, (self.spec, self.limits)

    def apply(self, samples: np.ndarray) -> Windows:
        return self.apply_batch([samples])[0]

    def apply_batch(self, clips: list[np.ndarray]) -> list[Windows]:
        cut = [self.windows(x) for x in clips]
        frames = [f for fs, _, _ in cut for f in fs]
        feats = _extract(self.extractor, frames, self.audio.sample_rate)
        out, at = [], 0
        for fs, starts, ends in cut:
            out.append(Windows(feats[at : at + len(fs)], starts, ends, merge_gap=float(self.audio.merge_gap)))
            at += len(fs)
        return out


def _extract(extractor: Any, frames: list[np.ndarray], rate: int) -> list[dict[str, np.ndarray]]:
    """The extractor on every frame; frames of one length in one call (no padding between them)."""
    out: list[Any] = [None] * len(frames)
    for length in dict.fromkeys(len(f) for f in frames):
        where = [i for i, f in enumerate(frames) if len(f) == length]
        enc = extractor([frames[i] for i in where], sampling_rate=rate, return_tensors="np")
        for j, i in enumerate(where):
            out[i] = {k: np.asarray(v[j]) for k, v in enc.items()}
    return out


def spec_from_extractor(extractor: Any) -> tuple[InputSpec, str]:
    """The AudioSpec where it is exact (Wav2Vec2FeatureExtractor), else the extractor itself, with a note."""
    from transformers import Wav2Vec2FeatureExtractor

    name, rate = type(extractor).__name__, int(extractor.sampling_rate)
    if type(extractor) is Wav2Vec2FeatureExtractor and getattr(extractor, "feature_size", 1) == 1:
        norm = "zero_mean_unit_var" if extractor.do_normalize else "none"
        return AudioSpec(sample_rate=rate, normalize=norm), f"spec from {name} (exact: {norm} on the whole clip)"
    window = _window_of(extractor, rate)
    audio = AudioSpec(sample_rate=rate, window=window)
    span = "the whole clip" if window is None else f"windows of {window / rate:g} s"
    return ExtractorSpec(extractor, audio, f"{name} computes features"), f"preprocessing: {name} itself, on {span}"


def _window_of(extractor: Any, rate: int) -> int | None:
    """The samples an extractor keeps (more would be truncated by it), or None (it keeps any length)."""
    n_samples = getattr(extractor, "n_samples", None)  # Whisper: chunk_length * sampling_rate
    if isinstance(n_samples, int) and n_samples > 0:
        return n_samples
    frames = getattr(extractor, "max_length", None)  # AST: frames of 25 ms every 10 ms (Kaldi fbank)
    if type(extractor).__name__ == "ASTFeatureExtractor" and isinstance(frames, int) and frames > 0:
        return round(0.025 * rate) + (frames - 1) * round(0.010 * rate)
    return None


# --------------------------------------------------------------------------- the middle


class _AudioBatch(NamedTuple):
    count: int
    groups: list[tuple[list[int], dict[str, np.ndarray]]]  # rows, model inputs stacked


class HFAudioBackend(TorchBackend):
    """A torch audio model: ``collate`` groups windows by shape, ``forward`` runs ``module(**inputs)`` per group."""

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        info: ModelInfo,
        input_name: str,
        attention_mask: bool,
        run: RunOptions | None = None,
    ):
        super().__init__(module, info=info, run=run)
        self.input_name, self.attention_mask = input_name, attention_mask

    def collate(self, inputs: Any) -> _AudioBatch:
        rows = [w for v in inputs for w in (v.inputs if isinstance(v, Windows) else [v])]
        rows = [r if isinstance(r, dict) else self._wrap(np.asarray(r)) for r in rows]
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(tuple((k, v.shape) for k, v in sorted(r.items())), []).append(i)
        return _AudioBatch(
            len(rows),
            [(idx, {k: np.stack([rows[i][k] for i in idx]) for k in rows[idx[0]]}) for idx in groups.values()],
        )

    def _wrap(self, x: np.ndarray) -> dict[str, np.ndarray]:
        enc = {self.input_name: x.astype(np.float32, copy=False)}
        if self.attention_mask:
            enc["attention_mask"] = np.ones(x.shape, np.int32)
        return enc

    def forward(self, batch: Any) -> torch.Tensor:
        if not isinstance(batch, _AudioBatch):
            raise ModelError(f"{self.info.name} is an audio model: forward takes a batch from collate(clips)")
        out = None
        for idx, enc in batch.groups:
            logits = super().forward(enc)
            if out is None:
                out = logits.new_empty((batch.count, *logits.shape[1:]))
            out[torch.as_tensor(idx, device=logits.device)] = logits
        return out

    def _to_tensor(self, batch: Any) -> Any:
        return {
            k: super(HFAudioBackend, self)._to_tensor(v)
            if v.dtype.kind == "f"
            else torch.from_numpy(v).to(self._device)
            for k, v in batch.items()
        }

    def _call(self, x: Any) -> Any:
        return self._run(lambda enc: self.module(**enc), x)

    def describe(self) -> str:
        return super().describe().replace("TorchBackend(", "HFAudioBackend(", 1)


# --------------------------------------------------------------------------- wrap


def is_audio_model(model: Any, processor: Any) -> bool:
    from transformers import SequenceFeatureExtractor

    if isinstance(processor, SequenceFeatureExtractor) or isinstance(
        getattr(processor, "feature_extractor", None), SequenceFeatureExtractor
    ):
        return True
    return processor is None and getattr(model, "main_input_name", "") in ("input_values", "input_features")


def wrap_audio(
    model: Any, processor: Any, *, run: RunOptions | None, name: str | None, info_for: Any
) -> HFAudioBackend:
    """The backend for an HF audio classifier and its feature extractor (or a processor holding one)."""
    extractor = getattr(processor, "feature_extractor", processor)
    if extractor is None:
        raise ModelError(
            f"{type(model).__name__} is an audio model and no feature extractor was given: "
            "wrap(model, processor=AutoFeatureExtractor.from_pretrained(NAME))"
        )
    run = run or RunOptions()
    if run.compile:
        raise ConfigError("compile=True is for fixed-shape image models; audio clips vary in length: leave it off")
    spec, note = spec_from_extractor(extractor)
    info = info_for(
        model, name, spec, [note, f"sampling rate {extractor.sampling_rate} Hz (clips are resampled to it)"]
    )
    mask = isinstance(spec, AudioSpec) and bool(getattr(extractor, "return_attention_mask", False))
    return HFAudioBackend(model, info=info, input_name=model.main_input_name, attention_mask=mask, run=run)
