"""Metrics against netcal, torchmetrics and scikit-learn on the same random inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from twoends.calibrate import (
    CalibrationMetrics,
    accuracy,
    brier_score,
    calibration_report,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from twoends.errors import CalibrationError, ConfigError
from twoends.head import softmax

netcal_metrics = pytest.importorskip("netcal.metrics")
tm_cls = pytest.importorskip("torchmetrics.functional.classification")
sk_metrics = pytest.importorskip("sklearn.metrics")


def random_problem(seed: int, n: int = 2000, c: int = 7):
    """Logits of varied sharpness and labels that agree with them only in part."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * rng.uniform(0.5, 4.0)
    labels = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, c, n))
    return logits, labels


CASES = [(seed, n_bins) for seed in range(4) for n_bins in (5, 10, 15, 20)]


@pytest.mark.parametrize("seed,n_bins", CASES)
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_ece_mce_match_netcal(seed, n_bins, binning):
    logits, labels = random_problem(seed)
    probs = softmax(logits)
    equal = binning == "width"
    ref_ece = netcal_metrics.ECE(bins=n_bins, equal_intervals=equal).measure(probs, labels)
    ref_mce = netcal_metrics.MCE(bins=n_bins, equal_intervals=equal).measure(probs, labels)
    ece = expected_calibration_error(logits, labels, n_bins=n_bins, binning=binning)
    mce = maximum_calibration_error(logits, labels, n_bins=n_bins, binning=binning)
    assert ece == pytest.approx(ref_ece, abs=1e-9)
    assert mce == pytest.approx(ref_mce, abs=1e-9)
    assert ece > 0.01  # a non-trivial value, so agreement means something


@pytest.mark.parametrize("seed,n_bins", CASES)
def test_ece_mce_match_torchmetrics(seed, n_bins):
    logits, labels = random_problem(seed)
    # torchmetrics casts confidences to float32: give both sides the same float32 values
    probs32 = softmax(logits).astype(np.float32)
    t_probs, t_labels = torch.from_numpy(probs32), torch.from_numpy(labels)
    c = logits.shape[1]
    ref_ece = tm_cls.multiclass_calibration_error(t_probs, t_labels, num_classes=c, n_bins=n_bins, norm="l1")
    ref_mce = tm_cls.multiclass_calibration_error(t_probs, t_labels, num_classes=c, n_bins=n_bins, norm="max")
    probs = probs32.astype(np.float64)
    ece = expected_calibration_error(probs, labels, n_bins=n_bins, from_logits=False)
    mce = maximum_calibration_error(probs, labels, n_bins=n_bins, from_logits=False)
    assert ece == pytest.approx(ref_ece.item(), abs=1e-6)
    assert mce == pytest.approx(ref_mce.item(), abs=1e-6)


def test_confidence_of_exactly_one_goes_in_last_bin_like_netcal_not_torchmetrics():
    """The one documented convention difference: torchmetrics gives conf == 1.0 a bin of its own."""
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.95, 0.05], [0.95, 0.05]])
    labels = np.array([0, 1, 0, 0])  # conf-1.0 bin: 50% right; 0.95 bin: 100% right
    ours = expected_calibration_error(probs, labels, n_bins=10, from_logits=False)
    # one merged last bin: mean conf 0.975, accuracy 0.75
    assert ours == pytest.approx(0.225, abs=1e-12)
    assert ours == pytest.approx(netcal_metrics.ECE(bins=10).measure(probs, labels), abs=1e-9)
    tm = tm_cls.multiclass_calibration_error(
        torch.tensor(probs), torch.tensor(labels), num_classes=2, n_bins=10, norm="l1"
    ).item()
    # separate bins: 0.5 * |0.5 - 1.0| + 0.5 * |1.0 - 0.95| = 0.275
    assert tm == pytest.approx(0.275, abs=1e-6)


def test_bins_are_left_closed_and_the_last_is_closed():
    # n_bins=4 gives exactly representable edges 0, .25, .5, .75, 1
    probs = np.array([[0.5, 0.5], [0.75, 0.25], [1.0, 0.0], [0.6, 0.4]])
    bins = reliability_bins(probs, np.array([0, 0, 0, 1]), n_bins=4, from_logits=False)
    np.testing.assert_array_equal(bins.count, [0, 0, 2, 2])
    np.testing.assert_allclose(bins.conf_sum, [0, 0, 1.1, 1.75])
    np.testing.assert_array_equal(bins.correct_sum, [0, 0, 1, 2])


