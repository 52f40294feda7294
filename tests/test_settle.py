"""The settled record: every setting resolved once, with one precedence rule and its source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import twoends
from twoends.calibrate.fit import fit_calibration
from twoends.errors import ConfigError
from twoends.settle import settle

torch = pytest.importorskip("torch")


def _module():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))


SPEC = twoends.ImageSpec(input_size=(2, 2), resize_mode="exact", crop="none")


def _binary(**settings):
    return twoends.wrap(_module(), spec=SPEC, labels=["spam"], device="cpu", **settings)


def test_sources_say_where_each_setting_came_from():
    clf = twoends.load("efficientnet_lite0", device="cpu")
    s = clf.settled
    assert (s.sources["spec"], s.sources["labels"], s.sources["activation"]) == ("model", "model", "model")
    assert (s.sources["temperature"], s.sources["top_k"], s.sources["batch_size"]) == ("default",) * 3
    assert s.head.temperature == 1.0 and s.head.top_k == 5 and s.num_outputs == 1000
    assert s.run == twoends.RunOptions(device="cpu") and s.sources["run.device"] == "explicit"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 3  # read-only: nothing downstream may change a setting
    d = clf.describe()
    assert d["sources"]["spec"] == "model" and d["run"]["device"] == "cpu" and d["activation"] == "softmax"

    clf = twoends.load("efficientnet_lite0", device="cpu", temperature=2.0, top_k=3, spec={"input_size": (200, 200)})
    s = clf.settled
    assert (s.sources["temperature"], s.sources["top_k"], s.sources["spec"]) == (
        "explicit",
        "explicit",
        "model+explicit",
    )
    assert s.spec.input_size == (200, 200) and s.spec.interpolation == "bicubic"  # the model's own, overridden in part


def _calibration():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    z = rng.normal(size=(600, 3))
    z[np.arange(600), y] += 1.5
    return fit_calibration(4.0 * z, y, ["cat", "dog", "fox"], model="model", conformal=0.1).calibration


def _three(**settings):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    return twoends.wrap(module, spec=SPEC, labels=["cat", "dog", "fox"], device="cpu", **settings)


def test_a_calibration_file_comes_between_explicit_and_the_model(tmp_path):
    cal = _calibration()
    path = cal.save(tmp_path / "cal.json")
    clf = _three(calibration=path)
    s = clf.settled
    assert s.sources["temperature"] == "calibration" and s.head.temperature == pytest.approx(cal.temperature)
    assert s.sources["prediction_sets"] == "calibration" and s.head.calibration == "cal.json"
    pred = clf.predict(np.zeros((8, 8, 3), np.uint8))
    assert pred.calibration == "cal.json" and pred.prediction_set and pred.temperature == s.head.temperature
    assert s.sources["top_k"] == "default"
    # explicit and calibration together are refused, never silently resolved
    with pytest.raises(ConfigError, match="together with temperature"):
        _three(calibration=path, temperature=2.0)
    # the Classifier itself never reads files: a path there is an error that says where to pass it
    with pytest.raises(ConfigError, match="calibration=PATH"):
        twoends.Classifier(clf.backend, calibration=str(path))


def test_one_logit_is_shown_as_two_classes_and_reheaded_from_the_same_rule():
    clf = _binary()
    assert list(clf.labels) == ["not spam", "spam"] and clf.activation == "sigmoid"
    images = list(np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    base = clf.predict(images)
    fresh = _binary(temperature=2.5).predict(images)
    assert all(p.ok for p in base + fresh)
    again = clf.head.replace(temperature=2.5).rerun(base, num_outputs=1)
    for a, b in zip(again, fresh, strict=True):
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-6)
        assert a.label == b.label and a.temperature == 2.5
    assert clf.head.temperature == 1.0  # the shared head never changes


def test_load_checks_its_options_like_wrap():
    with pytest.raises(ConfigError, match="'wieghts' is not an option.*Did you mean 'weights'"):
        twoends.load("efficientnet_lite0", wieghts="x.pth")
    with pytest.raises(ConfigError, match="precision must be one of"):
        twoends.load("efficientnet_lite0", precision="fp8")
    with pytest.raises(ConfigError, match="'temprature' is not an option"):
        twoends.wrap(torch.nn.Linear(4, 2), temprature=2.0)


def test_a_backend_refuses_run_options_it_cannot_honour(tmp_path):
    pytest.importorskip("onnxruntime")
    from tests.backends.test_onnx import tiny_graph
    from twoends.backends.onnx import from_path

    path = tiny_graph(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="precision='bf16' is not available for an ONNX Runtime model"):
        from_path(path, run=twoends.RunOptions(precision="bf16"))
    with pytest.raises(ConfigError, match="compile=True is not available"):
        twoends.load(f"onnx:{path}", compile=True)


def test_settle_refuses_what_is_not_a_backend():
    with pytest.raises(ConfigError, match="Backend was expected"):
        settle(object())
