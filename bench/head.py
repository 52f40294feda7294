"""Top-k of a softmax head: twoends.head.topk against the usual way, and against a plain read.

For logits [64, C] float32 (C = 1000, 32000, 256000), NumPy and PyTorch (CPU):

* twoends  ``topk(x, 5)``: indices, logits, probabilities and log-probabilities
* baseline torch: ``torch.softmax(x, -1)`` then ``torch.topk(p, 5)``;
           numpy: softmax (max-subtract, exp, sum, divide) + ``np.argpartition`` + sort of the k
* floor    ``x.max()``: one plain read of the whole array, the memory-bandwidth floor

Every candidate runs once per round, rounds interleaved, after a warm-up; the
table gives medians. ``speedup`` = baseline / twoends; ``x floor`` = twoends
time / floor time (1.0 would be as fast as reading the logits once); GB/s =
array bytes / time.

    python bench/head.py            # the full table (about a minute)
    python bench/head.py --quick    # smoke run: few repeats
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twoends.head.topk import topk  # noqa: E402

K = 5
SHAPES = ((64, 1000), (64, 32000), (64, 256000))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_baseline(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    p = e / e.sum(axis=-1, keepdims=True)
    part = np.argpartition(-p, K - 1, axis=-1)[:, :K]
    vals = np.take_along_axis(p, part, -1)
    order = np.argsort(-vals, axis=-1)
    return np.take_along_axis(vals, order, -1), np.take_along_axis(part, order, -1)


def torch_baseline(x):
    import torch

    return torch.topk(torch.softmax(x, -1), K, dim=-1)


def measure(fns: dict, repeats: int, warmup: int, budget_s: float) -> dict:
    """Median seconds per call of each fn, rounds interleaved so load drifts hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    start = time.perf_counter()
    for r in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        if r >= 4 and time.perf_counter() - start > budget_s:
            break
    return {name: statistics.median(ts) for name, ts in times.items()}


def check(x, lib):
    """The benchmarked calls agree: same classes, same probabilities."""
    r = topk(x, K)
    if lib == "torch":
        p, i = torch_baseline(x)
        p, i, rp, ri = p.numpy(), i.numpy(), r.probabilities.numpy(), r.indices.numpy()
    else:
        p, i = numpy_baseline(x)
        rp, ri = r.probabilities, r.indices
    assert (ri == i).all(), "twoends and baseline pick different classes"
    assert np.allclose(rp, p, rtol=1e-4, atol=1e-7), "twoends and baseline probabilities differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 repeats, small budget")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: see RESULTS.md)")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 31)
    warmup = 1 if args.quick else 3
    budget = 1.0 if args.quick else 12.0  # seconds of timed rounds per shape and library at most

    libs = ["numpy"]
    try:
        import torch

        torch.set_num_threads(args.threads)
        libs.append("torch")
    except ImportError:
        torch = None

    print(
        f"CPU: {cpu_name()} ({platform.machine()}), python {platform.python_version()}, numpy {np.__version__}"
        + (f", torch {torch.__version__} (threads={torch.get_num_threads()})" if torch else ", torch not installed")
    )
    try:
        load = "load average %.1f %.1f %.1f on %d CPUs" % (*os.getloadavg(), os.cpu_count())
    except OSError:
        load = "load average unknown"
    print(f"{load} (other work on the machine inflates the longer calls more than the floor)")
    print(
        f"topk(x, {K}) on float32 logits; median of up to {repeats} interleaved rounds after {warmup} warm-up; "
        "floor = x.max() (one read of the array)"
    )
    header = (
        f"{'library':7} {'shape':>12} {'MB':>6} | {'twoends ms':>10} {'baseline ms':>11} {'floor ms':>8} | "
        f"{'speedup':>7} {'x floor':>7} | {'GB/s':>5} {'floor GB/s':>10}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        base = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(np.float32)
        for lib in libs:
            if lib == "torch":
                x = torch.from_numpy(base.copy())
                fns = {
                    "twoends": lambda x=x: topk(x, K),
                    "baseline": lambda x=x: torch_baseline(x),
                    "floor": lambda x=x: x.max(),
                }
            else:
                x = base.copy()
                fns = {
                    "twoends": lambda x=x: topk(x, K),
                    "baseline": lambda x=x: numpy_baseline(x),
                    "floor": lambda x=x: x.max(),
                }
            check(x, lib)
            t = measure(fns, repeats, warmup, budget)
            nbytes = base.nbytes
            print(
                f"{lib:7} {str(list(shape)):>12} {nbytes / 1e6:6.1f} | {t['twoends'] * 1e3:10.3f} "
                f"{t['baseline'] * 1e3:11.3f} {t['floor'] * 1e3:8.3f} | {t['baseline'] / t['twoends']:6.2f}x "
                f"{t['twoends'] / t['floor']:6.2f}x | {nbytes / t['twoends'] / 1e9:5.1f} {nbytes / t['floor'] / 1e9:10.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
