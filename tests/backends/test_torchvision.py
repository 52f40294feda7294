"""torchvision: the weights enum's transforms and categories become twoends' two ends.

Only the weights' metadata and transforms are needed for the preprocessing
claims: the models are built with weights=None (random init) for plumbing.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision import models as tvm  # noqa: E402

import twoends  # noqa: E402
from tests.photos import load_photos  # noqa: E402
from twoends.backends.torchvision import resolve_weights, spec_from_transforms, weights_path  # noqa: E402
from twoends.errors import ConfigError, ModelError  # noqa: E402

WEIGHTS = [
    tvm.ResNet50_Weights.IMAGENET1K_V1,  # resize 256, crop 224, bilinear
    tvm.ResNet50_Weights.IMAGENET1K_V2,  # resize 232, crop 224
    tvm.EfficientNet_B0_Weights.IMAGENET1K_V1,  # bicubic 256 / 224
    tvm.ViT_B_16_Weights.IMAGENET1K_V1,
    tvm.ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1,  # bicubic 224 / 224: resize == crop
    tvm.Inception_V3_Weights.IMAGENET1K_V1,  # 342 / 299
]


@pytest.fixture(scope="module")
def photos():
    return load_photos()


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
def test_spec_reproduces_the_weights_transforms_on_real_photos(weights, photos):
    plan = spec_from_transforms(weights.transforms).plan()
    reference = weights.transforms()
    std = np.asarray(reference.std, dtype=np.float32)[:, None, None]
    for name, image in photos.items():
        ours, theirs = plan(image), reference(image).numpy()
        assert ours.shape == theirs.shape, name
        diff = np.abs(ours - theirs) * std  # in 0..1 pixel units
        assert diff.max() <= 1 / 255, f"{weights} on {name}: {diff.max() * 255:.3f}/255"


def test_wrap_reads_spec_and_categories_and_runs_in_eval_mode(photos, hub_dir):
    w = tvm.ResNet50_Weights.IMAGENET1K_V2
    model = tvm.resnet50(weights=None).train()
    _cache_as(w, model)  # random weights, filed as W's: wrap compares the model with the cached file
    clf = twoends.wrap(model, weights=w)
    assert clf.spec == spec_from_transforms(w.transforms) and clf.spec_source == "model"
    assert list(clf.head.labels) == w.meta["categories"]
    assert not model.training
    pred = clf.predict(photos["chelsea"])
    assert pred.error is None and pred.label in w.meta["categories"]
    assert pred.logits.shape == (1000,) and np.isclose(pred.probabilities.sum(), 1.0)
    # same numbers as the module on the reference transform (random weights: plumbing only)
    with torch.no_grad():
        ref = model(w.transforms()(photos["chelsea"])[None]).numpy()[0]
    np.testing.assert_allclose(pred.logits, ref, rtol=1e-4, atol=1e-4)


def _cache_as(weights, model):
    import os

    from twoends.backends.torchvision import weights_path

    path = weights_path(weights)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(model.state_dict(), path)


def test_wrap_refuses_a_model_that_does_not_hold_the_weights(hub_dir):
    w = tvm.ResNet18_Weights.IMAGENET1K_V1
    torch.manual_seed(0)
    _cache_as(w, tvm.resnet18())
    torch.manual_seed(1)
    with pytest.raises(ConfigError, match="does not hold the weights ResNet18_Weights.IMAGENET1K_V1"):
        twoends.wrap(tvm.resnet18(), weights=w)  # other random weights under W's labels
    torch.manual_seed(0)
    clf = twoends.wrap(tvm.resnet18(), weights=w)  # the very tensors of the cached file
    assert any("every tensor equals" in n for n in clf.describe()["notes"])


def test_wrap_refuses_an_untrained_model_when_the_weights_file_is_not_cached(hub_dir):
    w = tvm.ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(ConfigError, match="never been trained"):
        twoends.wrap(tvm.resnet18(), weights=w)
    seen = tvm.resnet18().train()
    with torch.no_grad():
        seen(torch.randn(4, 3, 64, 64))  # batch-norm statistics move: a network that has seen data
    clf = twoends.wrap(seen, weights=w)
    assert any("not compared" in n for n in clf.describe()["notes"])


def test_weights_by_name():
    assert resolve_weights("ResNet50_Weights.IMAGENET1K_V1") is tvm.ResNet50_Weights.IMAGENET1K_V1
    assert resolve_weights("DEFAULT", "resnet50") is tvm.ResNet50_Weights.DEFAULT
    with pytest.raises(ConfigError, match="IMAGENET1K_V1"):
        resolve_weights("IMAGENET9K", "resnet50")


def test_wrap_without_weights_says_how_to_get_the_model_ends():
    clf = twoends.wrap(tvm.mobilenet_v3_small(weights=None))
    assert clf.spec_source == "default"
    assert any("weights=" in n for n in clf.describe()["notes"])


def test_labels_that_do_not_fit_the_model_fail_at_wrap():
    with pytest.raises(twoends.LabelError):
        twoends.wrap(
            tvm.mobilenet_v3_small(weights=None, num_classes=10), weights=tvm.MobileNet_V3_Small_Weights.DEFAULT
        )


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_load_uses_the_hub_cache_offline(hub_dir, photos):
    w = tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    torch.manual_seed(0)
    source = tvm.mobilenet_v3_small(weights=None).eval()
    path = weights_path(w)
    assert path.startswith(str(hub_dir))
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(source.state_dict(), path)

    clf = twoends.load("torchvision:mobilenet_v3_small", device="cpu")
    assert clf.name == "torchvision:mobilenet_v3_small"
    assert clf.spec == spec_from_transforms(w.transforms) and len(clf.head.labels) == 1000
    pred = clf.predict(photos["coffee"])
    with torch.no_grad():
        ref = source(w.transforms()(photos["coffee"])[None]).numpy()[0]
    np.testing.assert_allclose(pred.logits, ref, rtol=1e-4, atol=1e-4)


def test_load_offline_without_the_file_says_where_and_what_to_do(hub_dir):
    with pytest.raises(ModelError) as info:
        twoends.load("torchvision:mobilenet_v3_small", device="cpu")
    msg = str(info.value)
    assert "not in the torch hub cache" in msg and str(hub_dir) in msg and "internet" in msg


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_load_refuses_a_cached_file_that_is_not_plain_tensors(hub_dir):
    path = weights_path(tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1)
    (hub_dir / "checkpoints").mkdir(parents=True)
    with open(path, "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(ModelError, match="weights_only"):
        twoends.load("torchvision:mobilenet_v3_small", device="cpu")


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match="resnet50"):
        twoends.load("torchvision:resnet5O")
