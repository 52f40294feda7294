"""Triton's own Python clients (``tritonclient.http`` and ``tritonclient.grpc``) against a real ``twoends serve``.

Used exactly as Triton's client README shows: no hand-set headers, the
client's defaults (binary tensor data over HTTP, raw contents over gRPC).
The numbers must be those of ``twoends predict`` on the same photos, and
every error must print readably as the client's InferenceServerException.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "efficientnet_lite0"
NAMES = ["chelsea", "coffee", "astronaut", "grace_hopper"]


@pytest.fixture(params=["http", "grpc"])
def triton(request, server):
    """(module, client) for one of Triton's two clients, pointed at the session server."""
    if request.param == "http":
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        yield httpclient, client
    else:
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
        yield grpcclient, client
    client.close()


def _images(sample_photos, names):
    return np.array([sample_photos[n].read_bytes() for n in names], dtype=np.object_)


def _check_like_cli(probs: np.ndarray, names, cli_predictions) -> None:
    assert probs.shape == (len(names), 1000) and probs.dtype == np.float32
    for row, name in zip(probs, names):
        want = cli_predictions[name]
        top = np.argsort(-row, kind="stable")[:5]
        assert list(top) == [c["index"] for c in want["top_k"]], name
        np.testing.assert_allclose(row[top], [c["probability"] for c in want["top_k"]], rtol=1e-4, atol=1e-6)


def test_health_metadata_and_config(triton):
    mod, client = triton
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version="1")
    as_json = {"as_json": True} if mod is grpcclient else {}
    server = client.get_server_metadata(**as_json)
    assert server["name"] == "twoends" and {"binary_tensor_data", "classification"} <= set(server["extensions"])
    meta = client.get_model_metadata(MODEL, **as_json)
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    shapes = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]}
    assert shapes == {"input": ("FP32", [-1, 3, 224, 224]), "image": ("BYTES", [-1])}
    config = client.get_model_config(MODEL, **as_json)
    config = config.get("config", config)  # gRPC wraps it in ModelConfigResponse
    assert config["name"] == MODEL and int(config["max_batch_size"]) == 64  # the session server's --max-inputs default
    inputs = {t["name"]: t for t in config["input"]}
    assert inputs["input"]["data_type"] == "TYPE_FP32" and [int(d) for d in inputs["input"]["dims"]] == [3, 224, 224]
    assert inputs["image"]["data_type"] == "TYPE_STRING"
    assert {(o["name"], o["data_type"]) for o in config["output"]} == {
        ("logits", "TYPE_FP32"),
        ("probabilities", "TYPE_FP32"),
    }


def test_bytes_images_give_the_cli_numbers(triton, sample_photos, cli_predictions):
    mod, client = triton
    image = mod.InferInput("image", [len(NAMES)], "BYTES")
    image.set_data_from_numpy(_images(sample_photos, NAMES))  # binary by default: raw bytes, no base64
    result = client.infer(MODEL, [image], request_id="four")
    _check_like_cli(result.as_numpy("probabilities"), NAMES, cli_predictions)
    logits = result.as_numpy("logits").astype(np.float64)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"),
        np.exp(logits - logits.max(1, keepdims=True))
        / np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True),
        atol=1e-6,
    )
    assert result.get_response(**({"as_json": True} if mod is grpcclient else {}))["id"] == "four"


def test_fp32_tensor_requested_output_and_json_output(triton, sample_photos, cli_predictions):
    from twoends.models.efficientnet_lite import spec_for
    from twoends.preprocess import ImagePlan, decode_image

    mod, client = triton
    plan = ImagePlan(spec_for(MODEL))
    names = ["rocket", "chelsea"]
    x = np.stack([plan(decode_image(sample_photos[n].read_bytes(), draft_size=plan.draft_size)) for n in names])
    tensor = mod.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x.astype(np.float32))
    wanted = {"binary_data": False} if mod is httpclient else {}  # the HTTP client may ask for a JSON output
    result = client.infer(MODEL, [tensor], outputs=[mod.InferRequestedOutput("probabilities", **wanted)])
    assert result.as_numpy("logits") is None  # only what was asked for
    _check_like_cli(result.as_numpy("probabilities"), names, cli_predictions)


