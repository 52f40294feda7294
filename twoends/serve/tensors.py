"""Tensor data of the Open Inference Protocol: JSON lists, binary (raw) bytes and BYTES elements.

Binary data follows the protocol's binary tensor data extension (the same
layout gRPC's ``raw_input_contents`` uses): little-endian, row-major, no
padding; a BYTES element is a 4-byte little-endian unsigned length and then
its bytes. Everything here checks sizes against the declared shape before it
copies or converts anything, and says what was expected when it refuses.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Sequence

import numpy as np

from .errors import HTTPError

__all__ = ["NUMPY_TYPES", "TENSOR_DATATYPES", "check_shape", "from_bytes_tensor", "numeric", "to_bytes_tensor"]

#: Open Inference Protocol datatype -> NumPy dtype (little-endian, as the binary extension sends them)
NUMPY_TYPES = {
    "BOOL": "|b1",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
#: ImageSpec dtype -> Open Inference Protocol datatype
TENSOR_DATATYPES = {"float32": "FP32", "float16": "FP16", "uint8": "UINT8"}
MAX_DIMS = 8


def check_shape(shape: Any, name: str) -> list[int]:
    """A shape of whole numbers >= 0, at most ``MAX_DIMS`` of them."""
    ok = (
        isinstance(shape, (list, tuple))
        and len(shape) <= MAX_DIMS
        and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)
    )
    if not ok:
        raise HTTPError(f"input {name!r}: shape must be a list of at most {MAX_DIMS} whole numbers >= 0, got {shape!r}")
    return [int(d) for d in shape]


def numeric(name: str, datatype: str, shape: list[int], data: Any = None, raw: Any = None) -> np.ndarray:
    """The array a numeric tensor holds, from JSON ``data`` (flat or nested) or ``raw`` bytes; sizes checked first."""
    count = math.prod(shape)
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise HTTPError(
                f"input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes of binary data "
                f"({count} elements x {dtype.itemsize} bytes), got {len(raw)}"
            )
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    else:
        if isinstance(data, np.ndarray):  # gRPC typed contents, already converted
            array = data.astype(dtype, copy=False)
        else:
            if not isinstance(data, list):
                raise HTTPError(f"input {name!r}: data must be a list of {count} numbers, got {type(data).__name__}")
            try:
                array = np.asarray(data, dtype=dtype)
            except (ValueError, TypeError, OverflowError):
                raise HTTPError(
                    f"input {name!r}: data must be {count} numbers (flat or nested as {shape}), got something else "
                    "(ragged lists, strings, objects or numbers out of range)"
                ) from None
        if array.size != count:
            raise HTTPError(f"input {name!r}: shape {shape} needs {count} numbers, data has {array.size}")
        array = array.reshape(shape)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise HTTPError(f"input {name!r}: data contains NaN or infinity; expected finite numbers")
    return array


def from_bytes_tensor(name: str, count: int, raw: Any) -> list[bytes]:
    """The ``count`` elements of a binary BYTES tensor (each a 4-byte little-endian length, then the bytes)."""
    view, offset, out = memoryview(raw), 0, []
    while offset < len(view):
        if len(out) == count:
            raise HTTPError(
                f"input {name!r}: {len(view) - offset} bytes are left after the {count} elements the shape declares"
            )
        if offset + 4 > len(view):
            raise HTTPError(
                f"input {name!r}: element {len(out)} is cut short: a BYTES element starts with a 4-byte length"
            )
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > len(view):
            raise HTTPError(
                f"input {name!r}: element {len(out)} declares {length} bytes but only {len(view) - offset} remain; "
                "each BYTES element is a 4-byte little-endian length followed by that many bytes"
            )
        out.append(bytes(view[offset : offset + length]))
        offset += length
    if len(out) != count:
        raise HTTPError(f"input {name!r}: the shape declares {count} elements, the binary data holds {len(out)}")
    return out


def to_bytes_tensor(elements: Sequence[bytes]) -> bytes:
    """The binary form of BYTES elements."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)
