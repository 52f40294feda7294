"""Hostile requests against `twoends serve`: how fast each is refused, health latency meanwhile, RSS growth.

Loopback only, bounded: one server (the default model, tests/serve/attacks.py's
SERVER_ARGS: 24 MB bodies, 64 inputs a request, a 2 s header timeout) is
started on a free port, warmed up with three real photos, and attacked while a
thread polls /v2/health/live every 50 ms. Then a second server is stopped
(SIGINT) under load. Prints one line per attack (statuses, slowest answer,
worst health latency during it), the peak RSS growth over the warmed-up size,
and, as the baseline, one valid 6-photo BYTES request's time on the same server.

    python bench/attacks.py
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.photos import write_photos  # noqa: E402
from tests.serve import attacks  # noqa: E402
from tests.serve.helpers import free_port, start_server, stop_server  # noqa: E402


def _line(what: str, results, health_before: int, health) -> str:
    statuses = Counter(f"{r.status} {r.kind}".strip() for r in results)
    worst = max(health.latencies[health_before:], default=0.0)
    slowest = max(r.seconds for r in results)
    return (
        f"| {what} | {', '.join(f'{n}x {s}' for s, n in statuses.items())} | {slowest:.2f} s | {worst * 1000:.0f} ms |"
    )


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="twoends-attacks-"))
    photos = write_photos(tmp / "photos")
    port = free_port()
    proc = start_server(attacks.SERVER_ARGS, port, tmp / "server.log")
    rows = []
    try:
        target = attacks.Target(port, proc.pid, photos["chelsea"].read_bytes())
        target.warm_up()
        valid = json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": [6],
                        "datatype": "BYTES",
                        "data": [
                            base64.b64encode(photos[n].read_bytes()).decode()
                            for n in ["chelsea", "coffee", "rocket"] * 2
                        ],
                    }
                ]
            }
        ).encode()
        with attacks.HealthWatch(port) as health:
            mark = len(health.latencies)
            baseline = [attacks.request(port, "POST", attacks.INFER, valid, {}, "valid") for _ in range(3)]
            rows.append(_line("baseline: a valid request, 6 photos (BYTES, JSON)", baseline, mark, health))
            mark = len(health.latencies)
            rows.append(
                _line(
                    "8000 x 43-byte GIF, BYTES batch, JSON (0.5 MB)", [attacks.gif_batch_json(port, 8000)], mark, health
                )
            )
            mark = len(health.latencies)
            rows.append(
                _line("8000 x 43-byte GIF, BYTES batch, binary", [attacks.gif_batch_binary(port, 8000)], mark, health)
            )
            mark = len(health.latencies)
            rows.append(
                _line(
                    "20 MB JSON tensor bodies, 4 clients x 2",
                    attacks.big_bodies(port, clients=4, rounds=2),
                    mark,
                    health,
                )
            )
            mark = len(health.latencies)
            slow = attacks.slow_headers(port, connections=40, header_timeout_s=attacks.HEADER_TIMEOUT_S)
            worst = max(health.latencies[mark:], default=0.0)
            rows.append(
                f"| 40 slow / half-open header connections | {slow.dropped} of {slow.connections} dropped by the "
                f"server | {slow.longest_s:.1f} s | {worst * 1000:.0f} ms |"
            )
            for size in ((20000, 1), (1, 20000)):
                mark = len(health.latencies)
                rows.append(
                    _line(
                        f"{size[0]}x{size[1]} PNG sliver ({len(attacks.sliver_png(size))} B)",
                        [attacks.sliver(port, size)],
                        mark,
                        health,
                    )
                )
            grown = target.peak_rss_mb() - target.baseline_rss_mb
            alive = target.predict_label() == "tiger cat"
            polls, failures = len(health.latencies), len(health.failures)
    finally:
        stop_server(proc)
    port = free_port()
    proc = start_server(attacks.SERVER_ARGS, port, tmp / "server2.log")
    try:
        down = attacks.shutdown_under_load(port, proc, photos["coffee"].read_bytes())
    finally:
        stop_server(proc)
    print("| attack | answers | slowest answer | worst /v2/health/live meanwhile |")
    print("|---|---|---|---|")
    for row in rows:
        print(row)
    print(
        f"| SIGINT under load (8 clients) + a request stuck mid-body | {down.answered} answered "
        f"{sorted(down.statuses)}, stuck one: {down.held_answer}, plain-text: {len(down.plain_text)} | "
        f"exit {down.exit_code} after {down.exit_s:.1f} s | - |"
    )
    print(
        f"\nserver: baseline RSS {target.baseline_rss_mb:.0f} MB, peak growth {grown:.0f} MB; "
        f"health polls {polls}, failed {failures}; alive and right at the end: {alive}"
    )


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)")
