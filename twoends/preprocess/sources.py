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
    if isinstance(x, np.ndarray) or _is_framework_array(x):
        return len(x.shape) != 4
    return False


def iter_items(x: Any) -> Iterator[Item]:
    """Lazily yield one ``Item`` per input in ``x`` (see the module docstring)."""
    counter = itertools.count()
    if is_single(x) or isinstance(x, (str, os.PathLike)):
        yield from _expand(x, counter)
        return
    if isinstance(x, np.ndarray) or _is_framework_array(x):
        yield from _rows(x, counter)
        return
    if isinstance(x, dict) or not isinstance(x, Iterable):
        yield Item(f"<input #{next(counter)}>", InputError(_unknown_type(x)))
        return
    for element in x:
        yield from _expand(element, counter)


def _expand(x: Any, counter: Iterator[int]) -> Iterator[Item]:
    """Items for one element of the user's input (a path may stand for many files)."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        path = os.fsdecode(path) if isinstance(path, bytes) else path
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.isfile(path) or not _is_glob(path):
            yield Item(path, path)  # a missing file is one input that fails to decode
        else:
            yield from (Item(p, p) for p in _glob(path))
        return
    if isinstance(x, (np.ndarray,)) or _is_framework_array(x):
        if len(x.shape) == 4:
            yield from _rows(x, counter)
        else:
            yield _array_item(x, next(counter))
        return
    i = next(counter)
    if isinstance(x, _BYTES):
        yield Item(f"<bytes #{i}>", x)
    elif isinstance(x, Image.Image):
        yield Item(f"<image #{i}>", x)
    elif hasattr(x, "read"):
        name = getattr(x, "name", None)
        yield Item(name if isinstance(name, str) else f"<file #{i}>", x)
    else:
        yield Item(f"<input #{i}>", InputError(_unknown_type(x)))


def _array_item(x: Any, i: int) -> Item:
    """An array is an image when uint8 (NumPy), a ready model input when floating point."""
    if _is_floating(x):
        return Item(f"<input #{i}>", x, ready=True)
    if isinstance(x, np.ndarray):
        return Item(f"<array #{i}>", x)  # decode_image checks dtype and shape, with the fix
    return Item(
        f"<input #{i}>",
        InputError(
            f"a {type(x).__module__.split('.')[0]} tensor of dtype {x.dtype} is not a model input: "
            "tensors are passed to the model as they are, so they must be floating point and already "
            "preprocessed; for an image, pass a uint8 NumPy (H, W, C) array or a file instead"
        ),
    )


def _rows(x: Any, counter: Iterator[int]) -> Iterator[Item]:
    """A 4-D array is a batch: one item per row (views, no copy)."""
    if len(x.shape) != 4:
        yield _array_item(x, next(counter))
        return
    for r in range(x.shape[0]):
        yield _array_item(x[r], next(counter))


def _walk(root: str) -> Iterator[Item]:
    """Image files under ``root``, recursively, sorted by name within each folder.

    Only one folder's names are held at a time per level (sorting needs them);
    hidden entries are skipped; symlinked folders are followed once (no loops).
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: str) -> Iterator[Item]:
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted((e.name, e.is_dir()) for e in it if not e.name.startswith("."))
        except OSError as e:  # one bad folder is one error row, not a crash
            yield Item(folder, DecodeError(f"cannot read folder {folder}: {e.strerror or e}; check its permissions"))
            return
        for name, is_dir in entries:
            path = os.path.join(folder, name)
            if is_dir:
                yield from visit(path)
            elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                yield Item(path, path)

    return visit(root)


def _glob(pattern: str) -> Iterator[str]:
    """Image files matching ``pattern``, sorted within each folder (glob's order is the disk's)."""
    matches = (p for p in glob.iglob(pattern, recursive=True) if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS)
    for _, group in itertools.groupby(matches, key=os.path.dirname):
        yield from sorted(p for p in group if os.path.isfile(p))


def _is_glob(path: str) -> bool:
    return any(c in _GLOB_MAGIC for c in path)


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
