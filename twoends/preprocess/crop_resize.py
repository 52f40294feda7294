"""Resize-then-center-crop that resamples only what the crop keeps, with Pillow's exact numbers.

torchvision's preset resizes the whole image (e.g. 640x480 -> 341x256) and then keeps a
224x224 crop, so part of the resampled pixels are thrown away. Pillow resamples in two
separable passes whose filter taps are clipped to the whole image, never to a box, so
along an axis the crop can be resampled directly from its own source box - when that
gives bit-identical numbers, which this module checks rather than assumes:

* Pillow takes a box in float32 and places output pixel i at ``box0 + (i + 0.5) * scale``
  (in double). A crop's box moves those centres by float rounding unless the axis's scale
  is a short binary fraction (a side resized to 256, say: 480 / 256 = 1.875). Each axis is
  checked (``_exact``): where the crop's centres and scale equal the full resize's bit for
  bit, only the crop is resampled; elsewhere the full extent is, and the crop is cut out
  after, by whole pixels.
* the pass order must be the one Pillow picks for the full resize, because it rounds to
  8 bits between the passes (the other order moves bicubic pixels by several levels).
  Pillow 13 runs the vertical pass first when the height shrinks by more than twice the
  width does; earlier versions always start horizontally. Which rule the installed Pillow
  follows is found once, by a probe (``_pillow_goes_vertical_first``).
* the first pass reads only the strip of rows (or columns) the second one needs, with a
  margin wider than the filter, so no tap is clipped that the full resize would keep.

The result equals ``image.resize(size, resample, box=box).crop(crop)`` exactly (tested on
real photos, every filter, draft-decoded boxes and both pass orders).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

__all__ = ["resize_crop"]

#: half-width of each filter in source pixels at scale 1 (Pillow's Resample.c)
_SUPPORT = {
    Image.Resampling.BOX: 0.5,
    Image.Resampling.BILINEAR: 1.0,
    Image.Resampling.HAMMING: 1.0,
    Image.Resampling.BICUBIC: 2.0,
    Image.Resampling.LANCZOS: 3.0,
}


def resize_crop(
    image: Image.Image,
    size: tuple[int, int],
    resample: int,
    box: tuple[float, float, float, float],
    crop: tuple[int, int, int, int],
) -> Image.Image:
    """``image.resize(size, resample, box=box).crop(crop)``, resampling as little as possible.

    ``crop`` is (left, top, right, bottom) inside ``size`` and must lie within it.
    """
    tw, th = size
    left, top, right, bottom = crop
    cw, ch = right - left, bottom - top
    x0, y0, x1, y1 = box
    w, h = image.size
    support = _SUPPORT.get(resample)
    # Pillow's own test for each pass (note: the box's end is compared with the output size)
    need_h, need_v = (tw != w or x0 != 0 or x1 != tw), (th != h or y0 != 0 or y1 != th)
    if support is None or not (need_h and need_v):
        # nearest (one lookup per pixel) or a single pass: nothing worth saving
        return image.resize(size, resample, box=box).crop(crop)
    sx, sy = (x1 - x0) / tw, (y1 - y0) / th
    cx0, cx1 = x0 + left * sx, x0 + right * sx
    cy0, cy1 = y0 + top * sy, y0 + bottom * sy
    if _vertical_first(w, h, tw, th):
        c0, c1 = _strip(cx0, cx1, sx, support, w)
        exact_x = _exact((x0, x1, tw), (cx0 - c0, cx1 - c0, cw), left, c0)
        if not exact_x:
            c0, c1 = 0, w
        exact_y = _exact((y0, y1, th), (cy0, cy1, ch), top, 0)
        strip = image if (c0, c1) == (0, w) else image.crop((c0, 0, c1, h))
        sw = c1 - c0
        if exact_y:
            cols = strip.resize((sw, ch), resample, box=(0, cy0, sw, cy1))
        else:
            cols = strip.resize((sw, th), resample, box=(0, y0, sw, y1)).crop((0, top, sw, bottom))
        if exact_x:
            return cols.resize((cw, ch), resample, box=(cx0 - c0, 0, cx1 - c0, ch))
        return cols.resize((tw, ch), resample, box=(x0, 0, x1, ch)).crop((left, 0, right, ch))
    r0, r1 = _strip(cy0, cy1, sy, support, h)
    exact_y = _exact((y0, y1, th), (cy0 - r0, cy1 - r0, ch), top, r0)
    if not exact_y:
        r0, r1 = 0, h
    exact_x = _exact((x0, x1, tw), (cx0, cx1, cw), left, 0)
    strip = image if (r0, r1) == (0, h) else image.crop((0, r0, w, r1))
    sh = r1 - r0
    if exact_x:
        rows = strip.resize((cw, sh), resample, box=(cx0, 0, cx1, sh))
    else:
        rows = strip.resize((tw, sh), resample, box=(x0, 0, x1, sh)).crop((left, 0, right, sh))
    if exact_y:
        return rows.resize((cw, ch), resample, box=(0, cy0 - r0, cw, cy1 - r0))
    return rows.resize((cw, th), resample, box=(0, y0, cw, y1)).crop((0, top, cw, bottom))


@functools.lru_cache(maxsize=1024)
def _exact(full: tuple[float, float, int], part: tuple[float, float, int], offset: int, shift: int) -> bool:
    """Whether resampling ``part`` (box start, box end, outputs; in coordinates moved by
    ``shift`` pixels) puts every filter centre exactly where resampling ``full`` puts
    outputs ``offset`` onwards, with the same scale - Pillow's arithmetic replayed: the
    box in float32, the scale and the centres in double."""
    scale, centres = _centres(*full)
    part_scale, part_centres = _centres(*part)
    n = part[2]
    # moving a centre by a whole number of pixels is exact in double (ulp <= 1 here)
    return bool(part_scale == scale and np.array_equal(part_centres, centres[offset : offset + n] - shift))


def _centres(start: float, end: float, n: int) -> tuple[float, np.ndarray]:
    a, b = np.float32(start), np.float32(end)
    scale = float(np.float32(b - a)) / n
    return scale, float(a) + (np.arange(n, dtype=np.float64) + 0.5) * scale


def _strip(a: float, b: float, scale: float, support: float, limit: int) -> tuple[int, int]:
    """The source pixels the filter reads for outputs centred in [a, b], with a margin."""
    reach = support * max(scale, 1.0) + 2
    return max(0, math.floor(a - reach)), min(limit, math.ceil(b + reach))


def _vertical_first(w: int, h: int, tw: int, th: int) -> bool:
    if not _pillow_goes_vertical_first():
        return False
    return (h - th) > 0 and (h - th) > (w - tw) * 2


@functools.cache
def _pillow_goes_vertical_first() -> bool:
    """Whether this Pillow starts with the vertical pass when the height shrinks much more
    than the width (Pillow 13 does), told apart on a small image where the orders differ."""
    rng = np.random.default_rng(0)
    probe = Image.fromarray(rng.integers(0, 256, (96, 24), dtype=np.uint8))
    full = np.asarray(probe.resize((23, 17), Image.Resampling.LANCZOS))
    v_first = probe.resize((24, 17), Image.Resampling.LANCZOS).resize((23, 17), Image.Resampling.LANCZOS)
    h_first = probe.resize((23, 96), Image.Resampling.LANCZOS).resize((23, 17), Image.Resampling.LANCZOS)
    return bool(np.array_equal(full, np.asarray(v_first)) and not np.array_equal(full, np.asarray(h_first)))
