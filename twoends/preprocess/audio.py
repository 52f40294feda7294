"""Audio decoding: any clip -> float32 samples in [-1, 1] at the clip's own rate, limits checked first.

What a user may pass as one clip:

* a path, ``bytes`` / ``bytearray`` / ``memoryview``, or a binary file object:
  WAV, FLAC, OGG/Vorbis (and whatever else libsndfile reads) with ``soundfile``;
  MP3, M4A/AAC, Opus, WebM and the audio track of a video file with PyAV (the
  FFmpeg libraries inside its wheel) when libsndfile cannot read it;
* ``AudioClip(samples, rate)``, or the plain tuple ``(samples, rate)``: a NumPy
  array of shape (frames,) or (frames, channels) - soundfile's layout - with its
  sampling rate in Hz. Integer samples are scaled to [-1, 1] by their type's
  full scale (int16 / 32768, int32 / 2**31, uint8 centred on 128); float samples
  are taken as they are. A bare array without a rate is refused: the rate is the
  one thing an array cannot tell, and a wrong one gives confident wrong answers.

The duration limit is checked from the file's header before any sample is
decoded, and again while decoding (a header may lie), so a clip never costs
more than ``max_seconds`` of samples. Empty, corrupt, non-audio and over-long
inputs raise ``DecodeError`` / ``AudioTooLongError`` with what was expected.

``soundfile`` and ``av`` are imported only when a file of that kind is decoded.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AudioTooLongError, DecodeError, InputError

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_MAX_SECONDS", "AudioClip", "as_clip", "decode_audio"]

# a folder of audio yields these (video containers too: their audio track is read)
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aac",
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".aif",
        ".aiff",
        ".au",
        ".caf",
        ".wma",
        ".amr",
        ".3gp",
    }
)
DEFAULT_MAX_SECONDS = 600.0  # 10 minutes: 38 MB of float32 at 16 kHz, 230 MB at 48 kHz stereo while decoding
_BYTES = (bytes, bytearray, memoryview)


@dataclass(frozen=True, eq=False)
class AudioClip:
    """Samples and their sampling rate: ``samples`` (frames,) or (frames, channels); ``rate`` in Hz.

    The way to pass an array to an audio model: ``clf.predict(AudioClip(x, 16000))``
    (or ``(x, 16000)``). Decoded clips are AudioClips of float32 (frames, channels).
    """

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.rate

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else self.samples.shape[1]


def is_clip_tuple(x: Any) -> bool:
    """``(samples, rate)``: an array and a whole number (one clip, not two inputs)."""
    return (
        isinstance(x, tuple)
        and len(x) == 2
        and hasattr(x[0], "shape")
        and isinstance(x[1], (int, float, np.integer, np.floating))
        and not isinstance(x[1], bool)
    )


def as_clip(x: AudioClip | tuple, max_seconds: float | None) -> AudioClip:
    """An array with its rate -> float32 (frames, channels) in [-1, 1], checked."""
    samples, rate = (x.samples, x.rate) if isinstance(x, AudioClip) else x
    whole = isinstance(rate, (int, np.integer)) or (isinstance(rate, (float, np.floating)) and float(rate).is_integer())
    if isinstance(rate, bool) or not whole or rate < 1:
        raise InputError(f"the sampling rate must be a whole number of Hz >= 1, got {rate!r}; e.g. AudioClip(x, 16000)")
    a = np.asarray(samples)
    if a.ndim not in (1, 2) or a.size == 0:
        raise InputError(
            f"audio samples must be a non-empty array of shape (frames,) or (frames, channels), got shape {a.shape}; "
            "a (channels, frames) array is transposed with x.T"
        )
    if a.ndim == 2 and a.shape[1] > 64 and a.shape[0] <= 64:
        raise InputError(
            f"audio of shape {a.shape} looks like (channels, frames); twoends takes (frames, channels) as soundfile "
            "returns it: pass x.T"
        )
    _check_seconds(a.shape[0] / int(rate), max_seconds, "the array")
    return AudioClip(_to_float(a).reshape(a.shape[0], -1), int(rate))


def _to_float(a: np.ndarray) -> np.ndarray:
    kind = a.dtype.kind
    if kind == "f":
        out = a.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise InputError("the audio holds NaN or infinite samples; expected finite values in [-1, 1]")
        return out
    if kind == "i":
        return (a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))).astype(np.float32)
    if kind == "u" and a.dtype.itemsize == 1:
        return ((a.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise InputError(f"audio samples of dtype {a.dtype} are not supported; expected float32/64, int16, int32 or uint8")


def decode_audio(payload: Any, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> AudioClip:
    """One clip (see the module docstring) -> ``AudioClip`` of float32 (frames, channels)."""
    if isinstance(payload, InputError):
        raise payload
    if isinstance(payload, AudioClip) or is_clip_tuple(payload):
        return as_clip(payload, max_seconds)
    if isinstance(payload, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(payload))
        if not os.path.isfile(path):
            raise DecodeError(
                f"no such file: {path}"
                if not os.path.isdir(path)
                else f"{path} is a folder; pass it as the whole input to read the audio files in it"
            )
        if os.path.getsize(path) == 0:
            raise DecodeError(f"{path} is empty (0 bytes); expected an audio file")
        return _decode_file(path, path, max_seconds)
    if isinstance(payload, _BYTES):
        if len(payload) == 0:
            raise DecodeError("empty bytes: expected the contents of an audio file")
        return _decode_file(io.BytesIO(bytes(payload)), "the bytes", max_seconds)
    if hasattr(payload, "read"):
        data = payload.read()
        if not isinstance(data, _BYTES):
            raise InputError("the file object gave text; open audio files in binary mode ('rb')")
        if len(data) == 0:
            raise DecodeError("the file object is empty; expected an audio file")
        name = getattr(payload, "name", None)
        return _decode_file(io.BytesIO(bytes(data)), name if isinstance(name, str) else "the file object", max_seconds)
    if hasattr(payload, "shape") and hasattr(payload, "dtype"):
        raise InputError(
            f"an audio array needs its sampling rate: pass AudioClip(x, rate) or (x, rate) instead of a bare "
            f"{type(payload).__name__} (a wrong rate runs and answers confidently, so it is never assumed)"
        )
    raise InputError(
        f"cannot use a {type(payload).__name__} as audio: expected a path, folder, bytes, a binary file object, "
        "AudioClip(samples, rate) or a (samples, rate) tuple"
    )


def _decode_file(source: Any, name: str, max_seconds: float | None) -> AudioClip:
    """libsndfile first (exact frame counts, fast); FFmpeg (PyAV) for what it cannot read."""
    import soundfile as sf

    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is not None and info.frames > 0 and info.samplerate > 0:
        _check_seconds(info.frames / info.samplerate, max_seconds, name)
        if hasattr(source, "seek"):
            source.seek(0)
        try:
            data, rate = sf.read(source, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise DecodeError(
                f"{name} is a corrupt or truncated audio file ({e}); expected a readable audio file"
            ) from None
        return _checked(AudioClip(data, int(rate)), name, max_seconds)
    if hasattr(source, "seek"):
        source.seek(0)
    return _decode_with_av(source, name, max_seconds)


def _decode_with_av(source: Any, name: str, max_seconds: float | None) -> AudioClip:
    try:
        import av
    except ImportError:
        from ..extras import install_hint

        raise DecodeError(
            f"{name} is not WAV/FLAC/OGG (what soundfile reads); MP3, M4A, Opus and video files need PyAV, "
            f"which is not installed: {install_hint('av')}"
        ) from None
    try:
        container = av.open(source, mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise DecodeError(
            f"{name} is not an audio file anything here can read ({_first_line(e)}); "
            "expected WAV, FLAC, OGG, MP3, M4A/AAC, Opus or a video with an audio track"
        ) from None
    with container:
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise DecodeError(f"{name} has no audio track (it holds {', '.join(kinds)}); expected an audio file")
        stream = container.streams.audio[0]
        seconds = _header_seconds(container, stream)
        if seconds is not None:
            _check_seconds(seconds, max_seconds, name)
        rate = stream.codec_context.sample_rate or stream.rate
        limit = None if max_seconds is None else int(max_seconds * rate) + rate  # a header may lie
        resampler = av.AudioResampler(format="fltp")  # planar float32, the clip's own rate and layout
        parts, total = [], 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray()
                    parts.append(block)
                    total += block.shape[1]
                if limit is not None and total > limit:
                    _check_seconds(total / rate, max_seconds, name)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray())
        except av.error.FFmpegError as e:
            raise DecodeError(
                f"{name} is corrupt or truncated ({_first_line(e)}); expected a readable audio file"
            ) from None
    if not parts:
        raise DecodeError(f"{name} holds no audio samples; expected a non-empty audio file")
    data = np.concatenate(parts, axis=1).T  # (frames, channels)
    return _checked(AudioClip(np.ascontiguousarray(data, dtype=np.float32), int(rate)), name, max_seconds)


def _header_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    return None


def _checked(clip: AudioClip, name: str, max_seconds: float | None) -> AudioClip:
    if clip.samples.shape[0] == 0:
        raise DecodeError(f"{name} holds no audio samples; expected a non-empty audio file")
    _check_seconds(clip.seconds, max_seconds, name)
    return clip


def _check_seconds(seconds: float, max_seconds: float | None, name: str) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioTooLongError(
            f"{name} is {seconds:.1f} s long, over the limit of {max_seconds:g} s; cut it, or raise the limit "
            "with max_seconds=N (None: no limit)"
        )


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]
