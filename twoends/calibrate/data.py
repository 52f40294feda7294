"""Labelled data for ``evaluate`` and ``calibrate``: which image is which class.

Three layouts, told apart by what the path is:

* a **folder per class** (torchvision's ImageFolder): ``root/<class name>/**/*.jpg``;
  the folder name is the class name, image files anywhere below it;
* a **CSV** file with a header naming a ``path`` and a ``label`` column (others ignored);
* a **JSONL** file (``.jsonl`` / ``.ndjson``): one ``{"path": ..., "label": ...}`` per line.

Relative paths in a CSV/JSONL are resolved against that file's folder, so a
data set can be moved as a whole.

Class names are matched to the model's labels **by name**, never by position
(alphabetical folder order is torchvision's convention, not the model's). A
CSV/JSONL label may also be the class index: a JSON integer, or a string of
digits that is not itself one of the model's names (names win). Names the
model does not know are one error that lists all of them, with close matches.

Multi-label data (``multilabel=True``): a JSONL label is a list of names or
indices, a CSV label separates them with ``;`` (empty: no positive class).
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, LabelError
from ..labels import LabelMap
from ..preprocess import iter_items
from ..preprocess.sources import IMAGE_EXTENSIONS

__all__ = ["LabelledData", "load_labelled"]

TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class LabelledData:
    """Image paths and their class indices in the model's label order.

    ``targets`` holds one int per image, or (``multilabel``) one tuple of ints.
    """

    source: str
    layout: str  # "folder", "csv" or "jsonl"
    paths: tuple[str, ...]
    targets: tuple
    n_classes: int
    multilabel: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def target_array(self) -> np.ndarray:
        """int64 [N] class indices, or bool [N, C] multi-hot rows when multi-label."""
        if not self.multilabel:
            return np.asarray(self.targets, dtype=np.int64)
        out = np.zeros((len(self), self.n_classes), dtype=bool)
        for i, t in enumerate(self.targets):
            out[i, list(t)] = True
        return out

    def subset(self, indices) -> "LabelledData":
        """The images at ``indices`` (e.g. one side of a split), in that order."""
        idx = [int(i) for i in indices]
        return LabelledData(
            self.source,
            self.layout,
            tuple(self.paths[i] for i in idx),
            tuple(self.targets[i] for i in idx),
            self.n_classes,
            self.multilabel,
        )

    def class_counts(self) -> Counter:
        """How many images each class index has."""
        if self.multilabel:
            return Counter(c for t in self.targets for c in t)
        return Counter(self.targets)

    def describe(self) -> str:
        what = {"folder": "a folder per class", "csv": "CSV", "jsonl": "JSONL"}[self.layout]
        n = len(self)
        return f"{n} image{'s' * (n != 1)} in {len(self.class_counts())} classes ({what}: {self.source})"


def load_labelled(source: str | os.PathLike, labels: Any, *, multilabel: bool = False) -> LabelledData:
    """Read a labelled data set and map its class names to indices of ``labels`` (the model's).

    ``labels``: a LabelMap or anything ``LabelMap.from_any`` takes. Raises
    ConfigError for a missing or empty source, LabelError for class names the
    model does not know.
    """
    label_map = LabelMap.from_any(labels)
    path = Path(source)
    if path.is_dir():
        if multilabel:
            raise ConfigError(
                f"a folder per class gives one label per image, but multi-label data was asked for ({path}); "
                "use a JSONL file with a list of labels per image, or a CSV with labels separated by ';'"
            )
        names, paths = _read_folder(path)
        layout = "folder"
    elif path.is_file():
        layout = TABLE_SUFFIXES.get(path.suffix.lower())
        if layout is None:
            raise ConfigError(
                f"expected labelled data as a folder per class, a .csv or a .jsonl file, got {str(path)!r}; "
                "for a single image use `twoends predict`"
            )
        names, paths = (_read_csv if layout == "csv" else _read_jsonl)(path, multilabel)
        if not paths:
            raise ConfigError(f"{path} lists no images: expected one row per image with a path and a label")
    else:
        raise ConfigError(f"labelled data not found: {str(path)!r} (expected a folder per class, a .csv or a .jsonl)")
    targets = _match(names, label_map, multilabel, layout, path)
    return LabelledData(str(path), layout, tuple(paths), tuple(targets), len(label_map), multilabel)


# --- layouts: each returns (raw labels, paths) in the same order -------------------


def _read_folder(root: Path) -> tuple[list, list[str]]:
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    loose = [e.name for e in os.scandir(root) if e.is_file() and _is_image(e.name)]
    if loose:
        raise ConfigError(
            f"{root} has {len(loose)} image(s) directly inside it (e.g. {loose[0]!r}); expected a folder per "
            f"class, root/<class name>/<image>: move them into a folder named after their class"
        )
    if not classes:
        raise ConfigError(
            f"{root} has no class folders: expected root/<class name>/<images>, the folder names being the "
            "model's class names (see `twoends models` / the labels file)"
        )
    names: list = []
    paths: list[str] = []
    empty = []
    for name in classes:
        found = [item.id for item in iter_items(str(root / name))]
        if not found:
            empty.append(name)
        names += [name] * len(found)
        paths += found
    if empty:
        raise ConfigError(
            f"class folder(s) with no images in {root}: {', '.join(repr(e) for e in empty)}; every class folder "
            "needs at least one image file (.jpg, .png, ...): add images or remove the folder"
        )
    return names, paths


def _read_csv(path: Path, multilabel: bool) -> tuple[list, list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in fields or "label" not in fields:
            raise ConfigError(
                f"{path}: expected a header row with 'path' and 'label' columns, got {reader.fieldnames}; "
                "add a first line such as: path,label"
            )
        reader.fieldnames = fields
        names, paths = [], []
        for line, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise ConfigError(f"{path}, line {line}: expected an image path, got an empty 'path' cell")
            raw = (row.get("label") or "").strip()
            if multilabel:
                names.append([part.strip() for part in raw.split(";") if part.strip()])
            else:
                if not raw:
                    raise ConfigError(f"{path}, line {line}: expected a class name or index, got an empty 'label' cell")
                names.append(raw)
            paths.append(_resolve(path, row["path"].strip()))
    return names, paths


def _read_jsonl(path: Path, multilabel: bool) -> tuple[list, list[str]]:
    names, paths = [], []
    with open(path, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f'{path}, line {line}: not valid JSON ({exc}); expected {{"path": ..., "label": ...}}'
                ) from None
            if not isinstance(row, dict) or "path" not in row or "label" not in row:
                raise ConfigError(
                    f"{path}, line {line}: expected an object with 'path' and 'label', got {text.strip()[:80]!r}"
                )
            label = row["label"]
            if isinstance(label, list) != multilabel:
                raise ConfigError(
                    f"{path}, line {line}: got label {label!r}; "
                    + (
                        "multi-label data needs a list of labels per image"
                        if multilabel
                        else "a list of labels is multi-label data: ask for multi-label thresholds instead"
                    )
                )
            names.append(label)
            paths.append(_resolve(path, str(row["path"])))
    return names, paths


def _resolve(table: Path, p: str) -> str:
    path = p if os.path.isabs(p) else str(table.parent / p)
    # one row is one image: a folder or an unmatched pattern would give many outputs, or none
    if os.path.isdir(path):
        raise ConfigError(f"{table}: row path {p!r} is a folder; expected one image file per row")
    if not os.path.exists(path) and any(c in path for c in "*?["):
        raise ConfigError(
            f"{table}: row path {p!r} does not exist (patterns are not expanded here); expected one image file"
        )
    return path


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


# --- names -> indices ----------------------------------------------------------------


def _match(raw: Sequence, label_map: LabelMap, multilabel: bool, layout: str, source: Path) -> list:
    lookup = _Lookup(label_map, allow_index=layout != "folder")
    if multilabel:
        targets = [tuple(sorted({lookup(x) for x in row})) for row in raw]
    else:
        targets = [lookup(x) for x in raw]
    lookup.raise_if_unknown(source, layout)
    return targets


class _Lookup:
    """Name (or index) -> class index; collects every unknown name so one error lists them all."""

    def __init__(self, label_map: LabelMap, allow_index: bool):
        self.names = label_map.names
        self.index = {}
        for i, name in enumerate(self.names):
            self.index.setdefault(name, i)
        self.repeated = label_map.duplicates
        self.allow_index = allow_index
        self.unknown: Counter = Counter()
        self.ambiguous: set = set()

    def __call__(self, x: Any) -> int:
        if isinstance(x, bool):
            self.unknown[repr(x)] += 1
            return -1
        if isinstance(x, int) and self.allow_index:
            return self._by_index(x, repr(x))
        name = str(x)
        if name in self.index:
            if name in self.repeated:
                self.ambiguous.add(name)
            return self.index[name]
        if self.allow_index and name.isdigit():
            return self._by_index(int(name), name)
        self.unknown[name] += 1
        return -1

    def _by_index(self, i: int, shown: str) -> int:
        if 0 <= i < len(self.names):
            return i
        self.unknown[shown] += 1
        return -1

    def raise_if_unknown(self, source: Path, layout: str) -> None:
        if self.ambiguous:
            spots = {n: [i for i, m in enumerate(self.names) if m == n] for n in sorted(self.ambiguous)}
            raise LabelError(
                f"class name(s) in {source} that name more than one of the model's outputs: {spots}; "
                "use the class index instead (a CSV/JSONL with integer labels)"
            )
        if not self.unknown:
            return
        lines = []
        for name, count in sorted(self.unknown.items()):
            close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            lines.append(f"{name!r} x{count}{hint}")
        where = "folder names" if layout == "folder" else "labels"
        raise LabelError(
            f"{len(self.unknown)} class name(s) in {source} are not among the model's {len(self.names)} labels: "
            + "; ".join(lines)
            + f". Expected {where} spelled exactly as the model's labels (e.g. {list(self.names[:3])})"
            + ("" if layout == "folder" else f" or class indices 0..{len(self.names) - 1}")
            + "; rename them, or give the model the labels of this data with --labels"
        )
