"""Per-class multi-label thresholds against a brute-force search over every threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twoends.calibrate import ClassThresholds, apply_thresholds, fit_thresholds
from twoends.errors import CalibrationError, ConfigError

sk_metrics = pytest.importorskip("sklearn.metrics")


def multilabel_problem(seed: int, n: int = 400, c: int = 6, rounding: int | None = None):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2 + rng.normal(size=c)
    probs = 1 / (1 + np.exp(-logits))
    if rounding is not None:  # coarse probabilities: many ties
        probs = np.round(probs, rounding)
    targets = (rng.random((n, c)) < probs).astype(int)
    return probs, targets


def brute_force(p, t, objective, min_precision=None):
    """Try every observed probability as a threshold; same tie rules as documented."""
    best_t, best_v = None, None
    t = t.astype(bool)
    for v in sorted(set(p.tolist()), reverse=True):  # high to low
        pred = p >= v
        tp, fp, fn = np.sum(pred & t), np.sum(pred & ~t), np.sum(~pred & t)
        if objective == "f1":
            score = 2 * tp / (2 * tp + fp + fn)
            if best_v is None or score > best_v:  # strict: ties keep the higher threshold
                best_t, best_v = v, score
        else:
            score = tp / (tp + fp)
            if score >= min_precision:
                best_t, best_v = v, score  # keep going down: the lowest threshold wins
    return best_t, best_v


@pytest.mark.parametrize("seed,rounding", [(0, None), (1, None), (2, 2), (3, 1)])
def test_f1_thresholds_match_brute_force(seed, rounding):
    probs, targets = multilabel_problem(seed, rounding=rounding)
    fitted = fit_thresholds(probs, targets, objective="f1")
    for c in range(probs.shape[1]):
        t, v = brute_force(probs[:, c], targets[:, c], "f1")
        assert fitted.thresholds[c] == t
        assert v == pytest.approx(sk_metrics.f1_score(targets[:, c], probs[:, c] >= t))
        assert fitted.achieved[c] == pytest.approx(v, abs=1e-12)
    assert fitted.notes == {}


@pytest.mark.parametrize("seed,rounding,target", [(0, None, 0.8), (1, 2, 0.7), (4, None, 0.9)])
def test_precision_thresholds_match_brute_force(seed, rounding, target):
    probs, targets = multilabel_problem(seed, rounding=rounding)
    fitted = fit_thresholds(probs, targets, objective="precision", min_precision=target)
    for c in range(probs.shape[1]):
        t, v = brute_force(probs[:, c], targets[:, c], "precision", target)
        if t is None:
            assert c in fitted.notes and "not reached" in fitted.notes[c]
        else:
            assert fitted.thresholds[c] == t
            assert fitted.achieved[c] == pytest.approx(v, abs=1e-12) and v >= target


def test_unreachable_precision_uses_the_most_precise_threshold():
    p = np.array([[0.9], [0.8], [0.7], [0.6]])
    t = np.array([[0], [1], [0], [1]])
    fitted = fit_thresholds(p, t, objective="precision", min_precision=0.9)
    # precisions at 0.9, 0.8, 0.7, 0.6: 0, 1/2, 1/3, 2/4 -> best 0.5, lowest such threshold 0.6
    assert fitted.thresholds[0] == 0.6 and fitted.achieved[0] == 0.5
    assert "not reached" in fitted.notes[0]


def test_class_without_positives_gets_fallback_and_a_note():
    probs, targets = multilabel_problem(5, c=3)
    targets[:, 1] = 0
    fitted = fit_thresholds(probs, targets, fallback=0.5)
    assert fitted.thresholds[1] == 0.5 and np.isnan(fitted.achieved[1])
    assert list(fitted.notes) == [1] and "no positive" in fitted.notes[1]
    back = ClassThresholds.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(back.thresholds, fitted.thresholds)
    assert back.notes == fitted.notes


def test_fitted_thresholds_beat_half_on_the_fitting_data():
    probs, targets = multilabel_problem(6, n=1000)
    fitted = fit_thresholds(probs, targets)
    pred = apply_thresholds(probs, fitted)
    for c in range(probs.shape[1]):
        at_half = sk_metrics.f1_score(targets[:, c], probs[:, c] >= 0.5)
        assert sk_metrics.f1_score(targets[:, c], pred[:, c]) == pytest.approx(fitted.achieved[c])
        assert fitted.achieved[c] >= at_half - 1e-12


def test_bad_inputs():
    probs, targets = multilabel_problem(7, n=20, c=2)
    with pytest.raises(CalibrationError, match="logits"):
        fit_thresholds(probs * 3 - 1, targets)
    with pytest.raises(CalibrationError, match="only 0 and 1"):
        fit_thresholds(probs, targets * 2)
    with pytest.raises(CalibrationError, match="shape"):
        fit_thresholds(probs, targets[:, :1])
    with pytest.raises(ConfigError, match="min_precision"):
        fit_thresholds(probs, targets, objective="precision")
    with pytest.raises(ConfigError, match="min_precision"):
        fit_thresholds(probs, targets, min_precision=0.9)
    with pytest.raises(ConfigError, match="objective"):
        fit_thresholds(probs, targets, objective="recall")
    with pytest.raises(CalibrationError, match="one threshold per class"):
        apply_thresholds(probs, np.array([0.5, 0.5, 0.5]))
