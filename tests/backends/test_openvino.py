"""OpenVINO backend: the tiny graphs of test_onnx.py, as .onnx and as OpenVINO .xml, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino")
pytest.importorskip("onnx")

import twoends  # noqa: E402
from tests.backends.test_onnx import batch_of, reference, softmax, tiny_graph  # noqa: E402
from twoends.backends.openvino import from_path, supported_precisions  # noqa: E402
from twoends.errors import ConfigError, InputError, ModelError  # noqa: E402


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_layout_dtype_and_size_are_read_from_the_graph(tmp_path, layout, dtype):
    backend = from_path(tiny_graph(tmp_path / "m.onnx", layout=layout, dtype=dtype))
    assert backend.info.spec.layout == layout and backend.info.spec.input_size == (8, 8)
    assert backend.info.spec.dtype == dtype and backend.fixed_batch is None
    x = batch_of(5, layout, dtype)
    np.testing.assert_allclose(backend.forward(x), reference(x, layout), rtol=1e-5, atol=1e-5)


def test_an_openvino_xml_model_and_a_fixed_batch(tmp_path):
    onnx_path = tiny_graph(tmp_path / "m.onnx", batch=3)
    xml = tmp_path / "m.xml"
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml), compress_to_fp16=False)  # its default rounds weights
    backend = twoends.load(f"openvino:{xml}").backend
    assert backend.fixed_batch == 3 and "fixed batch of 3" in " ".join(backend.info.notes)
    x = batch_of(7)
    np.testing.assert_allclose(backend.forward(x), reference(x, "NCHW"), rtol=1e-5, atol=1e-5)


def test_a_final_softmax_is_detected_and_probabilities_are_float32s(tmp_path):
    clf = twoends.load(f"openvino:{tiny_graph(tmp_path / 'm.onnx', final='Softmax')}")
    assert clf.backend.info.outputs == "probabilities"
    x = batch_of(4)
    got = np.stack([p.probabilities for p in clf.predict(x)])
    np.testing.assert_allclose(got, softmax(reference(x, "NCHW")), atol=1e-6)
    assert "f32" in clf.backend.describe()  # never the CPU plugin's silent bf16 default


def test_precision_device_and_bad_inputs_are_refused_with_the_fix(tmp_path):
    path = tiny_graph(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="on the CPU"):
        from_path(path, device="cuda")
    if "bf16" not in supported_precisions():
        with pytest.raises(ConfigError, match="not native"):
            from_path(path, run=twoends.RunOptions(precision="bf16"))
    else:
        assert "bf16" in from_path(path, run=twoends.RunOptions(precision="bf16")).describe()
    with pytest.raises(InputError, match="shape"):
        from_path(path).forward(batch_of(2, "NHWC"))
    with pytest.raises(ModelError, match=".onnx or .xml"):
        from_path(tmp_path / "missing.xml")
