"""The HTML report's peak memory and cost against the number of inputs, next to JSON lines (the baseline).

Each run is a fresh process that streams N real-size photos (640x480 JPEGs made by
bench/photos.py, cycled) through ``Classifier.predict_iter`` into a writer on disk, and
reports its peak RSS, its wall time and the file's size. The HTML writer decodes every
input a second time for its thumbnail; what must not happen is memory growing with N
(rows and thumbnails are written as they come, never held).

The model is a tiny torch module by default (as in bench/memory.py: a model's own
footprint is a constant, and a big model would hide the writer's cost in the timing);
``--model efficientnet_lite0`` runs the default model.

    python bench/html_report.py                       # 1,000 and 20,000 inputs
    python bench/html_report.py --counts 1000 --model efficientnet_lite0
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import itertools, os, resource, sys, time
import torch, twoends
from twoends.process import keep_freed_memory
from twoends.writers import make_writer
folder, n, model, fmt, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
keep_freed_memory()  # as the twoends commands run
if model == "tiny":
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 10))
    spec = twoends.ImageSpec(input_size=(32, 32), resize_mode="exact", crop="none")
    clf = twoends.wrap(net, spec=spec, labels=[f"class {i}" for i in range(10)], batch_size=16, top_k=5)
else:
    clf = twoends.load(model, batch_size=8, top_k=5)
photos = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))
paths = itertools.islice(itertools.cycle(photos), n)
start = time.perf_counter()
rows = 0
with open(out_path, "w", encoding="utf-8") as out:
    w = make_writer(fmt, out, top_k=5, settings=clf.settled.describe())
    for p in clf.predict_iter(paths):
        w.write(p)
        rows += 1
    w.close()
wall = time.perf_counter() - start
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, f"{wall:.2f}", os.path.getsize(out_path))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1000,20000")
    ap.add_argument("--model", default="tiny", help="tiny, or a model name such as efficientnet_lite0")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.photos import make_photos

    folder = os.path.join(tempfile.gettempdir(), "twoends-bench-photos")
    make_photos(Path(folder), 96)
    print(f"# model {args.model}; 96 distinct 640x480 JPEGs, cycled; keep_freed_memory on")
    print(f"{'inputs':>8} {'format':>6} {'rows':>6} {'peak RSS MB':>12} {'seconds':>8} {'inputs/s':>9} {'file MB':>8}")
    peaks: dict[str, list[int]] = {"jsonl": [], "html": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            walls = {}
            for fmt in ("jsonl", "html"):  # the baseline first, then the report, each in a fresh process
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, folder, str(n), args.model, fmt, os.path.join(tmp, f"out.{fmt}")],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows, peak, wall, size = out.stdout.split()
                peaks[fmt].append(int(peak))
                walls[fmt] = float(wall)
                print(f"{n:8d} {fmt:>6} {rows:>6} {peak:>12} {wall:>8} {n / float(wall):9.0f} {int(size) / 1e6:8.1f}")
            print(f"{'':8} html / jsonl time: {walls['html'] / walls['jsonl']:.2f}x")
    for fmt, p in peaks.items():
        print(f"{fmt}: peak RSS growth from {counts[0]} to {counts[-1]} inputs: {p[-1] - p[0]} MB")


if __name__ == "__main__":
    main()
