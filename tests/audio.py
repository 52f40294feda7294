"""Real audio for tests, made on the spot: espeak-ng speech, noise, tones, silence, in any container.

Speech is synthesised by espeak-ng (the Debian package scripts/setup.sh installs);
tests that need it skip, saying why, where it is missing. Files are written with
soundfile (WAV, FLAC, OGG/Vorbis, MP3) and PyAV (M4A/AAC, Opus, an MP4 video
with an audio track). Nothing is committed and nothing is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

SENTENCE = "The quick brown fox jumps over the lazy dog. Voice activity detection finds the speech."
SF_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
AV_CODECS = {
    ".m4a": ("mp4", "aac"),
    ".opus": ("ogg", "libopus"),
    ".mp4": ("mp4", "aac"),
    ".webm": ("webm", "libopus"),
    ".aac": ("adts", "aac"),
}


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speech(text: str = SENTENCE, rate: int = 16000, *, tmp: Path) -> np.ndarray:
    """espeak-ng reading ``text``, float32 mono at ``rate`` (resampled with soxr from its 22050 Hz)."""
    if not have_espeak():
        pytest.skip("espeak-ng is not installed (scripts/setup.sh test installs it with apt-get)")
    import soundfile as sf
    import soxr

    out = tmp / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True, timeout=60)
    x, r = sf.read(out, dtype="float32")
    return soxr.resample(x, r, rate).astype(np.float32) if r != rate else x


def voiced_span(x: np.ndarray, rate: int, level: float = 0.02) -> tuple[float, float]:
    """Where a clean clip's sound starts and ends (seconds), from its 10 ms envelope."""
    hop = rate // 100
    env = np.abs(x[: len(x) // hop * hop]).reshape(-1, hop).max(axis=1)
    on = np.flatnonzero(env > level)
    return on[0] * hop / rate, (on[-1] + 1) * hop / rate


def noise(seconds: float, rate: int = 16000, level: float = 0.02, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def place(inner: np.ndarray, outer: np.ndarray, at: float, rate: int) -> np.ndarray:
    out = outer.copy()
    i = int(at * rate)
    out[i : i + len(inner)] += inner[: len(out) - i]
    return out


def stereo(x: np.ndarray) -> np.ndarray:
    """Two channels: the clip, and the clip a little quieter (a real stereo file, not a copy)."""
    return np.stack([x, 0.8 * x], axis=1)


def write(path: Path, x: np.ndarray, rate: int) -> Path:
    """Write float samples (frames,) or (frames, channels) in the container the suffix names."""
    suffix = path.suffix.lower()
    if suffix in SF_FORMATS:
        import soundfile as sf

        fmt, subtype = SF_FORMATS[suffix]
        sf.write(path, x, rate, format=fmt, subtype=subtype)
        return path
    if suffix in AV_CODECS:
        return _write_av(path, x, rate, *AV_CODECS[suffix])
    raise ValueError(f"no writer for {suffix}")


def _write_av(path: Path, x: np.ndarray, rate: int, container_format: str, codec: str) -> Path:
    import av

    x = x.reshape(len(x), -1)
    layout = "mono" if x.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as out:
        if path.suffix == ".mp4":  # a video file with an audio track: 2 s of grey frames
            video = out.add_stream("mpeg4", rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        stream = out.add_stream(codec, rate=48000 if codec == "libopus" else rate, layout=layout)
        if path.suffix == ".mp4":
            for i in range(20):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
                frame.pts = i
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
        if codec == "libopus" and rate != 48000:  # Opus runs at 48 kHz
            import soxr

            x = soxr.resample(x, rate, 48000).astype(np.float32)
            rate = 48000
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T, dtype=np.float32), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
