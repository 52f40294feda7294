"""OOD scores, group probabilities and AUROC against reference implementations (SciPy, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from twoends import ConfigError, Head, LabelError
from twoends.calibrate.ood import auroc, fit_ood_threshold, fpr_at_tpr
from twoends.head.groups import group_probabilities
from twoends.head.ood import ood_scores

RNG = np.random.default_rng(0)


def test_energy_max_logit_and_max_probability_match_scipy():
    z = RNG.normal(0, 4, (50, 10))
    np.testing.assert_allclose(ood_scores(z), -logsumexp(z, axis=1), rtol=1e-12)
    np.testing.assert_allclose(ood_scores(z, temperature=2.0), -2.0 * logsumexp(z / 2.0, axis=1), rtol=1e-12)
    np.testing.assert_allclose(ood_scores(z, activation="sigmoid"), -np.logaddexp(0, z).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(ood_scores(z, "max_logit"), -z.max(axis=1))
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    np.testing.assert_allclose(ood_scores(z, "max_probability", probabilities=p), -p.max(axis=1))
    big = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)  # no overflow at the extremes
    assert ood_scores(big)[0] == pytest.approx(-1e4) and ood_scores(big, activation="sigmoid")[0] == pytest.approx(
        -1e4 - np.log(2)
    )


def test_head_rows_carry_the_score_and_the_flag():
    z = RNG.normal(0, 3, (20, 4))
    rows = Head(list("abcd"), ood_threshold=-2.5)(z)
    for row, s in zip(rows, -logsumexp(z, axis=1)):
        assert row.ood_score == pytest.approx(s) and row.ood == (s > -2.5)
    assert all(r.ood is None for r in Head(list("abcd"))(z))  # no threshold: no verdict
    binary = Head(["spam"])(np.array([[3.0], [-2.0]]))  # one logit, shown [0, z]: energy -softplus(z)
    assert [r.ood_score for r in binary] == pytest.approx(list(-np.logaddexp(0, [3.0, -2.0])))
    with pytest.raises(ConfigError, match="ood_method"):
        Head(list("ab"), ood_method="entropy")


def test_head_scores_in_torch_stay_equal():
    torch = pytest.importorskip("torch")
    z = RNG.normal(0, 3, (8, 6)).astype(np.float32)
    groups = {"x": [0, 1], "y": ["c", "f"]}
    a = Head(list("abcdef"), groups=groups)(z)
    b = Head(list("abcdef"), groups=groups)(torch.from_numpy(z))
    for ra, rb in zip(a, b):
        assert ra.ood_score == pytest.approx(rb.ood_score, rel=1e-6)
        assert [(g.label, pytest.approx(g.probability, abs=1e-6)) for g in ra.groups] == [
            (g.label, g.probability) for g in rb.groups
        ]


def test_softmax_groups_are_sums_sorted_best_first():
    z = RNG.normal(0, 2, (10, 6))
    rows = Head(list("abcdef"), groups={"first": [0, 1, 2], "ef": ["e", "f"], "b": [1]})(z)
    for row in rows:
        p = row.probabilities
        want = {"first": p[:3].sum(), "ef": p[4:].sum(), "b": p[1]}
        assert {g.label: g.probability for g in row.groups} == pytest.approx(want, abs=1e-12)
        probs = [g.probability for g in row.groups]
        assert probs == sorted(probs, reverse=True)


def test_sigmoid_groups_are_any_of_under_independence_exact_in_the_tails():
    z = np.concatenate([RNG.normal(0, 3, (10, 5)), np.full((1, 5), -40.0), np.full((1, 5), 40.0)])
    rows = Head(list("abcde"), activation="sigmoid", groups={"abc": [0, 1, 2]})(z)
    p = expit(z)
    want = 1 - np.prod(1 - p[:, :3], axis=1)
    got = np.array([r.groups[0].probability for r in rows])
    np.testing.assert_allclose(got[:-2], want[:-2], rtol=1e-12)
    # all three classes at p = 4.2e-18: the naive 1 - prod(1 - p) rounds to 0, the answer is 3 p
    assert got[-2] == pytest.approx(3 * expit(-40.0), rel=1e-9) and want[-2] == 0.0
    assert got[-1] == 1.0
    direct = group_probabilities([[0, 1, 2]], logits=z, activation="sigmoid")
    np.testing.assert_allclose(direct[:, 0], got, rtol=1e-15)


def test_group_names_are_checked_with_did_you_mean():
    labels = ["tabby", "tiger cat", "Egyptian cat", "beagle"]
    with pytest.raises(LabelError, match=r"'tigercat' in group 'cat' \(did you mean 'tiger cat'"):
        Head(labels, groups={"cat": ["tabby", "tigercat"]})
    with pytest.raises(LabelError, match="out of range"):
        Head(labels, groups={"cat": [0, 7]})
    with pytest.raises(ConfigError, match="twice"):
        Head(labels, groups={"cat": [0, "tabby"]})
    with pytest.raises(ConfigError, match="non-empty list"):
        Head(labels, groups={"cat": []})


def test_auroc_and_fpr_match_scikit_learn_with_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    a = np.round(RNG.normal(0, 1, 300), 1)  # rounded: many ties
    b = np.round(RNG.normal(1, 1, 200), 1)
    y = np.r_[np.zeros(300), np.ones(200)]
    assert auroc(a, b) == pytest.approx(metrics.roc_auc_score(y, np.r_[a, b]), abs=1e-12)
    c, d = RNG.normal(0, 1, 400), RNG.normal(1.5, 1, 300)  # continuous: the ROC point where TPR reaches 95%
    fpr, tpr, _ = metrics.roc_curve(np.r_[np.ones(400), np.zeros(300)], -np.r_[c, d], drop_intermediate=False)
    assert fpr_at_tpr(c, d, 0.95) == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)


def test_threshold_is_the_conformal_rank_and_keeps_its_rate_on_new_data():
    scores = RNG.normal(0, 1, 999)
    t = fit_ood_threshold(scores, 0.95)
    assert t == np.sort(scores)[950 - 1]  # k = ceil(1000 * 0.95) = 950
    kept = [np.mean(RNG.normal(0, 1, 5000) <= fit_ood_threshold(RNG.normal(0, 1, 200), 0.95)) for _ in range(200)]
    assert np.mean(kept) >= 0.95 - 0.003  # >= 95% in expectation over fits
