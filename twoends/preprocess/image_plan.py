"""ImagePlan: an ImageSpec applied fast, with Pillow and NumPy only; ImageInput: image decoding.

The reference behaviour is torchvision's ``ImageClassification`` preset on a
PIL image: ``Resize(resize_size)`` (Pillow, antialiased) -> ``CenterCrop`` ->
``/255`` -> ``Normalize(mean, std)``.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
from PIL import Image

from ..errors import ConfigError, ImageTooLargeError, InputError
from .crop_resize import resize_crop
from .image import DRAFT_INFO_KEY, decode_image, to_rgb
from .protocol import InputPlan, Limits, stack_inputs
from .sources import Item, is_single, iter_items
from .spec import INTERPOLATIONS, ImageSpec

__all__ = ["ImageInput", "ImagePlan"]


class ImageInput(InputPlan):
    """The image half of a plan: what an input is (paths, folders, bytes, arrays...) and decoding it.

    Subclasses say what happens to a decoded RGB image (``apply``); ``check_size``
    may refuse an image from its header (before any pixel is decoded).
    """

    kind = "image"

    def __init__(self, limits: Limits | None = None) -> None:
        object.__setattr__(self, "limits", limits or Limits())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; build a new one from a new spec")

    def is_single(self, x: Any) -> bool:
        return is_single(x)

    def items(self, x: Any) -> Iterator[Item]:
        return iter_items(x)

    def decode(self, payload: Any) -> Image.Image:
        return decode_image(
            payload, max_pixels=self.limits.max_pixels, draft_size=self.draft_size, check_size=self.check_size
        )

    def check_size(self, width: int, height: int) -> None:
        """Called with the image's size from its header; raise to refuse it before decoding."""


