"""What the hardening costs and saves, measured (the tests assert behaviour, never time).

    python bench/hardening.py             # all four
    python bench/hardening.py --only hub  # one of: hostile, hub, bomb, draft

* hostile: ``twoends predict`` on a folder of N good photos plus the hostile entries of
  tests/cli/test_hostile_inputs.py (symlink loops, a broken link, a FIFO, 20000x1 and 1x20000
  PNG slivers), vs the same folder without them: wall time and peak RSS of each run (a fresh
  process each, measured by getrusage in the child).
* hub: loading an uncached Hugging Face name with no network - twoends (one probe, then the
  hub library's offline mode) vs ``AutoConfig.from_pretrained`` alone (its own retries);
  imports done before the clock starts.
* bomb: refusing a 100000x100000 PNG header (decode_image) - time and memory growth.
* draft: decode + preprocess of a 4000 px JPEG in full vs at reduced DCT scale (draft_size).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNNER = """
import json, resource, sys, time
from twoends.cli import main
start = time.perf_counter()
try:
    main(sys.argv[2:], prog_name="twoends")
finally:
    with open(sys.argv[1], "w") as f:
        json.dump({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "seconds": time.perf_counter() - start}, f)
"""


def _cli(args, cwd):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = f.name
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", RUNNER, report, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = json.loads(Path(report).read_text())
    os.unlink(report)
    return out


def hostile(n: int) -> None:
    from PIL import Image

    from tests.photos import load_photo

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("clean", "hostile"):
            d = tmp / name
            d.mkdir()
            photo = load_photo("chelsea")
            for i in range(n):
                photo.save(d / f"good{i:04d}.jpg", quality=90)
        d = tmp / "hostile"
        os.symlink("loop_b.jpg", d / "loop_a.jpg")
        os.symlink("loop_a.jpg", d / "loop_b.jpg")
        os.symlink("nowhere.jpg", d / "dangling.jpg")
        (d / "sub").mkdir()
        os.symlink("..", d / "sub" / "up")
        os.mkfifo(d / "fifo.jpg")
        Image.new("RGB", (20000, 1)).save(d / "sliver_wide.png")
        Image.new("RGB", (1, 20000)).save(d / "sliver_tall.png")
        for name in ("clean", "hostile"):
            r = _cli(["predict", name, "-o", tmp / f"{name}.jsonl"], cwd=tmp)
            rows = len((tmp / f"{name}.jsonl").read_text().splitlines())
            print(f"hostile  {name:8s} {rows:5d} rows  {r['seconds']:6.1f} s  peak {r['peak_mb']:6.0f} MB")


def hub() -> None:
    from transformers import AutoConfig

    import twoends
    import twoends.backends.transformers  # noqa: F401  (imports before the clock)

    name = "google/vit-base-patch16-224"
    start = time.perf_counter()
    try:
        twoends.load(f"hf:{name}")
    except twoends.ModelError:
        pass
    ours = time.perf_counter() - start
    start = time.perf_counter()
    try:
        AutoConfig.from_pretrained(name)
    except OSError:
        pass
    theirs = time.perf_counter() - start
    print(
        f"hub      twoends.load {ours:6.2f} s   AutoConfig.from_pretrained alone {theirs:6.2f} s   "
        f"ratio {theirs / ours:5.1f}x"
    )


def bomb() -> None:
    import struct
    import zlib

    from twoends.errors import ImageTooLargeError
    from twoends.preprocess.image import decode_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        decode_image(png)
    except ImageTooLargeError:
        pass
    took = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"bomb     refused in {took * 1e3:.2f} ms, peak memory grew {grown:.1f} MB")


def draft() -> None:
    from tests.photos import load_photo
    from twoends.preprocess import ImageSpec
    from twoends.preprocess.image import decode_image

    buf = io.BytesIO()
    load_photo("coffee").resize((4000, 2667)).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    plan = ImageSpec().plan()

    def best(fn, n=5):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    full = best(lambda: plan(decode_image(data)))
    fast = best(lambda: plan(decode_image(data, draft_size=plan.draft_size)))
    print(f"draft    full {full * 1e3:6.1f} ms   draft {fast * 1e3:6.1f} ms   ratio {full / fast:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["hostile", "hub", "bomb", "draft"])
    parser.add_argument("-n", type=int, default=200, help="good photos in the hostile run")
    args = parser.parse_args()
    steps = {"hostile": lambda: hostile(args.n), "hub": hub, "bomb": bomb, "draft": draft}
    for name, step in steps.items():
        if args.only in (None, name):
            step()


if __name__ == "__main__":
    main()
