"""Every endpoint of a real ``twoends serve`` process, with the default model on real photos."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from tests.serve.helpers import raw, raw_json

ROOT = Path(__file__).resolve().parents[2]
MODEL = "efficientnet_lite0"
pytestmark = pytest.mark.slow  # one model-loading server process per session


def _b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# --- health and metadata --------------------------------------------------------------


def test_health_and_metadata(server):
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}
    meta = server.get("/v2").json()
    assert meta["name"] == "twoends" and isinstance(meta["extensions"], list)

    model = server.get(f"/v2/models/{MODEL}").json()
    assert model["name"] == MODEL and model["platform"]
    inputs = {t["name"]: t for t in model["inputs"]}
    assert inputs["input"] == {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]}
    assert inputs["image"]["datatype"] == "BYTES"
    assert {(t["name"], t["datatype"], tuple(t["shape"])) for t in model["outputs"]} == {
        ("logits", "FP32", (-1, 1000)),
        ("probabilities", "FP32", (-1, 1000)),
    }

    for path in ("/v2/models/resnet50", "/v2/models/resnet50/ready"):
        r = server.get(path)
        assert r.status == 404 and r.json()["type"] == "ModelNotFound"
        assert MODEL in r.json()["error"]  # says what is served, in the protocol's error string


def test_docs_and_page(server):
    docs = server.get("/docs")
    assert docs.status == 200 and b"swagger" in docs.body.lower()
    spec = server.get("/openapi.json").json()
    assert {"/v1/predict", "/v2/models/{name}/infer", "/v2/health/ready", "/metrics"} <= set(spec["paths"])
    assert "InferenceRequest" in spec["components"]["schemas"]
    page = server.get("/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'id="file"' in page.body and b"/static/app.js" in page.body
    js = server.get("/static/app.js")
    assert js.status == 200 and b"/v1/predict" in js.body
    info = server.get("/v1/model").json()
    assert info["model"] == MODEL and info["num_outputs"] == 1000 and info["server"]["max_batch_size"] == 8


# --- /v1/predict ----------------------------------------------------------------------


def test_predict_matches_the_cli(server, sample_photos):
    """The same photo gives the same prediction over HTTP as with ``twoends predict``."""
    path = sample_photos["chelsea"]
    cli = subprocess.run(
        [sys.executable, "-m", "twoends", "predict", str(path), "--format", "json", "--top-k", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)[0]
    got = server.post_file("/v1/predict?top_k=5", path.name, path.read_bytes())
    assert got.status == 200, got
    got = got.json()
    assert set(got) == set(expected)  # the one schema
    assert got["input"] == path.name and expected["input"] == str(path)
    assert (got["label"], got["index"]) == (expected["label"], expected["index"])
    assert 281 <= got["index"] <= 285  # a cat class (tabby, tiger cat, Persian, Siamese, Egyptian cat)
    assert [c["index"] for c in got["top_k"]] == [c["index"] for c in expected["top_k"]]
    np.testing.assert_allclose(
        [c["probability"] for c in got["top_k"]], [c["probability"] for c in expected["top_k"]], rtol=1e-4, atol=1e-6
    )
    assert got["entropy"] == pytest.approx(expected["entropy"], rel=1e-4)


def test_predict_by_upload_raw_body_and_base64_agree(server, sample_photos):
    path = sample_photos["coffee"]
    data = path.read_bytes()
    upload = server.post_file("/v1/predict", "coffee.jpg", data).json()
    raw = server.request("POST", "/v1/predict", data, {"Content-Type": "image/jpeg"}).json()
    b64 = server.post_json("/v1/predict", {"image": _b64(path), "id": "cup"}).json()
    data_url = server.post_json("/v1/predict", {"image": "data:image/jpeg;base64," + _b64(path)}).json()
    assert upload["label"] == raw["label"] == b64["label"] == data_url["label"] == "espresso"
    assert (upload["input"], raw["input"], b64["input"]) == ("coffee.jpg", "<body>", "cup")
    for other in (raw, b64, data_url):
        assert other["probability"] == pytest.approx(upload["probability"], rel=1e-4)
    assert "logits" not in upload  # only when asked for


def test_predict_parameters_temperature_top_k_logits(server, sample_photos):
    data = sample_photos["rocket"].read_bytes()
    base = server.post_file("/v1/predict?include_logits=true", "rocket.jpg", data).json()
    logits = np.array(base["logits"], dtype=np.float64)
    assert len(logits) == 1000 and len(base["top_k"]) == 5
    np.testing.assert_allclose(base["probabilities"], softmax(logits), atol=1e-6)

    hot = server.post_file("/v1/predict?include_logits=true&temperature=2.5&top_k=3", "rocket.jpg", data).json()
    assert hot["temperature"] == 2.5 and len(hot["top_k"]) == 3
    reference = softmax(np.array(hot["logits"], dtype=np.float64) / 2.5)  # logits stay raw; p is at T
    np.testing.assert_allclose(hot["probabilities"], reference, atol=1e-6)
    assert [c["index"] for c in hot["top_k"]] == list(np.argsort(-reference)[:3])
    assert hot["probability"] == pytest.approx(reference.max(), abs=1e-6)
    entropy = -(reference * np.log(reference)).sum()
    assert hot["entropy"] == pytest.approx(entropy, rel=1e-4) and hot["entropy"] > base["entropy"]

    # JSON body parameters, and a later request at the default temperature is untouched
    body = server.post_json(
        "/v1/predict", {"image": base64.b64encode(data).decode(), "top_k": 2, "temperature": 0.5}
    ).json()
    assert body["temperature"] == 0.5 and len(body["top_k"]) == 2
    again = server.post_file("/v1/predict", "rocket.jpg", data).json()
    assert again["temperature"] == 1.0 and again["probability"] == pytest.approx(base["probability"], rel=1e-4)


def test_concurrent_requests_each_get_their_own_answer(server, sample_photos):
    """Requests that share a batch are answered each with its own photo's prediction."""
    names = sorted(sample_photos)
    alone = {n: server.post_file("/v1/predict", n, sample_photos[n].read_bytes()).json() for n in names}
    batches_before = _metric(server, "twoends_batch_size_count")
    order = [names[i % len(names)] for i in range(24)]
    with ThreadPoolExecutor(len(order)) as pool:
        results = list(pool.map(lambda n: server.post_file("/v1/predict", n, sample_photos[n].read_bytes()), order))
    for name, r in zip(order, results):
        assert r.status == 200, r
        got = r.json()
        assert got["input"] == name and got["label"] == alone[name]["label"]
        assert got["probability"] == pytest.approx(alone[name]["probability"], rel=1e-4, abs=1e-6)
    batches = _metric(server, "twoends_batch_size_count") - batches_before
    assert batches < len(order)  # some requests shared a forward pass


