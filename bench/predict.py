"""End-to-end image classification throughput: the seed's recipe vs twoends vs the forward-only ceiling.

All on the same 640x480 JPEG photos (made from the bundled real photos), the same
EfficientNet-Lite0 weights, in one run, on this machine. Prints images/s and
ratios against the named baselines:

  seed recipe      one image at a time, eager float32: PIL open/resize/crop, NumPy
                   normalise, unsqueeze(0), model(x) under no_grad, softmax, topk
  twoends fp32     Classifier.predict_iter (what `twoends predict` runs), float32
  twoends bf16     the same with precision="bf16" (autocast)
  ceiling          the forward pass alone on ready-made batches in twoends' own
                   settings (no decode, no head), fp32 and bf16
  HF pipeline      transformers.pipeline("image-classification", batch_size=B) vs
                   twoends.wrap on the same Hugging Face MobileNetV2 (built from its
                   config: random weights are fine for speed), --hf to include

    python bench/predict.py --hf            # 96 photos
    python bench/predict.py --photos 48 --repeat 1
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.photos import make_photos  # noqa: E402


def seed_recipe(module, paths):
    """The 20-line recipe people copy: correct preprocessing, one image at a time."""
    import torch
    from PIL import Image

    module.eval()
    out = []
    for path in paths:
        img = Image.open(path).convert("RGB")
        w, h = img.size
        s = 256 / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.BICUBIC)
        w, h = img.size
        left, top = (w - 224) // 2, (h - 224) // 2
        img = img.crop((left, top, left + 224, top + 224))
        x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
        x = torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)
        with torch.no_grad():
            probs = torch.softmax(module(x), dim=1)
        out.append(torch.topk(probs, 5))
    return out


def timed(fn, n_items, repeat):
    fn()  # warm-up (also fills the page cache and oneDNN's kernel caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_items / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "twoends-bench-photos"))
    ap.add_argument("--hf", action="store_true", help="also compare with the Hugging Face pipeline")
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()

    import torch

    import twoends

    paths = make_photos(Path(args.cache), args.photos)
    n, bs = len(paths), args.batch_size
    print(f"# {n} photos 640x480 JPEG, batch size {bs}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")

    plain = twoends.load("efficientnet_lite0", batch_size=bs, channels_last=False)
    seed = timed(lambda: seed_recipe(plain.backend.module, paths), n, args.repeat)
    rows = [("seed recipe (1 at a time, fp32)", seed, None)]
    for precision in args.precisions.split(","):
        clf = twoends.load("efficientnet_lite0", batch_size=bs, precision=precision)
        ready = np.stack([clf.plan(twoends.preprocess.decode_image(p)) for p in paths[:bs]])
        batches = max(1, n // bs)

        def ceiling():
            for _ in range(batches):
                clf.backend.forward(ready)

        ceil = timed(ceiling, batches * bs, args.repeat)
        e2e = timed(lambda: list(clf.predict_iter(paths)), n, args.repeat)
        rows.append((f"twoends {precision}", e2e, ceil))
        rows.append((f"ceiling {precision} (forward only)", ceil, ceil))
    if args.hf:
        rows += hf_rows(paths, bs, args.repeat)
    print(f"{'mode':40} {'images/s':>9} {'x seed':>7} {'x own ceiling':>13}")
    for name, rate, ceil in rows:
        own = f"{rate / ceil:13.2f}" if ceil else " " * 13
        print(f"{name:40} {rate:9.1f} {rate / seed:7.2f} {own}")
    if args.hf:
        print(f"twoends / HF pipeline on the same model: {rows[-1][1] / rows[-2][1]:.2f}x")


def hf_rows(paths, bs, repeat):
    """The HF pipeline and twoends on the same HF MobileNetV2, same photos, same batch size."""
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessor, pipeline

    import twoends

    torch.manual_seed(0)
    model = MobileNetV2ForImageClassification(MobileNetV2Config(num_labels=1000)).eval()
    processor = MobileNetV2ImageProcessor()
    pipe = pipeline("image-classification", model=model, image_processor=processor, device="cpu", batch_size=bs)
    clf = twoends.wrap(model, processor=processor, batch_size=bs)
    n = len(paths)
    hf = timed(lambda: list(pipe([str(p) for p in paths], top_k=5)), n, repeat)
    ours = timed(lambda: list(clf.predict_iter(paths)), n, repeat)
    return [
        (f"HF pipeline MobileNetV2 (batch {bs})", hf, None),
        ("twoends on the same HF MobileNetV2", ours, None),
    ]


if __name__ == "__main__":
    main()
