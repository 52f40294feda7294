"""Every Python example in README.md runs as written, so the README cannot drift.

The fenced ``python`` blocks are taken from README.md in document order and run one
after another in one namespace (as a reader runs them), in a scratch folder holding
the user's files the examples name: ``cat.jpg``, ``a.jpg``, ``b.jpg``, ``photos/``,
``samples/``, ``labels.txt``, ``calibration.json``, ``model.onnx``. New blocks are
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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from tests.photos import write_photos
    from twoends.calibrate.calibration import fit_calibration
    from twoends.models import imagenet_labels

    root = tmp_path_factory.mktemp("readme")
    photos = write_photos(root / "photos")
    write_photos(root / "samples")
    for name, src in (("cat.jpg", "chelsea"), ("a.jpg", "chelsea"), ("b.jpg", "coffee")):
        (root / name).write_bytes(photos[src].read_bytes())
    labels = imagenet_labels()
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 1000, 800)
    z = rng.normal(size=(800, 1000)) * 2
    z[np.arange(800), y] += 5
    fit_calibration(z, y, labels, model="efficientnet_lite0", conformal=0.1).calibration.save(root / "calibration.json")
    if any("model.onnx" in code for _, code, why in BLOCKS if why is None):
        pytest.importorskip("onnxruntime")
        from twoends.export import export_onnx

        export_onnx("efficientnet_lite0", root / "model.onnx", exporter="torchscript")
    return root


@pytest.fixture(scope="module")
def namespace():
    ns = {"__name__": "__readme__"}
    yield ns
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()


def test_the_readme_has_examples_and_every_skip_says_why():
    assert len(BLOCKS) >= 8
    for line, _, why in BLOCKS:
        if why is not None:
            assert re.search(r"network|server|serve|CUDA|GPU", why), f"README line {line}: skip without a reason: {why}"


@pytest.mark.slow
@pytest.mark.parametrize("line,code,why", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_example_runs_as_written(line, code, why, workspace, namespace, monkeypatch):
    if why is not None:
        pytest.skip(f"README line {line}: {why}")
    monkeypatch.chdir(workspace)
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
