"""ImageSpec validation and serialisation, resolve_spec precedence, ImagePlan behaviour."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from twoends.errors import ConfigError, InputError
from twoends.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImagePlan, ImageSpec, resolve_spec


def test_defaults_are_the_imagenet_classic():
    spec = ImageSpec()
    assert spec.input_size == (224, 224) and spec.effective_resize_size == 256
    assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
    assert "256" in spec.describe() and "224x224" in spec.describe()


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"input_size": (224,)}, "input_size"),
        ({"input_size": (0, 224)}, "positive"),
        ({"input_size": (224.0, 224.0)}, "two ints"),
        ({"resize_mode": "shortest"}, "resize_mode"),
        ({"crop": "random"}, "crop"),
        ({"interpolation": "cubic"}, "bicubic"),
        ({"crop_pct": 0}, "crop_pct"),
        ({"crop_pct": 1.5}, "crop_pct"),
        ({"scale": -1.0}, "scale"),
        ({"mean": (0.5, 0.5)}, "three numbers"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
        ({"channel_order": "GBR"}, "channel_order"),
        ({"layout": "CHW"}, "layout"),
        ({"dtype": "float64"}, "dtype"),
        ({"resize_size": 0}, "resize_size"),
        ({"crop": "none"}, "resize_mode='exact'"),
        ({"antialias": False}, "antialias"),
    ],
)
def test_bad_fields_raise_config_error_naming_the_field(changes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ImageSpec(**changes)


def test_spec_is_frozen_and_hashable():
    spec = ImageSpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.input_size = (1, 1)  # type: ignore[misc]
    assert hash(spec) == hash(ImageSpec.from_json(spec.to_json()))


def test_json_round_trip_is_exact_and_lists_become_tuples():
    spec = ImageSpec(
        input_size=(240, 320),
        resize_size=None,
        crop_pct=0.9,
        interpolation="bicubic",
        scale=1.0,
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        layout="NHWC",
    )
    text = spec.to_json()
    assert json.loads(text)["input_size"] == [240, 320]
    assert ImageSpec.from_json(text) == spec
    assert ImageSpec.from_dict(spec.to_dict()) == spec


def test_from_dict_rejects_unknown_fields_and_bad_json():
    with pytest.raises(ConfigError, match="unknown ImageSpec field"):
        ImageSpec.from_dict({"img_size": 224})
    with pytest.raises(ConfigError, match="invalid JSON"):
        ImageSpec.from_json("{not json")


_crop_and_mode = st.one_of(
    st.tuples(st.just("center"), st.sampled_from(["shorter", "longer", "exact"])),
    st.tuples(st.just("none"), st.just("exact")),
)
_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@st.composite
def specs(draw):
    crop, mode = draw(_crop_and_mode)
    return ImageSpec(
        input_size=draw(st.tuples(st.integers(1, 4096), st.integers(1, 4096))),
        resize_mode=mode,
        resize_size=draw(st.none() | st.integers(1, 8192)),
        crop_pct=draw(st.floats(min_value=0.01, max_value=1.0)),
        crop=crop,
        interpolation=draw(st.sampled_from(["bilinear", "bicubic", "nearest", "lanczos", "box", "hamming"])),
        scale=draw(_positive),
        mean=draw(st.tuples(_finite, _finite, _finite)),
        std=draw(st.tuples(_positive, _positive, _positive)),
        channel_order=draw(st.sampled_from(["RGB", "BGR"])),
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        dtype=draw(st.sampled_from(["float32", "float16", "uint8"])),
    )


@settings(max_examples=200, deadline=None)
@given(specs())
def test_property_round_trip(spec):
    assert ImageSpec.from_json(spec.to_json()) == spec
    assert ImageSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.effective_resize_size >= 1
    assert isinstance(spec.describe(), str)


def test_resolve_spec_precedence_and_source():
    bundled = ImageSpec(resize_size=232)
    default = ImageSpec(interpolation="bicubic")
    explicit = ImageSpec(input_size=(256, 256))
    assert resolve_spec(explicit, bundled, default) == (explicit, "explicit")
    assert resolve_spec(None, bundled, default) == (bundled, "model")
    assert resolve_spec(None, None, default) == (default, "default")
    assert resolve_spec() == (ImageSpec(), "default")
    spec, source = resolve_spec({"input_size": (256, 256)}, bundled, default)
    assert source == "model+explicit" and spec.input_size == (256, 256) and spec.resize_size == 232
    spec, source = resolve_spec({"dtype": "float16"}, None, default)
    assert source == "default+explicit" and spec.interpolation == "bicubic"
    with pytest.raises(ConfigError, match="unknown"):
        resolve_spec({"size": 3}, bundled)
    with pytest.raises(ConfigError, match="ImageSpec or a dict"):
        resolve_spec("224", bundled)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec, image_hw, target",
    [
        (ImageSpec(), (480, 640), (256, 341)),  # shorter side; long side int(256 * 640 / 480)
        (ImageSpec(), (640, 480), (341, 256)),
        (ImageSpec(resize_mode="longer", resize_size=224), (480, 640), (168, 224)),
        (ImageSpec(resize_mode="exact", crop="none"), (480, 640), (224, 224)),
        (ImageSpec(resize_mode="exact"), (480, 640), (256, 256)),  # timm "squash" then crop
    ],
)
def test_resize_target(spec, image_hw, target):
    assert spec.resize_target(*image_hw) == target


def test_plan_output_shape_padding_and_letterbox():
    image = Image.new("RGB", (400, 200), (255, 255, 255))
    plan = ImageSpec(resize_mode="longer", resize_size=224, dtype="uint8", layout="NHWC").plan()
    out = plan(image)
    assert out.shape == (224, 224, 3) == plan.output_shape
    # 400x200 -> 224x112, padded with black above and below (torchvision pads with 0)
    assert out[:56].max() == 0 and out[-56:].max() == 0 and out[56:168].min() == 255


def test_plan_converts_other_modes_and_rejects_non_images():
    plan = ImageSpec(dtype="uint8").plan()
    rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    assert plan(rgba).min() == 255  # the alpha rule: transparent -> white
    with pytest.raises(InputError, match="decode_image"):
        plan(np.zeros((224, 224, 3), np.uint8))  # type: ignore[arg-type]


def test_plan_is_frozen_and_batch_is_contiguous():
    plan = ImagePlan(ImageSpec())
    with pytest.raises(AttributeError):
        plan.spec = ImageSpec()  # type: ignore[misc]
    items = [plan(Image.new("RGB", (300, 260), (i, i, i))) for i in (0, 128, 255)]
    batch = plan.batch(items)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == np.float32 and batch.flags.c_contiguous
    with pytest.raises(InputError, match="one shape"):
        plan.batch([items[0], items[0][:, :100]])
    with pytest.raises(InputError, match="empty"):
        plan.batch([])


def test_normalisation_is_exact_to_float_rounding():
    plan = ImageSpec(scale=1.0, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0)).plan()
    pixels = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    out = plan.normalize(pixels)
    expected = (pixels.astype(np.float64) - 127.0) / 128.0
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1), rtol=0, atol=1e-7)


def test_plan_pickles_and_checks_ready_inputs():
    import pickle

    plan = ImageSpec(input_size=(240, 240), interpolation="bicubic").plan()
    clone = pickle.loads(pickle.dumps(plan))
    assert clone.spec == plan.spec
    image = Image.new("RGB", (320, 250), (10, 200, 30))
    np.testing.assert_array_equal(clone(image), plan(image))
    ready = np.zeros((3, 240, 240), np.float32)
    assert plan.check_ready(ready) is ready
    with pytest.raises(InputError, match=r"shaped \(3, 240, 240\).*NHWC"):
        plan.check_ready(np.zeros((240, 240, 3), np.float32))


def test_exact_squash_resize_uses_integer_maths():
    for side in range(1, 600):
        spec = ImageSpec(input_size=(side, side), resize_mode="exact", resize_size=side + 32)
        assert spec.resize_target(10, 20) == (side + 32, side + 32)
