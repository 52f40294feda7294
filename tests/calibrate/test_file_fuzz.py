"""Hostile calibration files and sidecars: every one is a clear TwoEndsError or a correct result.

A real calibration (fitted by ``fit_calibration``) is written, then each field is replaced
by values of the wrong type, out of range, NaN, huge, or deeply nested; the file is loaded
through the user's path (``twoends.load(..., calibration=FILE)``). Loading must either
refuse with a CalibrationError naming the field, or give a classifier whose probabilities
are finite and sum to 1 on real photos.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

import twoends
from twoends.calibrate.calibration import Calibration, load_calibration
from twoends.calibrate.fit import fit_calibration
from twoends.errors import CalibrationError, ConfigError, TwoEndsError
from twoends.settle import settle
from twoends.sidecar import parse_sidecar

HOSTILE = [None, True, -1, 0, 2, 1e-300, 1e300, 10**400, "1.0", "NaN", [], {}, [1.0], {"a": 1}, [[[[[[[[[[]]]]]]]]]]]
FIELDS = [
    "n_classes",
    "labels",
    "labels_sha256",
    "method",
    "activation",
    "model",
    "temperature",
    "conformal",
    "conformal.alpha",
    "conformal.qhat",
    "conformal.n",
    "conformal.n_classes",
    "conformal.method",
    "conformal.params",
    "data",
    "metrics",
    "vector_scaling",
    "format_version",
]


@pytest.fixture(scope="module")
def real_calibration():
    from twoends.models import imagenet_labels

    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 1000)).astype(np.float32) * 2
    y = rng.integers(0, 1000, 600)
    z[np.arange(600), y] += 4  # a model that is mostly right
    cal = fit_calibration(z, y, imagenet_labels(), model="efficientnet_lite0", conformal=0.1).calibration
    return cal.to_dict()


@pytest.fixture(scope="module")
def clf_photos(tmp_path_factory):
    from tests.photos import write_photos

    return write_photos(tmp_path_factory.mktemp("photos"))


def _set(d: dict, dotted: str, value):
    d = copy.deepcopy(d)
    *path, last = dotted.split(".")
    target = d
    for key in path:
        target = target[key]
    target[last] = value
    return d


def _cases(base: dict):
    for name in FIELDS:
        for value in HOSTILE + [float("nan"), float("inf"), -float("inf")]:
            yield f"{name}={value!r}"[:60], _set(base, name, value)


def _write(path, data) -> None:
    # allow_nan: a hand-edited file may hold NaN/Infinity literals, which Python's json reads
    path.write_text(json.dumps(data, allow_nan=True))


def test_every_hostile_field_is_a_calibration_error_or_a_correct_result(real_calibration, tmp_path, clf_photos):
    backend = twoends.load("efficientnet_lite0").backend
    accepted = refused = 0
    for i, (label, data) in enumerate(_cases(real_calibration)):
        path = tmp_path / f"cal{i}.json"
        _write(path, data)
        try:
            Calibration.load(path)
        except CalibrationError as e:
            refused += 1
            assert str(path) in str(e), (label, str(e))
            continue
        except Exception as e:  # anything else is the bug this test is about
            pytest.fail(f"{label}: {type(e).__name__}: {e}")
        accepted += 1
        # accepted: the file must work end to end (the composition root's steps: load the file,
        # settle it on the model), with finite probabilities that sum to 1
        settled = settle(backend, calibration=load_calibration(str(path)))
        p = twoends.Classifier(backend, settled).predict(clf_photos["chelsea"])
        assert p.ok, (label, p.error)
        assert math.isfinite(p.probability) and abs(float(np.sum(p.probabilities)) - 1) < 1e-5, label
        assert p.prediction_set is None or 281 <= twoends.models.imagenet_labels().index(p.label) <= 285
    assert refused > 100 and accepted >= 1  # e.g. model=None and data={} are fine


def test_structural_garbage_is_a_calibration_error(tmp_path):
    cases = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "list.json": "[1, 2, 3]",
        "string.json": '"twoends.calibration"',
        "nan.json": "NaN",
        "binary.json": b"\xff\xfe\x00garbage",
        "empty.json": "",
        "huge_int.json": json.dumps(
            {"format": "twoends.calibration", "format_version": 10**400 if False else 1, "n_classes": 10**400}
        ),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(CalibrationError):
            Calibration.load(path)


def test_the_cli_refuses_a_bad_calibration_before_loading_the_model(tmp_path, real_calibration, clf_photos):
    from click.testing import CliRunner

    from twoends.cli import main

    path = tmp_path / "bad.json"
    _write(path, _set(real_calibration, "temperature", 1e-300))
    r = CliRunner().invoke(main, ["predict", str(clf_photos["chelsea"]), "--calibration", str(path)])
    assert r.exit_code == 2 and "temperature" in r.stderr and "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)


@pytest.mark.parametrize("t", ["1e-300", "1e300", "nan", "inf", "-1", "0"])
def test_cli_temperature_out_of_range_is_refused_with_exit_2(t, clf_photos):
    from click.testing import CliRunner

    from twoends.cli import main

    r = CliRunner().invoke(main, ["predict", str(clf_photos["chelsea"]), "--temperature", t, "--format", "jsonl"])
    assert r.exit_code == 2, (t, r.output)
    assert "temperature" in r.stderr and "Traceback" not in r.output


def test_smallest_allowed_temperature_gives_finite_probabilities(clf_photos):
    clf = twoends.load("efficientnet_lite0", temperature=1e-4, top_k=3)  # the smallest the README allows
    p = clf.predict(clf_photos["chelsea"])
    assert p.ok and np.isfinite(p.probabilities).all() and abs(p.probabilities.sum() - 1) < 1e-6
    for t in (1e-300, 0.99e-4, 1.01e4, 1e300):
        with pytest.raises(ConfigError, match="between 0.0001 and 10000"):
            twoends.load("efficientnet_lite0", temperature=t)


SIDE = {
    "format": "twoends-sidecar/1",
    "model": "m",
    "labels": ["a", "b"],
    "activation": "softmax",
    "outputs": "logits",
    "spec": {"kind": "image", "input_size": [32, 32]},
}


def test_sidecar_fuzz_is_a_config_error_or_a_dict():
    for key in list(SIDE) + ["input_name", "output_name", "opset", "check"]:
        for value in HOSTILE:
            text = json.dumps({**SIDE, key: value})
            try:
                out = parse_sidecar(text, where="x.onnx.json")
            except TwoEndsError as e:
                assert "x.onnx.json" in str(e)
            else:
                assert isinstance(out, dict)
    from twoends.preprocess import ImageSpec

    for key in ("input_size", "mean", "std", "scale", "crop_pct", "resize_size", "layout", "dtype", "interpolation"):
        for value in HOSTILE + [float("nan"), float("inf")]:
            try:
                ImageSpec.from_dict({"input_size": [32, 32], key: value})
            except TwoEndsError:
                pass
            except Exception as e:
                pytest.fail(f"ImageSpec.from_dict {key}={value!r}: {type(e).__name__}: {e}")
    for text in ("[" * 100_000, "[" * 50_000 + "]" * 50_000, "null", "\udcff"):
        with pytest.raises(TwoEndsError):
            parse_sidecar(text, where="x.onnx.json")
