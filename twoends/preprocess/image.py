"""Decode anything a user calls "an image" into one RGB PIL image, the same way every time.

Rules (each one is a silent mistake when left to chance):

* EXIF orientation is applied, so a phone photo is upright as a viewer shows it.
* Every Pillow mode becomes 8-bit RGB by a defined rule (see ``to_rgb``); alpha is
  composited over white.
* Animated images (GIF, WebP, APNG) give their first frame.
* The pixel count is checked from the header before any pixel is decoded.
* Untrusted files stay data: formats whose decoders run external programs (EPS
  runs Ghostscript) are refused, and every failure is a ``DecodeError`` naming
  the input and the reason - never a bare Pillow exception.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DecodeError, ImageTooLargeError, InputError
from .files import open_regular_file

#: Pillow's own warning threshold (1024 * 1024 * 1024 // 4 // 3 pixels, about 89.5 M).
DEFAULT_MAX_PIXELS = 89_478_485

# EPS is decoded by running Ghostscript on the file: never on untrusted input.
_REFUSED_FORMATS = frozenset({"EPS"})
_WHITE = (255, 255, 255, 255)
# Pillow's limit is a module global; we only lift it (briefly, under this lock) when
# the caller's own max_pixels allows an image that Pillow alone would refuse.
_PILLOW_LIMIT_LOCK = threading.Lock()
#: ``image.info`` key of a draft-decoded image: its full size and the box of the full
#: image in its own pixels, so that ``ImagePlan`` resizes exactly as from the full image.
DRAFT_INFO_KEY = "twoends.draft"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError)


def decode_image(
    payload: Any,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    draft_size: int | tuple[int, int] | None = None,
    check_size: Any = None,
) -> Image.Image:
    """Decode ``payload`` into an RGB PIL image, fully loaded and detached from any file.

    payload: a path (``str`` / ``os.PathLike``), ``bytes`` / ``bytearray`` / ``memoryview``,
    a binary file-like object (left open: the caller owns it), a PIL image, or a NumPy
    ``uint8`` array shaped (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA.

    max_pixels: refuse images with more pixels (``ImageTooLargeError``); None = no limit.

    draft_size: (H, W) (or one int for both) that the image will be resized to at
    least. JPEGs at least twice that size in both sides are decoded at a reduced
    DCT scale (1/2, 1/4 or 1/8), but never below twice that size, so the final
    antialiased resize barely changes while decoding gets several times faster.

    check_size: a function ``(width, height)`` called with the size from the header,
    before any pixel is decoded, that raises to refuse the image (a plan refuses an
    image whose resize would allocate more than its limit).

    Alpha: transparent pixels have no defined colour (encoders store black, white or
    leftovers), so dropping the alpha channel would feed the model arbitrary colours.
    Images with alpha are composited over white, as viewers and web pages show them.
    """
    if isinstance(payload, InputError):
        raise payload  # an input already known to be bad (see sources.Item)
    limits = (max_pixels, check_size)
    if isinstance(payload, Image.Image):
        # A PIL image keeps the frame the caller chose: only files start at frame 0.
        _check_size(check_size, "<PIL image>", *payload.size)
        return _finish(_loaded(payload, "<PIL image>", max_pixels, first_frame=False), "<PIL image>")
    if isinstance(payload, np.ndarray):
        if payload.ndim >= 2:
            _check_size(check_size, "<array>", payload.shape[1], payload.shape[0])
        return _from_array(payload, max_pixels)
    if isinstance(payload, (str, os.PathLike)):
        return _from_path(os.fspath(payload), limits, draft_size)
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
        if not data:
            raise DecodeError("cannot decode <bytes>: the buffer is empty (0 bytes); expected image file bytes")
        return _from_file(io.BytesIO(data), "<bytes>", limits, draft_size)
    if hasattr(payload, "read"):
        return _from_stream(payload, limits, draft_size)
    raise InputError(
        f"cannot decode {type(payload).__name__}: expected a path, bytes, a binary file object, "
        "a PIL image or a uint8 NumPy array (H, W[, C])"
    )


def _check_size(check_size: Any, name: str, width: int, height: int) -> None:
    if check_size is not None:
        try:
            check_size(int(width), int(height))
        except ImageTooLargeError as e:
            raise ImageTooLargeError(f"{name}: {e}") from None


def _from_stream(stream: Any, limits: tuple, draft_size: Any) -> Image.Image:
    name = str(getattr(stream, "name", "<file object>"))
    text = InputError(f"cannot decode {name}: a binary file object was expected, got text; open it with 'rb'")
    if isinstance(stream, io.TextIOBase):
        raise text
    if hasattr(stream, "seekable") and stream.seekable():
        return _from_file(stream, name, limits, draft_size, owns_fp=False)
    data = stream.read()  # Pillow needs to seek: a pipe or socket is read into memory once
    if not isinstance(data, (bytes, bytearray)):
        raise text
    return _from_file(io.BytesIO(data), name, limits, draft_size)


def _from_path(path: str, limits: tuple, draft_size: Any) -> Image.Image:
    with open_regular_file(path) as fp:  # never blocks: a FIFO or a device is refused, not read
        if os.fstat(fp.fileno()).st_size == 0:
            raise DecodeError(f"cannot decode {path}: the file is empty (0 bytes); expected an image file")
        return _from_file(fp, path, limits, draft_size)


def _from_file(fp: Any, name: str, limits: tuple, draft_size: Any, owns_fp: bool = True) -> Image.Image:
    max_pixels, check_size = limits
    image = _open(fp, name, max_pixels)
    try:
        _check_size(check_size, name, *image.size)
        draft = _draft(image, draft_size) if draft_size is not None else None
        rgb = _finish(_loaded(image, name, max_pixels), name, copy=False)
        if draft is not None:
            rgb.info[DRAFT_INFO_KEY] = {"size": rgb.size, **draft}
        if rgb is image:  # decoded pixels kept as they are: let go of the file, not of the pixels
            image.fp = None
        return rgb
    finally:
        if owns_fp and image.fp is not None:  # Pillow's close() closes fp too: never a file the caller owns
            image.close()


def _open(fp: Any, name: str, max_pixels: int | None) -> Image.Image:
    """Read the header only, and check the pixel count before any pixel is decoded."""
    start = fp.tell() if hasattr(fp, "tell") else 0
    Image.init()
    formats = [f for f in Image.ID if f not in _REFUSED_FORMATS]
    try:
        try:
            with warnings.catch_warnings():  # our own limit is checked just below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(fp, formats=formats)
        except Image.DecompressionBombError:
            # Over Pillow's own (global) limit: read the header again with it lifted, so
            # that our max_pixels decides, with the real dimensions in the message.
            fp.seek(start)
            with _PILLOW_LIMIT_LOCK:
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    image = Image.open(fp, formats=formats)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise DecodeError(
            f"cannot decode {name}: not a supported image format (expected JPEG, PNG, GIF, WebP, BMP, "
            "TIFF, ...; EPS/PostScript is refused because decoding it runs Ghostscript)"
        ) from None
    except InputError:
        raise
    except _DECODE_ERRORS as e:
        raise DecodeError(f"cannot decode {name}: the header is unreadable ({_reason(e)})") from None
    _check_pixels(image, name, max_pixels)
    return image


def _check_pixels(image: Image.Image, name: str, max_pixels: int | None) -> None:
    w, h = image.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(_too_large(name, (w, h), w * h, max_pixels))


def _too_large(name: str, size: tuple[int, int] | None, pixels: int, limit: int) -> str:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return (
        f"{name}: image is {dims}{_count(pixels)}, over the limit of {_count(limit)} "
        f"(a decompression-bomb guard); raise max_pixels={pixels} if you trust this file"
    )


def _count(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} M pixels" if pixels >= 1_000_000 else f"{pixels} pixels"


def _draft(image: Image.Image, draft_size: int | tuple[int, int]) -> dict[str, Any] | None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale, keeping at least 2x the target size.

    Returns the upright full size and the box of the full image in the reduced
    image's pixels (libjpeg rounds the reduced size up, so the last row and
    column cover less than a full block), or None when nothing was reduced.
    """
    if image.format != "JPEG":
        return None
    th, tw = (draft_size, draft_size) if isinstance(draft_size, int) else draft_size
    orientation = image.getexif().get(ImageOps.ExifTags.Base.Orientation, 1)
    if orientation in (5, 6, 7, 8):
        th, tw = tw, th  # the stored image is transposed relative to what the model sees
    full = image.size
    # Pillow picks the largest scale that keeps both stored sides >= the requested size.
    result = image.draft(image.mode, (2 * max(1, tw), 2 * max(1, th)))
    if result is None or image.size == full:
        return None
    box = _upright_box(result[1], image.size, orientation)
    full_upright = (full[1], full[0]) if orientation in (5, 6, 7, 8) else full
    return {"full_size": full_upright, "box": box}


def _upright_box(box: tuple[float, ...], size: tuple[int, int], orientation: Any) -> tuple[float, ...]:
    """Map a box in stored pixels to the pixels of the EXIF-transposed image."""
    w, h = size
    point = {
        2: lambda x, y: (w - x, y),
        3: lambda x, y: (w - x, h - y),
        4: lambda x, y: (x, h - y),
        5: lambda x, y: (y, x),
        6: lambda x, y: (h - y, x),
        7: lambda x, y: (h - y, w - x),
        8: lambda x, y: (y, w - x),
    }.get(orientation, lambda x, y: (x, y))
    (ax, ay), (bx, by) = point(box[0], box[1]), point(box[2], box[3])
    return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))


