"""Silero VAD with ONNX Runtime: speech probability per 32 ms, the recurrent state carried through a clip.

The model (from the ``silero-vad`` PyPI package, its ``silero_vad_16k_sequence.onnx``)
reads 16 kHz audio in windows of 512 samples, each with the 64 samples before
it as context (zeros before the clip), and carries an LSTM state from one
window to the next. This file is the package's "sequence" export of the same
network: one ONNX call runs a block of windows in order, the state passed
between blocks, giving what the streaming model gives one window at a time
(checked against the package's own ``OnnxWrapper`` in the tests) without a
Python loop per window.

The windows come from the ``AudioSpec`` (window 512, hop 512, context 64,
last window zero-padded: the package's own framing). The network ends in a
sigmoid; its probabilities are turned back into logits here so that the head
applies the one sigmoid (clipped where float32 rounds a probability to 0 or 1).

Importing this module imports onnxruntime (not torch).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from twoends.backends.base import Backend, ModelInfo
from twoends.errors import InputError, ModelError
from twoends.options import RunOptions
from twoends.preprocess.protocol import Windows

__all__ = ["SileroVadBackend", "build"]

WINDOW, CONTEXT, RATE = 512, 64, 16000
BLOCK = 512  # windows per ONNX call (16.4 s): bounded memory, few calls
_EPS = 2.0**-24  # the float32 spacing just below 1.0: probabilities are kept inside (0, 1)


class SileroVadBackend(Backend):
    """Runs each clip's windows in order through the sequence model; one logit (speech) per window."""

    def __init__(self, session: Any, info: ModelInfo, device: str = "cpu", threads: int = 1) -> None:
        self.session = session
        self.info = info
        self.device = device
        self.single_threaded = threads == 1  # decoding runs beside it on the other cores

    def collate(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        """Keep each clip's windows together: the state runs from one window of a clip to the next."""
        out = []
        for v in inputs:
            frames = np.asarray(v.inputs if isinstance(v, Windows) else v, dtype=np.float32)
            if frames.ndim != 2 or frames.shape[1] != WINDOW + CONTEXT:
                raise InputError(
                    f"silero_vad takes windows of {CONTEXT}+{WINDOW} samples at {RATE} Hz, got an input of shape "
                    f"{frames.shape}: keep the model's own spec (window 512, context 64, pad)"
                )
            out.append(frames)
        return out

    def forward(self, batch: Any) -> np.ndarray:
        probs = np.concatenate([self._clip(frames) for frames in batch]) if len(batch) else np.zeros(0, np.float32)
        p = np.clip(probs.astype(np.float64), _EPS, 1.0 - _EPS)
        return (np.log(p) - np.log1p(-p))[:, None]  # [windows, 1] logits of "speech"

    def _clip(self, frames: np.ndarray) -> np.ndarray:
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        parts = []
        for at in range(0, frames.shape[0], BLOCK):
            p, h, c = self.session.run(
                ["speech_probs", "hn", "cn"], {"input": np.ascontiguousarray(frames[at : at + BLOCK]), "h": h, "c": c}
            )
            parts.append(p.reshape(-1))
        return np.concatenate(parts)

    def describe(self) -> str:
        return f"SileroVadBackend({self.info.name}, device={self.device})"


def model_file():
    """The ONNX file inside the installed ``silero-vad`` package, found without importing it (it imports torch)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("silero_vad needs the 'silero-vad' package for its model file: pip install silero-vad")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_16k_sequence.onnx"
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall silero-vad (>= 6.2, which ships the sequence model)")
    return path


def build(*, run: RunOptions | None = None, threads: int = 1) -> SileroVadBackend:
    """``twoends.load("silero_vad")``. ``threads``: ONNX Runtime threads per call (the LSTM is sequential: 1 is fastest)."""
    from twoends.errors import ConfigError
    from twoends.preprocess.audio_spec import AudioSpec

    run = run or RunOptions()
    run.require("silero_vad (ONNX Runtime on the CPU)", set())
    if run.device not in ("auto", "cpu"):
        raise ConfigError(
            f"silero_vad runs on the CPU (a small recurrent network), got device={run.device!r}; "
            "leave device at 'auto' or 'cpu'"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    path = model_file()
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    spec = AudioSpec(sample_rate=RATE, window=WINDOW, hop=WINDOW, context=CONTEXT, pad=True, merge_gap=0.1)
    info = ModelInfo(
        name="silero_vad",
        spec=spec,
        labels=["speech"],
        activation="sigmoid",
        outputs="logits",
        num_outputs=1,
        notes=(
            f"Silero VAD ({path.name} from the silero-vad package): speech probability per 32 ms window",
            "clip label: speech when any window is (max over windows); segments: the speech spans, "
            "gaps under 0.1 s joined (the package's min_silence_duration_ms)",
        ),
    )
    return SileroVadBackend(session, info, threads=threads)
