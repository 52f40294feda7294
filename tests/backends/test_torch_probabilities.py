"""A torch model that ends in a softmax (or sigmoid) is not softmaxed again.

Real weights on a real photo: the bundled EfficientNet-Lite0 with nn.Softmax appended must
give the same probabilities as the plain model; a softmax hidden in forward() is flagged on
the first batch, and ``outputs="probabilities"`` (what the doctor's fix says) is accepted.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

import twoends  # noqa: E402
from tests.photos import load_photo  # noqa: E402
from twoends.models.efficientnet_lite import build_module, spec_for  # noqa: E402


class SoftmaxInForward(torch.nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.softmax(self.body(x), dim=1)


@pytest.fixture(scope="module")
def reference():
    clf = twoends.load("efficientnet_lite0", device="cpu", top_k=5)
    return clf.predict(load_photo("chelsea"))


def _wrap(module, **kw):
    return twoends.wrap(
        module,
        spec=spec_for("efficientnet_lite0"),
        labels=twoends.models.imagenet_labels(),
        device="cpu",
        top_k=5,
        **kw,
    )


def test_a_last_softmax_layer_is_read_as_probabilities(reference):
    clf = _wrap(torch.nn.Sequential(build_module("efficientnet_lite0"), torch.nn.Softmax(dim=1)))
    assert clf.describe()["outputs"] == "probabilities" and clf.describe()["sources"]["outputs"] == "model"
    pred = clf.predict(load_photo("chelsea"))
    np.testing.assert_allclose(pred.probabilities, reference.probabilities, atol=1e-5)
    assert pred.label == reference.label and 281 <= pred.index <= 285  # a cat class


def test_a_last_sigmoid_layer_is_read_as_probabilities_with_sigmoid():
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3), torch.nn.Sigmoid())
    clf = twoends.wrap(module, spec={"input_size": (2, 2)}, device="cpu")
    assert clf.describe()["outputs"] == "probabilities" and clf.activation == "sigmoid"


def test_a_softmax_in_forward_is_flagged_and_outputs_probabilities_fixes_it(reference):
    with pytest.warns(RuntimeWarning, match="outputs='probabilities'"):
        flat = _wrap(SoftmaxInForward(build_module("efficientnet_lite0"))).predict(load_photo("chelsea"))
    assert flat.probability < 0.01  # softmax of probabilities: every class near 1/1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said explicitly: no warning
        fixed = _wrap(SoftmaxInForward(build_module("efficientnet_lite0")), outputs="probabilities")
        pred = fixed.predict(load_photo("chelsea"))
    np.testing.assert_allclose(pred.probabilities, reference.probabilities, atol=1e-5)


def test_the_doctors_fix_text_is_what_wrap_accepts(reference):
    import re

    from twoends.diagnose import probabilities_as_logits

    findings = probabilities_as_logits(reference.probabilities[None, :], last_layer="softmax")
    call = re.search(r"outputs='(\w+)'", findings[0].fix)
    assert call, findings[0].fix
    module = torch.nn.Sequential(build_module("efficientnet_lite0"), torch.nn.Identity())
    clf = _wrap(module, outputs=call.group(1))  # what the fix says must be accepted as written
    assert clf.describe()["outputs"] == "probabilities" and clf.describe()["sources"]["outputs"] == "explicit"
