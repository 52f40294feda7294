"""The opt-in speed settings of the torch backend keep the answers: compile, bf16 autocast, on every adapter."""

import os
import shutil
import warnings

import numpy as np
import pytest

import twoends
from tests.photos import load_photos

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def photos():
    return list(load_photos().values())


@pytest.fixture(scope="module")
def eager(photos):
    return twoends.load("efficientnet_lite0", batch_size=4).predict(photos)


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")),
    reason="torch.compile (Inductor) needs a C++ compiler",
)
def test_compiled_lite0_gives_the_eager_answers_on_real_photos_and_compiles_once(photos, eager):
    import torch._dynamo

    torch._dynamo.reset()
    clf = twoends.load("efficientnet_lite0", batch_size=4, compile=True)
    assert "torch.compile" in clf.backend.describe()
    graphs = torch._dynamo.utils.counters["stats"]
    clf.predict(photos[:4])  # compiles (the module may compile to more than one graph)
    compiled = graphs["unique_graphs"]
    assert compiled >= 1
    preds = clf.predict(photos)  # 5 photos in batches of 4: the second batch (1 photo) is padded to 4
    assert clf.backend._compiled is not None and clf.backend._compiled_batch == 4
    assert graphs["unique_graphs"] == compiled  # no recompile for the short batch
    assert [p.label for p in preds] == [p.label for p in eager]
    for ours, ref in zip(preds, eager, strict=True):
        assert [i for i, *_ in ours.top(5)] == [i for i, *_ in ref.top(5)] or np.allclose(
            ours.logits, ref.logits, atol=1e-3
        )
        np.testing.assert_allclose(ours.probabilities, ref.probabilities, atol=1e-4)
    # a batch longer than the compiled one runs in pieces, still without compiling again
    long_batch = np.stack([clf.plan(im) for im in photos * 2])  # 10 inputs
    logits = clf.backend.forward(long_batch)
    assert tuple(logits.shape) == (10, 1000)
    assert graphs["unique_graphs"] == compiled
    np.testing.assert_allclose(logits[:5].numpy(), np.stack([p.logits for p in eager]), atol=1e-3)


def test_a_failed_compile_falls_back_to_the_module_with_a_warning(photos, eager):
    clf = twoends.load("efficientnet_lite0", batch_size=8, compile=True)

    def broken(x):
        raise RuntimeError("InductorError: no working C++ compiler found")

    clf.backend._compiled = broken
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no working C\\+\\+ compiler.*without compiling"):
        preds = clf.predict(photos)
    assert all(p.ok for p in preds) and [p.label for p in preds] == [p.label for p in eager]
    assert clf.backend._compiled is None  # it does not try again on every batch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(photos[:1])  # and says it only once


def test_bf16_logits_reach_the_head_as_float32(photos, eager):
    clf = twoends.load("efficientnet_lite0", precision="bf16")
    x = np.stack([clf.plan(im) for im in photos])
    assert clf.backend.forward(x).dtype == torch.float32
    preds = clf.predict(photos)
    probs = np.stack([p.probabilities for p in preds])
    # not rounded to bfloat16's 8-bit mantissa: float32 values that bf16 cannot represent
    as_bf16 = torch.from_numpy(probs).to(torch.bfloat16).float().numpy()
    assert (probs != as_bf16).mean() > 0.9
    # two classes are no longer tied by rounding (the cat photo's tiger cat / Egyptian cat)
    assert all(p.margin > 0 for p in preds)
    assert [p.label for p in preds][:2] == [p.label for p in eager][:2]  # chelsea, coffee


def test_precision_and_compile_are_options_of_a_plain_torch_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)
    )
    spec = twoends.ImageSpec(input_size=(16, 16), resize_mode="exact", crop="none")
    clf = twoends.wrap(net, spec=spec, labels=["a", "b", "c"], precision="bf16", compile=True)
    assert "autocast bf16" in clf.backend.describe() and "torch.compile" in clf.backend.describe()
    with pytest.raises(twoends.ConfigError, match="precision must be one of"):
        twoends.wrap(net, spec=spec, precision="int4")
    with pytest.raises(twoends.ConfigError, match="compile must be True or False"):
        twoends.wrap(net, spec=spec, compile="yes")


def test_the_compiled_batch_size_is_the_classifiers_not_the_first_batchs():
    # a server's first batch may hold a single request; the model must be compiled for full batches
    clf = twoends.load("efficientnet_lite0", batch_size=8, compile=True)
    assert clf.backend._compiled_batch == 8
    assert twoends.load("efficientnet_lite0", batch_size=8).backend._compiled_batch is None  # eager: no fixed size
