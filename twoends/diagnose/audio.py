"""The doctor's audio checks: the silent mistakes of an audio model's input end.

Each runs on the model inputs (``rows``: one 1-D float array per clip, at the
model's rate) and, where given, the clips they were made from (``sources``:
decoded ``AudioClip`` s, which know their rate, channels and length). A clip of
F frames at rate r with c channels, fed to a model at rate R, must become about
F x R / r samples; other lengths say what went wrong:

=================  ===================================================================
sample-rate        F samples: fed at the file's rate, not resampled (it plays R/r times
                   too fast); or, from the spectrum alone, nothing above a frequency far
                   below the model's Nyquist (recorded at a higher rate and not resampled,
                   or a narrow-band source; a full-band recording hides it: the
                   lengths are what tell)
int16-scale        whole-number samples beyond +-1: int16 PCM not divided by 32768
stereo-as-mono     c x F samples: interleaved channels read as one (L R L R ...)
clipping           runs of samples stuck at the extremes: the waveform was cut
truncation         fewer samples than the clip has: only its start reached the model
=================  ===================================================================
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .finding import Finding

__all__ = ["AUDIO_CHECKS", "clipping", "int16_scale", "lengths", "spectrum"]

AUDIO_CHECKS = ("sample-rate", "int16-scale", "stereo-as-mono", "clipping", "truncation")
TOLERANCE = 0.02  # relative length slack (resamplers and codecs round by a few samples)
EMPTY_TOP = 0.6  # a band empty above this share of Nyquist is suspicious
QUIET_DB = -60.0  # a band this far under the loudest band is empty
CLIP_SHARE = 1e-3  # share of samples in flat runs at the rails that counts as clipping


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * b + 2


def lengths(rows: Sequence[np.ndarray], sources: Sequence[Any], rate: int, window: int | None) -> list[Finding]:
    """sample-rate, stereo-as-mono and truncation, from each row's length against its clip's."""
    found: dict[str, list] = {"sample-rate": [], "stereo-as-mono": [], "truncation": []}
    for i, (row, clip) in enumerate(zip(rows, sources, strict=True)):
        n, frames, r, c = len(row), clip.samples.shape[0], clip.rate, clip.channels
        want = frames * rate / r
        if _near(n, want):
            continue
        if c > 1 and (_near(n, c * want) or _near(n, c * frames)):
            found["stereo-as-mono"].append((i, n, want, c))
        elif r != rate and _near(n, frames):
            found["sample-rate"].append((i, r, n))
        elif n < want:
            found["truncation"].append((i, n, want))
        else:
            found["sample-rate"].append((i, None, n))
    out = []
    if found["sample-rate"]:
        i, r, n = found["sample-rate"][0]
        src = f"clip {i} is {sources[i].rate} Hz" + (
            f" and was fed as {n} samples, its length at {r} Hz"
            if r
            else f" and became {n} samples, not {len(rows[i])}"
        )
        out.append(
            Finding(
                "sample-rate",
                "error",
                "the audio reaches the model at the wrong sampling rate",
                seen=f"{src}; {rate} Hz needs {round(sources[i].samples.shape[0] * rate / sources[i].rate)} samples "
                f"({len(found['sample-rate'])} of {len(rows)} clips)",
                why=f"a model trained at {rate} Hz hears {sources[i].rate} Hz audio played {rate / sources[i].rate:.2f}x "
                "as fast: pitch and timing are wrong, and it still answers confidently",
                fix=f"resample every clip from its own rate to {rate} Hz (e.g. soxr.resample(x, file_rate, {rate})); "
                "twoends does it for you",
                evidence={"clips": [f[0] for f in found["sample-rate"]]},
            )
        )
    if found["stereo-as-mono"]:
        i, n, want, c = found["stereo-as-mono"][0]
        out.append(
            Finding(
                "stereo-as-mono",
                "error",
                "interleaved channels were read as one mono signal",
                seen=f"clip {i} has {c} channels and became {n} samples, {c}x the {round(want)} it has "
                f"({len(found['stereo-as-mono'])} of {len(rows)} clips)",
                why="L R L R ... read as one signal is a clip twice as long with a mirror image of the sound near "
                "Nyquist: the model hears noise and a slowed voice",
                fix="read the samples as (frames, channels) (soundfile's always_2d=True) and mix them down: x.mean(axis=1)",
                evidence={"clips": [f[0] for f in found["stereo-as-mono"]]},
            )
        )
    if found["truncation"]:
        i, n, want = found["truncation"][0]
        at_window = window is not None and abs(n - window) <= 0.01 * window
        out.append(
            Finding(
                "truncation",
                "error",
                "only the start of the clip reached the model",
                seen=f"clip {i} is {want / rate:.2f} s; the model got {n / rate:.2f} s"
                + (" (its window)" if at_window else "")
                + f" ({len(found['truncation'])} of {len(rows)} clips)",
                why="whatever happens after the cut is never heard: a long recording is judged by its first seconds",
                fix="cut long clips into windows of the model's length and combine the answers (twoends does: "
                "windows with the model's hop, mean of probabilities or max for sigmoid, and segments)",
                evidence={"clips": [f[0] for f in found["truncation"]]},
            )
        )
    return out


def int16_scale(rows: Sequence[np.ndarray]) -> list[Finding]:
    bad = [i for i, x in enumerate(rows) if x.size and np.abs(x).max() > 1.5 and np.all(x == np.round(x))]
    if not bad:
        return []
    peak = float(np.abs(rows[bad[0]]).max())
    return [
        Finding(
            "int16-scale",
            "error",
            "int16 samples were fed without scaling to [-1, 1]",
            seen=f"clip {bad[0]}: whole-number samples up to {peak:.0f} ({len(bad)} of {len(rows)} clips)",
            why="audio models take float samples in [-1, 1]; int16 PCM is 32768 times louder: the features saturate",
            fix="divide int16 samples by 32768 (soundfile.read(..., dtype='float32') does it)",
            evidence={"clips": bad, "peak": peak},
        )
    ]


def clipping(rows: Sequence[np.ndarray]) -> list[Finding]:
    hits = []
    for i, x in enumerate(rows):
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak <= 0 or x.size < 3:
            continue
        rail = np.abs(x) >= 0.999 * peak
        flat = rail[1:-1] & rail[:-2] & rail[2:]  # three in a row at the extreme: a cut top, not a peak
        share = float(flat.mean())
        if share > CLIP_SHARE:
            hits.append((i, share, peak))
    if not hits:
        return []
    i, share, peak = hits[0]
    return [
        Finding(
            "clipping",
            "warning",
            "the waveform is clipped",
            seen=f"clip {i}: {share:.1%} of its samples sit in flat runs at +-{peak:.3f} ({len(hits)} of {len(rows)} clips)",
            why="a cut waveform adds harmonics that were never in the sound; a model hears distortion",
            fix="lower the gain before converting to a fixed range, or use the unclipped recording",
            evidence={"clips": [h[0] for h in hits]},
        )
    ]


def spectrum(rows: Sequence[np.ndarray], rate: int, source_rates: Sequence[int] | None = None) -> list[Finding]:
    """sample-rate from the spectrum: how much of the band up to the model's Nyquist holds any sound."""
    tops = []
    for i, x in enumerate(rows):
        top = _occupied(x)
        if top is not None and top < EMPTY_TOP:
            explained = (
                source_rates is not None and source_rates[i] < rate and top * rate / 2 <= source_rates[i] / 2 * 1.05
            )
            tops.append((i, top, explained))
    if not tops:
        return []
    i, top, explained = tops[0]
    cutoff = top * rate / 2
    if all(t[2] for t in tops):
        return [
            Finding(
                "sample-rate",
                "info",
                f"the clips hold nothing above {cutoff:.0f} Hz: they were recorded at a lower rate",
                seen=f"clip {i} is {source_rates[i]} Hz audio resampled to {rate} Hz",
                why="resampling up cannot add what was never recorded: the model hears narrow-band sound",
                fix="nothing to fix in the pipeline; expect weaker answers than on full-band recordings",
            )
        ]
    return [
        Finding(
            "sample-rate",
            "warning",
            f"nothing above {cutoff:.0f} Hz reaches a {rate} Hz model",
            seen=f"clip {i}: the top {1 - top:.0%} of the band up to {rate // 2} Hz is empty "
            f"({len(tops)} of {len(rows)} clips)",
            why="audio recorded at a higher rate and fed without resampling fills only the bottom of the band "
            "(it plays slowed down); a narrow-band source looks the same: check which",
            fix=f"read each file's own rate and resample to {rate} Hz (e.g. soxr.resample(x, file_rate, {rate}))",
            evidence={"clips": [t[0] for t in tops], "occupied_share_of_nyquist": top},
        )
    ]