class ImagePlan(ImageInput):
    """An ImageSpec turned into precomputed arrays; ``apply`` (or call) it on an RGB PIL image.

    Normalisation is one lookup per channel: a uint8 pixel has 256 values, so
    ``(p * scale - mean) / std`` is precomputed per channel (in float32, the
    same arithmetic torchvision does) and applied with ``np.take`` into the
    output buffer - one pass, no float64 temporaries, exact.
    """

    def __init__(self, spec: ImageSpec, limits: Limits | None = None) -> None:
        if not isinstance(spec, ImageSpec):
            raise ConfigError(f"ImagePlan needs an ImageSpec, got {type(spec).__name__}")
        super().__init__(limits)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "_resample", INTERPOLATIONS[spec.interpolation])
        # model channel c reads pixel channel _perm[c]
        object.__setattr__(self, "_perm", (0, 1, 2) if spec.channel_order == "RGB" else (2, 1, 0))
        object.__setattr__(self, "_dtype", np.dtype(spec.dtype))
        object.__setattr__(self, "_lut", None if spec.dtype == "uint8" else _lookup_table(spec))

    def __repr__(self) -> str:
        return f"ImagePlan({self.spec.describe()})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable for worker processes: rebuilt from the spec
        return ImagePlan, (self.spec, self.limits)

    def check_size(self, width: int, height: int) -> None:
        """Refuse an image whose resize would allocate more than the pixel limit.

        Checked from the header, before decoding: a 101-byte 20000x1 PNG is within
        any pixel limit, but resizing its shorter side to 256 makes 256 x 5.1M pixels.
        """
        limit = self.limits.max_pixels
        th, tw = self.spec.resize_target(height, width)
        if limit is not None and th * tw > limit:
            raise ImageTooLargeError(
                f"image of {width}x{height} pixels: resizing it as this model does ({self.spec.resize_mode} side "
                f"to {self.spec.effective_resize_size}) would make a {tw}x{th} image ({th * tw:,} pixels), over the "
                f"limit of {limit:,}; an aspect ratio like this is not a photo - crop it first, or raise max_pixels"
            )

    def warmup_input(self) -> np.ndarray:
        return np.zeros(self.output_shape, dtype=self._dtype)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        h, w = self.spec.input_size
        return (3, h, w) if self.spec.layout == "NCHW" else (h, w, 3)

    @property
    def draft_size(self) -> tuple[int, int]:
        """A lower bound (H, W) of the resize target, for JPEG draft decoding.

        Exact for "shorter" (both sides end at least ``resize_size``) and
        "exact"; conservative for "longer".
        """
        if self.spec.resize_mode == "exact":
            return self.spec.resize_target(1, 1)
        rs = self.spec.effective_resize_size
        return rs, rs

    def geometry(self, image: Image.Image) -> Image.Image:
        """Resize and crop (padding with black where the crop is bigger), as torchvision."""
        spec = self.spec
        (full_w, full_h), box = image.size, None
        draft = image.info.get(DRAFT_INFO_KEY)
        if draft and draft["size"] == image.size:
            # decoded at reduced scale: size as the full image would, read the whole of it
            (full_w, full_h), box = draft["full_size"], draft["box"]
        th, tw = spec.resize_target(full_h, full_w)
        identity = box is None and image.size == (tw, th)  # torchvision skips an identity resize
        if spec.crop == "center" and not identity:
            ch, cw = spec.input_size
            if ch <= th and cw <= tw:  # resample only the pixels the crop keeps (crop_resize.py)
                top, left = _crop_offsets(th, tw, ch, cw)
                full_box = box if box is not None else (0.0, 0.0, float(image.width), float(image.height))
                return resize_crop(image, (tw, th), self._resample, full_box, (left, top, left + cw, top + ch))
        if not identity:
            image = image.resize((tw, th), self._resample, box=box)
        if spec.crop == "center":
            image = _center_crop(image, *spec.input_size)
        return image

    def apply(self, image: Image.Image) -> np.ndarray:
        """One model input from an RGB PIL image: (C, H, W) or (H, W, C) in the spec dtype."""
        if not isinstance(image, Image.Image):
            raise InputError(
                f"ImagePlan expects a PIL image, got {type(image).__name__}; "
                "decode it first with twoends.preprocess.decode_image"
            )
        image = to_rgb(image)  # the one mode/alpha rule lives in image.py (no-op for plain RGB)
        pixels = np.asarray(self.geometry(image))  # (H, W, 3) uint8
        return self.normalize(pixels)

    __call__ = apply

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels -> one model input laid out as the spec says."""
        h, w = pixels.shape[:2]
        nchw = self.spec.layout == "NCHW"
        out = np.empty((3, h, w) if nchw else (h, w, 3), dtype=self._dtype)
        for c, src in enumerate(self._perm):
            dst = out[c] if nchw else out[..., c]
            if self._lut is None:
                dst[...] = pixels[..., src]
            else:
                np.take(self._lut[c], pixels[..., src], out=dst)
        return out

    def check_ready(self, x: Any) -> Any:
        """Check that an already-preprocessed input (NumPy or a framework tensor) has this
        plan's shape, so a wrong layout fails with the fix instead of reaching the model."""
        shape = tuple(int(d) for d in getattr(x, "shape", ()))
        if shape != self.output_shape:
            other = "NHWC" if self.spec.layout == "NCHW" else "NCHW"
            raise InputError(
                f"a ready model input must be shaped {self.output_shape} ({self.spec.layout}, "
                f"input_size {self.spec.input_size}), got {shape}; if it is {other}, transpose it, "
                "or pass the image itself and let the model's preprocessing run"
            )
        return x

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Stack model inputs into one contiguous (N, ...) array of the spec's dtype."""
        return stack_inputs(inputs, self._dtype)


def _lookup_table(spec: ImageSpec) -> np.ndarray:
    """(3, 256) table of the normalised value of each pixel value, per model channel.

    Computed in float64 and rounded once, so each entry is within half an ulp
    of ``(p * scale - mean) / std`` (torchvision's float32 steps differ by ~1 ulp).
    """
    p = np.arange(256, dtype=np.float64) * spec.scale
    mean = np.asarray(spec.mean, dtype=np.float64)[:, None]
    std = np.asarray(spec.std, dtype=np.float64)[:, None]
    return ((p[None, :] - mean) / std).astype(spec.dtype)


def _center_crop(image: Image.Image, ch: int, cw: int) -> Image.Image:
    """torchvision's center_crop: pad with 0 if needed, then round((size - crop) / 2)."""
    w, h = image.size
    if cw > w or ch > h:
        left, top = max(cw - w, 0) // 2, max(ch - h, 0) // 2
        canvas = Image.new(image.mode, (max(w, cw), max(h, ch)), 0)
        canvas.paste(image, (left, top))
        image, (w, h) = canvas, canvas.size
        if (w, h) == (cw, ch):
            return image
    top, left = _crop_offsets(h, w, ch, cw)
    return image.crop((left, top, left + cw, top + ch))


def _crop_offsets(h: int, w: int, ch: int, cw: int) -> tuple[int, int]:
    """torchvision's center_crop offsets: round((size - crop) / 2)."""
    return int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