def brute_force_bins(probs, labels, edges):
    """Bin by bin, sample by sample, straight from the definition."""
    conf, pred = probs.max(1), probs.argmax(1)
    out = []
    for k in range(len(edges) - 1):
        last = k == len(edges) - 2
        inside = (conf >= edges[k]) & ((conf <= edges[k + 1]) if last else (conf < edges[k + 1]))
        out.append((inside.sum(), conf[inside].sum(), (pred[inside] == labels[inside]).sum()))
    return np.array(out, dtype=float).T


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_reliability_bins_match_brute_force(binning):
    logits, labels = random_problem(11, n=777, c=5)
    probs = softmax(logits)  # given as probabilities so both sides bin the very same floats
    bins = reliability_bins(probs, labels, n_bins=12, binning=binning, from_logits=False)
    count, conf_sum, correct = brute_force_bins(probs, labels, bins.edges)
    np.testing.assert_array_equal(bins.count, count)
    np.testing.assert_allclose(bins.conf_sum, conf_sum, rtol=1e-12)
    np.testing.assert_array_equal(bins.correct_sum, correct)
    nonempty = count > 0
    expected_ece = np.sum(
        count[nonempty] / 777 * np.abs(correct[nonempty] / count[nonempty] - conf_sum[nonempty] / count[nonempty])
    )
    assert bins.ece == pytest.approx(expected_ece, abs=1e-12)
    if binning == "mass":
        # equal mass: every bin holds n / n_bins samples up to rounding
        assert count.max() - count.min() <= 1
    d = bins.to_dict()
    assert len(d["edges"]) == 13 and sum(d["count"]) == 777


def test_equal_mass_bins_with_tied_confidences():
    # few distinct confidences: quantile edges coincide and some bins must stay empty
    rng = np.random.default_rng(2)
    probs = softmax(rng.integers(0, 3, size=(300, 4)).astype(float))
    probs[:40] = [1.0, 0.0, 0.0, 0.0]  # ties at the closed right end as well
    labels = rng.integers(0, 4, 300)
    bins = reliability_bins(probs, labels, n_bins=15, binning="mass", from_logits=False)
    assert np.any(np.diff(bins.edges) == 0)
    count, conf_sum, correct = brute_force_bins(probs, labels, bins.edges)
    np.testing.assert_array_equal(bins.count, count)
    np.testing.assert_allclose(bins.conf_sum, conf_sum, rtol=1e-12)
    np.testing.assert_array_equal(bins.correct_sum, correct)
    assert bins.count.sum() == 300 and np.any(bins.count == 0)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_streaming_equals_one_shot(binning):
    logits, labels = random_problem(5, n=1500, c=10)
    one_shot = calibration_report(logits, labels, n_bins=15, binning=binning, top_k=(1, 3, 5))
    stream = CalibrationMetrics(n_bins=15, binning=binning, top_k=(1, 3, 5))
    cuts = [0, 1, 7, 300, 301, 999, 1500]  # uneven batches, including a batch of one
    for a, b in zip(cuts[:-1], cuts[1:]):
        stream.update(logits[a:b], labels[a:b])
    streamed = stream.compute()
    assert stream.n == 1500
    for name in ("accuracy", "nll", "brier", "ece", "mce"):
        assert getattr(streamed, name) == pytest.approx(getattr(one_shot, name), rel=1e-12, abs=1e-15)
    assert streamed.top_k == one_shot.top_k
    np.testing.assert_allclose(streamed.bins.edges, one_shot.bins.edges, rtol=0, atol=0)
    np.testing.assert_array_equal(streamed.bins.count, one_shot.bins.count)
    if binning == "width":
        # equal-width state is per-bin sums only: nothing kept per sample
        assert stream._state.confidences == [] and stream._state.corrects == []
    stream.reset()
    with pytest.raises(CalibrationError, match="update"):
        stream.compute()


def test_nll_brier_match_sklearn_and_torch():
    logits, labels = random_problem(3, n=1000, c=6)
    probs = softmax(logits)
    nll = negative_log_likelihood(logits, labels)
    assert nll == pytest.approx(sk_metrics.log_loss(labels, probs, labels=range(6)), rel=1e-10)
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert nll == pytest.approx(ce, rel=1e-12)
    brier = brier_score(logits, labels)
    # scikit-learn >= 1.7: multiclass Brier = sum over classes, mean over samples (not halved for 3+ classes)
    assert brier == pytest.approx(sk_metrics.brier_score_loss(labels, probs, labels=range(6)), rel=1e-10)
    onehot = np.eye(6)[labels]
    assert brier == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)), rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_matches_torchmetrics_and_sklearn(k):
    logits, labels = random_problem(4, n=1200, c=8)
    ours = accuracy(logits, labels, k=k)
    ref = tm_cls.multiclass_accuracy(
        torch.from_numpy(logits), torch.from_numpy(labels), num_classes=8, top_k=k, average="micro"
    ).item()
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ours == pytest.approx(sk_metrics.top_k_accuracy_score(labels, logits, k=k, labels=range(8)), abs=1e-12)


