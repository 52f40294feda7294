"""Turn whatever a user passes into a lazy stream of ``Item``s: one input, one output.

What is an image and what is already a model input is decided by type, never by
guessing from values:

* **images** (decoded and preprocessed): a path, ``bytes`` / ``bytearray`` /
  ``memoryview``, a binary file object, a PIL image, a NumPy ``uint8`` array
  (H, W) / (H, W, C), or a ``uint8`` (N, H, W, C) array of N images;
* **ready model inputs** (``Item.ready``, passed through untouched): a NumPy
  floating-point array of 3 dims (one input, laid out as the model's spec) or
  4 dims (a batch: one item per row), and floating-point framework tensors
  (PyTorch, JAX, ...; recognised by duck typing, never imported). A 4-D tensor
  yields its rows as views: no copy, still on its device.
* **many**: a folder (recursive, image extensions only, hidden entries skipped,
  sorted by name within each folder), a glob pattern (``*``, ``?``, ``[``;
  ``**`` recurses), or any list / tuple / generator of the above.

The iterator never raises for a bad input: a missing file is an ``Item`` whose
decoding fails with "no such file", so the runner can turn it into an error row.
"""

from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image

from ..errors import DecodeError, InputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
_GLOB_MAGIC = frozenset("*?[")
_FRAMEWORKS = frozenset({"torch", "jax", "jaxlib", "tensorflow", "cupy"})
_BYTES = (bytes, bytearray, memoryview)


@dataclass(frozen=True)
class Item:
    """One input: ``id`` names it in outputs (the path for files, ``"<bytes #3>"`` for
    anonymous inputs, numbered by position in the stream); ``payload`` is what
    ``decode_image`` takes, or the model input itself when ``ready`` is True.
    A payload that is an ``InputError`` instance is an input known to be bad
    (e.g. an unreadable folder); decoding it raises that error."""

    id: str
    payload: Any
    ready: bool = False


def is_single(x: Any) -> bool:
    """True when ``x`` is one input (one output), False when it is a collection of inputs."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            return False
        return os.path.isfile(path) or not _is_glob(path)
    if isinstance(x, (*_BYTES, Image.Image)) or hasattr(x, "read"):
        return True
    if _is_array(x):
        return len(x.shape) != 4
    # Anything else that is not a collection is one (bad) input: one error row, not a list.
    return isinstance(x, dict) or not isinstance(x, Iterable)


def iter_items(x: Any) -> Iterator[Item]:
    """Lazily yield one ``Item`` per input in ``x`` (see the module docstring).

    Anonymous inputs are named by their position in the stream (``"<bytes #3>"`` is
    the fourth item yielded), so an output row points straight back to its input.
    """
    for n, (label, payload, ready) in enumerate(_entries(x)):
        yield Item(label if isinstance(label, str) else f"<{label[0]} #{n}>", payload, ready)


# An entry is (label, payload, ready): label is a path, or ("bytes",) for an anonymous input.
Entry = tuple[Any, Any, bool]


def _entries(x: Any) -> Iterator[Entry]:
    if is_single(x) or isinstance(x, (str, os.PathLike)) or _is_array(x):
        yield from _expand(x)
    elif isinstance(x, dict) or not isinstance(x, Iterable):
        yield ("input",), InputError(_unknown_type(x)), False
    else:
        for element in x:
            yield from _expand(element)


def _expand(x: Any) -> Iterator[Entry]:
    """Entries for one element of the user's input (a path may stand for many files)."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        path = os.fsdecode(path) if isinstance(path, bytes) else path
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.isfile(path) or not _is_glob(path):
            yield path, path, False  # a missing file is one input that fails to decode
        else:
            yield from ((p, p, False) for p in _glob(path))
    elif _is_array(x):
        rows = (x[r] for r in range(x.shape[0])) if len(x.shape) == 4 else (x,)  # views, no copy
        yield from (_array_entry(row) for row in rows)
    elif isinstance(x, _BYTES):
        yield ("bytes",), x, False
    elif isinstance(x, Image.Image):
        yield ("image",), x, False
    elif hasattr(x, "read"):
        name = getattr(x, "name", None)
        yield (name if isinstance(name, str) else ("file",)), x, False
    else:
        yield ("input",), InputError(_unknown_type(x)), False


def _array_entry(x: Any) -> Entry:
    """An array is an image when uint8 (NumPy), a ready model input when floating point."""
    if _is_floating(x):
        return ("input",), x, True
    if isinstance(x, np.ndarray):
        return ("array",), x, False  # decode_image checks dtype and shape, and says the fix
    error = InputError(
        f"a {type(x).__module__.split('.')[0]} tensor of dtype {x.dtype} is not a model input: "
        "tensors are passed to the model as they are, so they must be floating point and already "
        "preprocessed; for an image, pass a uint8 NumPy (H, W, C) array or a file instead"
    )
    return ("input",), error, False


def _walk(root: str, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> Iterator[Entry]:
    """Files with ``extensions`` (images by default) under ``root``, recursively, sorted by name within each folder.

    Only one folder's names are held at a time per level (sorting needs them);
    hidden entries are skipped; symlinked folders are followed once (no loops).
    Each entry is looked at on its own, so one bad entry (a symlink loop, a broken
    link) never hides the good files next to it.
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: str) -> Iterator[Entry]:
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if not e.name.startswith("."))
        except OSError as e:  # one bad folder is one error row, not a crash
            yield folder, DecodeError(f"cannot read folder {folder}: {e.strerror or e}; check its permissions"), False
            return
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isdir(path):  # False for a broken link or a symlink loop (isdir never raises)
                yield from visit(path)
            elif os.path.splitext(name)[1].lower() in extensions:
                # a broken link, a symlink loop or a FIFO named x.jpg is still one entry: one
                # row that says what it is (decode_image refuses it without blocking on it)
                yield path, path, False

    return visit(root)


def _glob(pattern: str, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> Iterator[str]:
    """Files with ``extensions`` matching ``pattern``, sorted within each folder (glob's order is the disk's)."""
    matches = (p for p in glob.iglob(pattern, recursive=True) if os.path.splitext(p)[1].lower() in extensions)
    for _, group in itertools.groupby(matches, key=os.path.dirname):
        yield from sorted(p for p in group if os.path.isfile(p))


def _is_glob(path: str) -> bool:
    return any(c in _GLOB_MAGIC for c in path)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _is_framework_array(x)


def _is_framework_array(x: Any) -> bool:
    return type(x).__module__.split(".")[0] in _FRAMEWORKS and hasattr(x, "shape") and hasattr(x, "dtype")


def _is_floating(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.floating)
    return "float" in str(x.dtype)  # torch.float32, float32, <dtype: 'bfloat16'>


def _unknown_type(x: Any) -> str:
    return (
        f"cannot use a {type(x).__name__} as an input: expected a path, folder, glob, bytes, a file object, "
        "a PIL image, a NumPy array, a tensor, or a list of these"
    )