# --- the Open Inference Protocol ------------------------------------------------------


def test_infer_bytes_images(server, sample_photos):
    names = ["chelsea", "coffee", "grace_hopper"]
    req = {
        "id": "three",
        "inputs": [
            {"name": "image", "shape": [3], "datatype": "BYTES", "data": [_b64(sample_photos[n]) for n in names]}
        ],
    }
    r = server.post_json(f"/v2/models/{MODEL}/infer", req)
    assert r.status == 200, r
    out = r.json()
    assert out["model_name"] == MODEL and out["id"] == "three"
    tensors = {o["name"]: o for o in out["outputs"]}
    assert set(tensors) == {"logits", "probabilities"}
    for o in tensors.values():
        assert o["datatype"] == "FP32" and o["shape"] == [3, 1000] and len(o["data"]) == 3000
    logits = np.array(tensors["logits"]["data"]).reshape(3, 1000)
    probs = np.array(tensors["probabilities"]["data"]).reshape(3, 1000)
    np.testing.assert_allclose(probs, softmax(logits, axis=1), atol=1e-6)
    for i, n in enumerate(names):
        single = server.post_file("/v1/predict", n, sample_photos[n].read_bytes()).json()
        assert int(probs[i].argmax()) == single["index"]
        assert probs[i].max() == pytest.approx(single["probability"], rel=1e-4)

    only = server.post_json(
        f"/v2/models/{MODEL}/infer", {**req, "outputs": [{"name": "probabilities"}], "parameters": {"temperature": 3.0}}
    ).json()
    assert [o["name"] for o in only["outputs"]] == ["probabilities"]
    hot = np.array(only["outputs"][0]["data"]).reshape(3, 1000)
    np.testing.assert_allclose(hot, softmax(logits / 3.0, axis=1), atol=1e-6)


