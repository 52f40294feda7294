"""The Open Inference Protocol v2 over HTTP/REST, as Triton's and KServe's clients speak it.

* Any Content-Type (or none) on infer: the body is JSON, or JSON followed by
  binary tensor data when ``Inference-Header-Content-Length`` says where the
  JSON ends (the binary tensor data extension).
* ``Content-Encoding: gzip`` / ``deflate`` request bodies, inflated with a cap
  (the body limit holds for the inflated size too).
* Outputs in JSON, or binary where the request asks (``binary_data`` on an
  output, ``binary_data_output`` on the request).
* Errors ``{"error": "<message>", "type": "<kind>"}``.

Limits before work: the JSON part's element count is bounded by counting its
commas before it is parsed, and parsing, conversion and encoding run in the
decode pool, never on the event loop. Off the loop is not enough: the C JSON
parser holds the GIL for a whole parse (0.4 s for 20 MB of long numbers), so
only bodies up to ``FAST_JSON_BYTES`` use it; larger ones go through the
standard library's pure-Python scanner, which lets the event loop run every
few milliseconds (strings, the bulk of large base64 bodies, are still read in
C). One body is parsed at a time, and integers past 30 digits, whose reading
is quadratic, are read as floats.
"""

from __future__ import annotations

import json
import json.scanner
import threading
import zlib
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from ..encoding import json_numbers
from . import oip, schemas
from .errors import BodyTooLarge, HTTPError, UnsupportedMediaType, validation_error
from .service import Service
from .tensors import to_bytes_tensor

__all__ = ["add_v2_routes"]

