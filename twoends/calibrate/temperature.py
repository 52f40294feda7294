"""Temperature scaling and vector scaling, fitted by minimising NLL on held-out logits.

Temperature scaling (Guo et al. 2017) divides every logit by one T > 0: it
changes confidence but never the ranking, so accuracy is untouched. The NLL is
convex in 1/T, hence unimodal in log T, so a bounded 1-D search on log T finds
the optimum without a learning rate, an iteration budget or an initial guess.

Vector scaling learns a per-class scale ``w`` and bias ``b``: ``z' = z * w + b``.
It can change the ranking (and the accuracy), has 2C parameters and can
overfit a small calibration set; ``l2`` shrinks ``w`` towards 1 and ``b`` towards 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError, ConfigError
from ..extras import require
from ..head.activations import log_softmax, softmax
from . import _checks

__all__ = ["fit_temperature", "fit_vector_scaling", "TemperatureScaler", "nll_at_temperature"]

DEFAULT_BOUNDS = (0.05, 20.0)


def _check_inputs(logits, labels):
    z = _checks.check_logits(logits)
    _checks.warn_if_probabilities(z)
    y = _checks.check_labels(labels, z.shape[0], z.shape[1])
    return z, y


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(log_softmax(z)[np.arange(len(y)), y]))


def nll_at_temperature(logits, labels, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / temperature)`` (natural log)."""
    z, y = _check_inputs(logits, labels)
    return _nll(z / _check_temperature(temperature), y)


def _check_temperature(t) -> float:
    try:
        t = float(t)
    except (TypeError, ValueError):
        t = float("nan")
    if not (t > 0.0 and math.isfinite(t)):
        raise ConfigError(f"expected a finite temperature > 0, got {t!r}")
    return t


def fit_temperature(logits, labels, *, bounds: tuple[float, float] = DEFAULT_BOUNDS) -> float:
    """The T in ``bounds`` minimising the NLL of ``softmax(logits / T)`` on these labels.

    Bounded Brent search on log T (SciPy ``minimize_scalar(method="bounded")``,
    tolerance 1e-7 in log T). When the optimum lies on a bound a warning says so:
    a T near 0 means the calibration set is (almost) all correct, a huge T
    that the logits carry (almost) no information - neither is a temperature
    to trust.
    """
    minimize_scalar = require("scipy.optimize", "fitting a temperature").minimize_scalar

    z, y = _check_inputs(logits, labels)
    lo, hi = (_check_temperature(b) for b in bounds)
    if not lo < hi:
        raise ConfigError(f"expected bounds (low, high) with low < high, got {bounds!r}")
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(z * math.exp(-log_t))[rows, y]))

    res = minimize_scalar(nll, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-7})
    t = float(math.exp(res.x))
    if min(res.x - math.log(lo), math.log(hi) - res.x) < 1e-3:
        warnings.warn(
            f"the fitted temperature {t:.4g} is at the edge of the search range {bounds}: the NLL "
            "keeps falling beyond it. A tiny T means (nearly) every calibration sample is already "
            "right; a huge T means the logits carry little information. Use more, harder "
            "calibration data, or widen `bounds` if this is expected.",
            UserWarning,
            stacklevel=2,
        )
    return t


def fit_vector_scaling(logits, labels, *, l2: float = 0.0, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Per-class scale ``w`` [C] and bias ``b`` [C] minimising NLL of ``softmax(z * w + b)``.

    L-BFGS-B with the analytic gradient, starting from w = 1, b = 0 (the
    identity). The loss is mean NLL + ``l2`` * (||w - 1||^2 + ||b||^2). A common
    shift of ``b`` changes no probability; with ``l2 = 0`` the returned ``b`` is
    centred (mean 0) so the answer is unique.
    """
    minimize = require("scipy.optimize", "fitting a vector scaling").minimize

    z, y = _check_inputs(logits, labels)
    l2 = float(l2)
    if not (l2 >= 0.0 and math.isfinite(l2)):
        raise ConfigError(f"expected l2 >= 0, got {l2!r}")
    n, c = z.shape
    onehot = np.zeros((n, c))
    onehot[np.arange(n), y] = 1.0

    def loss_and_grad(theta: np.ndarray):
        w, b = theta[:c], theta[c:]
        zz = z * w + b
        logp = log_softmax(zz)
        loss = -np.sum(logp * onehot) / n
        g = (np.exp(logp) - onehot) / n  # dL/dz' for mean softmax cross-entropy
        grad_w, grad_b = np.sum(g * z, axis=0), np.sum(g, axis=0)
        if l2 > 0:
            loss += l2 * (np.sum((w - 1.0) ** 2) + np.sum(b**2))
            grad_w = grad_w + 2 * l2 * (w - 1.0)
            grad_b = grad_b + 2 * l2 * b
        return loss, np.concatenate([grad_w, grad_b])

    theta0 = np.concatenate([np.ones(c), np.zeros(c)])
    res = minimize(
        loss_and_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-10, "ftol": 1e-15}
    )
    if not np.all(np.isfinite(res.x)):
        raise CalibrationError(
            f"expected finite vector-scaling parameters, got {res.x}; the optimiser diverged "
            "(perfectly separable calibration data?): use l2 > 0 or temperature scaling"
        )
    w, b = res.x[:c].copy(), res.x[c:].copy()
    if l2 == 0.0:
        b -= b.mean()
    return w, b


@dataclass(frozen=True)
class TemperatureScaler:
    """A fitted temperature: ``TemperatureScaler.fit(logits, labels).probabilities(new_logits)``."""

    temperature: float = 1.0

    def __post_init__(self):
        _check_temperature(self.temperature)

    @classmethod
    def fit(cls, logits, labels, *, bounds: tuple[float, float] = DEFAULT_BOUNDS) -> "TemperatureScaler":
        return cls(fit_temperature(logits, labels, bounds=bounds))

    def transform(self, logits) -> np.ndarray:
        """Scaled logits ``logits / T`` (float64 [N, C])."""
        return _checks.check_logits(logits) / self.temperature

    def probabilities(self, logits) -> np.ndarray:
        """``softmax(logits / T)``."""
        return softmax(self.transform(logits))

    def to_dict(self) -> dict:
        return {"method": "temperature", "temperature": self.temperature}

    @classmethod
    def from_dict(cls, d: dict) -> "TemperatureScaler":
        if not isinstance(d, dict) or d.get("method") != "temperature" or "temperature" not in d:
            raise CalibrationError(f"expected a dict like {{'method': 'temperature', 'temperature': 1.5}}, got {d!r}")
        return cls(float(d["temperature"]))
