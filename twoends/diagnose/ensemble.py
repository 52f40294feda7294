"""The doctor on an ensemble: every member checked on its own ends, then how the members line up.

Members may differ in preprocessing (input size, normalisation) and in the order of
their classes - that is fine in an ensemble, where each member applies its own plan
and classes are aligned by name - so each member is checked with its own spec and
labels, and its findings are named after it. The differences themselves are reported
as notes, so a surprising one (two models you thought identical) is visible.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .finding import Finding, Findings

__all__ = ["check_ensemble"]


def check_ensemble(ens: Any, run_member: Callable[[Any], Findings]) -> Findings:
    """Each member's findings (title prefixed with the member), the union of what ran, and notes on alignment."""
    items: list[Finding] = []
    ran: list[str] = []
    skipped: dict[str, str] = {}
    for m in ens.members:
        found = run_member(m)
        items += [dataclasses.replace(f, title=f"member {m.name!r}: {f.title}") for f in found]
        ran += [n for n in found.ran if n not in ran]
        for n, why in found.skipped.items():
            skipped.setdefault(n, f"member {m.name!r}: {why}")
    ran_all = set(ran)
    skipped = {n: why for n, why in skipped.items() if n not in ran_all}
    specs = {m.name: m.spec.describe() for m in ens.members}
    if len(set(specs.values())) > 1:
        items.append(
            Finding(
                "input-size",
                "info",
                "the members preprocess differently, each with its own plan",
                seen="; ".join(f"{n}: {s}" for n, s in specs.items()),
                why="an ensemble that fed every member one shared tensor would give all but one member the wrong inputs",
                fix="nothing to fix: twoends runs each member with its own spec (checked per member above)",
                evidence={"specs": {m.name: m.spec.to_dict() for m in ens.members}},
            )
        )
    notes = ens.backend.alignment()
    if notes:
        items.append(
            Finding(
                "labels",
                "info",
                "the members' classes differ: aligned by name",
                seen="; ".join(notes),
                why="averaging outputs by position would add one model's 'tabby' to another's 'tiger cat'",
                fix="nothing to fix if the names mean the same classes; otherwise load members with matching labels",
                evidence={"classes": len(ens.labels)},
            )
        )
    order = {"error": 0, "warning": 1, "info": 2}
    return Findings(sorted(items, key=lambda f: order[f.severity]), ran=ran, skipped=skipped)
