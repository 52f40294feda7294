"""The head's softmax / log_softmax / logsumexp on float64 (what calibrate and diagnose use) against
SciPy, and exact in the near-certain tail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from twoends.head import log_softmax, logsumexp, softmax


@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0, 1e4])
def test_match_scipy(scale):
    x = np.random.default_rng(0).normal(size=(50, 7)) * scale
    np.testing.assert_allclose(softmax(x), special.softmax(x, axis=1), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(log_softmax(x), special.log_softmax(x, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logsumexp(x, keepdims=True)[:, 0], special.logsumexp(x, axis=1), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x.T, axis=0), special.log_softmax(x.T, axis=0), rtol=1e-12, atol=1e-12)


def test_top_class_log_probability_is_not_rounded_to_zero():
    # log p(top) = -log1p(exp(-100)) = -3.7e-44: log(1 + 3.7e-44) would give exactly 0
    lp = log_softmax(np.array([[100.0, 0.0]]))
    assert lp[0, 0] == pytest.approx(-np.exp(-100.0), rel=1e-12)
    assert lp[0, 1] == pytest.approx(-100.0, rel=1e-15)


def test_ties_for_the_max():
    np.testing.assert_allclose(log_softmax(np.zeros((1, 4))), np.log(0.25), rtol=1e-15)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_near_certain_tail_is_exact_in_float32_too(lib):
    # exp(-30) = 9.4e-14 is far below float32's epsilon: log(1 + 9.4e-14) is exactly 0 there
    x = np.array([[30.0, 0.0, -5.0]], dtype=np.float32)
    if lib == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(x)
    lp = np.asarray(log_softmax(x))
    assert lp.dtype == np.float32
    want = special.log_softmax(np.array([[30.0, 0.0, -5.0]]), axis=1)
    assert lp[0, 0] == pytest.approx(want[0, 0], rel=1e-5)
    assert lp[0, 0] < 0
    np.testing.assert_allclose(np.asarray(logsumexp(x)), special.logsumexp([[30.0, 0.0, -5.0]], axis=1), rtol=1e-7)


def test_masked_and_bad_rows_keep_their_convention():
    x = np.array([[-np.inf, -np.inf], [-np.inf, 3.0], [np.nan, 1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(logsumexp(x), special.logsumexp(x, axis=1))
    lp = log_softmax(x)
    assert np.isnan(lp[0]).all() and np.isnan(lp[2]).all()
    np.testing.assert_array_equal(lp[1], [-np.inf, 0.0])
    np.testing.assert_allclose(lp[3], np.log(0.5), rtol=1e-15)
