"""Big jobs: one row per input whatever happens, in order, resumable after a real kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import twoends
from twoends.resume import completed_inputs
from twoends.writers import JsonLinesWriter

torch = pytest.importorskip("torch")


def _tiny_classifier(**kw):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 10))
    spec = twoends.ImageSpec(input_size=(32, 32), resize_mode="exact", crop="none")
    return twoends.wrap(net, spec=spec, labels=[f"c{i}" for i in range(10)], name="tiny", **kw)


def _write_images(folder: Path, n: int, corrupt_every: int = 0) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:05d}.png"
        if corrupt_every and i % corrupt_every == corrupt_every - 1:
            path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 40, dtype=np.uint8)))
        else:
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_thousand_inputs_with_one_percent_corrupt(tmp_path):
    paths = _write_images(tmp_path / "imgs", 1000, corrupt_every=100)
    out = tmp_path / "out.jsonl"
    with open(out, "w") as f:
        writer = JsonLinesWriter(f)
        for p in _tiny_classifier(batch_size=16).predict_iter(tmp_path / "imgs"):
            writer.write(p)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1000
    assert [r["input"] for r in rows] == [str(p) for p in paths]  # input order kept
    errors = [r for r in rows if r["error"]]
    assert len(errors) == 10
    assert all(r["input"].endswith(("99.png")) and r["error"]["type"] == "DecodeError" for r in errors)


class _Picky(torch.nn.Module):
    """A model that raises on a poisoned input, as real models do on inputs they cannot take."""

    def forward(self, x):
        if (x > 1e6).any():
            raise RuntimeError("input value out of range")
        return x.mean(dim=(2, 3))


def test_a_failing_batch_only_fails_its_culprit():
    spec = twoends.ImageSpec(input_size=(8, 8), resize_mode="exact", crop="none")
    clf = twoends.wrap(_Picky(), spec=spec, labels=["r", "g", "b"], batch_size=4)
    good = np.zeros((3, 8, 8), np.float32)
    poisoned = np.full((3, 8, 8), 1e7, np.float32)
    preds = clf.predict([good, good, poisoned, good])
    assert [p.ok for p in preds] == [True, True, False, True]
    # the model's own exception, kept in the message of a ModelError that says it was the model's
    assert preds[2].error["type"] == "ModelError"
    assert "RuntimeError: input value out of range" in preds[2].error["message"]


def test_ready_inputs_of_the_wrong_shape_are_refused():
    clf = _tiny_classifier(batch_size=4)
    good = np.zeros((3, 32, 32), np.float32)
    preds = clf.predict([good, np.zeros((3, 16, 16), np.float32)])
    assert preds[0].ok and not preds[1].ok
    assert "(3, 32, 32)" in preds[1].error["message"] and "(3, 16, 16)" in preds[1].error["message"]


def test_memory_stays_bounded_with_a_lazy_stream():
    clf = _tiny_classifier(batch_size=8)
    pulled = 0
    img = np.zeros((24, 24, 3), np.uint8)

    def endless():
        nonlocal pulled
        while True:
            pulled += 1
            yield img

    stream = clf.predict_iter(endless())
    for _ in range(40):
        next(stream)
    # the runner reads ahead a bounded window, never the whole (infinite) input
    assert pulled <= 40 + 2 * 8 + clf.workers + 8


def test_torn_tail_is_trimmed(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"input": "a"}\n{"input": "b"}\n{"input": "c", "lab')
    assert completed_inputs(str(out), "jsonl") == {"a", "b"}
    assert out.read_text().endswith('"b"}\n')


@pytest.mark.slow
def test_kill_9_then_resume_gives_every_input_exactly_once(tmp_path):
    paths = _write_images(tmp_path / "imgs", 240)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "twoends", "predict", str(tmp_path / "imgs"), "-o", str(out), "--batch-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # a real, unannounced kill, mid-run
    proc.wait(timeout=30)
    before = out.read_text().count("\n")
    assert 20 <= before < 240, "the kill should land part-way through the run"
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "done before" in resumed.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    inputs = [r["input"] for r in rows]
    assert sorted(inputs) == sorted(str(p) for p in paths)  # every input ...
    assert len(inputs) == len(set(inputs)) == 240  # ... exactly once
    assert all(r["error"] is None for r in rows)
