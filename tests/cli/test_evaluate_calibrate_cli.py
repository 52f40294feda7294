"""`twoends evaluate` and `twoends calibrate` end to end on a small folder per class of real photos.

Five photos are plumbing, not a benchmark: the tests check that the numbers
are the ones the Python API gives for the same photos, that the files are
written (and nothing on errors), and that `predict --calibration` applies the
file. Metric claims are in tests/calibrate/test_digits.py.
"""

import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import twoends
from tests.photos import write_photos
from twoends.cli import main

pytest.importorskip("torch")

# folder name = the ImageNet class of the photo (the astronaut photo shows the shuttle's crew: a hard one)
CLASSES = {
    "chelsea": "tabby",
    "coffee": "espresso",
    "grace_hopper": "military uniform",
    "rocket": "missile",
    "astronaut": "space shuttle",
}


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    photos = write_photos(tmp_path_factory.mktemp("photos"))
    root = tmp_path_factory.mktemp("val")
    for name, cls in CLASSES.items():
        (root / cls).mkdir()
        shutil.copy(photos[name], root / cls / photos[name].name)
    (root / "espresso" / "broken.jpg").write_bytes(photos["coffee"].read_bytes()[:1000])  # one corrupt file
    return root


@pytest.fixture(scope="module")
def api(photo_folder):
    """What the Python API says for the good photos: {path: Prediction}."""
    paths = sorted(str(p) for p in photo_folder.rglob("*.jpg") if p.name != "broken.jpg")
    return dict(zip(paths, twoends.load("efficientnet_lite0").predict(paths)))


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow  # two model loads and the photos: ~12 s on a busy 2-core machine
def test_evaluate_json_matches_the_api_and_counts_the_corrupt_file(photo_folder, api, tmp_path):
    out, plot = tmp_path / "metrics.json", tmp_path / "plots" / "rel.png"
    r = _run("evaluate", photo_folder, "--format", "json", "-o", out, "--plot", plot)
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert (m["n_inputs"], m["n_evaluated"], m["n_failed"], m["n_classes"]) == (6, 5, 1, 1000)
    assert m["failed"][0]["input"].endswith("broken.jpg") and "truncated" in m["failed"][0]["error"]
    labels = twoends.load("efficientnet_lite0").head.labels
    truth = {path: labels.index(path.split("/")[-2]) for path in api}
    hits = [api[p].index == t for p, t in truth.items()]
    nll = np.mean([-math.log(api[p].probabilities[t]) for p, t in truth.items()])
    top5 = np.mean([t in [s.index for s in api[p].top_k] for p, t in truth.items()])
    assert m["accuracy"] == pytest.approx(np.mean(hits)) and m["top5"] == pytest.approx(top5)
    assert m["nll"] == pytest.approx(nll, rel=1e-5)
    assert 0 <= m["ece"] <= 1 and 0 <= m["ece_mass"] <= 1 and m["mce"] >= m["ece"]
    assert m["plot"] == str(plot) and "1 of 6 images could not be predicted" in r.stderr
    assert "reliability diagram written to" in _flat(r.stderr) and plot.name in r.stderr
    _assert_is_a_plot(plot)


