"""Finding: one thing the doctor saw, why it matters, and the fix.

Severities: ``error`` (the outputs are wrong: fix before trusting them),
``warning`` (probably worse answers: look at it), ``info`` (context; never
fails a run). ``Findings`` is a plain list of them that also remembers which
checks ran and which were skipped, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["Finding", "Findings", "SEVERITIES"]

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """``check`` is the check's name; ``seen`` what was observed, ``why`` why it matters, ``fix`` what to do."""

    check: str
    severity: str
    title: str
    seen: str
    why: str
    fix: str
    evidence: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ConfigError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    @property
    def failed(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "title": self.title,
            "seen": self.seen,
            "why": self.why,
            "fix": self.fix,
            "evidence": _plain(self.evidence),
        }

    def __str__(self) -> str:
        return (
            f"[{self.severity}] {self.check}: {self.title}\n  seen: {self.seen}\n  why: {self.why}\n  fix: {self.fix}"
        )


class Findings(list):
    """The findings of one ``twoends.check`` run (a list), plus ``ran`` and ``skipped`` {check: reason}."""

    def __init__(self, items=(), *, ran=(), skipped=None):
        super().__init__(items)
        self.ran = list(ran)
        self.skipped = dict(skipped or {})

    @property
    def failed(self) -> bool:
        """True when any finding is an error."""
        return any(f.failed for f in self)

    def of(self, check: str) -> list[Finding]:
        return [f for f in self if f.check == check]

    def __repr__(self) -> str:  # one line; str(finding) and the HTML give the whole story
        counts = {s: sum(f.severity == s for f in self) for s in SEVERITIES}
        checks = ", ".join(dict.fromkeys(f.check for f in self))
        return (
            f"Findings({counts['error']} errors, {counts['warning']} warnings, {counts['info']} info: {checks or '-'})"
        )

    def _repr_html_(self) -> str:  # a notebook shows each finding with seen / why / fix
        from ..display import findings_html

        return findings_html(self, ran=self.ran, skipped=self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "findings": [f.to_dict() for f in self],
            "ran": list(self.ran),
            "skipped": dict(self.skipped),
        }


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready Python (NumPy scalars and arrays become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float):
        return round(value, 6)
    return value
