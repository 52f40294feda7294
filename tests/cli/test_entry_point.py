"""The ``twoends`` console entry (``twoends.cli:run``): a command's outputs are whole and its exit
status is kept, although the process ends without tearing the interpreter down."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.photos import write_photos


def _twoends(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "twoends", *args], capture_output=True, text=True, cwd=cwd)


def test_outputs_are_whole_and_statuses_kept(tmp_path):
    photos = write_photos(tmp_path / "photos")
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "out.jsonl"
    done = _twoends("predict", str(tmp_path / "photos"), "--runtime", "torch", "-o", str(out))
    assert done.returncode == 1, done.stderr  # one input failed: status 1, as before
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(photos) + 1 and sum(r["error"] is not None for r in rows) == 1
    assert "predicted" in done.stderr  # the summary line reached stderr before the exit
    # a long stdout through a pipe arrives whole
    done = _twoends("predict", str(tmp_path / "photos"), "--runtime", "torch", "--format", "jsonl", "--top-k", "1000")
    lines = done.stdout.splitlines()
    assert len(lines) == len(photos) + 1 and all(len(json.loads(line)["top_k"]) in (0, 1000) for line in lines)


def test_usage_errors_and_version_keep_their_statuses():
    assert _twoends("predict", "--no-such-option").returncode == 2
    done = _twoends("--version")
    assert done.returncode == 0 and "twoends" in done.stdout
