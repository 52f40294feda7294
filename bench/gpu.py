"""One table for a CUDA machine (bench/gpu_check.sh runs it): EfficientNet-Lite0, images/s.

forward-only on a ready batch of 64 (fp32, fp16 and bf16 autocast; CUDA-synchronised), and end to
end on 512 real-size JPEGs (decoding on the CPU cores) with the overlap schedule (the GPU default)
and with the phased one (the CPU default), plus ONNX Runtime's CUDA provider when it is installed;
the agreement of fp16/bf16 with fp32 on the same photos. Median of 3 timed passes after a warm-up.

    python bench/gpu.py [--photos 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.photos import make_photos  # noqa: E402


def timed(fn, n):
    fn()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    import torch

    import twoends
    from twoends.process import tune_process

    tune_process()
    paths = make_photos(Path("/tmp/twoends-gpu-photos"), args.photos)
    rows, probs = [], {}
    bs = args.batch_size
    for precision in ("fp32", "fp16", "bf16"):
        clf = twoends.load("efficientnet_lite0", device="cuda", precision=precision, runtime="torch", batch_size=bs)
        ready = np.stack([clf.plan(twoends.preprocess.decode_image(p)) for p in paths[:bs]])
        x = torch.from_numpy(ready).cuda()

        def forward(clf=clf, x=x):
            for _ in range(8):
                clf.backend.forward(x)
            torch.cuda.synchronize()

        rows.append((f"forward {precision}, batch {bs}", timed(forward, 8 * bs)))
        for overlap in (True, False):
            clf.overlap = overlap
            rows.append(
                (
                    f"end to end {precision}, {'overlap' if overlap else 'phased'}",
                    timed(lambda clf=clf: list(clf.predict_iter(paths)), len(paths)),
                )
            )
        probs[precision] = np.stack([p.probabilities for p in clf.predict(paths[:64])])
    try:
        clf = twoends.load("efficientnet_lite0", device="cuda", runtime="onnxruntime", batch_size=bs)
        if clf.backend.device.startswith("cuda"):
            rows.append(("end to end ONNX Runtime CUDA", timed(lambda: list(clf.predict_iter(paths)), len(paths))))
        else:
            rows.append((f"ONNX Runtime CUDA: not used ({clf.describe()['runtime']['why']})", float("nan")))
    except twoends.TwoEndsError as e:
        rows.append((f"ONNX Runtime CUDA: {str(e)[:120]}", float("nan")))
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {len(paths)} photos 640x480")
    print(f"{'mode':60} {'images/s':>9}")
    for name, rate in rows:
        print(f"{name:60} {rate:9.1f}")
    for p in ("fp16", "bf16"):
        agree = np.mean(probs[p].argmax(1) == probs["fp32"].argmax(1))
        print(
            f"{p} vs fp32 on 64 photos: top-1 agreement {agree:.1%}, max |dp| {np.abs(probs[p] - probs['fp32']).max():.3g}"
        )


if __name__ == "__main__":
    main()
