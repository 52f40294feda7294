"""KServe's own REST and gRPC clients against a running ``twoends serve``; prints one JSON report.

Run as a separate process by tests/serve/test_kserve_clients.py: KServe's and
Triton's client libraries both register ``inference.*`` protobuf messages in
protobuf's default pool and cannot be imported into one process.

    python tests/serve/clients/kserve_client.py HTTP_PORT GRPC_PORT PHOTO...

Used as KServe's README shows (InferenceRESTClient / InferenceGRPCClient,
InferRequest with InferInput.set_data_from_numpy: binary by default), no
hand-set headers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

MODEL = "efficientnet_lite0"


def _request(photos, *, outputs=None, parameters=None, name=MODEL, as_json=False) -> InferRequest:
    if as_json:  # JSON cannot carry bytes: the protocol's JSON form of an image is its base64 text
        image = InferInput(
            name="image",
            shape=[len(photos)],
            datatype="BYTES",
            data=[base64.b64encode(Path(p).read_bytes()).decode() for p in photos],
        )
    else:
        image = InferInput(name="image", shape=[len(photos)], datatype="BYTES")
        image.set_data_from_numpy(np.array([Path(p).read_bytes() for p in photos], dtype=np.object_))
    return InferRequest(model_name=name, infer_inputs=[image], request_outputs=outputs, parameters=parameters)


def _tensors(response) -> dict:
    out = {}
    for o in response.outputs:
        array = o.as_numpy()
        out[o.name] = (
            [[e.decode() if isinstance(e, bytes) else e for e in row] for row in array]
            if o.datatype == "BYTES"
            else array.tolist()
        )
    return out


async def _errors(infer, tiny) -> dict:
    """The text each client shows for a refused request (str() of its exception)."""
    cases = {
        "unknown_model": dict(name="resnet50"),
        "unknown_output": dict(outputs=[RequestedOutput("features")]),
        "classification_range": dict(outputs=[RequestedOutput("probabilities", parameters={"classification": 5000})]),
        "temperature_range": dict(parameters={"temperature": tiny}),
    }
    shown = {}
    for what, kw in cases.items():
        try:
            await infer(_request(PHOTOS[:1], **kw))
            shown[what] = None
        except Exception as exc:  # noqa: BLE001 - the point is what the client prints
            shown[what] = f"{type(exc).__name__}: {exc}"
    return shown


async def rest(port: int) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=120))
    base = f"http://127.0.0.1:{port}"
    report = {
        "live": await client.is_server_live(base),
        "ready": await client.is_server_ready(base),
        "model_ready": await client.is_model_ready(base, MODEL),
    }
    binary = await client.infer(base, _request(PHOTOS), model_name=MODEL)
    report["binary"] = _tensors(binary)
    report["json"] = _tensors(await client.infer(base, _request(PHOTOS, as_json=True), model_name=MODEL))
    classified = await client.infer(
        base,
        _request(PHOTOS, outputs=[RequestedOutput("probabilities", parameters={"classification": 3})]),
        model_name=MODEL,
    )
    report["classification"] = _tensors(classified)
    report["errors"] = await _errors(lambda r: client.infer(base, r, model_name=r.model_name), 1e-300)
    await client.close()
    return report


async def grpc(port: int) -> dict:
    client = InferenceGRPCClient(url=f"127.0.0.1:{port}", timeout=120)
    report = {
        "live": await client.is_server_live(),
        "ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(MODEL),
    }
    report["binary"] = _tensors(await client.infer(_request(PHOTOS)))
    classified = await client.infer(
        _request(PHOTOS, outputs=[RequestedOutput("probabilities", parameters={"classification": 3})])
    )
    report["classification"] = _tensors(classified)
    # KServe's gRPC parameters are str, bool or int: a whole temperature, or a decimal as text
    report["hot"] = _tensors(await client.infer(_request(PHOTOS, parameters={"temperature": 2})))
    report["cool"] = _tensors(await client.infer(_request(PHOTOS, parameters={"temperature": "0.5"})))
    report["errors"] = await _errors(client.infer, "1e-300")  # no doubles over gRPC
    await client.close()
    return report


async def main(http_port: int, grpc_port: int) -> None:
    print(json.dumps({"rest": await rest(http_port), "grpc": await grpc(grpc_port)}))


if __name__ == "__main__":
    PHOTOS = sys.argv[3:]
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
