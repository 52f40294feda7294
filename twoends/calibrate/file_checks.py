"""Check a calibration file's JSON before anything is built from it.

A calibration file is user input: it may be hand-edited, damaged, or hostile.
Every field is checked for its type and range here, so that a bad file is one
``CalibrationError`` that names the field, what was expected and what was got -
never a TypeError, OverflowError or RecursionError from deep inside, and never a
value that would turn probabilities into NaN (a temperature of 1e-300, a NaN
conformal threshold, alpha = 2).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import CalibrationError
from ..head.arrays import check_temperature  # the head's own rule (range included)

__all__ = ["check_calibration_dict"]

_SCORES = ("lac", "aps", "raps")
_ACTIVATIONS = ("softmax", "sigmoid")


def check_calibration_dict(d: dict, where: str, methods: tuple[str, ...]) -> None:
    """Raise CalibrationError for the first field of ``d`` that a calibration file cannot hold."""
    n = d.get("n_classes")
    if not _is_int(n) or n < 1:
        _bad(where, "n_classes", "a whole number >= 1", n)
    labels = d.get("labels")
    if not isinstance(labels, list) or len(labels) != n or not all(isinstance(x, str) for x in labels):
        _bad(where, "labels", f"a list of n_classes={n} strings", labels)
    if not isinstance(d.get("labels_sha256"), str):
        _bad(where, "labels_sha256", "the SHA-256 of the labels as a hex string", d.get("labels_sha256"))
    if d.get("method") not in methods:
        _bad(where, "method", f"one of {methods}", d.get("method"))
    if d.get("activation", "softmax") not in _ACTIVATIONS:
        _bad(where, "activation", f"one of {_ACTIVATIONS}", d.get("activation"))
    for key in ("model", "twoends_version"):
        if d.get(key) is not None and not isinstance(d.get(key), str):
            _bad(where, key, "a string or null", d.get(key))
    for key in ("data", "metrics", "vector_scaling"):
        if d.get(key) is not None and not isinstance(d.get(key), dict):
            _bad(where, key, "a JSON object or null", d.get(key))
    t = d.get("temperature", 1.0)
    if not _is_real(t):
        _bad(where, "temperature", "a number", t)
    try:
        check_temperature(t)
    except Exception as e:
        raise CalibrationError(f"{where}: {e}; fit the calibration again") from None
    level = d.get("level", "classes")
    if level not in ("classes", "groups"):
        _bad(where, "level", "'classes' or 'groups'", level)
    groups = d.get("groups")
    if groups is not None and (not isinstance(groups, dict) or not groups):
        _bad(where, "groups", "a JSON object of group name -> classes, or null", groups)
    if d.get("ood") is not None:
        _check_ood(d["ood"], where)
    if d.get("conformal") is not None:
        # a group-level calibration's sets are over its groups
        _check_conformal(d["conformal"], len(groups) if level == "groups" and groups else n, where)
    if d.get("thresholds") is not None:
        _check_thresholds(d["thresholds"], n, where)


def _check_conformal(c: Any, n: int, where: str) -> None:
    if not isinstance(c, dict):
        _bad(where, "conformal", "a JSON object or null", c)
    if c.get("method") not in _SCORES:
        _bad(where, "conformal.method", f"one of {_SCORES}", c.get("method"))
    alpha = c.get("alpha")
    if not _is_real(alpha) or not 0 < alpha < 1:
        _bad(where, "conformal.alpha", "a number strictly between 0 and 1 (the allowed miss rate)", alpha)
    qhat = c.get("qhat")
    if not _is_real(qhat) or not math.isfinite(qhat) or qhat < 0:
        _bad(where, "conformal.qhat", "a finite number >= 0 (the fitted score threshold)", qhat)
    if c.get("method") == "lac" and qhat > 1:
        _bad(where, "conformal.qhat", "a number in [0, 1] for LAC (a score 1 - probability)", qhat)
    if not _is_int(c.get("n")) or c["n"] < 1:
        _bad(where, "conformal.n", "a whole number >= 1 (the calibration samples)", c.get("n"))
    if c.get("n_classes") != n or not _is_int(c.get("n_classes")):
        _bad(where, "conformal.n_classes", f"n_classes={n}", c.get("n_classes"))
    params = c.get("params")
    if not isinstance(params, dict) or set(params) - {"randomized", "lam", "k_reg"}:
        _bad(where, "conformal.params", "an object with randomized (and lam, k_reg for raps)", params)
    if not isinstance(params.get("randomized", False), bool):
        _bad(where, "conformal.params.randomized", "true or false", params.get("randomized"))
    lam, k_reg = params.get("lam"), params.get("k_reg")
    if lam is not None and (not _is_real(lam) or not math.isfinite(lam) or lam < 0):
        _bad(where, "conformal.params.lam", "a finite number >= 0", lam)
    if k_reg is not None and (not _is_int(k_reg) or k_reg < 0):
        _bad(where, "conformal.params.k_reg", "a whole number >= 0", k_reg)


def _check_ood(o: Any, where: str) -> None:
    if not isinstance(o, dict):
        _bad(where, "ood", "a JSON object or null", o)
    if not isinstance(o.get("method"), str):
        _bad(where, "ood.method", "a string", o.get("method"))
    tpr = o.get("tpr")
    if not _is_real(tpr) or not 0 < tpr < 1:
        _bad(where, "ood.tpr", "a number strictly between 0 and 1", tpr)
    if not _is_real(o.get("threshold")) or not math.isfinite(o["threshold"]):
        _bad(where, "ood.threshold", "a finite number", o.get("threshold"))
    if not _is_int(o.get("n")) or o["n"] < 1:
        _bad(where, "ood.n", "a whole number >= 1", o.get("n"))


def _check_thresholds(t: Any, n: int, where: str) -> None:
    if not isinstance(t, dict):
        _bad(where, "thresholds", "a JSON object or null", t)
    values = t.get("thresholds")
    if not isinstance(values, list) or len(values) != n or not all(_is_real(v) and 0 <= v <= 1 for v in values):
        _bad(where, "thresholds.thresholds", f"a list of n_classes={n} numbers in [0, 1]", values)
    if not isinstance(t.get("objective"), str):
        _bad(where, "thresholds.objective", "'f1' or 'precision'", t.get("objective"))
    achieved = t.get("achieved", [])
    if not isinstance(achieved, list) or not all(v is None or _is_real(v) for v in achieved):
        _bad(where, "thresholds.achieved", "a list of numbers or nulls", achieved)
    mp = t.get("min_precision")
    if mp is not None and (not _is_real(mp) or not 0 < mp <= 1):
        _bad(where, "thresholds.min_precision", "a number in (0, 1] or null", mp)
    notes = t.get("notes", {})
    if not isinstance(notes, dict) or not all(k.isdigit() and isinstance(v, str) for k, v in notes.items()):
        _bad(where, "thresholds.notes", "an object of class index -> note", notes)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    """A JSON number that is a real value (NaN and booleans are not; a huge int must fit a float)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return not math.isnan(float(x))
    except OverflowError:
        return False


def _bad(where: str, field: str, expected: str, got: Any) -> None:
    shown = repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise CalibrationError(
        f"{where}: field {field!r} must be {expected}, got {shown} ({type(got).__name__}); the file was edited or "
        "damaged: fit the calibration again with `twoends calibrate`"
    )
