"""Every Python example in README.md runs as written, so the README cannot drift.

The fenced ``python`` blocks are taken from README.md in document order and run one
after another in one namespace (as a reader runs them), in a child process, in a scratch
folder holding the user's files the examples name: ``cat.jpg``, ``a.jpg``, ``b.jpg``,
``photos/``, ``samples/``, ``labels.txt``, ``calibration.json``, ``lite0.json``,
``lite1.json``, ``cnn_model.h5``, ``model.onnx``. New blocks are
picked up by themselves. A block that cannot run here is marked in the README source
by the line just above its fence::

    <!-- readme-test: skip (the reason: needs the network / a server / CUDA) -->

Blocks marked ``<!-- example: NAME -->`` talk to a live server: tests/serve runs those.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
# blocks tests/serve/test_readme_examples.py runs against a live server, each in its own process
SERVED = re.compile(r"<!--\s*example:\s*(?P<name>[\w-]+)\s*-->")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, skip reason or None) for each ```python block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = next((lines[j] for j in range(start - 2, -1, -1) if lines[j].strip()), "")
            mark, served = SKIP.search(before), SERVED.search(before)
            why = mark.group("why") if mark else None
            if served:
                why = f"needs a running server: tests/serve/test_readme_examples.py runs '{served.group('name')}'"
            blocks.append((start, "\n".join(body) + "\n", why))
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


CHILD = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
ns, results = {"__name__": "__readme__"}, {}
for line, code in blocks:
    try:
        exec(compile(code, f"README.md:{line}", "exec"), ns)
        results[line] = None
    except BaseException:
        results[line] = traceback.format_exc(limit=6)
    with open(sys.argv[2], "w") as f:  # after every block: a crash still leaves what ran
        json.dump(results, f)
if "ray" in sys.modules:
    sys.modules["ray"].shutdown()
"""


def _fitted(labels, model, path):
    from twoends.calibrate import fit_calibration

    rng = np.random.default_rng(0)
    y = rng.integers(0, len(labels), 800)
    z = rng.normal(size=(800, len(labels))) * 2
    z[np.arange(800), y] += 5
    fit_calibration(z, y, labels, model=model, conformal=0.1).calibration.save(path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    import importlib.util
    import shutil

    from tests.photos import write_photos
    from twoends.models import imagenet_labels

    root = tmp_path_factory.mktemp("readme")
    photos = write_photos(root / "photos")
    write_photos(root / "samples")
    for name, src in (("cat.jpg", "chelsea"), ("a.jpg", "chelsea"), ("b.jpg", "coffee")):
        (root / name).write_bytes(photos[src].read_bytes())
    labels = imagenet_labels()
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    _fitted(labels, "efficientnet_lite0", root / "calibration.json")
    _fitted(labels, "efficientnet_lite0", root / "lite0.json")  # the ensemble example's member files
    _fitted(labels, "efficientnet_lite1", root / "lite1.json")
    cifar = importlib.util.find_spec("cifar_10_model")
    if cifar is not None and cifar.submodule_search_locations:  # the TensorFlow example's seed model
        h5 = Path(next(iter(cifar.submodule_search_locations))) / "trained_models" / "cnn_model.h5"
        shutil.copy(h5, root / "cnn_model.h5")
    if any("model.onnx" in code for _, code, why in BLOCKS if why is None):
        pytest.importorskip("onnxruntime")
        from twoends.export import export_onnx

        export_onnx("efficientnet_lite0", root / "model.onnx", exporter="torchscript")
    return root


@pytest.fixture(scope="module")
def ran(workspace):
    """Every runnable block, in order, in one namespace, in a child process of its own: the examples
    import TensorFlow, JAX, Keras and Ray as a user would, which must not change this test process."""
    import json
    import os
    import subprocess

    todo = workspace / "_blocks.json"
    todo.write_text(json.dumps([(line, code) for line, code, why in BLOCKS if why is None]))
    out = workspace / "_results.json"
    # the TensorFlow example runs the seed with tf.keras as Keras 2, as its comment says
    env = {**os.environ, "PYTHONPATH": str(README.parent), "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(todo), str(out)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    results = json.loads(out.read_text()) if out.exists() else {}
    return results, proc


def test_the_readme_has_examples_and_every_skip_says_why():
    assert len(BLOCKS) >= 8
    for line, _, why in BLOCKS:
        if why is not None:
            assert len(why.split()) >= 3, f"README line {line}: a skip must say why: {why!r}"


@pytest.mark.slow
@pytest.mark.parametrize("line,code,why", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_example_runs_as_written(line, code, why, ran):
    if why is not None:
        pytest.skip(f"README line {line}: {why}")
    results, proc = ran
    assert str(line) in results, f"README line {line} never ran (the child died): {proc.stderr[-3000:]}"
    assert results[str(line)] is None, f"README line {line}:\n{results[str(line)]}"
