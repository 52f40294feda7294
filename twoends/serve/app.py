"""The HTTP app: the Open Inference Protocol v2 (REST, and gRPC beside it), ``/v1``, ``/metrics`` and the web page.

``create_app(clf, **limits)`` returns a FastAPI app around a loaded
Classifier; ``twoends serve`` runs it with uvicorn (``http.py``). Routes only
translate HTTP to the ``Service`` (batching, threads, re-heading) and back.
Every error becomes JSON with a 4xx/5xx status: ``{"error": "<message>",
"type": kind}`` as the protocol has it, and ``{"error": {"type", "message"}}``
under ``/v1`` (the Prediction schema's error field).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..classifier import Classifier
from ..errors import ConfigError, TwoEndsError
from . import oip, schemas
from .errors import HTTPError, error_body, nested_for, status_for, validation_error
from .metrics import CONTENT_TYPE
from .middleware import Guard
from .rest import add_v2_routes
from .service import ServeConfig, Service
from .v1 import add_v1_routes

__all__ = ["create_app"]

log = logging.getLogger("twoends.serve")
STATIC = files("twoends.serve") / "static"


def create_app(
    clf: Classifier,
    config: ServeConfig | None = None,
    *,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    **limits: Any,
) -> FastAPI:
    """A FastAPI app serving ``clf``. ``limits`` are ``ServeConfig`` fields (max_batch_size, ...).

    With ``grpc_port``, the same model is also served over gRPC (the KServe / Triton
    ``GRPCInferenceService``) on that port, sharing the batcher and limits; it starts
    and stops with the app.
    """
    if config is not None and limits:
        raise ConfigError(f"pass either config or limits ({sorted(limits)}), not both")
    config = config or ServeConfig(**limits)
    service = Service(clf, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        grpc_server = None
        try:
            if grpc_port is not None:
                from .grpc_server import start_grpc

                grpc_server = await start_grpc(service, grpc_host, grpc_port)
                app.state.grpc_port = grpc_server.port
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=5)
            await service.stop()

    app = FastAPI(
        title=f"twoends: {clf.name}",
        version=__version__,
        description="Any classifier, both ends done right: the Open Inference Protocol v2 (Triton's and KServe's "
        "clients work unchanged: JSON or binary tensor data, model config, classification extension), "
        "a simple /v1/predict returning the one Prediction schema, Prometheus /metrics and a web page at /.",
        lifespan=lifespan,
    )
    app.state.service = service
    _add_error_handlers(app)
    app.add_middleware(Guard, max_body=config.max_body_bytes, metrics=service.metrics)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_page_routes(app, service)
    add_v1_routes(app, service)
    add_v2_routes(
        app,
        service,
        {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}},
        },
    )
    app.openapi = lambda: _openapi(app, service)
    return app


# --- errors ----------------------------------------------------------------------------


def _error(request: Request, status: int, exc: BaseException, headers=None) -> JSONResponse:
    return JSONResponse(error_body(exc, nested=nested_for(request.url.path)), status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    # handlers are looked up along the exception's MRO: HTTPError (a TwoEndsError and an
    # HTTPException) needs its own, or the TwoEndsError one would take it
    @app.exception_handler(HTTPError)
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(request, exc.status_code, exc, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        err = validation_error(exc.errors())
        return _error(request, err.status_code, err)

    @app.exception_handler(TwoEndsError)
    async def twoends_error(request: Request, exc: TwoEndsError):
        return _error(request, status_for(exc), exc)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect):
        # nobody will read this; it is counted as a client error, not a server failure
        return _error(request, 400, HTTPError("the client closed the connection before sending the whole body"))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, exc)


# --- the page and /metrics ----------------------------------------------------------------


def _add_page_routes(app: FastAPI, service: Service) -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(
        "/metrics",
        tags=["server"],
        response_class=Response,
        summary="Prometheus metrics",
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


# --- OpenAPI -----------------------------------------------------------------------------


def _openapi(app: FastAPI, service: Service) -> dict:
    """FastAPI's schema with the request bodies routes read themselves, and the error bodies they really send."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    predict = schemas.PredictJSON.model_json_schema(ref_template="#/components/schemas/{model}")
    # exactly one of image and text, the one this model takes
    takes, other = ("image", "text") if service.kind == "image" else ("text", "image")
    predict.update({"required": [takes], "not": {"required": [other]}})
    if _example_input(service) is not None:
        predict["examples"] = [{takes: _example_input(service)}]
    components["PredictJSON"] = predict
    components["InferenceRequest"] = _infer_request_schema(service)
    for name in ("V1ErrorOut", "ErrorDetail", "ErrorOut"):
        model = getattr(schemas, name)
        components[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components[name].pop("$defs", None)
    # FastAPI documents its own {"detail": [...]} for 422; the server answers with its error bodies
    for path, operations in spec.get("paths", {}).items():
        body = "V1ErrorOut" if nested_for(path) else "ErrorOut"
        for op in operations.values():
            if "422" in op.get("responses", {}):
                op["responses"]["422"] = {
                    "description": "A parameter out of range or of the wrong type",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
                }
            for params in op.get("parameters", []):
                if params.get("in") == "path" and params["name"] == "version":
                    params["schema"] = {"type": "string", "enum": [oip.MODEL_VERSION]}
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = spec
    return spec


def _infer_request_schema(service: Service) -> dict:
    """The JSON inference request, as tight as JSON Schema allows (limits, names, datatypes, parameter ranges)."""
    lo, hi = schemas.TEMPERATURE_RANGE
    n = service.max_inputs
    tensors = []
    for t in oip.model_metadata(service)["inputs"]:
        if t["datatype"] == "BYTES":
            data = {
                "type": "array",
                "minItems": 1,
                "maxItems": n,
                "items": {"type": "string"},
                "description": "the texts" if service.kind == "text" else f"base64-encoded {service.kind} files",
            }
            shape = {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {"type": "integer", "minimum": 1, "maximum": n},
            }
        else:
            data = {
                "type": "array",
                "items": {"type": "number"},
                "description": "B x " + " x ".join(map(str, t["shape"][1:])) + " numbers, row-major",
            }
            dims = [{"const": d} for d in t["shape"][1:]]
            shape = {
                "type": "array",
                "prefixItems": [{"type": "integer", "minimum": 1, "maximum": n}, *dims],
                "minItems": len(t["shape"]),
                "maxItems": len(t["shape"]),
            }
        tensors.append(
            {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"const": t["name"]},
                    "datatype": {"const": t["datatype"]},
                    "shape": shape,
                    "data": data,
                    "parameters": {"type": ["object", "null"]},
                },
            }
        )
    classes = oip.model_metadata(service)["outputs"][0]["shape"][1]
    count = {"type": "integer", "minimum": 1, **({"maximum": classes} if classes > 0 else {})}
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"enum": list(oip.OUTPUT_NAMES)},
            "parameters": {
                "type": ["object", "null"],
                "properties": {"classification": count, "binary_data": {"type": "boolean"}},
            },
        },
    }
    example = {
        "id": "example",
        "inputs": [{"name": service.kind, "shape": [1], "datatype": "BYTES", "data": [_example_input(service)]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    }
    return {
        "type": "object",
        "title": "InferenceRequest",
        "required": ["inputs"],
        **({"examples": [example]} if _example_input(service) is not None else {}),
        "description": "One input tensor. Binary tensor data (the Inference-Header-Content-Length header) is "
        "accepted too: Triton's and KServe's clients send it by default.",
        "properties": {
            # null is read as absent, as the protocol's optional fields
            "id": {"type": ["string", "null"]},
            "parameters": {
                "type": ["object", "null"],
                "properties": {
                    "temperature": {"type": ["number", "null"], "minimum": lo, "maximum": hi},
                    "binary_data_output": {"type": "boolean"},
                },
            },
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"oneOf": tensors}},
            "outputs": {"type": ["array", "null"], "items": output},
        },
    }


def _example_input(service: Service) -> str | None:
    """An input that works, for the documentation (and the examples a schema tester sends): a tiny PNG or a text."""
    if service.kind == "text":
        return "a short text to classify"
    if service.kind != "image":
        return None
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 120, 40)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()
