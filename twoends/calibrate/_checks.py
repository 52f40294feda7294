"""Input checks shared by every calibration function.

Each check raises with what was expected, what was got, and the fix; none uses
``assert`` (asserts vanish under ``python -O`` and say nothing useful).
Everything that passes comes back as float64 / int64 / bool NumPy arrays.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import CalibrationError, ConfigError

# Rows of probabilities may be off by float32 rounding (about 1e-7 per class,
# more for thousands of classes); anything further off is not a distribution.
PROB_SUM_ATOL = 1e-3


def _as_float_2d(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(
            f"expected {name} as a numeric [N, C] array, got {type(x).__name__} that NumPy "
            f"cannot turn into floats ({exc}); pass a NumPy array (tensor.detach().cpu().numpy())"
        ) from exc
    if arr.ndim != 2:
        raise CalibrationError(
            f"expected {name} of shape [N, C] (samples x classes), got shape {arr.shape}; "
            "for a single sample use x[None, :], for extra axes reshape to [-1, C]"
        )
    if arr.shape[0] == 0:
        raise CalibrationError(
            f"expected at least one sample in {name}, got shape {arr.shape}: "
            "calibration needs held-out samples with labels"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise CalibrationError(
            f"expected finite {name}, got {arr[tuple(bad)]} at row {bad[0]}, class {bad[1]} "
            f"({int(np.sum(~np.isfinite(arr)))} non-finite values in all); "
            "drop or fix those rows before calibrating"
        )
    return arr


def check_logits(logits, name: str = "logits", min_classes: int = 2) -> np.ndarray:
    """Float64 [N, C] finite logits with C >= ``min_classes``."""
    arr = _as_float_2d(logits, name)
    if arr.shape[1] < min_classes:
        raise CalibrationError(
            f"expected {name} with at least {min_classes} classes, got shape {arr.shape}; "
            "a single output logit is a binary model: use sigmoid, or stack [-z, z] into two "
            "logits (softmax over one class is always 1.0)"
        )
    return arr


def check_probs(probs, name: str = "probs") -> np.ndarray:
    """Float64 [N, C] rows of probabilities: in [0, 1], summing to 1 within ``PROB_SUM_ATOL``."""
    arr = check_logits(probs, name)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-9 or hi > 1 + 1e-9:
        raise CalibrationError(
            f"expected {name} in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "these look like logits: convert with softmax, or pass from_logits=True"
        )
    sums = arr.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > PROB_SUM_ATOL:
        raise CalibrationError(
            f"expected each row of {name} to sum to 1 (softmax output), got {sums[worst]:.6g} "
            f"at row {worst}; multi-label sigmoid outputs are not a distribution over classes: "
            "use twoends.calibrate.thresholds for those, or pass softmax probabilities"
        )
    return np.clip(arr, 0.0, 1.0)


def warn_if_probabilities(logits: np.ndarray) -> None:
    """Warn when 'logits' are really probabilities: softmax twice is a silent, classic bug."""
    if logits.min() >= 0.0 and logits.max() <= 1.0 and np.allclose(logits.sum(axis=1), 1.0, atol=1e-6):
        warnings.warn(
            "every row of these logits is in [0, 1] and sums to 1: they look like probabilities. "
            "Applying softmax to probabilities squashes them towards uniform; pass "
            "from_logits=False if they are probabilities.",
            UserWarning,
            stacklevel=4,
        )


def check_labels(labels, n: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Int64 [N] class indices in [0, n_classes)."""
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise CalibrationError(
            f"expected {name} as class indices of shape [N] = [{n}], got shape {arr.shape}; "
            "for one-hot labels pass labels.argmax(axis=1)"
        )
    if arr.shape[0] != n:
        raise CalibrationError(
            f"expected {n} {name} (one per row of scores), got {arr.shape[0]}; "
            "scores and labels must come from the same samples in the same order"
        )
    if arr.dtype.kind not in "iub":
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise CalibrationError(
                f"expected integer class indices in {name}, got dtype {arr.dtype} with "
                "non-integer values; map label names to indices first (LabelMap)"
            )
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n_classes)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise CalibrationError(
            f"expected {name} in [0, {n_classes - 1}] for {n_classes} classes, got {arr[i]} at "
            f"row {i} ({int(bad.sum())} out of range); check the label map matches the model outputs"
        )
    return arr


def check_multilabel_targets(targets, shape: tuple[int, int], name: str = "targets") -> np.ndarray:
    """Bool [N, C] 0/1 targets matching the shape of the scores."""
    arr = np.asarray(targets)
    if arr.shape != tuple(shape):
        raise CalibrationError(
            f"expected multi-label {name} of shape {tuple(shape)} (one 0/1 per sample and class), got {arr.shape}"
        )
    as_float = arr.astype(np.float64)
    if not np.all((as_float == 0.0) | (as_float == 1.0)):
        raise CalibrationError(
            f"expected {name} containing only 0 and 1, got values {np.unique(as_float)[:5]}; "
            "binarise the targets (targets > 0.5) before fitting thresholds"
        )
    return as_float.astype(bool)


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"expected {name} to be one of {choices}, got {value!r}")
    return value


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"expected {name} as an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(value, name: str) -> float:
    """A float strictly inside (0, 1)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (0.0 < v < 1.0):
        raise ConfigError(f"expected {name} strictly between 0 and 1, got {value!r}")
    return v
