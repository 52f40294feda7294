"""The Open Inference Protocol's details, on the wire: routes, methods, error bodies, binary framing,
compression, limits checked before work, and temperatures validated at every entry point.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"
INFER = f"/v2/models/{MODEL}/infer"


def _oip_error(r, status, *fragments, kind=None) -> str:
    assert r.status == status, r
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "type"} and isinstance(body["error"], str), body
    for fragment in fragments:
        assert fragment in body["error"], body
    if kind is not None:
        assert body["type"] == kind, body
    return body["error"]


def _binary(header: dict, *blobs: bytes) -> tuple[bytes, dict]:
    text = json.dumps(header).encode()
    return text + b"".join(blobs), {"Inference-Header-Content-Length": str(len(text))}


def _bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


def _outputs(r) -> dict:
    """Named outputs of a response, binary or JSON, as arrays."""
    n = int(r.headers.get("inference-header-content-length", len(r.body)))
    head, rest, out = json.loads(r.body[:n]), r.body[n:], {}
    for o in head["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            out[o["name"]] = np.array(o["data"]).reshape(o["shape"])
        else:
            out[o["name"]] = np.frombuffer(rest[:size], "<f4").reshape(o["shape"])
            rest = rest[size:]
    return out


# --- routes and methods -----------------------------------------------------------------------


def test_head_versions_and_wrong_methods(server):
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        f"/v2/models/{MODEL}/ready",
        f"/v2/models/{MODEL}/versions/1/ready",
    ):
        r = server.request("HEAD", path)
        assert r.status == 200 and r.body == b"", (path, r)
    for path in (
        f"/v2/models/{MODEL}/versions/1",
        f"/v2/models/{MODEL}/versions/1/config",
        f"/v2/models/{MODEL}/config",
    ):
        assert server.get(path).status == 200, path
    _oip_error(server.get(f"/v2/models/{MODEL}/versions/2/ready"), 404, "only version is '1'", kind="ModelNotFound")
    for method, path, allowed in [
        ("POST", "/v2/health/live", "GET"),
        ("GET", INFER, "POST"),
        ("PUT", f"/v2/models/{MODEL}/config", "GET"),
        ("DELETE", f"/v2/models/{MODEL}", "GET"),
    ]:
        r = server.request(method, path)
        _oip_error(r, 405, kind=None)
        assert allowed in r.headers["allow"], (method, path, r.headers)
    # a sub-route that does not exist is not "an unknown model named 'efficientnet_lite0/stats'"
    msg = _oip_error(server.get(f"/v2/models/{MODEL}/stats"), 404, "no route", "/config", kind="NotFound")
    assert "unknown model" not in msg
    _oip_error(server.get("/nothing/here"), 404)  # outside /v1: the protocol's error string too


def test_any_content_type_and_binary_framing(server, sample_photos):
    photo = sample_photos["chelsea"].read_bytes()
    head = {
        "inputs": [
            {"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(photo) + 4}}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "logits"}],
    }
    body, headers = _binary(head, _bytes_tensor(photo))
    for content_type in (None, "application/octet-stream", "text/plain", "application/json"):
        r = server.request("POST", INFER, body, {**headers, **({"Content-Type": content_type} if content_type else {})})
        assert r.status == 200, (content_type, r)
        assert r.headers["content-type"] == "application/octet-stream"
        out = _outputs(r)
        assert out["probabilities"].shape == (1, 1000) and int(out["probabilities"].argmax()) == 282
        np.testing.assert_allclose(out["logits"][0, 282], out["logits"].max())  # logits came as JSON
    # framing errors say what was declared and what arrived
    short = {"inputs": [{**head["inputs"][0], "parameters": {"binary_data_size": len(photo) + 100}}]}
    _oip_error(server.request("POST", INFER, *_binary(short, _bytes_tensor(photo))), 400, "declares", "remain")
    _oip_error(
        server.request("POST", INFER, *_binary({"inputs": head["inputs"]}, _bytes_tensor(photo), b"extra")),
        400,
        "5 bytes follow",
    )
    _oip_error(
        server.request("POST", INFER, _binary(head, _bytes_tensor(photo))[0]), 400, "Inference-Header-Content-Length"
    )
    _oip_error(
        server.request("POST", INFER, body, {"Inference-Header-Content-Length": str(len(body) + 1)}),
        400,
        "length of the JSON part",
    )
    lying = _bytes_tensor(photo)[:4] + photo[:100]  # an element that claims more bytes than it has
    _oip_error(
        server.request(
            "POST",
            INFER,
            *_binary({"inputs": [{**head["inputs"][0], "parameters": {"binary_data_size": len(lying)}}]}, lying),
        ),
        400,
        "element 0 declares",
    )


def test_compressed_bodies_and_a_compression_bomb(server, sample_photos):
    req = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(sample_photos["coffee"].read_bytes()).decode()],
                }
            ]
        }
    ).encode()
    for encoding, data in (("gzip", gzip.compress(req)), ("deflate", zlib.compress(req))):
        r = server.request("POST", INFER, data, {"Content-Encoding": encoding})
        assert r.status == 200, (encoding, r)
        assert int(_outputs(r)["probabilities"].argmax()) == 967  # espresso
    bomb = gzip.compress(b"[" + b" " * (40 << 20) + b"]")  # 40 kB that inflates to 40 MB
    assert len(bomb) < 100_000
    _oip_error(
        server.request("POST", INFER, bomb, {"Content-Encoding": "gzip"}),
        413,
        "inflates to more than",
        kind="PayloadTooLarge",
    )
    _oip_error(server.request("POST", INFER, b"not gzip", {"Content-Encoding": "gzip"}), 400, "not valid gzip")
    _oip_error(server.request("POST", INFER, req, {"Content-Encoding": "br"}), 415, "Content-Encoding")


def test_limits_hold_before_work(server):
    # a JSON body with more elements than --max-json-elements is refused from its comma count
    many = (
        b'{"inputs": [{"name": "input", "shape": [8, 3, 224, 224], "datatype": "FP32", "data": ['
        + b"0," * 1_200_000
        + b"0]}]}"
    )
    _oip_error(server.request("POST", INFER, many), 413, "elements", "binary", kind="PayloadTooLarge")
    # a BYTES batch over --max-inputs is refused from its shape: nothing is decoded
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode()
    r = server.post_json(
        INFER, {"inputs": [{"name": "image", "shape": [8000], "datatype": "BYTES", "data": [gif] * 8000}]}
    )
    _oip_error(r, 413, "8000 inputs", "limit per request is 64", kind="PayloadTooLarge")


TINY, HUGE = "1e-300", "9" * 401


def test_temperature_is_validated_at_every_entry_point(server, sample_photos):
    photo = sample_photos["rocket"].read_bytes()
    b64 = base64.b64encode(photo).decode()
    for t in (TINY, HUGE, "0", "-1", "nan", "inf", "1e400"):
        r = server.post_file(f"/v1/predict?temperature={t}", "rocket.jpg", photo)
        assert r.status == 422 and "temperature" in r.json()["error"]["message"], (t, r)
        body = f'{{"image": "{b64}", "temperature": {t if t not in ("nan", "inf") else json.dumps(t)}}}'.encode()
        r = server.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
        assert r.status == 422 and "temperature" in r.json()["error"]["message"], (t, r)
    for t in (TINY, HUGE, "0", "-1", "NaN", "Infinity", "1e400", "true", '"hot"'):
        body = (
            f'{{"parameters": {{"temperature": {t}}}, "inputs": [{{"name": "image", "shape": [1], '
            f'"datatype": "BYTES", "data": ["{b64}"]}}]}}'
        ).encode()
        _oip_error(server.request("POST", INFER, body), 422, "0.001 to 1000", kind="ValidationError")
    # at both ends of the range every number is finite: no NaN, no null reaches a client
    for t in (1e-3, 1e3):
        pred = server.post_file(f"/v1/predict?temperature={t}&include_logits=true", "rocket.jpg", photo)
        assert pred.status == 200 and all(math.isfinite(p) for p in pred.json()["probabilities"])
        r = server.post_json(
            INFER,
            {
                "parameters": {"temperature": t},
                "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}],
            },
        )
        assert r.status == 200 and b"null" not in r.body and b"NaN" not in r.body
        assert np.isfinite(_outputs(r)["probabilities"]).all()


def test_openapi_documents_the_real_error_bodies(server):
    spec = server.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert components["ErrorOut"]["properties"]["error"]["type"] == "string"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                ref = json.dumps(response)
                assert "HTTPValidationError" not in ref, (method, path, status)
                if status.startswith("4") and "application/json" in response.get("content", {}):
                    want = "V1ErrorOut" if path.startswith("/v1/") else "ErrorOut"
                    assert want in ref, (method, path, status, ref)
    body = components["InferenceRequest"]["properties"]
    assert body["parameters"]["properties"]["temperature"] == {
        "type": ["number", "null"],
        "minimum": 0.001,
        "maximum": 1000.0,
    }


def test_grpc_limits_and_the_proto(server):
    grpcclient = pytest.importorskip("tritonclient.grpc")
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
    big = grpcclient.InferInput("input", [16, 3, 224, 224], "FP32")  # 9.6 MB, over --max-body-mb 8
    big.set_data_from_numpy(np.zeros((16, 3, 224, 224), np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [big])
    assert "RESOURCE_EXHAUSTED" in str(info.value)
    assert client.is_server_live()
    client.close()


def test_the_committed_descriptor_is_the_proto():
    pytest.importorskip("grpc_tools")
    import subprocess
    import sys
    from pathlib import Path

    from twoends.serve.oip_pb import DESCRIPTOR

    # protoc runs in a process of its own: grpc_tools' protoc crashes in a process where TensorFlow
    # (which bundles its own protobuf) was loaded by other tests of the session
    root = Path(__file__).resolve().parents[2]
    code = "import sys; from twoends.serve.oip_pb import compile_proto; sys.stdout.buffer.write(compile_proto())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert base64.b64decode("".join(DESCRIPTOR)) == done.stdout, "run: python -m twoends.serve.oip_pb"
