"""timm: pretrained_cfg -> ImageSpec, checked against timm's own eval transform on real photos."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
from timm.data import create_transform, resolve_data_config  # noqa: E402

import twoends  # noqa: E402
from tests.photos import load_photos  # noqa: E402
from twoends.backends.timm import spec_from_data_config  # noqa: E402
from twoends.errors import ModelError  # noqa: E402

# (model, what its pretrained_cfg exercises); all built with pretrained=False
MODELS = {
    "resnet18.a1_in1k": "center, crop_pct 0.95, bicubic",
    "mobilenetv3_small_050.lamb_in1k": "center, crop_pct 0.875, bilinear",
    "vit_tiny_patch16_224.augreg_in21k_ft_in1k": "center, crop_pct 0.9, mean/std 0.5",
    "tf_efficientnet_lite0.in1k": "center, 0.882 crop_pct, inception normalisation",
}


@pytest.fixture(scope="module")
def photos():
    return load_photos()


def _max_pixel_diff(ours, theirs, std):
    return float((np.abs(ours - theirs) * np.asarray(std, dtype=np.float32)[:, None, None]).max())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_reproduces_timms_eval_transform(name, photos):
    model = timm.create_model(name, pretrained=False)
    config = resolve_data_config(model=model)
    reference = create_transform(**config)
    clf = twoends.wrap(model)
    assert clf.spec_source == "model"
    plan = clf.spec.plan()
    for photo, image in photos.items():
        ours, theirs = plan(image), reference(image).numpy()
        assert ours.shape == theirs.shape
        assert _max_pixel_diff(ours, theirs, config["std"]) <= 1 / 255, f"{name} on {photo}"


@pytest.mark.parametrize("crop_pct", [1.0, 0.9])
def test_squash_is_exact(crop_pct, photos):
    config = {
        "input_size": (3, 224, 224),
        "interpolation": "bicubic",
        "crop_pct": crop_pct,
        "crop_mode": "squash",
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
    }
    spec, notes = spec_from_data_config(config)
    assert notes == []
    reference = create_transform(**config)
    for image in photos.values():
        assert _max_pixel_diff(spec.plan()(image), reference(image).numpy(), config["std"]) <= 1 / 255


def test_border_is_approximated_and_says_so(photos):
    config = {
        "input_size": (3, 224, 224),
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "crop_mode": "border",
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
    }
    spec, notes = spec_from_data_config(config)
    assert any("border" in n for n in notes)
    image = photos["astronaut"]  # square: no border to pad, so the approximation is exact here
    assert _max_pixel_diff(spec.plan()(image), create_transform(**config)(image).numpy(), (0.5,) * 3) <= 1 / 255


def test_labels_are_timms_imagenet_names_and_outputs_match(photos):
    model = timm.create_model("mobilenetv3_small_050.lamb_in1k", pretrained=False)
    clf = twoends.wrap(model)
    labels = list(clf.head.labels)
    assert len(labels) == 1000 and labels[0] == "tench" and labels[2] == "great white shark"
    assert not model.training
    pred = clf.predict(photos["rocket"])
    reference = create_transform(**resolve_data_config(model=model))
    with torch.no_grad():
        ref = model(reference(photos["rocket"])[None]).numpy()[0]
    np.testing.assert_allclose(pred.logits, ref, rtol=1e-4, atol=1e-4)


def test_load_by_name_with_random_weights():
    clf = twoends.load("timm:resnet18", pretrained=False, device="cpu")
    assert clf.name == "timm:resnet18" and clf.spec.interpolation == "bicubic"


def test_load_pretrained_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # fail at once instead of retrying DNS
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Download them once with internet access"):
        twoends.load("timm:resnet18.a1_in1k", device="cpu")


def test_unknown_model():
    with pytest.raises(ModelError, match="timm has no model"):
        twoends.load("timm:resnet_does_not_exist")
