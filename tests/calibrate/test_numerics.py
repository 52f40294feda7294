"""The private softmax helpers against SciPy, and exact in the near-certain tail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from twoends.calibrate._numerics import log_softmax, logsumexp, softmax


@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0, 1e4])
def test_match_scipy(scale):
    x = np.random.default_rng(0).normal(size=(50, 7)) * scale
    np.testing.assert_allclose(softmax(x), special.softmax(x, axis=1), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(log_softmax(x), special.log_softmax(x, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logsumexp(x)[:, 0], special.logsumexp(x, axis=1), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x.T, axis=0), special.log_softmax(x.T, axis=0), rtol=1e-12, atol=1e-12)


def test_top_class_log_probability_is_not_rounded_to_zero():
    # log p(top) = -log1p(exp(-100)) = -3.7e-44: log(1 + 3.7e-44) would give exactly 0
    lp = log_softmax(np.array([[100.0, 0.0]]))
    assert lp[0, 0] == pytest.approx(-np.exp(-100.0), rel=1e-12)
    assert lp[0, 1] == pytest.approx(-100.0, rel=1e-15)


def test_ties_for_the_max():
    np.testing.assert_allclose(log_softmax(np.zeros((1, 4))), np.log(0.25), rtol=1e-15)