HEADER_LENGTH = "inference-header-content-length"
E404 = {404: {"model": schemas.ErrorOut}}
INFER_ERRORS = {
    200: {
        "description": "The outputs: JSON, or (when an output asks for binary data) "
        "Inference-Header-Content-Length bytes of JSON followed by the binary outputs",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    400: {"model": schemas.ErrorOut},
    404: {"model": schemas.ErrorOut},
    413: {"model": schemas.ErrorOut},
    422: {"model": schemas.ErrorOut},
    503: {"model": schemas.ErrorOut},
    504: {"model": schemas.ErrorOut},
}


def add_v2_routes(app: FastAPI, service: Service, infer_body: dict) -> None:
    probe = ["GET", "HEAD"]

    @app.api_route("/v2", methods=probe, tags=["v2"], response_model=schemas.ServerMetadata, summary="Server metadata")
    async def server_metadata():
        return oip.server_metadata()

    @app.api_route(
        "/v2/health/live", methods=probe, tags=["v2"], response_model=schemas.ServerLive, summary="Server liveness"
    )
    async def live():
        return {"live": True}

    @app.api_route(
        "/v2/health/ready",
        methods=probe,
        tags=["v2"],
        response_model=schemas.ServerReady,
        summary="Server readiness",
        responses={503: {"model": schemas.ServerReady}},
    )
    async def ready():
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    # versioned routes first: "{name:path}" would otherwise swallow "NAME/versions/1"
    for prefix in ("/v2/models/{name:path}/versions/{version}", "/v2/models/{name:path}"):
        _model_routes(app, service, prefix, infer_body)

    @app.get(
        "/v2/models/{name:path}",
        tags=["v2"],
        response_model=schemas.ModelMetadata,
        summary="Model metadata",
        responses=E404,
    )
    async def model_metadata(name: str):
        _no_such_route(service, name)
        oip.check_model(service, name)
        return oip.model_metadata(service)


def _versioned(version: str = Path(description=f"The model version: {oip.MODEL_VERSION!r}")) -> str:
    return version


def _unversioned() -> str:
    return ""


def _model_routes(app: FastAPI, service: Service, prefix: str, infer_body: dict) -> None:
    versioned = "{version}" in prefix
    suffix = " (a version)" if versioned else ""
    which = Depends(_versioned if versioned else _unversioned)  # a path parameter only where the path has one

    @app.api_route(
        prefix + "/ready",
        methods=["GET", "HEAD"],
        tags=["v2"],
        response_model=schemas.ModelReady,
        summary="Model readiness" + suffix,
        responses={503: {"model": schemas.ModelReady}, **E404},
    )
    async def model_ready(name: str, version: str = which):
        oip.check_model(service, name, version)
        return JSONResponse({"name": name, "ready": service.ready}, status_code=200 if service.ready else 503)

    @app.get(
        prefix + "/config",
        tags=["v2"],
        response_model=schemas.ModelConfig,
        response_model_exclude_none=True,
        summary="Model configuration" + suffix,
        responses=E404,
    )
    async def model_config(name: str, version: str = which):
        oip.check_model(service, name, version)
        return oip.model_config(service)

    @app.post(
        prefix + "/infer",
        tags=["v2"],
        response_model=schemas.InferenceResponse,
        summary="Inference" + suffix + ": a preprocessed FP32 tensor 'input' [B, C, H, W] or BYTES 'image' [B] "
        "of image files (base64 in JSON, raw bytes as binary tensor data)",
        responses=INFER_ERRORS,
        openapi_extra={"requestBody": infer_body},
    )
    async def infer(name: str, request: Request, version: str = which):
        oip.check_model(service, name, version)
        call, binary_default = await service.reading(_read_call(request, service, name, version))
        answer = await service.within_timeout(oip.infer(service, call))
        body, headers = await service.offload(encode_answer, answer, binary_default)
        return Response(body, headers=headers, media_type=None)

    if versioned:

        @app.get(
            prefix,
            tags=["v2"],
            response_model=schemas.ModelMetadata,
            summary="Model metadata (a version)",
            responses=E404,
        )
        async def model_metadata_version(name: str, version: str):
            oip.check_model(service, name, version)
            return oip.model_metadata(service)


def _no_such_route(service: Service, name: str) -> None:
    """``/v2/models/{name:path}`` catches every deeper path of a GET: say which route, not 'unknown model'."""
    model = service.name
    if name == model or not name.startswith(model + "/"):
        return
    rest = name[len(model) + 1 :]
    last = rest.rsplit("/", 1)[-1]
    if last == "infer":
        raise HTTPError(
            f"use POST for {rest!r} (the inference route takes a request body)",
            status=405,
            kind="MethodNotAllowed",
            headers={"Allow": "POST"},
        )
    raise HTTPError(
        f"no route /v2/models/{model}/{rest}: model {model!r} has /v2/models/{model} (metadata), /ready, /config, "
        f"/infer (POST), and the same under /versions/{oip.MODEL_VERSION}/",
        status=404,
        kind="NotFound",
    )


# --- reading a request ------------------------------------------------------------------------


async def _read_call(request: Request, service: Service, name: str, version: str) -> tuple[oip.Call, bool]:
    body = await request.body()  # bounded by the Guard (Content-Length or counted as it streams)
    encoding = request.headers.get("content-encoding", "identity")
    header_length = request.headers.get(HEADER_LENGTH)
    return await service.offload(parse_call, body, encoding, header_length, service.config, name, version)


def parse_call(
    body: bytes, encoding: str, header_length: str | None, config, name: str, version: str = ""
) -> tuple[oip.Call, bool]:
    """(the Call, whether outputs default to binary) from a REST infer body; runs in the decode pool."""
    body = _inflate(body, encoding.strip().lower(), config.max_body_bytes)
    json_part, binary = _split(body, header_length)
    # each JSON number or string after the first follows a comma: the count bounds the elements before parsing
    commas = json_part.count(b",")
    if commas >= config.max_json_elements:
        raise BodyTooLarge(
            f"the JSON body holds about {commas + 1} elements; the limit is {config.max_json_elements}: "
            "send tensors as binary data (the Inference-Header-Content-Length header; Triton's and KServe's "
            "clients do it by default), or fewer inputs per request"
        )
    try:
        with _PARSING:
            parsed = _loads(json_part)
    except (ValueError, RecursionError) as exc:
        if header_length is not None:
            where, hint = " (its first Inference-Header-Content-Length bytes)", ""
        else:
            where, hint = (
                "",
                (
                    "; if binary tensor data follows the JSON, say where the JSON ends with the "
                    "Inference-Header-Content-Length header"
                ),
            )
        raise HTTPError(
            f"the body{where} is not valid JSON ({exc}); expected an inference request object{hint}", kind="BadJSON"
        ) from None
    try:
        req = schemas.InferenceRequest.model_validate(parsed)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False)) from None
    inputs = [oip.InTensor(i.name, i.datatype, i.shape, i.parameters or {}, data=i.data) for i in req.inputs]
    _attach_binary(inputs, binary, header_length)
    outputs = [oip.OutRequest(o.name, o.parameters or {}) for o in req.outputs] if req.outputs else None
    params = req.parameters or {}
    call = oip.Call(name, inputs, model_version=version, id=req.id, parameters=params, outputs=outputs)
    return call, params.get("binary_data_output") is True


