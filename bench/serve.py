"""Load test of `twoends serve`: dynamic batching vs batching off, at N concurrent clients.

Loopback only, bounded: for each mode a server process is started on
127.0.0.1 (a free port), warmed up, loaded by ``--clients`` threads that each
keep one connection and send photos one after the other (640x480 JPEGs made
from the bundled real photos, as raw ``image/jpeg`` bodies to ``/v1/predict``)
until ``--requests`` answers or ``--max-seconds``, then stopped. Modes run in
turn (``--rounds`` times, interleaved, so a busy machine hurts both alike).

Prints, per mode: throughput (answers/s), latency p50/p99, failed requests,
the mean batch the server actually ran and its model time per input (both
from its /metrics), and the ratio of batched to unbatched throughput.

    python bench/serve.py                      # 32 clients, 320 requests per run, 2 rounds
    python bench/serve.py --clients 8 --requests 80 --rounds 1
    python bench/serve.py --runtime torch      # PyTorch instead of the default runtime
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.photos import make_photos  # noqa: E402
from tests.serve.helpers import Client, free_port, start_server, stop_server  # noqa: E402


def load(port: int, bodies: list[bytes], clients: int, requests: int, max_seconds: float) -> dict:
    """``clients`` threads, one keep-alive connection each, until ``requests`` answers or the deadline."""
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + max_seconds

    def next_index() -> int | None:
        with lock:
            if issued[0] >= requests or time.monotonic() > deadline:
                return None
            issued[0] += 1
            return issued[0] - 1

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while (i := next_index()) is not None:
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "image/jpeg"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
                what = f"HTTP {r.status}"
            except (OSError, http.client.HTTPException) as exc:
                ok, what = False, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            dt = time.perf_counter() - t0
            with lock:
                (latencies.append(dt) if ok else failures.append(what))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "answers": len(lat),
        "failed": len(failures),
        "failures": failures[:5],
        "seconds": wall,
        "throughput": len(lat) / wall,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
    }


def server_stats(client: Client) -> dict:
    """From the server's /metrics: batches run, inputs in them, and seconds in the model."""
    values = {}
    for line in client.get("/metrics").body.decode().splitlines():
        if line.startswith(
            ("twoends_batch_size_sum", "twoends_batch_size_count", "twoends_batch_duration_seconds_sum")
        ):
            name, value = line.split()
            values[name] = float(value)
    return {
        "batches": values.get("twoends_batch_size_count", 0.0),
        "inputs": values.get("twoends_batch_size_sum", 0.0),
        "model_s": values.get("twoends_batch_duration_seconds_sum", 0.0),
    }


def run_mode(name: str, args, server_args: list[str], bodies: list[bytes], log_dir: Path) -> dict:
    port = free_port()
    proc = start_server(server_args + ["--no-access-log"], port, log_dir / f"{name}.log")
    try:
        client = Client(port)
        load(port, bodies, args.clients, 2 * args.clients, args.max_seconds)  # warm-up: threads, pools, caches
        before = server_stats(client)
        result = load(port, bodies, args.clients, args.requests, args.max_seconds)
        after = server_stats(client)
        inputs = max(after["inputs"] - before["inputs"], 1)
        result["mean_batch"] = inputs / max(after["batches"] - before["batches"], 1)
        result["model_ms"] = 1000 * (after["model_s"] - before["model_s"]) / inputs  # model time per input
        return result
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=320, help="answers per run (after a warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per mode, interleaved")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="a run stops here even if short of --requests")
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--max-delay-ms", type=float, default=5.0)
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--runtime", default="auto", help="auto (the default), torch, onnxruntime or openvino")
    ap.add_argument("--workers", type=int, default=None, help="the server's decoding threads")
    args = ap.parse_args()

    common = ["--model", args.model, "--precision", args.precision, "--runtime", args.runtime]
    if args.workers:
        common += ["--workers", str(args.workers)]
    modes = {
        f"batched (max {args.max_batch_size}, {args.max_delay_ms:g} ms)": common
        + ["--max-batch-size", str(args.max_batch_size), "--max-delay-ms", str(args.max_delay_ms)],
        "unbatched (max 1)": common + ["--max-batch-size", "1"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        bodies = [p.read_bytes() for p in make_photos(Path(tmp) / "photos", args.photos)]
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode, server_args in modes.items():
                res = run_mode(f"{r}-{len(runs[mode])}", args, server_args, bodies, Path(tmp))
                runs[mode].append(res)
                print(
                    f"round {r + 1} {mode}: {res['throughput']:.1f}/s, p50 {res['p50_ms']:.0f} ms, "
                    f"p99 {res['p99_ms']:.0f} ms, failed {res['failed']}, mean batch {res['mean_batch']:.2f}, "
                    f"model {res['model_ms']:.1f} ms/input",
                    file=sys.stderr,
                    flush=True,
                )

    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.model} {args.precision} ({args.runtime}); "
        f"{args.clients} clients, {args.requests} requests per run, {args.rounds} round(s), 640x480 JPEGs; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| mode | answers/s | p50 ms | p99 ms | failed | mean batch | model ms/input |")
    print("|---|---|---|---|---|---|---|")
    best = {}
    for mode, results in runs.items():
        tp = statistics.median(r["throughput"] for r in results)
        best[mode] = tp
        p50 = statistics.median(r["p50_ms"] for r in results)
        p99 = statistics.median(r["p99_ms"] for r in results)
        failed = sum(r["failed"] for r in results)
        batch = statistics.median(r["mean_batch"] for r in results)
        model = statistics.median(r["model_ms"] for r in results)
        print(f"| {mode} | {tp:.1f} | {p50:.0f} | {p99:.0f} | {failed} | {batch:.2f} | {model:.1f} |")
        for r in results:
            if r["failures"]:
                print(f"  failures in {mode}: {r['failures']}")
    batched, unbatched = best.values()
    print(f"\nbatched / unbatched throughput: {batched / unbatched:.2f}x (median of {args.rounds} round(s))")


if __name__ == "__main__":
    main()
