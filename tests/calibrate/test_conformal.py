"""Split conformal against straightforward reference formulas, and coverage on calibrated data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twoends.calibrate import ConformalThreshold, fit_conformal, prediction_sets, set_members
from twoends.calibrate.conformal import conformal_scores, quantile_rank
from twoends.errors import CalibrationError, ConfigError
from twoends.head import softmax


def calibrated(seed: int, n: int, c: int = 10, scale: float = 2.0):
    """Probabilities softmax(z) and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = softmax(rng.normal(size=(n, c)) * scale)
    labels = np.minimum((rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1), c - 1)
    return p, labels


# ---- references, written from Angelopoulos & Bates, "A gentle introduction to conformal prediction" ----
# One deliberate change: the paper's code takes np.quantile(..., method="higher") at level
# ceil((n+1)(1-alpha))/n, which lands on the (k+1)-th smallest score when k < n. The theorem's
# qhat is the k-th smallest, the inverse-CDF empirical quantile, so the references use
# method="inverted_cdf" (see test_higher_method_is_one_order_statistic_more_conservative).

QUANTILE = "inverted_cdf"


def ref_lac(cal_smx, cal_labels, val_smx, alpha):
    n = cal_labels.shape[0]
    cal_scores = 1 - cal_smx[np.arange(n), cal_labels]
    q_level = np.ceil((n + 1) * (1 - alpha)) / n
    qhat = np.quantile(cal_scores, q_level, method=QUANTILE)
    return qhat, val_smx >= (1 - qhat)


def ref_aps(cal_smx, cal_labels, val_smx, alpha):
    n = cal_labels.shape[0]
    cal_pi = cal_smx.argsort(1)[:, ::-1]
    cal_srt = np.take_along_axis(cal_smx, cal_pi, axis=1).cumsum(axis=1)
    cal_scores = np.take_along_axis(cal_srt, cal_pi.argsort(axis=1), axis=1)[range(n), cal_labels]
    qhat = np.quantile(cal_scores, np.ceil((n + 1) * (1 - alpha)) / n, method=QUANTILE)
    val_pi = val_smx.argsort(1)[:, ::-1]
    val_srt = np.take_along_axis(val_smx, val_pi, axis=1).cumsum(axis=1)
    return qhat, np.take_along_axis(val_srt <= qhat, val_pi.argsort(axis=1), axis=1)


def ref_score_loop(p_row, label, u, lam, k_reg):
    """Angelopoulos et al. 2021 (RAPS), eq. for E(x, y, u): one sample, one label, by hand."""
    order = sorted(range(len(p_row)), key=lambda j: -p_row[j])
    o = order.index(label) + 1  # 1-based rank
    return sum(p_row[order[j]] for j in range(o - 1)) + u * p_row[label] + lam * max(0, o - k_reg)


def ref_raps(cal_smx, cal_labels, val_smx, alpha, lam, k_reg, cal_u, val_u):
    n = len(cal_labels)
    cal_scores = np.array([ref_score_loop(cal_smx[i], cal_labels[i], cal_u[i], lam, k_reg) for i in range(n)])
    qhat = np.quantile(cal_scores, np.ceil((n + 1) * (1 - alpha)) / n, method=QUANTILE)
    mask = np.array(
        [[ref_score_loop(row, c, u, lam, k_reg) <= qhat for c in range(len(row))] for row, u in zip(val_smx, val_u)]
    )
    return qhat, mask


@pytest.mark.parametrize("n,alpha", [(100, 0.1), (499, 0.05), (1000, 0.2), (50, 0.3), (19, 0.05)])
@pytest.mark.parametrize("method,ref", [("lac", ref_lac), ("aps", ref_aps)])
def test_matches_gentle_introduction(n, alpha, method, ref):
    cal_p, cal_y = calibrated(n, n)
    val_p, _ = calibrated(n + 1, 400)
    qhat, mask = ref(cal_p, cal_y, val_p, alpha)
    t = fit_conformal(cal_p, cal_y, alpha, method)
    assert t.qhat == qhat  # the same order statistic, bit for bit
    np.testing.assert_array_equal(prediction_sets(val_p, t, allow_empty=True), mask)


@pytest.mark.parametrize(
    "method,randomized,lam,k_reg",
    [("raps", False, 0.01, 5), ("raps", True, 0.01, 5), ("raps", True, 0.2, 2), ("aps", True, 0.0, 0)],
)
def test_raps_and_randomized_aps_match_the_paper_formula(method, randomized, lam, k_reg):
    cal_p, cal_y = calibrated(7, 300)
    val_p, _ = calibrated(8, 120)
    cal_u = np.random.default_rng(1).random(300) if randomized else np.ones(300)
    val_u = np.random.default_rng(2).random(120) if randomized else np.ones(120)
    qhat, mask = ref_raps(cal_p, cal_y, val_p, 0.1, lam, k_reg, cal_u, val_u)
    extra = {"lam": lam, "k_reg": k_reg} if method == "raps" else {}
    t = fit_conformal(cal_p, cal_y, 0.1, method, randomized=randomized, seed=1, **extra)
    assert t.qhat == pytest.approx(qhat, abs=1e-12)
    np.testing.assert_array_equal(prediction_sets(val_p, t, allow_empty=True, seed=2), mask)


def test_raps_with_no_penalty_is_aps():
    p, y = calibrated(3, 500)
    np.testing.assert_allclose(
        conformal_scores(p, "raps", params={"lam": 0.0, "k_reg": 3}), conformal_scores(p, "aps"), atol=0
    )