_PARSING = threading.Lock()
FAST_JSON_BYTES = 4 << 20  # one FP32 224x224 image in JSON is 1.5-3 MB: parsed in C, ~0.05 s


def _loads(text: bytes) -> Any:
    if len(text) <= FAST_JSON_BYTES:
        return json.loads(text, parse_int=_bounded_int)
    decoder = json.JSONDecoder(parse_int=_bounded_int)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # Python bytecode: the GIL changes hands
    return decoder.decode(text.decode("utf-8"))


def _bounded_int(text: str) -> int | float:
    # a 4000-digit integer costs quadratic time to read; past 30 digits no count or shape is meant, so a float
    # (a temperature of 400 digits is then inf, refused with its range)
    return int(text) if len(text) <= 30 else float(text)


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or an uncompressed body"
        )
    # gzip: a gzip header (wbits 16+); deflate: as HTTP means it, a zlib stream (wbits 15), or a raw one (-15)
    for wbits in (31,) if encoding == "gzip" else (15, -15):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)  # a cap on the output: a small bomb stays small
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(
                f"the {encoding} body inflates to more than {limit} bytes, over the body limit; "
                "send a smaller request, or start the server with a larger --max-body-mb"
            )
        if inflater.eof:
            return out
    raise HTTPError(
        f"the body is not valid {encoding} data (Content-Encoding: {encoding}); compress it whole, or drop the header",
        kind="BadEncoding",
    )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 < n <= len(body):
        raise HTTPError(
            f"Inference-Header-Content-Length must be the length of the JSON part, from 1 to the body's "
            f"{len(body)} bytes, got {header_length!r}"
        )
    return body[:n], memoryview(body)[n:]


def _attach_binary(inputs: list[oip.InTensor], binary: memoryview, header_length: str | None) -> None:
    offset = 0
    for t in inputs:
        size = t.parameters.get("binary_data_size")
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise HTTPError(f"input {t.name!r}: parameters.binary_data_size must be a whole number >= 0, got {size!r}")
        if t.data is not None:
            raise HTTPError(f"input {t.name!r} has both data and binary_data_size; send one of them")
        if header_length is None:
            raise HTTPError(
                f"input {t.name!r} has binary_data_size but the request has no Inference-Header-Content-Length "
                "header saying where the JSON ends"
            )
        if offset + size > len(binary):
            raise HTTPError(
                f"input {t.name!r} declares {size} bytes of binary data but only {len(binary) - offset} "
                "remain after the JSON part"
            )
        t.raw, offset = binary[offset : offset + size], offset + size
    if offset != len(binary):
        raise HTTPError(
            f"{len(binary) - offset} bytes follow the JSON part and the declared binary tensor data; "
            "binary_data_size of the inputs must add up to what follows the JSON"
        )
    for t in inputs:
        if t.raw is None and t.data is None:
            raise HTTPError(f"input {t.name!r} has no data: send data, or binary_data_size with binary data")


# --- writing an answer ------------------------------------------------------------------------


def encode_answer(answer: oip.Answer, binary_default: bool) -> tuple[bytes, dict]:
    """The response body and headers: JSON, or JSON then binary outputs (binary tensor data extension)."""
    outputs, blobs = [], []
    for o in answer.outputs:
        item: dict[str, Any] = {"name": o.name, "datatype": o.datatype, "shape": o.shape}
        if o.parameters.get("binary_data", binary_default):
            blob = to_bytes_tensor(o.value) if o.datatype == "BYTES" else np.ascontiguousarray(o.value, "<f4").tobytes()
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif o.datatype == "BYTES":
            item["data"] = [e.decode("utf-8") for e in o.value]
        else:
            item["data"] = json_numbers(o.value)
        outputs.append(item)
    head = {
        "model_name": answer.model_name,
        "model_version": answer.model_version,
        "outputs": outputs,
        "parameters": answer.parameters,
    }
    if answer.id is not None:
        head["id"] = answer.id
    text = json.dumps(head, allow_nan=False, separators=(",", ":")).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    return b"".join([text, *blobs]), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(text)),
    }
