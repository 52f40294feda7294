"""ImagePlan against torchvision's own transforms on real photos.

torchvision on a PIL image resizes with Pillow, so the contract (within 1/255 per
pixel, after undoing std) is met with room to spare: the only difference left is
float rounding in the normalisation.
"""

from __future__ import annotations

import numpy as np
import pytest

from twoends.preprocess import ImageSpec, decode_image

torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed: nothing to compare against")
from torchvision import transforms as T  # noqa: E402
from torchvision.transforms import InterpolationMode as IM  # noqa: E402
from torchvision.transforms._presets import ImageClassification  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _compose(resize, crop, interpolation=IM.BILINEAR):
    steps = [T.Resize(resize, interpolation=interpolation, antialias=True)]
    if crop is not None:
        steps.append(T.CenterCrop(crop))
    return T.Compose(steps + [T.PILToTensor(), T.ConvertImageDtype(__import__("torch").float), T.Normalize(MEAN, STD)])


CASES = {
    # ResNet-50 IMAGENET1K_V2 weights: resize 232, crop 224, bilinear
    "resnet50_v2_232_224_bilinear": (ImageSpec(resize_size=232), ImageClassification(crop_size=224, resize_size=232)),
    "bicubic_256_224": (
        ImageSpec(resize_size=256, interpolation="bicubic"),
        ImageClassification(crop_size=224, resize_size=256, interpolation=IM.BICUBIC),
    ),
    # crop_pct 0.875 with resize_size derived as timm does: floor(240 / 0.875) = 274
    "crop_pct_0.875_240": (ImageSpec(input_size=(240, 240)), ImageClassification(crop_size=240, resize_size=274)),
    "exact_224x224": (ImageSpec(resize_mode="exact", crop="none"), _compose((224, 224), None)),
    "crop_larger_than_image": (ImageSpec(input_size=(300, 300), resize_size=200), _compose(200, 300)),
    "non_square_crop": (ImageSpec(input_size=(224, 320), resize_size=256), _compose(256, (224, 320))),
    "lanczos": (ImageSpec(interpolation="lanczos"), _compose(256, 224, IM.LANCZOS)),
    "nearest": (ImageSpec(interpolation="nearest"), _compose(256, 224, IM.NEAREST)),
}


def _pixel_diff(ours: np.ndarray, theirs: np.ndarray, std=STD) -> np.ndarray:
    """|difference| in 0..1 pixel units (std undone)."""
    assert ours.shape == theirs.shape
    return np.abs(ours - theirs) * np.asarray(std, dtype=np.float32)[:, None, None]


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torchvision_on_real_photos(case, photos):
    spec, reference = CASES[case]
    plan = spec.plan()
    for name, image in photos.items():
        ours, theirs = plan(image), reference(image).numpy()
        diff = _pixel_diff(ours, theirs)
        assert ours.dtype == np.float32 and ours.flags.c_contiguous
        assert diff.max() <= 1 / 255, f"{case} on {name}: max diff {diff.max() * 255:.3f}/255"
        # In fact identical up to float rounding: same Pillow resize, same crop offsets.
        assert diff.max() < 1e-5, f"{case} on {name}: max diff {diff.max() * 255:.5f}/255"


def test_derived_resize_size_is_timms():
    assert ImageSpec(input_size=(240, 240)).effective_resize_size == 274
    assert ImageSpec(input_size=(224, 224)).effective_resize_size == 256
    assert ImageSpec(input_size=(224, 224), crop_pct=0.95).effective_resize_size == 235


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_matches_torchvision_from_files(fmt, photo_files):
    """decode_image + plan on a file == Image.open(...).convert('RGB') + torchvision."""
    from PIL import Image

    spec, reference = CASES["resnet50_v2_232_224_bilinear"]
    plan = spec.plan()
    for name, paths in photo_files.items():
        with Image.open(paths[fmt]) as im:
            theirs = reference(im.convert("RGB")).numpy()
        ours = plan(decode_image(paths[fmt]))
        assert _pixel_diff(ours, theirs).max() < 1e-5, name


def test_layouts_channel_orders_and_dtypes_follow_the_spec(photos):
    image = photos["astronaut"]
    base = ImageSpec(resize_size=232)
    reference = ImageClassification(crop_size=224, resize_size=232)(image).numpy()
    nhwc = base.replace(layout="NHWC").plan()(image)
    assert nhwc.shape == (224, 224, 3) and nhwc.flags.c_contiguous
    np.testing.assert_allclose(nhwc.transpose(2, 0, 1), reference, atol=1e-5)
    # BGR: channels reversed, and mean/std listed in the model's (BGR) order
    bgr = base.replace(channel_order="BGR", mean=MEAN[::-1], std=STD[::-1]).plan()(image)
    np.testing.assert_allclose(bgr[::-1], reference, atol=1e-5)
    half = base.replace(dtype="float16").plan()(image)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), reference, atol=1e-2)
    raw = base.replace(dtype="uint8").plan()(image)
    expected = T.CenterCrop(224)(T.Resize(232)(image))
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, np.asarray(expected).transpose(2, 0, 1))
