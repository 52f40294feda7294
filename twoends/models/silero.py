"""``silero_vad``: the bundled voice-activity detector (speech / no speech, with the speech spans).

Its weights ship inside the ``silero-vad`` PyPI package (an ONNX file, run with
ONNX Runtime; torch is not needed). See ``twoends.backends.silero_vad``.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["build", "register_all"]


def build(*, run: Any = None, threads: int = 1):
    from twoends.backends.silero_vad import build as build_backend

    return build_backend(run=run, threads=threads)


def register_all(register: Callable[..., None]) -> None:
    register(
        "silero_vad",
        build,
        "voice activity: is there speech in an audio clip, and where (Silero VAD, 16 kHz, bundled in silero-vad)",
        requires=("onnxruntime", "soundfile", "soxr", "silero_vad"),
    )
