"""Request payloads -> model inputs: base64 images (tensors are in ``tensors.py``).

Everything here is checked before it reaches the model, and every refusal says
what was expected. User strings never become file paths: images arrive as
bytes and are decoded from memory.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .errors import HTTPError

__all__ = ["b64_bytes"]

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
