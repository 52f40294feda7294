"""Request payloads -> model inputs: base64 images and Open Inference Protocol tensors.

Everything here is checked before it reaches the model, and every refusal says
what was expected. User strings never become file paths: images arrive as
bytes and are decoded from memory.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from .errors import HTTPError

__all__ = ["TENSOR_DATATYPES", "b64_bytes", "bytes_elements", "tensor_rows"]

#: ImageSpec dtype -> Open Inference Protocol datatype
TENSOR_DATATYPES = {"float32": "FP32", "float16": "FP16", "uint8": "UINT8"}

_EXAMPLE = "base64.b64encode(open('cat.jpg', 'rb').read()).decode()"


def b64_bytes(text: Any, what: str = "image") -> bytes:
    """The bytes of a base64 string (a ``data:...;base64,`` URL is accepted)."""
    if not isinstance(text, str):
        raise HTTPError(f"{what} must be a base64 string, got {type(text).__name__}; e.g. {_EXAMPLE}", kind="BadBase64")
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise HTTPError(
                f"{what} is a data: URL without ';base64,'; expected data:image/...;base64,<data>", kind="BadBase64"
            )
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPError(
            f"{what} is not valid base64 ({exc}); expected the image file's bytes base64-encoded, e.g. {_EXAMPLE}",
            kind="BadBase64",
        ) from None
    if not data:
        raise HTTPError(f"{what} is empty; expected the bytes of an image file, base64-encoded", kind="BadBase64")
    return data


def bytes_elements(data: Any, shape: list[int], name: str, decode: bool = True) -> list:
    """The elements of a BYTES tensor of shape [B] or [B, 1]: base64 strings -> bytes (or the strings)."""
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 1:
        raise HTTPError(f"input {name!r} (BYTES) must have shape [B] or [B, 1] with B >= 1, got {shape}")
    flat = data
    if isinstance(flat, list) and flat and all(isinstance(x, list) for x in flat):
        flat = [y for x in flat for y in x]
    if not isinstance(flat, list) or len(flat) != shape[0]:
        got = f"{len(flat)} elements" if isinstance(flat, list) else type(flat).__name__
        raise HTTPError(f"input {name!r}: shape {shape} needs {shape[0]} base64 strings in data, got {got}")
    if not decode:
        bad = next((i for i, x in enumerate(flat) if not isinstance(x, str)), None)
        if bad is not None:
            raise HTTPError(f"input {name!r}: element {bad} must be a string, got {type(flat[bad]).__name__}")
        return flat
    return [b64_bytes(x, what=f"{name}[{i}]") for i, x in enumerate(flat)]


def tensor_rows(data: Any, shape: list[int], datatype: str, name: str, expected: tuple[int, ...], dtype: str) -> np.ndarray:
    """A checked [B, *expected] array from an OIP tensor's data (flat or nested, row-major)."""
    want_type = TENSOR_DATATYPES.get(dtype, dtype.upper())
    want_shape = "[B, " + ", ".join(map(str, expected)) + "]"
    if datatype != want_type:
        raise HTTPError(f"input {name!r} must be {want_type} (the model's input dtype), got {datatype}")
    if len(shape) != 1 + len(expected) or tuple(shape[1:]) != tuple(expected) or shape[0] < 1:
        raise HTTPError(
            f"input {name!r} must have shape {want_shape} (the model's preprocessed input, B >= 1), got {shape}; "
            "send a preprocessed batch, or send image files as the BYTES input 'image'"
        )
    count = math.prod(shape)
    try:
        array = np.asarray(data, dtype=np.dtype(dtype))
    except (ValueError, TypeError, OverflowError):
        raise HTTPError(
            f"input {name!r}: data must be {count} numbers (flat or nested as {shape}), got something else "
            "(ragged lists, strings or objects)"
        ) from None
    if array.size != count:
        raise HTTPError(f"input {name!r}: shape {shape} needs {count} numbers, data has {array.size}")
    array = array.reshape(shape)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise HTTPError(f"input {name!r}: data contains NaN or infinity; expected finite numbers")
    return array
