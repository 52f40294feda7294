"""LabelMap: class index <-> class name, checked against the model's outputs.

Labels come from a list, a text file (one name per line), a JSON list, or a
``{id: name}`` mapping such as Hugging Face's ``config.id2label``. A map that
does not fit the model is an error that says what to do, never a silent
off-by-one.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import LabelError

__all__ = ["LabelMap"]


class LabelMap(Sequence[str]):
    """An immutable sequence of class names; ``labels[i]`` is the name of output i.

    Names need not be unique (ImageNet-1k has two "crane" classes): ``index()``
    of a repeated name is an error that lists the candidates, and
    ``duplicates`` tells which names repeat.
    """

    __slots__ = ("_names", "_index", "source")

    def __init__(self, names: Sequence[str], source: str = "list"):
        names = tuple(str(n) for n in names)
        if not names:
            raise LabelError("expected at least one class name, got an empty label list")
        self._names = names
        self._index: dict[str, int] | None = None
        self.source = source

    # --- building -----------------------------------------------------------------

    @classmethod
    def from_any(cls, labels: Any) -> "LabelMap":
        """A LabelMap from a LabelMap, a list/tuple, a {id: name} dict or a file path."""
        if isinstance(labels, LabelMap):
            return labels
        if isinstance(labels, Mapping):
            return cls._from_mapping(labels, source="mapping")
        if isinstance(labels, (str, os.PathLike)):
            return cls.from_file(labels)
        if isinstance(labels, Sequence) or hasattr(labels, "__iter__"):
            return cls(list(labels))
        raise LabelError(
            f"expected labels as a list of names, a {{id: name}} dict or a path to a .txt/.json file, "
            f"got {type(labels).__name__}"
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "LabelMap":
        """One name per line (.txt, blank lines at the end ignored) or JSON (list or {id: name})."""
        p = Path(path)
        if not p.is_file():
            raise LabelError(f"labels file not found: {str(p)!r} (expected a .txt with one name per line, or a .json)")
        text = p.read_text(encoding="utf-8-sig")
        if p.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise LabelError(f"labels file {str(p)!r} is not valid JSON: {exc}") from None
            if isinstance(data, Mapping):
                # {"id2label": {...}} as in a Hugging Face config.json
                data = data.get("id2label", data)
                return cls._from_mapping(data, source=str(p))
            if isinstance(data, list):
                return cls(data, source=str(p))
            raise LabelError(f"labels file {str(p)!r}: expected a JSON list or object, got {type(data).__name__}")
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        blank = [i for i, line in enumerate(lines) if not line.strip()]
        if blank:
            raise LabelError(
                f"labels file {str(p)!r} has an empty name on line {blank[0] + 1}: "
                f"expected one class name per line, in output order"
            )
        return cls([line.strip() for line in lines], source=str(p))

    @classmethod
    def _from_mapping(cls, mapping: Mapping, source: str) -> "LabelMap":
        try:
            items = {int(k): v for k, v in mapping.items()}
        except (TypeError, ValueError):
            raise LabelError(
                f"expected a mapping of class index -> name (like id2label), got keys such as "
                f"{next(iter(mapping), None)!r}: if it is name -> index (label2id), invert it"
            ) from None
        expected = set(range(len(items)))
        if set(items) != expected:
            missing = sorted(expected - set(items))[:5]
            extra = sorted(set(items) - expected)[:5]
            raise LabelError(
                f"expected class indices 0..{len(items) - 1} with none missing, "
                f"got missing {missing} and out-of-range {extra}"
            )
        return cls([items[i] for i in range(len(items))], source=source)

    @classmethod
    def default(cls, n: int) -> "LabelMap":
        """Names "0".."n-1" for a model that ships no labels (said in its source)."""
        return cls([str(i) for i in range(n)], source="default (no labels given)")

    # --- checking -----------------------------------------------------------------

    def check(self, num_outputs: int) -> "LabelMap":
        """Return self if it has one name per output, else a LabelError that suggests the fix."""
        n = len(self)
        if n == num_outputs:
            return self
        where = f"labels ({self.source})"
        if num_outputs == n + 1:
            hint = (
                "is there a background class at index 0 (TensorFlow-slim models have one)? "
                "Prepend a name such as 'background' to the labels"
            )
        elif n == num_outputs + 1:
            hint = "do the labels include a background class the model does not have? Drop it from the labels"
        else:
            hint = "are these the labels of another model or data set?"
        raise LabelError(f"model has {num_outputs} outputs, {where} have {n} names: {hint}")

    # --- reading ------------------------------------------------------------------

    def index(self, name: str, *_: Any) -> int:
        if self._index is None:
            self._index = {}
            for i, label in enumerate(self._names):
                self._index.setdefault(label, i)
        if name not in self._index:
            raise LabelError(
                f"unknown class name {name!r}: expected one of {len(self)} names such as {list(self._names[:5])}"
            )
        if name in self.duplicates:
            hits = [i for i, n in enumerate(self._names) if n == name]
            raise LabelError(f"class name {name!r} is ambiguous: it names outputs {hits}; use an index")
        return self._index[name]

    @property
    def duplicates(self) -> dict[str, int]:
        """Names that appear more than once, with their count."""
        return {name: c for name, c in Counter(self._names).items() if c > 1}

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._names[i]
        return self._names[i]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LabelMap):
            return self._names == other._names
        if isinstance(other, (list, tuple)):
            return self._names == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._names)

    def __repr__(self) -> str:
        shown = ", ".join(repr(n) for n in self._names[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"LabelMap([{shown}{more}], n={len(self)})"
