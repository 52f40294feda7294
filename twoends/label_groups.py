"""LabelGroups: named groups of classes ("cat" = ImageNet 281-285), resolved against a model's labels.

Users ask "is it a cat?", not "is it class 282?". A group file is JSON::

    {"cat": [281, 282, 283, 284, 285], "dog": ["beagle", "basset", ...]}

with classes by index or by name. They are resolved once, against the labels as
shown, when the model is settled; a name the model does not have is an error
that lists every unknown name with close matches, never a silently smaller group.

Groups may overlap (a class can be in "cat" and in "pet") for showing; fitting a
calibration or conformal sets at the group level needs disjoint groups, and then
the classes in no group form one more group, ``OTHER`` (``partition()``).
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, LabelError

__all__ = ["LabelGroups", "OTHER", "load_groups"]

OTHER = "(other)"


@dataclass(frozen=True)
class LabelGroups:
    """Group names and, for each, the class indices (sorted) it holds, in the file's order."""

    names: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    source: str = "dict"

    def __len__(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict[str, list[int]]:
        return {n: list(m) for n, m in zip(self.names, self.members)}

    @property
    def disjoint(self) -> bool:
        seen: set[int] = set()
        for m in self.members:
            if seen & set(m):
                return False
            seen |= set(m)
        return True

    def partition(self, n_classes: int) -> "LabelGroups":
        """Disjoint groups covering every class: the classes in no group become ``OTHER``.

        What group-level calibration and conformal sets need: each class (so each
        true label) belongs to exactly one group, and the group probabilities of a
        softmax model sum to 1.
        """
        if not self.disjoint:
            shared = _shared(self)
            raise ConfigError(
                f"groups {self.source} overlap ({shared}); calibrating or forming conformal sets at the group "
                "level needs each class in one group only: split the groups, or calibrate at the class level"
            )
        covered = {c for m in self.members for c in m}
        rest = tuple(c for c in range(n_classes) if c not in covered)
        if not rest:
            return self
        if OTHER in self.names:
            raise ConfigError(f"a group may not be named {OTHER!r}: that name is for the classes in no group")
        return LabelGroups(self.names + (OTHER,), self.members + (rest,), self.source)

    def describe(self) -> str:
        sizes = ", ".join(f"{n} ({len(m)})" for n, m in zip(self.names, self.members))
        return f"{len(self)} group(s) from {self.source}: {sizes}"

    @classmethod
    def resolve(cls, spec: Any, labels: Any, *, source: str | None = None) -> "LabelGroups":
        """Groups from a dict (or a JSON file path) of ``{name: [index or class name, ...]}``, checked against ``labels``."""
        if isinstance(spec, LabelGroups):
            spec, source = spec.to_dict(), source or spec.source
        if isinstance(spec, (str, os.PathLike)):
            spec, source = _read(spec), str(spec)
        where = source or "groups"
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(
                f"{where}: expected a JSON object of group name -> list of classes (indices or names), "
                f'e.g. {{"cat": [281, 282, 283, 284, 285]}}, got {type(spec).__name__}'
            )
        names = list(labels)
        index = {}
        for i, n in enumerate(names):
            index.setdefault(n, []).append(i)
        unknown, members = [], []
        for group, classes in spec.items():
            if not isinstance(classes, (list, tuple)) or not classes:
                raise ConfigError(f"{where}: group {group!r} must be a non-empty list of classes, got {classes!r}")
            found: list[int] = []
            for c in classes:
                i = _one(c, names, index, group, where, unknown)
                if i is None:
                    continue
                if i in found:
                    raise ConfigError(f"{where}: group {group!r} lists class {i} ({names[i]!r}) twice")
                found.append(i)
            members.append(tuple(sorted(found)))
        if unknown:
            raise LabelError(f"{where}: {len(unknown)} unknown class name(s): {'; '.join(unknown)}")
        return cls(tuple(str(g) for g in spec), tuple(members), where)


def load_groups(spec: Any, labels: Any) -> LabelGroups | None:
    """``LabelGroups.resolve`` for a setting that may be None."""
    return None if spec is None else LabelGroups.resolve(spec, labels)


def _one(c: Any, names: list[str], index: dict, group: str, where: str, unknown: list) -> int | None:
    n = len(names)
    if isinstance(c, bool) or not isinstance(c, (int, str)):
        raise ConfigError(f"{where}: group {group!r}: expected class indices or names, got {c!r}")
    if isinstance(c, int):
        if not 0 <= c < n:
            raise LabelError(f"{where}: group {group!r}: class index {c} is out of range for a model with {n} classes")
        return c
    hits = index.get(c)
    if hits is None:
        close = difflib.get_close_matches(c, names, n=3, cutoff=0.6)
        unknown.append(
            f"{c!r} in group {group!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
        )
        return None
    if len(hits) > 1:
        raise LabelError(f"{where}: group {group!r}: class name {c!r} names outputs {hits}; use an index")
    return hits[0]


def _read(path: Any) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"group file not found: {str(p)!r} (expected a JSON file of group name -> classes)")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"group file {str(p)!r} is not valid JSON: {exc}") from None


def _shared(groups: LabelGroups) -> str:
    out = []
    for i, (a, ma) in enumerate(zip(groups.names, groups.members)):
        for b, mb in zip(groups.names[i + 1 :], groups.members[i + 1 :]):
            both = sorted(set(ma) & set(mb))
            if both:
                out.append(f"{a!r} and {b!r} share {both[:5]}")
    return "; ".join(out[:3])
