"""Peak memory against the number of inputs: it must stay flat (bounded read-ahead, streaming writers).

Each run is a fresh process that streams N PNG files from one folder through
``Classifier.predict_iter`` and the JSON-lines writer, and reports its peak RSS.
The model is a tiny torch module on purpose: a model's own footprint is a
constant; what could grow with N is the runner, the source listing and the
writer, which are the same code for every model.

    python bench/memory.py                  # 1,000 and 20,000 inputs, a tiny model
    python bench/memory.py --model efficientnet_lite0   # the default model on 640x480 photos
    # (with its runtime: auto by default, TWOENDS_RUNTIME=torch for PyTorch; torch is imported only if used)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import itertools, os, resource, sys
import twoends
from twoends.process import keep_freed_memory
from twoends.writers import JsonLinesWriter
folder, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keep_freed_memory()  # as the twoends commands run: freed memory is kept, so the peak is what counts
if model == "tiny":
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 10))
    spec = twoends.ImageSpec(input_size=(32, 32), resize_mode="exact", crop="none")
    clf = twoends.wrap(net, spec=spec, labels=[str(i) for i in range(10)], batch_size=16)
    paths = (os.path.join(folder, f"img_{i:05d}.png") for i in range(n))
else:  # the default model on the benchmark's 640x480 photos, cycled
    clf = twoends.load(model, batch_size=8)
    photos = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))
    paths = itertools.islice(itertools.cycle(photos), n)
rows = 0
with open(os.devnull, "w") as out:
    w = JsonLinesWriter(out)
    for p in clf.predict_iter(paths):
        w.write(p)
        rows += 1
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def make_folder(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        path = folder / f"img_{i:05d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1000,20000")
    ap.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "twoends-bench-memory"))
    ap.add_argument(
        "--model",
        default="tiny",
        help="tiny (48x64 PNGs, the runner's own footprint) or a model name, e.g. efficientnet_lite0 "
        "(the benchmark's 640x480 JPEGs, cycled)",
    )
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.model == "tiny":
        make_folder(Path(args.folder), max(counts))
        folder = args.folder
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench.photos import make_photos

        folder = os.path.join(tempfile.gettempdir(), "twoends-bench-photos")
        make_photos(Path(folder), 96)
    print(f"# model {args.model}; keep_freed_memory on (as the twoends commands run)")
    print(f"{'inputs':>8} {'rows out':>9} {'peak RSS MB':>12}")
    peaks = []
    for n in counts:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, folder, str(n), args.model], capture_output=True, text=True, check=True
        )
        rows, peak = map(int, out.stdout.split())
        peaks.append(peak)
        print(f"{n:8d} {rows:9d} {peak:12d}")
    print(f"growth from {counts[0]} to {counts[-1]} inputs: {peaks[-1] - peaks[0]} MB (goal: within 100 MB)")


if __name__ == "__main__":
    main()