def _occupied(x: np.ndarray, frame: int = 1024) -> float | None:
    """The share of the band (0..Nyquist) below the highest band with sound in it; None for silence."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < frame or np.abs(x).max() == 0:
        return None
    frames = x[: x.size // frame * frame].reshape(-1, frame) * np.hanning(frame)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    bands = power[1:].reshape(32, -1).sum(axis=1)  # 32 bands of equal width
    level = 10 * np.log10(bands / bands.max() + 1e-30)
    loud = np.flatnonzero(level > QUIET_DB)
    return float((loud[-1] + 1) / len(bands))


# ---------------------------------------------------------------------------- running them


def run_checks(
    run: Any, rows: Sequence[np.ndarray], rate: int, window: int | None, sources: Sequence[Any] | None
) -> None:
    """Every audio check through the doctor's runner (``run(names, missing, fn)``)."""
    by_length = lengths(rows, sources, rate, window) if sources is not None else []

    def of(name: str) -> list[Finding]:
        return [f for f in by_length if f.check == name]

    no_sources = None if sources is not None else "needs inputs= (the clips the batch was made from)"
    run("stereo-as-mono", no_sources, lambda: of("stereo-as-mono"))
    run("truncation", no_sources, lambda: of("truncation"))
    rates = [c.rate for c in sources] if sources is not None else None
    # the spectrum speaks only where the lengths did not already say what happened
    run("sample-rate", None, lambda: of("sample-rate") or ([] if of("stereo-as-mono") else spectrum(rows, rate, rates)))
    run("int16-scale", None, lambda: int16_scale(rows))
    run("clipping", None, lambda: clipping(rows))