def _loaded(image: Image.Image, name: str, max_pixels: int | None, first_frame: bool = True) -> Image.Image:
    """Decode the pixels (first frame for animations), turning every failure into DecodeError."""
    _check_pixels(image, name, max_pixels)
    try:
        if first_frame and image.tell() != 0:
            image.seek(0)
        image.load()
    except Image.DecompressionBombError as e:  # a GIF frame bigger than its header said
        raise ImageTooLargeError(f"{name}: {e}; raise max_pixels if you trust this file") from None
    except InputError:
        raise
    except _DECODE_ERRORS as e:
        hint = " (the file is probably cut short)" if "truncated" in str(e) else ""
        raise DecodeError(f"cannot decode {name}: {_reason(e)}{hint}") from None
    return image


def _finish(image: Image.Image, name: str, copy: bool = True) -> Image.Image:
    """Apply EXIF orientation and convert to RGB. With ``copy`` (an image the caller owns) the
    result is always a new image; without, an upright RGB image is returned as it is (copying
    a decoded photo costs a third of decoding it)."""
    try:
        orientation = image.getexif().get(ImageOps.ExifTags.Base.Orientation, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            upright = ImageOps.exif_transpose(image)  # a new image, orientation tag removed
        else:
            upright = image.copy() if copy else image
    except _DECODE_ERRORS:
        # A broken EXIF block should not lose an otherwise good photo.
        upright = image.copy() if copy else image
    try:
        return to_rgb(upright)
    except (ValueError, OSError) as e:
        raise DecodeError(
            f"cannot decode {name}: Pillow mode {image.mode!r} has no RGB conversion ({_reason(e)})"
        ) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB by one defined rule.

    * ``RGB``: unchanged.  ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``: Pillow's conversion.
    * Alpha (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``) and palette / grey / RGB images with a
      ``transparency`` colour: composited over white (see ``decode_image`` for why).
    * ``I;16*`` (16-bit): divided by 256, i.e. scaled by the full 16-bit range, not clipped.
    * ``I`` (32-bit int, how Pillow opens many 16-bit files): taken as 16-bit, divided by
      256, values outside 0..65535 clipped.
    * ``F`` (float): taken as 0..255 as Pillow's own conversion does, rounded and clipped.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(image).astype(np.int64)
        return Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8)).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if "A" in mode or "a" in mode or "transparency" in image.info:
        if mode == "La":  # Pillow converts premultiplied grey only to LA
            image = image.convert("LA")
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return image.convert("RGB")


def _from_array(array: np.ndarray, max_pixels: int | None) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(
            f"a NumPy image must be uint8 (0..255 pixels), got {array.dtype} with shape {array.shape}; "
            "floating-point arrays are taken as ready model inputs, not images - "
            "pass them to the model as they are, or convert with (x * 255).round().astype('uint8')"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise InputError(
            f"a NumPy image must be shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}; "
            "for channels-first arrays use x.transpose(1, 2, 0)"
        )
    h, w = array.shape[:2]
    if max_pixels is not None and h * w > max_pixels:
        raise ImageTooLargeError(_too_large("<array>", (w, h), w * h, max_pixels))
    image = Image.fromarray(np.ascontiguousarray(array))  # uint8: L, RGB or RGBA
    return to_rgb(image)


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
