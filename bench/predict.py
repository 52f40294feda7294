"""End-to-end image classification throughput: the seed's recipe vs twoends vs the forward-only ceiling.

All on the same 640x480 JPEG photos (made from the bundled real photos), the same
EfficientNet-Lite0 weights, on this machine, in one run. Every mode runs in a fresh
process of its own (loading and warm-up untimed), and the modes take turns, round
after round, so that a slow minute of a shared machine hits them all alike and a
setting one mode changes for its whole process (the C allocator) cannot leak into
another. Prints the median images/s over the rounds and ratios against the named
baselines.

  seed recipe        one image at a time, eager float32, in a plain Python process:
                     PIL open/resize/crop, NumPy normalise, unsqueeze(0), model(x)
                     under no_grad, softmax, topk - the 20 lines people copy
  seed tuned         the same, after twoends.process.tune_process() (what the twoends
                     commands set: freed memory kept, shorter OpenMP spinning): how much
                     of the gain those process settings give on their own
  twoends MODE       Classifier.predict_iter as `twoends predict` runs it (keep-memory
                     on, decoding and the model taking turns on the CPU)
  ceiling MODE       the forward pass alone on ready-made batches in the same settings
                     (no decode, no head): what twoends MODE would reach if decoding
                     were free
  prepare            decoding and preprocessing alone (the runner's threads, no model)
  bound MODE         1 / (1/ceiling + 1/prepare): the best twoends MODE can do when the
                     two share the cores and each runs at its own full speed
  HF pipeline        transformers.pipeline("image-classification", batch_size=B) vs
                     twoends.wrap on the same Hugging Face MobileNetV2 (built from its
                     config: random weights are fine for speed); --hf, needs transformers

MODE is fp32, bf16 (autocast), and with --compile also fp32+compile and bf16+compile
(torch.compile with freezing; compiling is part of the untimed warm-up): PyTorch modes,
runtime="torch". With --runtimes also the runtimes of issue 15 (twoends.runtimes), the
graph exported once before the rounds into the benchmark's own cache (untimed):

  ort / ov / ov-bf16 ONNX Runtime / OpenVINO float32 / OpenVINO bfloat16
  auto               runtime="auto", float32: what `twoends predict` runs by default
  ... overlap        the same with decoding overlapping the forward pass (the
                     schedule of accelerators) instead of taking turns with it

    python bench/predict.py                     # 96 photos, 3 rounds
    python bench/predict.py --compile --hf      # everything (about 15 minutes on 2 cores)
    python bench/predict.py --photos 48 --rounds 1
    python bench/predict.py --runtimes          # PyTorch fp32 vs the runtimes (issue 15)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.head import cpu_name  # noqa: E402
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


# --- one mode, in its own process -----------------------------------------------------------


def run_mode(mode: str, paths: list[Path], bs: int, passes: int) -> float:
    """images/s of one mode: warm-up pass (untimed), then the median of ``passes`` timed passes."""
    import twoends
    from twoends.process import tune_process

    kind, _, setting = mode.partition(" ")
    overlap = setting.endswith(" overlap")
    setting = setting.removesuffix(" overlap")
    precision, compile_ = setting.split("+")[0] or "fp32", "compile" in setting  # ("seed tuned": unused)
    runtime = {"ort": "onnxruntime", "ov": "openvino", "ov-bf16": "openvino", "auto": "auto"}.get(precision, "torch")
    if runtime != "torch":
        precision = "bf16" if precision.endswith("bf16") else "fp32"
    if mode != "seed":
        tune_process()  # what every twoends command does, before torch is imported
    if kind == "seed":
        module = twoends.load("efficientnet_lite0", channels_last=False, runtime="torch").backend.module
        fn = lambda: seed_recipe(module, paths)  # noqa: E731
    elif kind in ("twoends", "ceiling"):
        clf = twoends.load("efficientnet_lite0", batch_size=bs, precision=precision, compile=compile_, runtime=runtime)
        if runtime != "torch" and runtime != "auto" and getattr(clf.backend, "runtime", "torch") != runtime:
            raise SystemExit(f"{mode}: asked for {runtime}, got {clf.backend.describe()}")
        if overlap:
            clf.overlap = True
        if kind == "twoends":
            fn = lambda: list(clf.predict_iter(paths))  # noqa: E731
        else:
            ready = np.stack([clf.plan(twoends.preprocess.decode_image(p)) for p in paths[:bs]])
            batches = len(paths) // bs

            def fn():
                for _ in range(batches):
                    clf.backend.forward(ready)
    elif kind == "prepare":
        from concurrent.futures import ThreadPoolExecutor

        from twoends.preprocess import iter_items

        clf = twoends.load("efficientnet_lite0", batch_size=bs, runtime="torch")
        items = list(iter_items(paths))

        def fn():
            with ThreadPoolExecutor(clf.workers) as pool:
                return list(pool.map(clf.prepare, items))
    elif kind in ("hf-pipeline", "twoends-hf", "ceiling-hf"):  # (PyTorch: runtime="torch" below)
        fn = _hf_mode(kind, paths, bs, precision, compile_)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    n = len(paths) if not kind.startswith("ceiling") else (len(paths) // bs) * bs
    fn()  # warm-up: page cache, oneDNN kernels, compiling
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def _hf_mode(kind: str, paths: list[Path], bs: int, precision: str, compile_: bool):
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessor, pipeline

    import twoends

    torch.manual_seed(0)
    model = MobileNetV2ForImageClassification(MobileNetV2Config(num_labels=1000)).eval()
    processor = MobileNetV2ImageProcessor()
    if kind == "hf-pipeline":  # keep-memory is on here too: both sides on the same footing
        pipe = pipeline("image-classification", model=model, image_processor=processor, device="cpu", batch_size=bs)
        return lambda: list(pipe([str(p) for p in paths], top_k=5))
    clf = twoends.wrap(
        model, processor=processor, batch_size=bs, precision=precision, compile=compile_, runtime="torch"
    )
    if kind == "ceiling-hf":
        ready = np.stack([clf.plan(twoends.preprocess.decode_image(p)) for p in paths[:bs]])
        return lambda: [clf.backend.forward(ready) for _ in range(len(paths) // bs)]
    return lambda: list(clf.predict_iter(paths))


# --- the driver -----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="each mode runs once per round, modes in turn")
    ap.add_argument("--passes", type=int, default=2, help="timed passes over the photos per run (median)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "twoends-bench-photos"))
    ap.add_argument("--compile", action="store_true", help="also the torch.compile modes")
    ap.add_argument("--hf", action="store_true", help="also the Hugging Face pipeline comparison")
    ap.add_argument("--hf-only", action="store_true", help="only the Hugging Face pipeline comparison")
    ap.add_argument("--runtimes", action="store_true", help="PyTorch fp32 vs ONNX Runtime / OpenVINO (issue 15)")
    ap.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode and print its rate
    args = ap.parse_args()

    paths = make_photos(Path(args.cache), args.photos)
    if args.mode:
        print(json.dumps({"rate": run_mode(args.mode, paths, args.batch_size, args.passes)}))
        return

    modes = (
        []
        if args.hf_only
        else ["seed", "seed tuned", "prepare", "twoends fp32", "ceiling fp32", "twoends bf16", "ceiling bf16"]
    )
    if args.runtimes:
        modes = [
            "seed",
            "prepare",
            "twoends fp32",
            "ceiling fp32",
            "twoends auto",
            "ceiling auto",
            "twoends ort",
            "ceiling ort",
            "twoends ov",
            "ceiling ov",
            "twoends ov-bf16",
            "ceiling ov-bf16",
            "twoends ort overlap",
            "twoends ov overlap",
        ]
        _export_once()
    if args.compile and not args.hf_only:
        modes += ["twoends fp32+compile", "ceiling fp32+compile", "twoends bf16+compile", "ceiling bf16+compile"]
    if args.hf or args.hf_only:
        modes += ["hf-pipeline", "twoends-hf", "ceiling-hf", "twoends-hf bf16"]
        if args.compile:
            modes += ["twoends-hf fp32+compile"]
    import torch

    print(
        f"# {len(paths)} photos 640x480 JPEG, batch size {args.batch_size}, {args.rounds} rounds x {args.passes} passes; "
        f"torch {torch.__version__}, {os.cpu_count()} cores, {platform.machine()} {cpu_name()}",
        flush=True,
    )
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes:
            rates[mode].append(_in_subprocess(mode, args))
            print(f"  round {r + 1}: {mode:24} {rates[mode][-1]:7.1f} images/s", file=sys.stderr, flush=True)
    report(rates)


BENCH_CACHE = os.path.join(tempfile.gettempdir(), "twoends-bench-cache")


def _export_once() -> None:
    """The graph exported and checked before the rounds (untimed); every mode then loads it from the cache."""
    code = "import twoends; print(twoends.load('efficientnet_lite0', runtime='auto').backend.describe())"
    env = {**os.environ, "TWOENDS_CACHE_DIR": BENCH_CACHE, "TWOENDS_RUNTIME": "auto"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def _in_subprocess(mode: str, args) -> float:
    cmd = [
        sys.executable,
        __file__,
        "--mode",
        mode,
        "--photos",
        str(args.photos),
        "--batch-size",
        str(args.batch_size),
        "--passes",
        str(args.passes),
        "--cache",
        args.cache,
    ]
    env = {**os.environ, "TWOENDS_KEEP_MEMORY": "1", "TWOENDS_CACHE_DIR": BENCH_CACHE}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"mode {mode!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def report(rates: dict[str, list[float]]) -> None:
    med = {m: statistics.median(v) for m, v in rates.items()}
    seed, prepare = med.get("seed"), med.get("prepare")
    print(f"{'mode':26} {'images/s':>9} {'(min-max)':>14} {'x seed':>7} {'x own ceiling':>13} {'x bound':>8}")
    for mode, rate in med.items():
        lo, hi = min(rates[mode]), max(rates[mode])
        ceiling = (
            med.get(mode.replace("twoends ", "ceiling ").removesuffix(" overlap"))
            if mode.startswith("twoends ")
            else None
        )
        own = f"{rate / ceiling:13.2f}" if ceiling else " " * 13
        bound = 1 / (1 / ceiling + 1 / prepare) if ceiling and prepare else None
        xb = f"{rate / bound:8.2f}" if bound else ""
        xs = f"{rate / seed:7.2f}" if seed and not mode.startswith(("hf", "twoends-hf", "ceiling-hf")) else " " * 7
        print(f"{mode:26} {rate:9.1f} {f'({lo:.0f}-{hi:.0f})':>14} {xs} {own} {xb}")
        if bound:
            print(
                f"{'  bound ' + mode.split(' ', 1)[1]:26} {bound:9.1f} {'':14} {bound / seed:7.2f} {bound / ceiling:13.2f}"
            )
    if "twoends auto" in med:
        fastest = max(v for m, v in med.items() if m.startswith("ceiling ") and "bf16" not in m)
        bound = 1 / (1 / fastest + 1 / prepare)
        print(
            f"auto / bound(fastest float32 forward {fastest:.1f}, prepare {prepare:.1f}) = "
            f"{med['twoends auto'] / bound:.2f}; auto / PyTorch fp32 = {med['twoends auto'] / med['twoends fp32']:.2f}; "
            f"OpenVINO bf16 / PyTorch fp32 = {med['twoends ov-bf16'] / med['twoends fp32']:.2f}"
        )
    if "hf-pipeline" in med:
        print(f"twoends / HF pipeline on the same HF MobileNetV2: {med['twoends-hf'] / med['hf-pipeline']:.2f}x")


if __name__ == "__main__":
    main()