def test_infer_fp32_tensor_matches_bytes(server, sample_photos):
    """A tensor preprocessed by the client with the model's spec gives the image's logits."""
    from twoends.models.efficientnet_lite import spec_for
    from twoends.preprocess import ImagePlan, decode_image

    plan = ImagePlan(spec_for(MODEL))
    path = sample_photos["astronaut"]
    x = plan(decode_image(path.read_bytes(), draft_size=plan.draft_size))[None]
    assert x.shape == (1, 3, 224, 224)
    r = server.post_json(
        f"/v2/models/{MODEL}/infer",
        {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]},
    )
    assert r.status == 200, r
    from_tensor = np.array(next(o for o in r.json()["outputs"] if o["name"] == "logits")["data"])
    b = server.post_json(
        f"/v2/models/{MODEL}/infer",
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [_b64(path)]}]},
    ).json()
    from_bytes = np.array(next(o for o in b["outputs"] if o["name"] == "logits")["data"])
    np.testing.assert_allclose(from_tensor, from_bytes, rtol=1e-4, atol=1e-4)

    nested = server.post_json(
        f"/v2/models/{MODEL}/infer",
        {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}]},
    )
    assert nested.status == 200  # row-major data may also come nested as the shape


# --- bad input: each a 4xx that says what was expected --------------------------------


def _error(r, status, kind=None):
    """A /v1 error: the Prediction schema's error field."""
    assert r.status == status, r
    err = r.json()["error"]
    assert set(err) == {"type", "message"} and err["message"]
    if kind is not None:
        assert err["type"] == kind, err
    return err["message"]


def _oip_error(r, status, kind=None):
    """An Open Inference Protocol error: {"error": "<message>", "type": kind}."""
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "type"} and isinstance(body["error"], str) and body["error"]
    if kind is not None:
        assert body["type"] == kind, body
    return body["error"]