def as_rows(batch: Any) -> list[np.ndarray]:
    """The model inputs of a batch: a [B, samples] array, or a list of 1-D arrays (clips of any length)."""
    from ..errors import ConfigError
    from ..head.arrays import to_numpy

    if isinstance(batch, (list, tuple)):
        rows = [np.asarray(to_numpy(x), dtype=np.float64) for x in batch]
    else:
        a = np.asarray(to_numpy(batch), dtype=np.float64)
        rows = [a] if a.ndim == 1 else list(a)
    if any(r.ndim != 1 for r in rows):
        raise ConfigError("an audio batch= is one 1-D array of samples per clip: a [clips, samples] array or a list")
    return rows


def decoded_sources(inputs: Any) -> list[Any]:
    """The clips as decoded from their files (own rate, own channels), for comparing lengths."""
    from ..preprocess.audio import decode_audio
    from ..preprocess.audio_spec import iter_clips

    return [decode_audio(item.payload, None) for item in iter_clips(inputs)]


def check_classifier(run: Any, clf: Any, inputs: Any) -> None:
    """A twoends audio Classifier on clips: its own decoding, down-mix and resampling under test."""
    from ..errors import ConfigError

    if inputs is None:
        raise ConfigError("the doctor needs audio clips for an audio model: twoends doctor --model M clip.wav ...")
    sources = decoded_sources(inputs)
    rows = [np.asarray(clf.plan.to_model_rate(c), dtype=np.float64) for c in sources]
    run_checks(run, rows, clf.plan.audio.sample_rate, None, sources)  # twoends windows long clips itself
