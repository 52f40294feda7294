"""resize_crop: the crop of Pillow's full resize, bit for bit, with less resampling.

Compared with ``image.resize(size, f, box=box).crop(crop)`` itself on real photos, every
filter, both orientations, both of Pillow's pass orders and draft-style float boxes.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from twoends.preprocess import ImageSpec, decode_image
from twoends.preprocess.crop_resize import _exact, _pillow_goes_vertical_first, resize_crop
from twoends.preprocess.image_plan import _crop_offsets

FILTERS = [
    Image.Resampling.NEAREST,
    Image.Resampling.BOX,
    Image.Resampling.BILINEAR,
    Image.Resampling.HAMMING,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
]


def _reference(image, size, f, box, crop):
    return np.asarray(image.resize(size, f, box=box).crop(crop))


def _centre(size, crop_size):
    (tw, th), (cw, ch) = size, crop_size
    top, left = _crop_offsets(th, tw, ch, cw)
    return (left, top, left + cw, top + ch)


def _cases(photos):
    """(name, image, size, box, crop): torchvision-style shorter-side resizes of real photos
    and their transposes, plus shapes that make Pillow run the vertical pass first."""
    for name, photo in photos.items():
        for image in (photo, photo.transpose(Image.Transpose.TRANSPOSE)):
            w, h = image.size
            for short, crop in ((256, 224), (232, 224), (274, 240), (300, 299)):
                th, tw = ImageSpec(resize_size=short).resize_target(h, w)
                if min(tw, th) >= crop:
                    yield name, image, (tw, th), (0.0, 0.0, float(w), float(h)), _centre((tw, th), (crop, crop))
            # height shrinks far more than the width: vertical pass first on Pillow 13
            size = (w - 7, h // 4)
            yield name, image, size, (0.0, 0.0, float(w), float(h)), _centre(size, (w - 40, h // 4 - 20))
            # a float box, as a draft-decoded JPEG gives (the full image in reduced pixels)
            box = (0.0, 0.0, w - 0.375, h - 0.625)
            yield name, image, (w // 2, h // 2), box, _centre((w // 2, h // 2), (w // 3, h // 3))


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: f.name.lower())
def test_equals_the_full_resize_then_the_crop_bit_for_bit(photos, f):
    checked = 0
    for name, image, size, box, crop in _cases(photos):
        got = np.asarray(resize_crop(image, size, f, box, crop))
        want = _reference(image, size, f, box, crop)
        assert got.shape == want.shape
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() == 0, f"{name} {image.size} -> {size} crop {crop}: {np.count_nonzero(diff)} values differ"
        checked += 1
    assert checked >= 5 * len(photos)


def test_bench_sized_jpegs_through_the_plan(photo_files):
    """The plan's geometry (which calls resize_crop) on decoded JPEGs equals resizing then cropping."""
    spec = ImageSpec(resize_size=256, interpolation="bicubic")
    plan = spec.plan()
    for paths in photo_files.values():
        image = decode_image(paths["jpg"])
        th, tw = spec.resize_target(image.height, image.width)
        want = np.asarray(image.resize((tw, th), Image.Resampling.BICUBIC).crop(_centre((tw, th), (224, 224))))
        np.testing.assert_array_equal(np.asarray(plan.geometry(image)), want)


def test_the_exactness_check_tells_short_binary_scales_from_the_rest():
    # 480 rows to 256: 1.875 per output row, exact in binary: the crop's own box gives the same centres
    assert _exact((0.0, 480.0, 256), (30.0, 450.0, 224), 16, 0)
    assert _exact((0.0, 480.0, 256), (30.0 - 24, 450.0 - 24, 224), 16, 24)  # moved by a whole strip
    # 640 columns to 341: the crop's float32 box moves the centres: resampled in full, then cut
    sx = 640 / 341
    assert not _exact((0.0, 640.0, 341), (58 * sx, 282 * sx, 224), 58, 0)


def test_the_pass_order_probe_matches_this_pillow():
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (400, 60, 3), dtype=np.uint8))
    full = np.asarray(image.resize((59, 50), Image.Resampling.LANCZOS))
    v_first = image.resize((60, 50), Image.Resampling.LANCZOS).resize((59, 50), Image.Resampling.LANCZOS)
    assert np.array_equal(full, np.asarray(v_first)) == _pillow_goes_vertical_first()
