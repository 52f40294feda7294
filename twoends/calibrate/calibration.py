"""The calibration file: fitted on held-out data (``fit.py``), kept with the model, applied by the classifier.

A ``Calibration`` records the model it belongs to (name, number of classes,
label names and their SHA-256), what was fitted, on which data and split, the
twoends version and the held-out metrics; ``check`` refuses a model with other
classes (CalibrationError) and warns when only the model name differs.

It may also hold an out-of-distribution threshold (``ood``: "none of the above"
over it) and, for a calibration fitted on label groups (``level="groups"``), the
disjoint groups its temperature and conformal sets were fitted on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..encoding import json_safe
from ..errors import CalibrationError, ConfigError
from ..label_groups import LabelGroups
from ..labels import LabelMap
from .conformal import ConformalThreshold, prediction_sets, set_members
from .file_checks import check_calibration_dict
from .ood import OODThreshold
from .thresholds import ClassThresholds

__all__ = ["Calibration", "load_calibration", "labels_hash", "FORMAT", "FORMAT_VERSION", "METHODS"]

FORMAT = "twoends.calibration"
FORMAT_VERSION = 2  # 2 adds "ood", "groups" and "level"; a file without them is still written as 1
METHODS = ("temperature", "vector", "none")


def labels_hash(names) -> str:
    """SHA-256 of the label names in output order (JSON list, UTF-8): one digest per label set."""
    return hashlib.sha256(json.dumps(list(names), ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Calibration:
    """What a classifier applies: a temperature, conformal sets and/or multi-label thresholds."""

    labels: tuple[str, ...]
    model: str | None = None
    activation: str = "softmax"
    method: str = "temperature"
    temperature: float = 1.0
    vector_scaling: dict | None = None  # fitted and reported, never applied (see the module docstring)
    conformal: ConformalThreshold | None = None
    thresholds: ClassThresholds | None = None
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    twoends_version: str | None = None
    source: str | None = field(default=None, compare=False)  # the file it was read from, if any
    ood: OODThreshold | None = None
    groups: LabelGroups | None = None  # the disjoint groups a group-level calibration was fitted on
    level: str = "classes"  # "groups": temperature and conformal sets fitted on the groups

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(str(n) for n in self.labels))
        if not self.labels:
            raise CalibrationError("expected the label names of the calibrated model, got none")
        if not (
            isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature > 0
        ):
            raise CalibrationError(f"expected a finite temperature > 0, got {self.temperature!r}")
        if self.level not in ("classes", "groups") or (self.level == "groups") != (self.groups is not None):
            raise CalibrationError(f"expected level 'classes', or 'groups' with the groups, got {self.level!r}")
        n_sets = len(self.labels) if self.groups is None else len(self.groups)
        if self.conformal is not None and self.conformal.n_classes != n_sets:
            raise CalibrationError(
                f"the conformal threshold is for {self.conformal.n_classes} classes, the {self.level} are {n_sets}"
            )
        if self.thresholds is not None and len(self.thresholds.thresholds) != len(self.labels):
            raise CalibrationError(
                f"expected one threshold per class ({len(self.labels)}), got {len(self.thresholds.thresholds)}"
            )

    # --- identity --------------------------------------------------------------------

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def labels_sha256(self) -> str:
        return labels_hash(self.labels)

    @property
    def id(self) -> str:
        """8 hex digits of the SHA-256 of the file's content: the same fit gives the same id."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    @property
    def name(self) -> str:
        """What every Prediction's ``calibration`` field says: the file name, or ``cal-<id>``."""
        return os.path.basename(self.source) if self.source else f"cal-{self.id}"

    def __repr__(self) -> str:
        parts = [f"T={self.temperature:.4g}"]
        if self.conformal:
            parts.append(f"conformal {self.conformal.method} alpha={self.conformal.alpha}")
        if self.thresholds:
            parts.append(f"thresholds ({self.thresholds.objective})")
        return f"Calibration({self.name!r}, model={self.model!r}, {self.n_classes} classes, {', '.join(parts)})"

    # --- applying ----------------------------------------------------------------------

    def check(self, labels: Any, *, model: str | None = None, activation: str | None = None) -> None:
        """Raise CalibrationError unless ``labels`` (the model's, in output order) are the ones fitted.

        A different model name alone is a warning: the same network under
        another name is fine; other classes are not.
        """
        names = tuple(LabelMap.from_any(labels).names)
        fix = (
            "use the calibration file fitted for this model, or fit one with "
            "`twoends calibrate DATA --model MODEL -o calibration.json`"
        )
        if len(names) != self.n_classes:
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for {self.n_classes} classes (model {self.model!r}), "
                f"this model has {len(names)}: {fix}"
            )
        if names != self.labels:
            diff = [i for i, (a, b) in enumerate(zip(names, self.labels)) if a != b]
            shown = ", ".join(f"#{i}: {self.labels[i]!r} vs {names[i]!r}" for i in diff[:3])
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for other class names: {len(diff)} of {self.n_classes} "
                f"differ ({shown}{', ...' if len(diff) > 3 else ''}; calibration vs model): {fix}"
            )
        if activation is not None and activation != self.activation:
            raise CalibrationError(
                f"calibration {self.name!r} was fitted for a {self.activation} head, this model's head is "
                f"{activation}: a temperature or threshold means something else under the other activation; {fix}"
            )
        if model is not None and self.model is not None and model != self.model:
            warnings.warn(
                f"calibration {self.name!r} was fitted for model {self.model!r} and is applied to {model!r}: "
                "the classes match, but a temperature or threshold fitted for one network is wrong for "
                "another. Ignore this if it is the same network under another name.",
                UserWarning,
                stacklevel=3,
            )

    def set_function(self):
        """For the Head: probabilities [B, C] -> each row's conformal set, most probable first; None without one."""
        threshold = self.conformal
        if threshold is None:
            return None

        def sets(probs: np.ndarray) -> list:
            probs = np.asarray(probs, dtype=np.float64)
            # rows the Head could not answer come as zeros: they get an empty set, not an exception
            ok = np.abs(probs.sum(axis=1) - 1.0) < 1e-3
            out = [np.zeros(0, dtype=np.int64)] * len(probs)
            if ok.any():
                mask = prediction_sets(probs[ok], threshold)
                for i, members in zip(np.flatnonzero(ok), set_members(mask, probs[ok])):
                    out[i] = members
            return out

        return sets

    def head_settings(self) -> dict:
        """Keyword arguments for ``Head``: temperature, prediction_sets, thresholds, calibration."""
        out = {
            "temperature": self.temperature,
            "prediction_sets": self.set_function(),
            "thresholds": None if self.thresholds is None else self.thresholds.thresholds,
            "calibration": self.name,
        }
        if self.ood is not None:
            out.update(ood_method=self.ood.method, ood_threshold=self.ood.threshold)
        if self.groups is not None:
            out.update(groups=self.groups, set_groups=self.groups)
        return out

    # --- the file ----------------------------------------------------------------------

    def to_dict(self) -> dict:
        conformal = None
        if self.conformal is not None:
            conformal = {"score": self.conformal.method, **self.conformal.to_dict()}
        extra = {}
        if self.ood is not None:
            extra["ood"] = self.ood.to_dict()
        if self.groups is not None:
            extra.update(level=self.level, groups=self.groups.to_dict())
        # one convention for numbers that are not finite (twoends.encoding): +-inf as "inf" / "-inf", NaN as null
        return json_safe(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION if extra else 1,
                "twoends_version": self.twoends_version,
                "model": self.model,
                "n_classes": self.n_classes,
                "labels_sha256": self.labels_sha256,
                "labels": list(self.labels),
                "activation": self.activation,
                "method": self.method,
                "temperature": self.temperature,
                "vector_scaling": self.vector_scaling,
                "conformal": conformal,
                "thresholds": None if self.thresholds is None else self.thresholds.to_dict(),
                "data": self.data,
                "metrics": self.metrics,
                **extra,
            }
        )

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "Calibration":
        where = source or "calibration"
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CalibrationError(
                f'{where} is not a twoends calibration: expected a JSON object with "format": "{FORMAT}" '
                "(written by `twoends calibrate`)"
            )
        version = d.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
            raise CalibrationError(
                f"{where} has format_version {version!r}; this twoends reads up to {FORMAT_VERSION}: upgrade twoends"
            )
        check_calibration_dict(d, where, METHODS)  # every field's type and range, before anything is built
        labels = d["labels"]
        if labels_hash(labels) != d.get("labels_sha256"):
            raise CalibrationError(
                f"{where}: the label names do not match labels_sha256 (the file was edited or damaged); "
                "fit the calibration again"
            )
        try:
            conformal = (
                None
                if d.get("conformal") is None
                else ConformalThreshold.from_dict({k: v for k, v in d["conformal"].items() if k != "score"})
            )
            thresholds = None if d.get("thresholds") is None else ClassThresholds.from_dict(d["thresholds"])
            return cls(
                labels=tuple(labels),
                model=d.get("model"),
                activation=d.get("activation", "softmax"),
                method=d["method"],
                temperature=float(d.get("temperature", 1.0)),
                vector_scaling=d.get("vector_scaling"),
                conformal=conformal,
                thresholds=thresholds,
                data=dict(d.get("data") or {}),
                metrics=dict(d.get("metrics") or {}),
                twoends_version=d.get("twoends_version"),
                source=source,
                ood=None if d.get("ood") is None else OODThreshold.from_dict(d["ood"]),
                groups=None if d.get("groups") is None else LabelGroups.resolve(d["groups"], labels, source=where),
                level=d.get("level", "classes"),
            )
        except (ConfigError, TypeError, ValueError, OverflowError, AttributeError, KeyError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"{where}: {exc}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON file atomically (a temporary file renamed into place: never half-written)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        p = Path(path)
        if not p.is_file():
            raise CalibrationError(f"calibration file not found: {str(p)!r} (write one with `twoends calibrate`)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except RecursionError:
            raise CalibrationError(
                f"{p} nests JSON too deeply to be a calibration file (written by `twoends calibrate`)"
            ) from None
        except OSError as exc:
            raise CalibrationError(f"cannot read the calibration file {p}: {exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CalibrationError(
                f"{p} is not valid JSON ({exc}): expected a file written by `twoends calibrate`"
            ) from None
        return cls.from_dict(data, source=str(p))


def load_calibration(calibration: Any) -> Calibration:
    """A Calibration from a Calibration, a path, or a dict (``to_dict()``)."""
    if isinstance(calibration, Calibration):
        return calibration
    if isinstance(calibration, (str, os.PathLike)):
        return Calibration.load(calibration)
    if isinstance(calibration, dict):
        return Calibration.from_dict(calibration)
    raise ConfigError(
        f"expected calibration as a path to a calibration JSON file or a Calibration, got {type(calibration).__name__}"
    )