def test_limits_and_bad_input(server, sample_photos):
    import io

    from PIL import Image

    good = sample_photos["chelsea"].read_bytes()
    # body over --max-body-mb 8, declared, and streamed without a Content-Length (chunked)
    head = b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n"
    status, body = raw_json(raw(server.port, [head + b"Content-Length: %d\r\n\r\n" % (9 << 20)]))
    assert status == 413 and body["error"]["type"] == "PayloadTooLarge" and "--max-body-mb" in body["error"]["message"]
    mb = b"\xff" * (1 << 20)
    chunks = [head + b"Transfer-Encoding: chunked\r\n\r\n"] + [b"100000\r\n" + mb + b"\r\n"] * 9 + [b"0\r\n\r\n"]
    status, body = raw_json(raw(server.port, chunks))  # no Content-Length: counted as it streams
    assert status == 413 and body["error"]["type"] == "PayloadTooLarge"
    # over --max-pixels 1000000
    buf = io.BytesIO()
    Image.new("RGB", (1200, 1000), (90, 120, 200)).save(buf, "JPEG")
    r = server.post_file("/v1/predict", "wide.jpg", buf.getvalue())
    msg = _error(r, 413, "ImageTooLargeError")
    assert "1200x1000" in msg and r.json()["input"] == "wide.jpg" and r.json()["label"] is None
    # unsupported content type, corrupt and truncated images, something that is not an image
    assert "multipart/form-data" in _error(
        server.request("POST", "/v1/predict", good, {"Content-Type": "text/plain"}), 415, "UnsupportedMediaType"
    )
    _error(server.post_file("/v1/predict", "half.jpg", good[: len(good) // 2]), 400, "DecodeError")
    _error(
        server.post_file("/v1/predict", "notes.txt", b"hello, not an image", content_type="text/plain"),
        400,
        "DecodeError",
    )
    _error(server.post_file("/v1/predict", "empty.jpg", b""), 400, "DecodeError")
    _error(server.post_file("/v1/predict", "x.jpg", good, field="photo"), 400)  # the field is named 'file'
    # bad base64, bad JSON, wrong JSON
    assert "base64" in _error(server.post_json("/v1/predict", {"image": "not base64 !!"}), 400, "BadBase64")
    _error(server.request("POST", "/v1/predict", b'{"image": ', {"Content-Type": "application/json"}), 400, "BadJSON")
    _error(server.post_json("/v1/predict", {"text": "a cat"}), 400)  # an image model
    _error(server.post_json("/v1/predict", {}), 400)
    _error(
        server.post_json("/v1/predict", {"image": _b64(sample_photos["chelsea"]), "top_k": 0}), 422, "ValidationError"
    )
    _error(server.post_file("/v1/predict?temperature=-1", "c.jpg", good), 422, "ValidationError")
    # OIP: wrong tensor shape, datatype, count, name, output; a bad element of a BYTES batch
    infer = f"/v2/models/{MODEL}/infer"
    msg = _oip_error(
        server.post_json(
            infer, {"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.0] * 3072}]}
        ),
        400,
    )
    assert "[B, 3, 224, 224]" in msg
    _oip_error(
        server.post_json(
            infer, {"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "INT64", "data": [0] * 150528}]}
        ),
        400,
    )
    assert "150528" in _oip_error(
        server.post_json(
            infer, {"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": [0.5] * 10}]}
        ),
        400,
    )
    _oip_error(
        server.post_json(infer, {"inputs": [{"name": "pixels", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}), 400
    )
    _oip_error(
        server.post_json(
            infer,
            {
                "inputs": [
                    {"name": "image", "shape": [1], "datatype": "BYTES", "data": [_b64(sample_photos["chelsea"])]}
                ],
                "outputs": [{"name": "feats"}],
            },
        ),
        400,
    )
    msg = _oip_error(
        server.post_json(
            infer,
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": [2],
                        "datatype": "BYTES",
                        "data": [_b64(sample_photos["chelsea"]), base64.b64encode(b"junk").decode()],
                    }
                ]
            },
        ),
        400,
        "DecodeError",
    )
    assert "[1]" in msg  # which element
    _oip_error(server.post_json(infer, {"inputs": []}), 422, "ValidationError")
    # any Content-Type is read as the protocol's body (tritonclient sends none): not JSON is a 400
    assert "not valid JSON" in _oip_error(
        server.request("POST", infer, b"inputs=1", {"Content-Type": "application/x-www-form-urlencoded"}),
        400,
        "BadJSON",
    )
    _error(server.get("/v1/nothing"), 404)
    _error(server.request("DELETE", "/v1/predict"), 405)
    # and the server still answers
    assert 281 <= server.post_file("/v1/predict", "chelsea.jpg", good).json()["index"] <= 285  # a cat class


# --- /metrics -------------------------------------------------------------------------


def _families(server):
    from prometheus_client.parser import text_string_to_metric_families

    r = server.get("/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.body.decode())}


def _metric(server, sample_name, **labels):
    for family in _families(server).values():
        for s in family.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics(server, sample_photos):
    ok_before = _metric(server, "twoends_requests_total", route="/v1/predict", method="POST", status="200")
    bad_before = _metric(server, "twoends_requests_total", route="/v1/predict", method="POST", status="415")
    for _ in range(3):
        assert server.post_file("/v1/predict", "c.jpg", sample_photos["chelsea"].read_bytes()).status == 200
    assert server.request("POST", "/v1/predict", b"x", {"Content-Type": "text/plain"}).status == 415
    server.get("/no/such/path/12345")

    families = _families(server)  # parsed by the reference parser (prometheus_client)
    assert _metric(server, "twoends_requests_total", route="/v1/predict", method="POST", status="200") == ok_before + 3
    assert _metric(server, "twoends_requests_total", route="/v1/predict", method="POST", status="415") == bad_before + 1
    assert not any("12345" in str(s.labels) for f in families.values() for s in f.samples)  # templates, not raw paths
    assert families["twoends_request_duration_seconds"].type == "histogram"
    assert families["twoends_batch_size"].type == "histogram"
    assert families["twoends_queue_depth"].type == "gauge"
    batch = {s.labels.get("le"): s.value for s in families["twoends_batch_size"].samples if s.name.endswith("_bucket")}
    assert batch["+Inf"] == _metric(server, "twoends_batch_size_count") > 0
    assert batch["8.0"] == batch["+Inf"]  # never more than --max-batch-size 8
