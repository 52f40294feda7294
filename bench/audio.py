"""Audio clips end to end: twoends vs the usual recipe on the same model, in clips/s and times real time.

Clips: espeak-ng speech placed in noise, 3 to 12 s, written as 44.1 kHz WAV files
(so every path decodes and resamples to the model's 16 kHz). Each mode reads the
same files and gives one answer per clip; loading and one warm-up clip are not
timed; the modes take turns for ``--rounds`` rounds and the median round is shown.

silero_vad (the bundled ONNX voice detector):
  * ``twoends``: ``load("silero_vad").predict_iter(paths)``: per-clip speech probability and spans;
  * ``streaming``: the silero-vad package's recipe: soundfile + soxr to 16 kHz, then its
    ``get_speech_timestamps`` with ``load_silero_vad(onnx=True)`` (one ONNX call per 32 ms window);
  * ``sequence``: the same with the package's sequence model (``load_silero_vad(sequence=True)``).

An HF audio classifier (AST, a smaller config than the published base model, random
weights: the speed of the same architecture, not its answers):
  * ``twoends``: ``wrap(model, processor=extractor).predict_iter(paths)``;
  * ``pipeline``: ``transformers.pipeline("audio-classification")`` on the same paths, one
    clip at a time as documented (it reads files with the ffmpeg binary), model in eval mode;
  * ``pipeline arrays``: the pipeline given the clips already decoded at 16 kHz (decoding free).

    python bench/audio.py                 # 24 clips, 2 rounds
    python bench/audio.py --clips 8 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests import audio  # noqa: E402

RATE = 44100


def make_clips(folder: Path, n: int, longest: float) -> tuple[list[str], float]:
    voice = audio.speech(rate=RATE, tmp=folder)
    rng = np.random.default_rng(0)
    paths, seconds = [], 0.0
    for i in range(n):
        length = float(rng.uniform(3, longest))
        part = voice[: int(min(len(voice) / RATE, length - 1) * RATE)]
        x = audio.place(
            part, audio.noise(length, RATE, level=0.01, seed=i), float(rng.uniform(0, length - len(part) / RATE)), RATE
        )
        paths.append(str(audio.write(folder / f"clip{i:03d}_{longest:g}.wav", x, RATE)))
        seconds += length
    return paths, seconds


def timed(fn, paths) -> float:
    t = time.perf_counter()
    n = fn(paths)
    assert n == len(paths), (n, len(paths))
    return time.perf_counter() - t


def silero_modes():
    import soundfile as sf
    import soxr
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad
    from silero_vad.sequence_vad import get_speech_timestamps_sequence

    import twoends

    clf = twoends.load("silero_vad")
    streaming = load_silero_vad(onnx=True)
    sequence = load_silero_vad(sequence=True)

    def read16(p):
        x, r = sf.read(p, dtype="float32", always_2d=True)
        return soxr.resample(x.mean(axis=1), r, 16000).astype(np.float32)

    return {
        "twoends": lambda ps: sum(1 for _ in clf.predict_iter(ps)),
        "streaming": lambda ps: sum(
            1 for p in ps if get_speech_timestamps(torch.from_numpy(read16(p)), streaming) is not None
        ),
        "sequence": lambda ps: sum(1 for p in ps if get_speech_timestamps_sequence(read16(p), sequence) is not None),
    }


def hf_modes():
    import torch
    import transformers

    import twoends

    torch.manual_seed(0)
    cfg = transformers.ASTConfig(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536, num_labels=10
    )
    model = transformers.ASTForAudioClassification(cfg).eval()
    fe = transformers.ASTFeatureExtractor()
    pipe = transformers.pipeline("audio-classification", model=model, feature_extractor=fe, device="cpu")
    clf = twoends.wrap(model, processor=fe, batch_size=8)
    bf16 = twoends.wrap(model, processor=fe, batch_size=8, precision="bf16")
    decoded: dict[str, np.ndarray] = {}

    def arrays(ps):
        return sum(1 for p in ps if pipe(decoded[p]) is not None)

    def decode_all(ps):
        plan = clf.plan
        decoded.update({p: plan.decode(p) for p in ps})

    def agreement(ps):
        a, b = list(clf.predict_iter(ps)), list(bf16.predict_iter(ps))
        dp = max(float(np.abs(x.probabilities - y.probabilities).max()) for x, y in zip(a, b))
        same = sum(x.label == y.label for x, y in zip(a, b))
        print(f"bf16 vs fp32 on these clips: top-1 agrees on {same}/{len(a)}, max |dp| {dp:.4f}")

    return (
        {
            "twoends": lambda ps: sum(1 for _ in clf.predict_iter(ps)),
            "twoends bf16": lambda ps: sum(1 for _ in bf16.predict_iter(ps)),
            "pipeline": lambda ps: sum(1 for p in ps if pipe(p) is not None),
            "pipeline arrays": arrays,
        },
        decode_all,
        agreement,
        f"AST {cfg.num_hidden_layers} layers x {cfg.hidden_size}, 10.24 s windows",
    )


def run(name: str, modes: dict, paths: list[str], seconds: float, rounds: int, baseline: str) -> None:
    for fn in modes.values():
        fn(paths[:1])  # warm-up, untimed
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for m, fn in modes.items():
            times[m].append(timed(fn, paths))
    print(f"\n{name}: {len(paths)} clips, {seconds:.0f} s of audio, median of {rounds} round(s)")
    print(f"{'mode':<20}{'clips/s':>10}{'x real time':>14}{'vs ' + baseline:>18}")
    base = statistics.median(times[baseline])
    for m, ts in times.items():
        t = statistics.median(ts)
        print(f"{m:<20}{len(paths) / t:>10.2f}{seconds / t:>14.1f}{base / t:>17.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=["silero", "hf"], default=None)
    args = ap.parse_args()
    import torch

    print(
        f"# {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "silero"):
            paths, seconds = make_clips(Path(tmp), args.clips, 12)
            run("silero_vad", silero_modes(), paths, seconds, args.rounds, "streaming")
        if args.only in (None, "hf"):
            # clips within one 10.24 s window: the pipeline and twoends do the same work (longer clips, which
            # the pipeline truncates, cost twoends one more window each)
            paths, seconds = make_clips(Path(tmp), args.clips, 10)
            modes, decode_all, agreement, what = hf_modes()
            decode_all(paths)
            run(f"HF audio classifier ({what})", modes, paths, seconds, args.rounds, "pipeline")
            agreement(paths)


if __name__ == "__main__":
    main()
