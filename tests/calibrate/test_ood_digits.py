"""Out-of-distribution scores and group-level conformal sets on real data: scikit-learn's digits.

A logistic regression is trained here (scikit-learn) on half of the digits 0-4 and
run through twoends as a torch ``Linear`` with the same weights (its logits are
sklearn's ``decision_function``). In-distribution: the other half of 0-4, written
as 8x8 PNGs in a folder per class. Out-of-distribution: every 5-9 digit, and real
non-digit images at the digits' scale (8x8 grey crops of scikit-image's photos and
textures, and noise).

Claims: the energy score's AUROC >= 0.8 (equal to scikit-learn's ``roc_auc_score``
on the same scores); a threshold fitted at 95% TPR on one half of the held-out
in-distribution images keeps >= 93% of the other half; group-level conformal sets
(even = 0, 2, 4 / odd = 1, 3) cover their nominal 1 - alpha on held-out splits - shown
with a deliberately weak model (15 training images, strong regularisation: ~80% right
on parity), since with a 99% accurate one every set is a single right group.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")
linear_model = pytest.importorskip("sklearn.linear_model")
metrics = pytest.importorskip("sklearn.metrics")

NAMES = [str(d) for d in range(5)]
GROUPS = {"even": [0, 2, 4], "odd": ["1", "3"]}


@pytest.fixture(scope="module")
def digits():
    x, y = datasets.load_digits(return_X_y=True)
    inside = np.flatnonzero(y < 5)
    perm = np.random.default_rng(0).permutation(inside)
    train, held = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    model = linear_model.LogisticRegression(max_iter=5000).fit(x[train], y[train])
    weak = linear_model.LogisticRegression(C=1e-3, max_iter=5000).fit(x[train[:15]], y[train[:15]])
    model.weak = weak
    return x, y, model, held, np.flatnonzero(y >= 5)


def _non_digits(n_crops: int = 12) -> list[np.ndarray]:
    """Real non-digit images at the digits' scale: 8x8 grey, 0..16 (photos, textures, noise)."""
    from PIL import Image
    from skimage import data

    out = []
    rng = np.random.default_rng(1)
    for name in ("brick", "grass", "gravel", "camera", "coffee", "chelsea", "rocket", "astronaut"):
        img = Image.fromarray(getattr(data, name)()).convert("L")
        w, h = img.size
        for _ in range(n_crops):
            s = int(rng.integers(32, min(w, h) // 2))
            left, top = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            crop = img.crop((left, top, left + s, top + s)).resize((8, 8), Image.BILINEAR)
            out.append(np.asarray(crop, dtype=np.float64) / 255 * 16)
    out += [rng.uniform(0, 16, (8, 8)) for _ in range(16)]  # noise
    return out


def _save(folder, rows) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(rows):  # pixel * 15 (0..240): the spec's scale 1/15 gives the 0..16 values back
        Image.fromarray(np.round(np.asarray(r).reshape(8, 8) * 15).astype(np.uint8), mode="L").save(
            folder / f"{i:04d}.png"
        )


@pytest.fixture(scope="module")
def folders(digits, tmp_path_factory):
    x, y, _, held, outside = digits
    root = tmp_path_factory.mktemp("ood-digits")
    for d in range(5):
        _save(root / "in" / str(d), x[held][y[held] == d])
    _save(root / "out" / "digits-5-9", x[outside])
    _save(root / "out" / "photos-textures-noise", _non_digits())
    return root / "in", root / "out"


class _FirstChannel(torch.nn.Module):
    def forward(self, x):
        return x[:, 0].reshape(x.shape[0], 64)


def _wrap(model, **kwargs):
    import twoends

    linear = torch.nn.Linear(64, 5)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(model.coef_))
        linear.bias.copy_(torch.from_numpy(model.intercept_))
    spec = twoends.ImageSpec(
        input_size=(8, 8), resize_mode="exact", crop="none", scale=1 / 15, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
    )
    return twoends.wrap(
        torch.nn.Sequential(_FirstChannel(), linear),
        spec=spec,
        labels=NAMES,
        name="digits-0-4-logreg",
        device="cpu",
        batch_size=64,
        **kwargs,
    )


def test_energy_separates_digits_5_to_9_and_real_images(digits, folders):
    from twoends.calibrate.data import load_labelled
    from twoends.calibrate.evaluate import evaluate

    x, y, model, held, outside = digits
    clf = _wrap(model)
    result = evaluate(clf, load_labelled(folders[0], NAMES), ood_data=str(folders[1]))
    ood = result.ood
    # the same scores by hand, straight from scikit-learn's decision function, and sklearn's AUROC on them
    from scipy.special import logsumexp

    id_scores = -logsumexp(model.decision_function(x[held]), axis=1)
    preds = clf.predict(str(folders[1]))
    out_scores = np.array([p.ood_score for p in preds])
    n_digit = len(outside)
    np.testing.assert_allclose(
        np.sort(out_scores[:n_digit]),
        np.sort(-logsumexp(model.decision_function(x[outside]), axis=1)),
        rtol=1e-5,
        atol=1e-4,
    )
    expected = metrics.roc_auc_score(
        np.r_[np.zeros(len(id_scores)), np.ones(len(out_scores))], np.r_[id_scores, out_scores]
    )
    print(
        f"\ndigits 0-4 logistic regression (accuracy {result.report.accuracy:.3f}): energy AUROC {ood['auroc']:.4f} "
        f"(sklearn {expected:.4f}), FPR at 95% TPR {ood['fpr_at_95_tpr']:.4f}; {ood['n_in']} in, {ood['n_out']} out "
        f"({n_digit} digits 5-9, {ood['n_out'] - n_digit} photos/textures/noise)"
    )
    assert ood["n_in"] == len(held) and ood["n_out"] == len(out_scores)
    assert ood["auroc"] == pytest.approx(expected, abs=2e-4)  # float32 model vs float64 sklearn
    assert ood["auroc"] >= 0.8
    # FPR at 95% TPR by sklearn's ROC curve (in-distribution positive, decision value -score)
    fpr, tpr, _ = metrics.roc_curve(
        np.r_[np.ones(len(id_scores)), np.zeros(len(out_scores))],
        -np.r_[id_scores, out_scores],
        drop_intermediate=False,
    )
    assert ood["fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=2 / len(out_scores))


def test_threshold_keeps_held_out_in_distribution_and_flags_rows(digits, folders, tmp_path):
    from twoends.calibrate.data import load_labelled
    from twoends.calibrate.evaluate import collect_logits
    from twoends.calibrate.fit import fit_calibration

    _, _, model, _, _ = digits
    data = load_labelled(folders[0], NAMES)
    logits, targets, _, scores = collect_logits(_wrap(model), data, return_ood=True)
    kept = []
    for seed in range(10):
        cal = fit_calibration(
            logits, targets, NAMES, model="digits-0-4-logreg", method="none", ood_tpr=0.95, seed=seed, ood_scores=scores
        ).calibration
        kept.append(cal.metrics["ood"]["held_out_kept"])
    n = cal.metrics["ood"]["n_held_out"]
    print(
        f"\nthreshold at 95% TPR fitted on {cal.ood.n} held-out 0-4 images keeps {np.mean(kept):.4f} of the "
        f"other {n} on average over 10 splits (min {np.min(kept):.4f})"
    )
    # the guarantee is >= 95% in expectation; one split of ~225 scatters by ~1.5%
    assert np.mean(kept) >= 0.93 and np.min(kept) >= 0.9
    path = cal.save(tmp_path / "ood.json")
    clf = _wrap(model, calibration=str(path))
    assert clf.describe()["ood"]["threshold"] == cal.ood.threshold
    rows = clf.predict(str(folders[1])) + clf.predict(str(folders[0]))
    assert all(p.ood == (p.ood_score > cal.ood.threshold) for p in rows)
    outside = [p.ood for p in rows if "/out/" in p.input]
    inside = [p.ood for p in rows if "/in/" in p.input]
    assert np.mean(outside) > 0.5 and np.mean(inside) < 0.1


def test_group_level_conformal_sets_cover_even_and_odd(digits, folders, tmp_path):
    from twoends.calibrate.data import load_labelled
    from twoends.calibrate.evaluate import collect_logits
    from twoends.calibrate.fit import fit_calibration

    model = digits[2].weak
    data = load_labelled(folders[0], NAMES)
    logits, targets, _ = collect_logits(_wrap(model), data)
    parity = targets % 2
    alpha, cover, size, acc = 0.1, [], [], []
    for seed in range(10):
        fitted = fit_calibration(logits, targets, NAMES, conformal=alpha, groups=GROUPS, level="groups", seed=seed)
        c = fitted.calibration.metrics["conformal"]
        cover.append(c["coverage"])
        size.append(c["mean_set_size"])
        acc.append(fitted.calibration.metrics["after"]["accuracy"])
    print(
        f"\ngroup-level (even/odd) LAC sets, alpha={alpha}, weak model (parity accuracy {np.mean(acc):.3f}): "
        f"coverage {np.mean(cover):.4f} (min {np.min(cover):.4f}), mean set size {np.mean(size):.3f}"
    )
    # >= 1 - alpha in expectation; ten splits of ~225 reported images leave ~1% of noise on the mean
    assert np.mean(acc) < 1 - alpha  # the sets must do work: the top group alone would not cover
    assert np.mean(cover) >= 1 - alpha - 0.015 and 1.0 < np.mean(size) < 2.0
    cal = fitted.calibration
    assert cal.groups.names == ("even", "odd") and cal.level == "groups"  # 0-4 are all covered: no "(other)"
    clf = _wrap(model, calibration=str(cal.save(tmp_path / "groups.json")))
    report = fitted.report_index
    preds = clf.predict([data.paths[i] for i in report])
    hits = [("even", "odd")[parity[i]] in p.prediction_set for p, i in zip(preds, report)]
    assert np.mean(hits) == pytest.approx(c["coverage"], abs=1e-9)  # the classifier's sets are the fitted ones
    for p in preds[:50]:
        assert set(p.prediction_set) <= {"even", "odd"}
        g = dict((s.label, s.probability) for s in p.groups)
        assert g["even"] == pytest.approx(p.probabilities[[0, 2, 4]].sum(), abs=1e-6)