def test_top1_ties_break_like_argmax():
    logits = np.zeros((4, 3))  # every class tied: argmax says class 0
    labels = np.array([0, 1, 2, 0])
    assert accuracy(logits, labels) == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert accuracy(logits, labels, k=2) == pytest.approx(0.75)  # classes 0 and 1 make the top 2


def test_probabilities_and_logits_give_the_same_report():
    logits, labels = random_problem(8, n=500, c=4)
    a = calibration_report(logits, labels, top_k=(1, 2))
    b = calibration_report(softmax(logits), labels, top_k=(1, 2), from_logits=False)
    for name in ("accuracy", "nll", "brier", "ece", "mce"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9)
    assert a.top_k == b.top_k
    assert set(a.to_dict()) >= {"ece", "nll", "brier", "bins", "top_k"}


def test_top_k_larger_than_classes():
    logits, labels = random_problem(1, n=50, c=3)
    report = calibration_report(logits, labels, top_k=(1, 5))
    assert set(report.top_k) == {1}
    with pytest.raises(ConfigError, match="k <="):
        accuracy(logits, labels, k=4)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 60),
    c=st.integers(2, 6),
    scale=st.floats(0.0, 30.0),
    n_bins=st.integers(1, 20),
    binning=st.sampled_from(["width", "mass"]),
)
def test_metric_ranges(seed, n, c, scale, n_bins, binning):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * scale
    labels = rng.integers(0, c, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scale=0 gives uniform logits
        r = calibration_report(logits, labels, n_bins=n_bins, binning=binning)
    assert 0.0 <= r.ece <= r.mce + 1e-12 <= 1.0 + 1e-12
    assert 0.0 <= r.brier <= 2.0 + 1e-12
    assert r.nll >= 0.0
    assert r.bins.n == n
    assert r.accuracy == pytest.approx(np.mean(logits.argmax(1) == labels))


# ---- input validation: every error says what was expected and what was got ----

BAD_INPUTS = [
    (np.zeros((5,)), np.zeros(5, int), "shape \\[N, C\\]"),
    (np.zeros((0, 3)), np.zeros(0, int), "at least one sample"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([0, 1]), "finite"),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), np.array([0, 1]), "finite"),
    (np.zeros((3, 1)), np.zeros(3, int), "at least 2 classes"),
    (np.zeros((3, 2)), np.array([0, 1, 2]), "in \\[0, 1\\]"),
    (np.zeros((3, 2)), np.array([0, -1, 1]), "in \\[0, 1\\]"),
    (np.zeros((3, 2)), np.array([0, 1]), "expected 3 labels"),
    (np.zeros((3, 2)), np.array([0.5, 1, 0]), "integer class indices"),
    (np.zeros((3, 2)), np.zeros((3, 2)), "shape \\[N\\]"),
]


@pytest.mark.parametrize("scores,labels,message", BAD_INPUTS)
def test_bad_inputs_raise_calibration_error(scores, labels, message):
    with pytest.raises(CalibrationError, match=message):
        expected_calibration_error(scores, labels)


def test_bad_probabilities():
    with pytest.raises(CalibrationError, match="look like logits"):
        brier_score(np.array([[2.0, -1.0]]), np.array([0]), from_logits=False)
    with pytest.raises(CalibrationError, match="sum to 1"):
        brier_score(np.array([[0.9, 0.9]]), np.array([0]), from_logits=False)


def test_probabilities_passed_as_logits_warn():
    probs = softmax(np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.warns(UserWarning, match="look like probabilities"):
        expected_calibration_error(probs, np.zeros(10, int))


@pytest.mark.parametrize("kwargs", [{"n_bins": 0}, {"n_bins": 2.5}, {"binning": "quantile"}])
def test_bad_config(kwargs):
    logits, labels = random_problem(0, n=10, c=3)
    with pytest.raises(ConfigError):
        expected_calibration_error(logits, labels, **kwargs)


def test_stream_rejects_a_change_in_class_count():
    m = CalibrationMetrics()
    m.update(np.zeros((2, 3)) + [0, 1, 2], np.array([0, 1]))
    with pytest.raises(CalibrationError, match="3 classes"):
        m.update(np.zeros((2, 4)), np.array([0, 1]))