def test_classification_extension(triton, sample_photos, cli_predictions):
    mod, client = triton
    image = mod.InferInput("image", [2], "BYTES")
    image.set_data_from_numpy(_images(sample_photos, ["chelsea", "coffee"]))
    result = client.infer(MODEL, [image], outputs=[mod.InferRequestedOutput("probabilities", class_count=3)])
    top = result.as_numpy("probabilities")
    assert top.shape == (2, 3)
    for row, name in zip(top, ["chelsea", "coffee"]):
        want = cli_predictions[name]["top_k"][:3]
        parsed = [e.decode().split(":", 2) for e in row]  # "value:index:label", as Triton writes it
        assert [(int(i), label) for _, i, label in parsed] == [(c["index"], c["label"]) for c in want]
        np.testing.assert_allclose([float(v) for v, _, _ in parsed], [c["probability"] for c in want], atol=1e-6)


def test_temperature_parameter(triton, sample_photos):
    mod, client = triton
    image = mod.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(_images(sample_photos, ["coffee"]))
    base = client.infer(MODEL, [image])
    hot = client.infer(MODEL, [image], parameters={"temperature": 2.0})
    z = base.as_numpy("logits")[0].astype(np.float64) / 2.0
    np.testing.assert_allclose(
        hot.as_numpy("probabilities")[0], np.exp(z - z.max()) / np.exp(z - z.max()).sum(), atol=1e-6
    )


def _raises(call, *fragments) -> str:
    with pytest.raises(InferenceServerException) as info:
        call()
    text = str(info.value)  # the client prints the server's message as is
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_every_error_prints_readably(triton, sample_photos):
    mod, client = triton
    image = mod.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(_images(sample_photos, ["chelsea"]))
    _raises(lambda: client.infer("resnet50", [image]), "unknown model 'resnet50'", MODEL)
    _raises(lambda: client.get_model_metadata("resnet50"), "unknown model")
    _raises(lambda: client.get_model_config(MODEL, model_version="7"), "only version is '1'")
    _raises(lambda: client.infer(MODEL, [image], outputs=[mod.InferRequestedOutput("features")]), "unknown output")
    _raises(
        lambda: client.infer(MODEL, [image], outputs=[mod.InferRequestedOutput("probabilities", class_count=5000)]),
        "classification",
        "1 to 1000",
    )
    for t in (0.0, 1e-300, 1e9):
        _raises(lambda t=t: client.infer(MODEL, [image], parameters={"temperature": t}), "temperature", "0.001 to 1000")
    junk = mod.InferInput("image", [1], "BYTES")
    junk.set_data_from_numpy(np.array([b"not an image at all"], dtype=np.object_))
    _raises(lambda: client.infer(MODEL, [junk]), "[0]", "image")
    small = mod.InferInput("input", [1, 3, 32, 32], "FP32")
    small.set_data_from_numpy(np.zeros((1, 3, 32, 32), np.float32))
    _raises(lambda: client.infer(MODEL, [small]), "[B, 3, 224, 224]")
    many = mod.InferInput("image", [65], "BYTES")
    many.set_data_from_numpy(np.array([b"x"] * 65, dtype=np.object_))
    _raises(lambda: client.infer(MODEL, [many]), "65 inputs", "limit per request is 64")
    # and the client still works
    assert client.infer(MODEL, [image]).as_numpy("probabilities").argmax() == 282


def test_http_request_compression(server, sample_photos, cli_predictions):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(_images(sample_photos, ["grace_hopper"]))
    for algorithm in ("gzip", "deflate"):
        result = client.infer(MODEL, [image], request_compression_algorithm=algorithm)
        _check_like_cli(result.as_numpy("probabilities"), ["grace_hopper"], cli_predictions)
    client.close()