@pytest.mark.parametrize(
    "method,kwargs",
    [("lac", {}), ("aps", {}), ("aps", {"randomized": True}), ("raps", {"randomized": True}), ("raps", {})],
)
def test_coverage_on_calibrated_data_over_many_splits(method, kwargs):
    alpha, n_cal = 0.1, 400
    coverages, sizes = [], []
    for split in range(300):
        # fresh i.i.d. data each time: the guarantee is an average over calibration sets
        p, y = calibrated(1000 + split, 1000)
        cal, test = np.arange(n_cal), np.arange(n_cal, 1000)
        t = fit_conformal(p[cal], y[cal], alpha, method, seed=split, **kwargs)
        mask = prediction_sets(p[test], t, allow_empty=True, seed=10_000 + split)
        coverages.append(mask[np.arange(len(test)), y[test]].mean())
        sizes.append(mask.sum(1).mean())
    mean = float(np.mean(coverages))
    # marginal guarantee: 1 - alpha <= coverage <= 1 - alpha + 1/(n+1) (continuous scores),
    # up to the Monte-Carlo error of 300 splits (standard error about 0.001): 3 standard errors
    assert mean >= 1 - alpha - 0.003
    assert mean <= 1 - alpha + 1 / (n_cal + 1) + 0.003
    assert 1.0 < np.mean(sizes) < 10.0  # informative sets, not all classes


def test_qhat_is_the_kth_smallest_score():
    # LAC scores 1 - p_y, with p_y distinct and known
    n = 20
    p_true = np.linspace(0.05, 0.95, n)
    probs = np.stack([p_true, 1 - p_true], axis=1)
    t = fit_conformal(probs, np.zeros(n, int), alpha=0.1, method="lac")
    k = int(np.ceil(21 * 0.9))  # 19
    assert quantile_rank(n, 0.1) == k
    assert t.qhat == pytest.approx(np.sort(1 - p_true)[k - 1], abs=1e-15)


def test_higher_method_is_one_order_statistic_more_conservative():
    scores = np.arange(1.0, 101.0)  # n = 100, the k-th smallest is k
    k = quantile_rank(100, 0.1)
    assert k == 91
    assert np.quantile(scores, k / 100, method="inverted_cdf") == 91.0
    assert np.quantile(scores, k / 100, method="higher") == 92.0


def test_quantile_rank_edges_and_too_few_samples():
    assert quantile_rank(19, 0.05) == 19  # (n+1)(1-alpha) = 19 exactly, despite float rounding
    assert quantile_rank(99, 0.1) == 90
    with pytest.raises(CalibrationError, match="at least 19 calibration samples"):
        quantile_rank(18, 0.05)
    p, y = calibrated(0, 5)
    with pytest.raises(CalibrationError, match="n=5"):
        fit_conformal(p, y, alpha=0.1)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="alpha"):
            quantile_rank(100, bad)


def test_empty_sets_get_the_top_class_by_default():
    cal_p, cal_y = calibrated(5, 500, scale=0.3)  # soft probabilities: APS qhat well below 1
    t = fit_conformal(cal_p, cal_y, 0.1, "aps")
    confident = np.array([[0.98, 0.01] + [0.01 / 8] * 8])  # top class alone exceeds qhat
    assert t.qhat < 0.98
    assert not prediction_sets(confident, t, allow_empty=True).any()
    np.testing.assert_array_equal(set_members(prediction_sets(confident, t))[0], [0])
    raw = prediction_sets(cal_p, t, allow_empty=True)
    fixed = prediction_sets(cal_p, t)
    assert np.all(fixed >= raw) and np.all(fixed.sum(1) >= 1)


def test_set_members_order():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    mask = np.array([[True, True, True], [False, True, True]])
    assert [m.tolist() for m in set_members(mask)] == [[0, 1, 2], [1, 2]]
    assert [m.tolist() for m in set_members(mask, probs)] == [[1, 2, 0], [2, 1]]


def test_round_trip_through_json():
    p, y = calibrated(9, 300)
    t = fit_conformal(p, y, 0.05, "raps", randomized=True, lam=0.05, k_reg=2, seed=3)
    back = ConformalThreshold.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t
    np.testing.assert_array_equal(prediction_sets(p, back, seed=4), prediction_sets(p, t, seed=4))


def test_bad_arguments():
    p, y = calibrated(1, 200)
    with pytest.raises(ConfigError, match="method"):
        fit_conformal(p, y, 0.1, "naive")
    with pytest.raises(ConfigError, match="lac"):
        fit_conformal(p, y, 0.1, "lac", randomized=True)
    with pytest.raises(ConfigError, match="raps"):
        fit_conformal(p, y, 0.1, "aps", lam=0.1)
    with pytest.raises(ConfigError, match="lam"):
        fit_conformal(p, y, 0.1, "raps", lam=-1.0)
    with pytest.raises(CalibrationError, match="sum to 1"):
        fit_conformal(p * 0.5, y, 0.1)
    t = fit_conformal(p, y, 0.1)
    with pytest.raises(CalibrationError, match="10 classes"):
        prediction_sets(p[:, :5] / p[:, :5].sum(1, keepdims=True), t)
    with pytest.raises(ConfigError, match="ConformalThreshold"):
        prediction_sets(p, 0.9)
    with pytest.raises(CalibrationError, match="keys"):
        ConformalThreshold.from_dict({"method": "lac"})


def test_scores_reject_bad_u():
    p, _ = calibrated(0, 10)
    with pytest.raises(ConfigError, match="u as 10"):
        conformal_scores(p, "aps", u=np.full(10, 2.0))
    with pytest.raises(ConfigError, match="u as 10"):
        conformal_scores(p, "aps", u=np.ones(3))
