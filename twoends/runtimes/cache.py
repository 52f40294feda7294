"""Where exported graphs are kept, and under which key.

One folder per export: ``<cache>/exports/<model>-<key>/`` holding ``model.onnx`` and
its sidecar ``model.onnx.json`` (the two ends, the export check and the measured
speeds), or ``refused.json`` when the export or its check failed (so a model that
cannot be exported is not tried again on every run).

The key is a hash of: the model's name, a hash of its weights, the twoends version,
the opset, and the input the graph was traced for. A named model's weights hash is
read from its weights file (``twoends.models.fingerprint``), so the cache can be
consulted before PyTorch is imported; any other model's is the hash of its state dict.

The folder is ``TWOENDS_CACHE_DIR`` if set, else the user's cache directory:
``$XDG_CACHE_HOME/twoends`` (default ``~/.cache/twoends``), ``~/Library/Caches/twoends``
on macOS, ``%LOCALAPPDATA%\\twoends\\Cache`` on Windows. Plain files and the standard
library only: nothing here imports a framework.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

__all__ = ["CACHE_ENV", "OPSET", "cache_dir", "cache_key", "Entry", "find", "store", "file_sha256"]

CACHE_ENV = "TWOENDS_CACHE_DIR"
OPSET = 20  # the opset the dynamo exporter writes by default in torch 2.14; part of the key
FORMAT = 3  # of the folder and its check record: part of the key, so an older layout is exported again
GRAPH, SIDECAR, REFUSED = "model.onnx", "model.onnx.json", "refused.json"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "twoends"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "twoends" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twoends"


DIGESTS = "digests.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, remembered in the cache folder by its path, device, inode, size and
    modification time (nanoseconds), as git's index does: hashing a named model's 18 MB
    weights costs 30 ms of every start, reading this back well under one."""
    st = os.stat(path)
    real = os.path.realpath(path)
    stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    known = _read_digests()
    entry = known.get(real)
    if isinstance(entry, dict) and entry.get("stat") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    known[real] = {"stat": stamp, "sha256": digest}
    _write_digests(known)
    return digest


def _read_digests() -> dict[str, Any]:
    try:
        found = json.loads((cache_dir() / DIGESTS).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write_digests(known: dict[str, Any]) -> None:
    """Atomically, and never fatally: a read-only cache only means hashing again next time."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".digests-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(list(known.items())[-256:]), f)  # the newest 256 files: it cannot grow without end
        os.replace(tmp, folder / DIGESTS)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def cache_key(model: str, weights: str, input_key: Any = None) -> dict[str, Any]:
    """What an export depends on (stored in its sidecar as ``cache_key``)."""
    from .._version import __version__

    return {
        "model": model,
        "weights": weights,
        "twoends_version": __version__,
        "opset": OPSET,
        "input": input_key,
        "format": FORMAT,
    }


def _folder(key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(key["model"]))[-60:].strip("._") or "model"
    return cache_dir() / "exports" / f"{slug}-{digest}"


class Entry:
    """One export in the cache: its graph and sidecar, or the reason it was refused."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.graph = folder / GRAPH
        refused = folder / REFUSED
        self.refused: str | None = json.loads(refused.read_text())["reason"] if refused.is_file() else None
        self.sidecar: dict = {} if self.refused else json.loads((folder / SIDECAR).read_text())

    @property
    def check(self) -> dict:
        return self.sidecar.get("check", {})


def find(key: Mapping[str, Any]) -> Entry | None:
    """The cached export for ``key``; None if there is none (or it is unreadable: export again)."""
    folder = _folder(key)
    try:
        entry = Entry(folder)
    except (OSError, ValueError, KeyError):
        return None
    return entry if entry.refused or entry.graph.is_file() else None


def store(key: Mapping[str, Any], write: Any) -> Entry:
    """Fill a fresh folder with ``write(folder)`` and move it into place in one step.

    Two processes exporting the same model at once both succeed: the second one's
    rename finds the folder there and its own copy is dropped.
    """
    final = _folder(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=final.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Entry(final)


def write_refusal(folder: Path, reason: str) -> None:
    (folder / REFUSED).write_text(json.dumps({"reason": reason}) + "\n", encoding="utf-8")