def test_evaluate_table_writes_the_plot_in_the_current_folder(photo_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _run("evaluate", photo_folder, "--no-progress")
    assert r.exit_code == 0, r.output
    for row in ("top-1 accuracy", "top-5 accuracy", "NLL", "Brier", "ECE (equal-width)", "ECE (equal-mass)", "MCE"):
        assert row in r.stdout
    assert "5 of 6" in r.stdout
    _assert_is_a_plot(tmp_path / "reliability.png")


@pytest.mark.slow
def test_calibrate_then_predict_with_the_file(photo_folder, api, tmp_path):
    out = tmp_path / "calib.json"
    r = _run("calibrate", photo_folder, "-o", out, "--conformal", "0.5", "--split", "0.6", "--seed", "1")
    assert r.exit_code == 0, r.output
    # the split is stated, and the metrics are on the held-out images only
    assert "3 images to fit (temperature 1, conformal 2), 2 held out to report" in r.stdout
    assert "coverage" in r.stdout and "mean set size" in r.stdout
    d = json.loads(out.read_text())
    assert d["model"] == "efficientnet_lite0" and d["n_classes"] == 1000 and d["method"] == "temperature"
    assert d["data"]["n"] == 6 and d["data"]["n_used"] == 5 and d["data"]["n_failed"] == 1
    assert d["data"]["split"] == {"fraction": 0.6, "seed": 1, "fit": 3, "report": 2, "temperature": 1, "conformal": 2}
    assert d["conformal"]["alpha"] == 0.5 and d["metrics"]["before"]["n"] == 2
    _assert_is_a_plot(tmp_path / "calib.reliability.png")

    paths = sorted(api)
    r = _run("predict", *paths, "--calibration", out, "--format", "jsonl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5
    for row in rows:
        raw = api[row["input"]]
        assert row["calibration"] == "calib.json" and row["temperature"] == d["temperature"]
        assert row["label"] == raw.label  # a temperature never changes the ranking
        assert row["prediction_set"][0] == row["label"]
        # the probabilities are the raw logits divided by the file's temperature
        z = raw.logits.astype(np.float64) / d["temperature"]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert row["probability"] == pytest.approx(p.max(), rel=1e-4, abs=1e-6)


def test_bad_data_and_foreign_calibration_are_clear_errors(photo_folder, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(photo_folder, bad)
    (bad / "tabby").rename(bad / "Tabby cat")
    out = tmp_path / "never.json"
    r = _run("calibrate", bad, "-o", out)
    assert r.exit_code == 2 and "'Tabby cat' x1 (did you mean" in _flat(r.stderr)
    assert not out.exists() and not (tmp_path / "never.reliability.png").exists()  # nothing written half-way

    (tmp_path / "empty").mkdir()
    r = _run("evaluate", tmp_path / "empty", "--no-plot")
    assert r.exit_code == 2 and "no class folders" in r.stderr

    from twoends.calibrate.fit import fit_calibration

    rng = np.random.default_rng(0)
    other = fit_calibration(rng.normal(size=(40, 3)), rng.integers(0, 3, 40), ["a", "b", "c"], model="tiny")
    foreign = other.calibration.save(tmp_path / "tiny.json")
    r = _run("predict", photo_folder / "espresso" / "coffee.jpg", "--calibration", foreign)
    assert r.exit_code == 2
    assert "fitted for 3 classes (model 'tiny'), this model has 1000" in _flat(r.stderr)


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps stderr at the terminal width


def _assert_is_a_plot(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 500 and im.height > 600
        pixels = np.asarray(im.convert("RGB"))
    # bars, axes and text: many distinct colours, not a blank canvas
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_bad_options_and_outputs_are_exit_2_before_the_model_loads(tmp_path):
    """Every command checks what needs no model first: an unknown model would otherwise be the error."""
    from click.testing import CliRunner

    from twoends.cli import main

    (tmp_path / "val" / "tabby").mkdir(parents=True)
    bad_cal = tmp_path / "cal.json"
    bad_cal.write_text('{"format": "twoends.calibration", "format_version": 1, "n_classes": "many"}')
    missing = tmp_path / "no" / "such" / "out.json"
    cases = [
        (["evaluate", str(tmp_path / "val"), "-o", str(missing)], "does not exist"),
        (["calibrate", str(tmp_path / "val"), "-o", str(missing)], "does not exist"),
        (["evaluate", str(tmp_path / "val"), "--temperature", "1e-300"], "temperature"),
        (["evaluate", str(tmp_path / "val"), "--calibration", str(bad_cal)], "n_classes"),
        (["doctor", "--temperature", "nan"], "temperature"),
    ]
    for args, words in cases:
        r = CliRunner().invoke(main, args + ["-m", "no_such_model"])
        assert r.exit_code == 2 and words in r.stderr and "unknown model" not in r.stderr, (args, r.output)
