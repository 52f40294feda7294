"""KServe's own REST and gRPC clients against a real ``twoends serve`` (run in their own process).

``clients/kserve_client.py`` drives the session server as KServe's README
shows and prints what it got; here it must be the numbers of ``twoends
predict`` on the same photos, and every refusal must read as the server's message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("clients") / "kserve_client.py"
NAMES = ["chelsea", "coffee", "rocket"]


@pytest.fixture(scope="module")
def report(server, sample_photos):
    probe = subprocess.run([sys.executable, "-c", "import kserve"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"kserve is not importable: {probe.stderr.strip().splitlines()[-1:]}")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(server.port), str(server.grpc_port), *(str(sample_photos[n]) for n in NAMES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _like_cli(probs, cli_predictions):
    probs = np.asarray(probs)
    assert probs.shape == (len(NAMES), 1000)
    for row, name in zip(probs, NAMES):
        want = cli_predictions[name]["top_k"]
        top = np.argsort(-row, kind="stable")[:5]
        assert list(top) == [c["index"] for c in want], name
        np.testing.assert_allclose(row[top], [c["probability"] for c in want], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_health_and_images_give_the_cli_numbers(report, transport, cli_predictions):
    got = report[transport]
    assert got["live"] is True and got["ready"] is True and got["model_ready"] is True
    _like_cli(got["binary"]["probabilities"], cli_predictions)  # raw image bytes, binary tensor data
    np.testing.assert_allclose(got["binary"]["probabilities"], _softmax(got["binary"]["logits"]), atol=1e-6)
    if transport == "rest":  # and the JSON form: base64 text in, numbers in JSON out
        _like_cli(got["json"]["probabilities"], cli_predictions)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_classification_extension(report, transport, cli_predictions):
    rows = report[transport]["classification"]["probabilities"]
    assert len(rows) == len(NAMES)
    for row, name in zip(rows, NAMES):
        want = cli_predictions[name]["top_k"][:3]
        parsed = [e.split(":", 2) for e in row]
        assert [(int(i), label) for _, i, label in parsed] == [(c["index"], c["label"]) for c in want]
        np.testing.assert_allclose([float(v) for v, _, _ in parsed], [c["probability"] for c in want], atol=1e-6)


def test_temperature_over_grpc(report):
    got = report["grpc"]
    logits = np.asarray(got["binary"]["logits"])
    np.testing.assert_allclose(got["hot"]["probabilities"], _softmax(logits / 2), atol=1e-6)
    np.testing.assert_allclose(got["cool"]["probabilities"], _softmax(logits / 0.5), atol=1e-6)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_errors_print_the_servers_message(report, transport):
    shown = report[transport]["errors"]
    expected = {
        "unknown_model": (
            "unknown model 'resnet50'",
            "efficientnet_lite0",
            "404" if transport == "rest" else "NOT_FOUND",
        ),
        "unknown_output": ("unknown output(s) ['features']",),
        "classification_range": ("classification must be a whole number from 1 to 1000",),
        "temperature_range": ("temperature must be a number from 0.001 to 1000",),
    }
    for case, fragments in expected.items():
        assert shown[case] is not None, f"{case} was accepted"
        for fragment in fragments:
            assert fragment in shown[case], (case, shown[case])
