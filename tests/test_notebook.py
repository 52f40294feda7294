"""docs/two-ends.ipynb, executed by nbclient in a fresh kernel; its outputs show each gotcha caught.

The notebook is committed without outputs; here it runs top to bottom and every
gotcha cell (found by its tag) is checked: plain PyTorch went wrong, and twoends
caught it (the doctor's finding by name) or avoided it (the right answer).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("torchvision")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
pytest.importorskip("skimage")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "two-ends.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = (
        f"{ROOT}{os.pathsep}{env_path}" if env_path else str(ROOT)
    )  # the kernel imports this twoends
    try:
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}
        )
        client.execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
        if not env_path:
            del os.environ["PYTHONPATH"]
    return {c.metadata["tags"][0]: c for c in nb.cells if c.cell_type == "code" and c.metadata.get("tags")}


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if "data" in o)


def found(cell) -> list[str]:
    return re.findall(r"'([a-z-]+)'", re.search(r"twoends.check found: \[(.*)\]", text(cell)).group(1))


def test_every_cell_ran_without_an_error(executed):
    for tag, cell in executed.items():
        assert not [o for o in cell.outputs if o.output_type == "error"], tag


def test_the_four_steps_show_a_card_and_a_table(executed):
    card = html(executed["four-steps"])
    assert "tiger cat" in card and "data:image/jpeg;base64," in card and "<script" not in card
    assert "Prediction(input=" in text(executed["four-steps"])
    table = html(executed["table"])
    assert table.count("data:image/jpeg;base64,") == 5 and "espresso" in table


def test_no_eval_is_caught_and_fixed(executed):
    cell = executed["gotcha-no-eval"]
    assert "training-mode" in found(cell)
    plain = re.search(r"no eval\(\): '([^']+)'", text(cell)).group(1)
    assert plain != "tiger cat"  # batch-norm on a batch of one: noise
    assert "twoends.wrap: 'tiger cat'; model.training is now False" in text(cell)
    assert "seen" in html(cell) and "training-mode" in html(cell)


def test_wrong_preprocessing_is_caught(executed):
    cell = executed["gotcha-preprocessing"]
    assert found(cell) == ["normalization"]
    rows = re.findall(r"ImageNet mean/std: '([^']+)'.*the model's own: '([^']+)'", text(cell))
    assert len(rows) == 5 and any(a != b for a, b in rows)  # the wrong normalisation changed some labels
    assert "uses the model's own preprocessing: model" in text(cell)


def test_no_batch_dimension_is_caught_and_avoided(executed):
    cell = executed["gotcha-batch-dimension"]
    assert "plain PyTorch: ValueError" in text(cell) and "batch-dimension" in found(cell)
    assert "a lone image never needs one: tiger cat" in text(cell)


def test_logits_are_not_probabilities(executed):
    out = text(executed["gotcha-logits"])
    plain = float(re.search(r"'confidence' for chelsea: ([\d.]+)", out).group(1))
    prob, ref = map(
        float, re.search(r"twoends: probability ([\d.]+) \(softmax of its logits: ([\d.]+)\)", out).groups()
    )
    assert plain > 1 and 0 < prob < 1 and prob == pytest.approx(ref, abs=1e-4)


def test_softmax_on_the_wrong_axis_is_caught(executed):
    cell = executed["gotcha-softmax-axis"]
    assert found(cell) == ["softmax-axis"]
    assert "dim=0 on a batch of one: max 1.0" in text(cell)
    assert "row sums [1.0, 1.0, 1.0, 1.0, 1.0]" in text(cell).split("twoends: the head")[1]


def test_an_index_without_its_label_is_caught(executed):
    cell = executed["gotcha-labels"]
    assert found(cell) == ["labels"]
    assert "plain PyTorch: [282, 967," in text(cell)
    assert "twoends.wrap refuses them: model has 1000 outputs, labels (list) have 1001 names" in text(cell)
    assert "('chelsea.jpg', 'tiger cat')" in text(cell)
