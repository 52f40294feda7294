"""Whole processes, start-up included: the seed's recipe vs `twoends predict` with each runtime.

Every run is a fresh process timed from the outside (wall clock) with its peak memory
(the child's ru_maxrss); the modes take turns, round after round, on the same photos.

  seed               python: import torch, build EfficientNet-Lite0, the 20-line recipe on
                     every photo (bench/predict.py's seed_recipe), print the top-5
  torch              twoends predict --runtime torch (today's default before issue 15)
  auto               twoends predict (runtime auto, float32; the export is cached before the
                     rounds: the first use's export is not part of these figures)
  ov-bf16            twoends predict --runtime openvino --precision bf16 (opt-in numbers)

    python bench/whole.py                       # 300 photos and 1 photo, 3 rounds
    python bench/whole.py --photos 300 --rounds 5
    python bench/whole.py --rounds 5 --baseline d917edb   # also `twoends predict` as it was at that commit

--baseline REF adds a mode "torch@REF": `twoends predict` from a git worktree of REF (its default, PyTorch,
then), run with the same Python and packages - e.g. the commit issue 15 was filed against, so that "today's
PyTorch default" is measured in the same run rather than taken from an older one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.photos import make_photos  # noqa: E402
from bench.predict import BENCH_CACHE, _export_once  # noqa: E402

SEED = r"""
import sys
sys.path.insert(0, {root!r})
import torch
from bench.predict import seed_recipe
from twoends.models.efficientnet_lite import build_module
module = build_module("efficientnet_lite0")
paths = sys.argv[1:]
for p, (values, indices) in zip(paths, seed_recipe(module, paths)):
    print(p, indices[0].tolist())
"""

MODES = {
    "seed": lambda paths: [sys.executable, "-c", SEED.format(root=str(ROOT)), *paths],
    "torch": lambda paths: [
        sys.executable,
        "-m",
        "twoends",
        "predict",
        *paths,
        "--runtime",
        "torch",
        "--format",
        "jsonl",
    ],
    "auto": lambda paths: [sys.executable, "-m", "twoends", "predict", *paths, "--format", "jsonl"],
    "ov-bf16": lambda paths: [
        sys.executable,
        "-m",
        "twoends",
        "predict",
        *paths,
        "--runtime",
        "openvino",
        "--precision",
        "bf16",
        "--format",
        "jsonl",
    ],
}


#: where each mode's `twoends` is imported from (a --baseline worktree, else this checkout)
PYTHONPATHS: dict[str, str] = {}


def baseline_worktree(ref: str) -> str:
    """A detached git worktree of ``ref`` in a temporary folder (removed when the benchmark ends)."""
    import atexit
    import shutil

    folder = tempfile.mkdtemp(prefix="twoends-baseline-")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", folder, ref], check=True, capture_output=True
    )

    def remove() -> None:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", folder], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    return folder


def timed(cmd: list[str], pythonpath: str = str(ROOT)) -> tuple[float, float]:
    """(seconds, peak MB) of one fresh process running ``cmd``: a small wrapper process starts it, times
    it and reads its peak RSS (RUSAGE_CHILDREN of the wrapper is that one child's)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**os.environ, "TWOENDS_CACHE_DIR": BENCH_CACHE, "PYTHONPATH": pythonpath}
    env.pop("TWOENDS_RUNTIME", None)
    # a user's Python keeps compiled bytecode (.pyc) between runs; without it every run
    # compiles torch, numpy and twoends from source again (0.5 s for a one-photo run here)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        # run from ``pythonpath`` too: Python puts the working directory first on sys.path, so from this
        # checkout a baseline's `python -m twoends` would import this checkout's twoends
        [sys.executable, "-c", code, *cmd],
        capture_output=True,
        text=True,
        env=env,
        cwd=pythonpath,
        check=True,
    )
    seconds, kb = out.stdout.split()
    return float(seconds), int(kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "twoends-bench-photos"))
    ap.add_argument("--baseline", metavar="REF", help="also `twoends predict` from this commit (its default then)")
    args = ap.parse_args()
    if args.baseline:
        mode = f"torch@{args.baseline}"
        PYTHONPATHS[mode] = baseline_worktree(args.baseline)
        MODES[mode] = lambda paths: [sys.executable, "-m", "twoends", "predict", *paths, "--format", "jsonl"]
    paths = [str(p) for p in make_photos(Path(args.cache), args.photos)]
    _export_once()
    for label, chosen in ((f"{len(paths)} photos", paths), ("1 photo", paths[:1])):
        secs: dict[str, list[float]] = {m: [] for m in MODES}
        peaks: dict[str, list[float]] = {m: [] for m in MODES}
        for mode, cmd in MODES.items():  # one untimed run each: bytecode written, files in the page cache
            timed(cmd(chosen[:1]), PYTHONPATHS.get(mode, str(ROOT)))
        for r in range(args.rounds):
            for mode, cmd in MODES.items():
                seconds, peak = timed(cmd(chosen), PYTHONPATHS.get(mode, str(ROOT)))
                secs[mode].append(seconds)
                peaks[mode].append(peak)
                print(
                    f"  {label} round {r + 1}: {mode:8} {secs[mode][-1]:6.2f} s, {peaks[mode][-1]:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
        seed = statistics.median(secs["seed"])
        print(f"# {label}: whole process, median of {args.rounds} rounds (min-max); {os.cpu_count()} cores")
        print(f"{'mode':14} {'seconds':>8} {'(min-max)':>14} {'x seed time':>11} {'images/s':>9} {'peak MB':>8}")
        for mode in MODES:
            s = statistics.median(secs[mode])
            print(
                f"{mode:14} {s:8.2f} {f'({min(secs[mode]):.2f}-{max(secs[mode]):.2f})':>14} {s / seed:11.2f} "
                f"{len(chosen) / s:9.1f} {statistics.median(peaks[mode]):8.0f}"
            )
        against = ["seed", *(m for m in MODES if m.startswith("torch"))]
        for mode in ("auto", "ov-bf16"):
            speedups = ", ".join(
                f"{statistics.median(secs[b]) / statistics.median(secs[mode]):.2f}x {b}" for b in against
            )
            print(f"{mode} is {speedups}")


if __name__ == "__main__":
    main()
