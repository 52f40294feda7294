"""The calibration file: what it records, the round trip, refusing other models, applying it.

Numbers are checked against the calibrate module's own functions (tested
against netcal / torchmetrics / reference formulas in the sibling tests); the
real-data claims are in test_digits.py.
"""

import json
import warnings

import numpy as np
import pytest

import twoends
from twoends.calibrate import (
    calibration_report,
    fit_conformal,
    fit_temperature,
    fit_thresholds,
    prediction_sets,
    set_members,
)
from twoends.calibrate.calibration import Calibration, labels_hash
from twoends.calibrate.fit import fit_calibration
from twoends.errors import CalibrationError, ConfigError
from twoends.head import softmax

torch = pytest.importorskip("torch")

NAMES = ["cat", "dog", "fox"]


def _synthetic(n=600, seed=0):
    """Over-confident 3-class logits: informative, then scaled up x4."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    z = rng.normal(size=(n, 3))
    z[np.arange(n), y] += 1.5
    return 4.0 * z, y


def _fit(**kwargs):
    z, y = _synthetic()
    return z, y, fit_calibration(z, y, NAMES, model="tiny", data={"path": "/data/val"}, **kwargs)


def test_fit_on_one_split_report_on_the_other():
    z, y, fitted = _fit(conformal=0.1, score="aps", split=0.4, seed=3)
    cal, m = fitted.calibration, fitted.calibration.metrics
    fit, report = fitted.fit_index, fitted.report_index
    assert len(fit) == 240 and len(report) == 360 and not set(fit) & set(report)
    assert m["split"] == {"fraction": 0.4, "seed": 3, "fit": 240, "report": 360, "temperature": 120, "conformal": 120}
    # temperature on the first half of the fit split, the conformal threshold on the second
    t = fit_temperature(z[fit[:120]], y[fit[:120]])
    assert cal.temperature == t and t > 2.0
    threshold = fit_conformal(softmax(z[fit[120:]] / t), y[fit[120:]], 0.1, "aps")
    assert cal.conformal == threshold
    # the report is on the other split only
    before, after = calibration_report(z[report], y[report]), calibration_report(z[report] / t, y[report])
    assert m["before"]["ece"] == before.ece and m["after"]["ece"] == after.ece
    assert m["before"]["accuracy"] == m["after"]["accuracy"] and m["after"]["ece"] < m["before"]["ece"]
    mask = prediction_sets(softmax(z[report] / t), threshold)
    assert m["conformal"]["coverage"] == mask[np.arange(360), y[report]].mean()
    assert m["conformal"]["mean_set_size"] == mask.sum(axis=1).mean()


def test_temperature_only_uses_the_whole_fit_split():
    z, y, fitted = _fit(split=0.5, seed=1)
    assert fitted.calibration.metrics["split"]["temperature"] == 300
    assert fitted.calibration.conformal is None and "conformal" not in fitted.calibration.metrics
    assert fitted.calibration.temperature == fit_temperature(z[fitted.fit_index], y[fitted.fit_index])


def test_the_file_records_everything_and_round_trips(tmp_path):
    _, _, fitted = _fit(conformal=0.2, score="raps", method="vector")
    cal = fitted.calibration
    path = cal.save(tmp_path / "sub" / "calib.json")
    d = json.loads(path.read_text())
    assert d["format"] == "twoends.calibration" and d["format_version"] == 1
    assert d["twoends_version"] == twoends.__version__ and d["model"] == "tiny"
    assert d["n_classes"] == 3 and d["labels"] == NAMES and d["labels_sha256"] == labels_hash(NAMES)
    assert d["method"] == "vector" and d["temperature"] == cal.temperature
    assert d["vector_scaling"]["applied"] is False and len(d["vector_scaling"]["scale"]) == 3
    assert {"score", "alpha", "qhat"} <= set(d["conformal"]) and d["conformal"]["score"] == "raps"
    assert d["conformal"]["params"] == {"randomized": False, "lam": 0.01, "k_reg": 5}
    assert d["data"]["path"] == "/data/val" and d["data"]["split"]["seed"] == 0
    assert set(d["metrics"]) == {"split", "before", "after", "vector_scaling", "conformal"}
    assert {"accuracy", "nll", "brier", "ece", "ece_mass", "mce"} <= set(d["metrics"]["after"])
    back = Calibration.load(path)
    assert back.to_dict() == cal.to_dict() and back.id == cal.id
    assert back.name == "calib.json" and cal.name == f"cal-{cal.id}" and len(cal.id) == 8
    assert [f for f in path.parent.iterdir()] == [path]  # written through a temporary file, none left over


def test_damaged_or_foreign_files_are_refused(tmp_path):
    _, _, fitted = _fit()
    d = fitted.calibration.to_dict()
    cases = {
        "not_json": (None, "not valid JSON"),
        "foreign": ({"temperature": 1.5}, "not a twoends calibration"),
        "newer": ({**d, "format_version": 3}, "format_version 3.*upgrade twoends"),
        "edited": ({**d, "labels": ["cat", "dog", "wolf"]}, "do not match labels_sha256"),
        "count": ({**d, "n_classes": 4}, "n_classes=4"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text("{oops" if content is None else json.dumps(content))
        with pytest.raises(CalibrationError, match=pattern):
            Calibration.load(path)
    with pytest.raises(CalibrationError, match="not found"):
        Calibration.load(tmp_path / "nowhere.json")


@pytest.mark.filterwarnings("ignore:the fitted temperature")  # T fitted on 2 samples hits its bound
def test_split_and_option_errors():
    z, y = _synthetic(n=10)
    with pytest.raises(ConfigError, match="both need at least one"):
        fit_calibration(z, y, NAMES, split=0.01)
    with pytest.raises(CalibrationError, match="at least 9 calibration samples"):
        fit_calibration(z, y, NAMES, conformal=0.1)  # 2-3 samples for the threshold cannot promise 90%
    with pytest.raises(ConfigError, match="multi-label thresholds apply to sigmoid"):
        fit_calibration(z, y, NAMES, thresholds="f1")
    with pytest.raises(CalibrationError, match=r"logits \[N, 3\]"):
        fit_calibration(z[:, :2], y, NAMES)


# --- applied by the classifier -----------------------------------------------------------

SPEC = twoends.ImageSpec(input_size=(2, 2), resize_mode="exact", crop="none")


def _tiny(n_out=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, n_out))  # random weights: plumbing only


def _inputs(n=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, 2, 2)).astype(np.float32)


def test_wrap_applies_temperature_and_sets(tmp_path):
    model = _tiny()
    x = _inputs()
    raw = twoends.wrap(model, spec=SPEC, labels=NAMES, name="tiny", device="cpu").predict(x)
    z = np.stack([p.logits for p in raw]).astype(np.float64)
    y = np.random.default_rng(1).integers(0, 3, len(z))
    cal = fit_calibration(z, y, NAMES, model="tiny", conformal=0.3, split=0.75).calibration
    path = cal.save(tmp_path / "c.json")
    x_new = _inputs(seed=5)  # inputs the calibration never saw
    with torch.no_grad():
        z_new = model(torch.from_numpy(x_new)).double().numpy()
    sizes = []
    for given in (str(path), path, cal):
        clf = twoends.wrap(model, spec=SPEC, labels=NAMES, name="tiny", device="cpu", calibration=given)
        preds = clf.predict(x_new)
        name = "c.json" if given is not cal else cal.name
        assert clf.describe()["calibration"] == name and clf.describe()["temperature"] == cal.temperature
        # the head works in float32: sets are compared on its own probabilities, which match float64 softmax
        head_p = np.stack([pred.probabilities for pred in preds]).astype(np.float64)
        np.testing.assert_allclose(head_p, softmax(z_new / cal.temperature), rtol=1e-5, atol=1e-7)
        expected = set_members(prediction_sets(head_p, cal.conformal), head_p)
        for pred, members in zip(preds, expected):
            assert pred.calibration == name and pred.temperature == cal.temperature
            assert pred.prediction_set == tuple(NAMES[j] for j in members)
            assert pred.to_dict()["prediction_set"] == list(pred.prediction_set)
            sizes.append(len(members))
    assert min(sizes) >= 1 and max(sizes) > 1  # real sets, not just the top-1 label


def test_refuses_another_models_classes(tmp_path):
    z, y = _synthetic(n=60)
    path = fit_calibration(z, y, NAMES, model="tiny").calibration.save(tmp_path / "c.json")
    with pytest.raises(CalibrationError, match=r"fitted for 3 classes \(model 'tiny'\), this model has 4"):
        twoends.wrap(_tiny(4), spec=SPEC, device="cpu", calibration=path)
    with pytest.raises(CalibrationError, match=r"1 of 3 differ \(#2: 'fox' vs 'wolf'"):
        twoends.wrap(_tiny(), spec=SPEC, labels=["cat", "dog", "wolf"], device="cpu", calibration=path)
    with pytest.raises(CalibrationError, match="fitted for a softmax head, this model's head is sigmoid"):
        twoends.wrap(_tiny(), spec=SPEC, labels=NAMES, activation="sigmoid", device="cpu", calibration=path)
    with pytest.raises(ConfigError, match="pass one or the other"):
        twoends.wrap(_tiny(), spec=SPEC, labels=NAMES, temperature=2.0, device="cpu", calibration=path)
    with warnings.catch_warnings(record=True) as caught:  # same classes, other name: a warning only
        warnings.simplefilter("always")
        clf = twoends.wrap(_tiny(), spec=SPEC, labels=NAMES, name="other", device="cpu", calibration=path)
    assert clf.head.temperature == Calibration.load(path).temperature
    assert any("fitted for model 'tiny' and is applied to 'other'" in str(w.message) for w in caught)


def test_error_rows_stay_error_rows_with_conformal_sets():
    z, y = _synthetic(n=100)
    cal = fit_calibration(z, y, NAMES, conformal=0.2).calibration
    head = twoends.Head(NAMES, **cal.head_settings())
    batch = head(np.array([[1.0, 2.0, 0.5], [np.nan, 0.0, 0.0]]))
    assert batch[0].ok and batch[0].prediction_set[0] == "dog"
    assert batch[1].error["type"] == "OutputError" and batch[1].prediction_set is None


def test_multilabel_thresholds_fitted_stored_and_applied(tmp_path):
    model = _tiny()
    x = _inputs(n=200, seed=2)
    raw = twoends.wrap(model, spec=SPEC, labels=NAMES, activation="sigmoid", name="tiny", device="cpu").predict(x)
    z = np.stack([p.logits for p in raw]).astype(np.float64)
    targets = np.random.default_rng(3).random((200, 3)) < 1 / (1 + np.exp(-2 * z))  # noisy multi-label truth
    fitted = fit_calibration(z, targets, NAMES, model="tiny", activation="sigmoid", thresholds="precision:0.7")
    cal = fitted.calibration
    reference = fit_thresholds(
        1 / (1 + np.exp(-z[fitted.fit_index])), targets[fitted.fit_index], objective="precision", min_precision=0.7
    )
    np.testing.assert_allclose(cal.thresholds.thresholds, reference.thresholds)
    assert {"micro_f1", "macro_f1", "precision", "recall"} <= set(cal.metrics["after"])
    path = cal.save(tmp_path / "ml.json")
    clf = twoends.wrap(
        model, spec=SPEC, labels=NAMES, activation="sigmoid", name="tiny", device="cpu", calibration=path
    )
    for pred, row in zip(clf.predict(x[:50]), z[:50]):
        p = 1 / (1 + np.exp(-row))
        hits = [j for j in np.argsort(-p, kind="stable") if p[j] >= reference.thresholds[j]]
        assert pred.positive_labels == tuple(NAMES[j] for j in hits) and pred.calibration == "ml.json"
    with pytest.raises(ConfigError, match="'f1' or 'precision:P'"):
        fit_calibration(z, targets, NAMES, activation="sigmoid", thresholds="recall")
    with pytest.raises(ConfigError, match="use --multilabel-thresholds"):
        fit_calibration(z, targets, NAMES, activation="sigmoid", conformal=0.1)
