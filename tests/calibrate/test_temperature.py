"""Temperature and vector scaling on synthetic logits whose true calibration is known."""

from __future__ import annotations

import numpy as np
import pytest

from twoends.calibrate import (
    TemperatureScaler,
    accuracy,
    fit_temperature,
    fit_vector_scaling,
    nll_at_temperature,
)
from twoends.errors import CalibrationError, ConfigError
from twoends.head import log_softmax, softmax


def calibrated_problem(seed: int, n: int, c: int, scale: float = 2.0):
    """True logits z and labels drawn from softmax(z): softmax(z) is calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * scale
    p = softmax(z)
    labels = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, np.minimum(labels, c - 1)


def nll(z, y):
    return -np.mean(log_softmax(z)[np.arange(len(y)), y])


@pytest.mark.parametrize("true_t", [3.0, 0.5])
def test_fitted_temperature_recovers_the_distortion(true_t):
    z, y = calibrated_problem(0, n=20000, c=10)
    t = fit_temperature(z * true_t, y)  # over-confident (3) or under-confident (0.5) by true_t
    assert t == pytest.approx(true_t, rel=0.04)


def test_fit_agrees_with_brute_force_grid():
    z, y = calibrated_problem(1, n=3000, c=10)
    logits = 3.0 * z
    t = fit_temperature(logits, y)
    grid = np.geomspace(0.05, 20.0, 2001)
    losses = np.array([nll(logits / g, y) for g in grid])
    best = int(np.argmin(losses))
    # the optimiser is never worse than the grid, and lands within one grid step of its best point
    assert nll_at_temperature(logits, y, t) <= losses[best] + 1e-12
    assert abs(nll_at_temperature(logits, y, t) - losses[best]) < 1e-3
    assert grid[best - 1] <= t <= grid[best + 1]


def test_temperature_never_changes_accuracy_and_lowers_nll():
    z, y = calibrated_problem(2, n=2000, c=5)
    logits = 4.0 * z
    scaler = TemperatureScaler.fit(logits, y)
    assert accuracy(scaler.transform(logits), y) == accuracy(logits, y)
    assert nll(scaler.transform(logits), y) < nll(logits, y)
    np.testing.assert_allclose(scaler.probabilities(logits), softmax(logits / scaler.temperature))
    assert TemperatureScaler.from_dict(scaler.to_dict()) == scaler


def test_all_correct_calibration_set_warns_at_the_bound():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 20)
    labels = np.array([0, 1] * 20)
    with pytest.warns(UserWarning, match="edge of the search range"):
        t = fit_temperature(logits, labels)
    assert t == pytest.approx(0.05, rel=1e-3)


def test_bad_temperature_inputs():
    z, y = calibrated_problem(3, n=20, c=3)
    with pytest.raises(ConfigError):
        TemperatureScaler(0.0)
    with pytest.raises(ConfigError):
        nll_at_temperature(z, y, -1.0)
    with pytest.raises(ConfigError, match="low < high"):
        fit_temperature(z, y, bounds=(2.0, 1.0))
    with pytest.raises(CalibrationError):
        fit_temperature(z[:, :1], y * 0)
    with pytest.raises(CalibrationError):
        TemperatureScaler.from_dict({"temperature": 2.0})


def numerical_gradient(f, theta, eps=1e-6):
    g = np.zeros_like(theta)
    for i in range(len(theta)):
        d = np.zeros_like(theta)
        d[i] = eps
        g[i] = (f(theta + d) - f(theta - d)) / (2 * eps)
    return g


def test_vector_scaling_recovers_per_class_scale_and_bias():
    c = 4
    z, y = calibrated_problem(4, n=40000, c=c)
    w_true = np.array([0.5, 1.0, 2.0, 3.0])
    b_true = np.array([0.3, -0.2, 0.0, -0.1])
    observed = (z - b_true) / w_true  # so that observed * w_true + b_true == z, the calibrated logits
    w, b = fit_vector_scaling(observed, y)
    np.testing.assert_allclose(w, w_true, rtol=0.06)
    np.testing.assert_allclose(b, b_true - b_true.mean(), atol=0.05)
    assert abs(b.mean()) < 1e-12

    def loss(theta):
        return nll(observed * theta[:c] + theta[c:], y)

    theta = np.concatenate([w, b])
    # at the returned point the true (finite-difference) gradient vanishes: optimum reached, gradient right
    assert np.max(np.abs(numerical_gradient(loss, theta))) < 1e-5
    t = fit_temperature(observed, y)
    assert loss(theta) <= nll(observed / t, y) + 1e-12  # nested model: never worse than temperature


def test_vector_scaling_l2_shrinks_towards_identity():
    z, y = calibrated_problem(5, n=200, c=3)
    w0, b0 = fit_vector_scaling(3 * z, y)
    w1, b1 = fit_vector_scaling(3 * z, y, l2=10.0)
    assert np.linalg.norm(w1 - 1) + np.linalg.norm(b1) < np.linalg.norm(w0 - 1) + np.linalg.norm(b0)
    with pytest.raises(ConfigError):
        fit_vector_scaling(z, y, l2=-1.0)
