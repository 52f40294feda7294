"""The HTTP app: the Open Inference Protocol v2, ``/v1/predict``, ``/metrics`` and the web page.

``create_app(clf, **limits)`` returns a FastAPI app around a loaded
Classifier; ``twoends serve`` runs it with uvicorn. Routes only translate
HTTP to the ``Service`` (batching, threads, re-heading) and back; every error
becomes ``{"error": {"type", "message"}}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..classifier import Classifier
from ..encoding import json_numbers
from ..errors import ConfigError, TwoEndsError
from ..prediction import Prediction
from ..preprocess import Item
from ..runner import Prepared
from . import schemas
from .errors import HTTPError, UnsupportedMediaType, error_body, status_for
from .inputs import TENSOR_DATATYPES, b64_bytes, bytes_elements, tensor_rows
from .metrics import CONTENT_TYPE
from .middleware import Guard
from .service import ServeConfig, Service

__all__ = ["create_app"]

log = logging.getLogger("twoends.serve")
STATIC = files("twoends.serve") / "static"
OUTPUT_NAMES = ("logits", "probabilities")
IMAGE_MEDIA = "image/*, application/octet-stream"


def create_app(clf: Classifier, config: ServeConfig | None = None, **limits: Any) -> FastAPI:
    """A FastAPI app serving ``clf``. ``limits`` are ``ServeConfig`` fields (max_batch_size, ...)."""
    if config is not None and limits:
        raise ConfigError(f"pass either config or limits ({sorted(limits)}), not both")
    config = config or ServeConfig(**limits)
    service = Service(clf, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title=f"twoends: {clf.name}",
        version=__version__,
        description="Any classifier, both ends done right: the Open Inference Protocol v2, "
        "a simple /v1/predict returning the one Prediction schema, Prometheus /metrics and a web page at /.",
        lifespan=lifespan,
    )
    app.state.service = service
    _add_error_handlers(app)
    app.add_middleware(Guard, max_body=config.max_body_bytes, metrics=service.metrics)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_page_routes(app, service)
    _add_v1_routes(app, service)
    _add_v2_routes(app, service)
    app.openapi = lambda: _openapi(app)
    return app


# --- errors ----------------------------------------------------------------------------


def _error(status: int, exc: BaseException, headers=None) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    # handlers are looked up along the exception's MRO: HTTPError (a TwoEndsError and an
    # HTTPException) needs its own, or the TwoEndsError one would take it
    @app.exception_handler(HTTPError)
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, _AsResponse):
            return exc.response
        return _error(exc.status_code, exc, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return _validation_response(exc.errors())

    @app.exception_handler(TwoEndsError)
    async def twoends_error(request: Request, exc: TwoEndsError):
        return _error(status_for(exc), exc)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect):
        # nobody will read this; it is counted as a client error, not a server failure
        return _error(400, HTTPError("the client closed the connection before sending the whole body"))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, exc)


def _validation_response(errors: list) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        msg = f"the body is not valid JSON ({first.get('msg')}); expected a JSON object"
        return JSONResponse({"error": {"type": "BadJSON", "message": msg}}, status_code=400)
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ())) or "body"
        parts.append(f"{where}: {e.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return JSONResponse({"error": {"type": "ValidationError", "message": "; ".join(parts) + more}}, status_code=422)


async def _json_body(request: Request, model: type[BaseModel]) -> Any:
    media = _media_type(request)
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"expected a JSON body (Content-Type: application/json), got {media or 'no Content-Type'}")
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _AsResponse(_validation_response(exc.errors(include_url=False))) from None


class _AsResponse(HTTPError):
    """Carries a ready response out of a helper (the handler returns it as is)."""

    def __init__(self, response: JSONResponse):
        super().__init__("", status=response.status_code)
        self.response = response


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


# --- the page, /metrics, /v1 ------------------------------------------------------------


def _add_page_routes(app: FastAPI, service: Service) -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/metrics", tags=["server"], response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def _add_v1_routes(app: FastAPI, service: Service) -> None:
    clf = service.clf

    @app.get("/v1/model", tags=["v1"], summary="What is served: model, preprocessing, labels, head, limits")
    async def model_info() -> dict:
        return {
            **clf.describe(),
            "ready": service.ready,
            "takes": service.kind,
            "top_k": clf.head.top_k,
            "num_outputs": clf.backend.info.num_outputs,
            "server": {k: getattr(service.config, k) for k in ("max_batch_size", "max_delay_ms", "max_body_mb", "timeout_s", "max_queue")},
        }

    @app.post(
        "/v1/predict",
        tags=["v1"],
        summary="Classify one image (multipart upload, raw image body, or JSON with base64) or one text",
        responses={200: {"model": schemas.PredictionOut}, 400: {"model": schemas.ErrorOut},
                   413: {"model": schemas.ErrorOut}, 415: {"model": schemas.ErrorOut}, 504: {"model": schemas.ErrorOut}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}},
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictJSON"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        }}},
    )
    async def predict(
        request: Request,
        top_k: int | None = Query(None, ge=1, le=10000, description="Classes in top_k (default: the server's)."),
        temperature: float | None = Query(None, gt=0, description="Divide logits by T before the activation."),
        include_logits: bool = Query(False, description="Also return the full logits and probabilities."),
    ) -> JSONResponse:
        item, params = await service.reading(_read_predict_body(request, service))
        top_k = params.get("top_k", top_k)
        temperature = params.get("temperature", temperature)
        include_logits = params.get("include_logits", include_logits)

        async def run() -> tuple[Prediction, int]:
            prepared = (await service.prepare([item]))[0]
            if prepared.error is not None:  # the error row, with the status its error deserves
                return Prediction.failed(item.id, prepared.error, model=clf.name), status_for(prepared.error)
            pred = (await service.infer([prepared]))[0]
            return service.rehead([pred], temperature=temperature, top_k=top_k)[0], 200 if pred.ok else 422

        pred, status = await service.within_timeout(run())
        return JSONResponse(pred.to_dict(include_vectors=bool(include_logits) and pred.ok), status_code=status)


async def _read_predict_body(request: Request, service: Service) -> tuple[Item, dict]:
    """The one input of a /v1/predict request, and the parameters its JSON body sets."""
    media = _media_type(request)
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=16)
        try:
            upload = form.get("file") or form.get("image")
            if not isinstance(upload, UploadFile):
                raise HTTPError(
                    "expected the image as a file field named 'file' in the multipart form "
                    "(curl -F file=@cat.jpg ...), got " + (f"fields {sorted(form.keys())}" if form else "no fields")
                )
            data = await upload.read()
        finally:
            await form.close()
        _needs_images(service)
        return Item(upload.filename or "<upload>", data), {}
    if media == "application/json" or media.endswith("+json"):
        body = await _json_body(request, schemas.PredictJSON)
        params = body.model_dump(include={"top_k", "temperature", "include_logits"}, exclude_none=True)
        if (body.image is None) == (body.text is None):
            raise HTTPError('expected exactly one of "image" (base64 image file) and "text" in the JSON body')
        if body.image is not None:
            _needs_images(service)
            return Item(body.id or "<image>", b64_bytes(body.image)), params
        if service.kind == "image":
            raise HTTPError(f'{service.name} classifies images, got "text"; send {{"image": <base64 image file>}}')
        return Item(body.id or "<text>", body.text), params
    if media.startswith("image/") or media == "application/octet-stream":
        _needs_images(service)
        return Item("<body>", await request.body()), {}
    raise UnsupportedMediaType(
        f"expected an image as multipart/form-data (field 'file'), a raw image body ({IMAGE_MEDIA}) or "
        f"application/json with a base64 \"image\"; got Content-Type {media or '(none)'}"
    )


def _needs_images(service: Service) -> None:
    if service.kind != "image":
        raise HTTPError(f'{service.name} classifies text, got an image; send {{"text": "..."}} as JSON')


# --- the Open Inference Protocol v2 -------------------------------------------------------


def _add_v2_routes(app: FastAPI, service: Service) -> None:
    clf = service.clf

    def check_name(name: str) -> None:
        if name != service.name:
            raise HTTPError(f"unknown model {name!r}: this server serves {service.name!r}", status=404, kind="ModelNotFound")

    @app.get("/v2", tags=["v2"], response_model=schemas.ServerMetadata, summary="Server metadata")
    async def server_metadata():
        return {"name": "twoends", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["v2"], response_model=schemas.ServerLive, summary="Server liveness")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"], response_model=schemas.ServerReady, summary="Server readiness",
             responses={503: {"model": schemas.ServerReady}})
    async def ready():
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    @app.get("/v2/models/{name:path}/ready", tags=["v2"], response_model=schemas.ModelReady, summary="Model readiness",
             responses={503: {"model": schemas.ModelReady}, 404: {"model": schemas.ErrorOut}})
    async def model_ready(name: str):
        check_name(name)
        return JSONResponse({"name": name, "ready": service.ready}, status_code=200 if service.ready else 503)

    @app.post("/v2/models/{name:path}/infer", tags=["v2"], response_model=schemas.InferenceResponse,
              summary="Inference: a preprocessed FP32 tensor 'input' [B, C, H, W] or BYTES 'image' [B] of base64 files",
              responses={400: {"model": schemas.ErrorOut}, 404: {"model": schemas.ErrorOut}, 504: {"model": schemas.ErrorOut}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}})
    async def infer(name: str, request: Request):
        check_name(name)
        req = await service.reading(_json_body(request, schemas.InferenceRequest))
        return JSONResponse(await service.within_timeout(_infer(service, req)))

    @app.get("/v2/models/{name:path}", tags=["v2"], response_model=schemas.ModelMetadata, summary="Model metadata",
             responses={404: {"model": schemas.ErrorOut}})
    async def model_metadata(name: str):
        check_name(name)
        return _metadata(service)


def _metadata(service: Service) -> dict:
    clf = service.clf
    inputs = []
    if service.kind == "image":
        inputs.append({"name": "input", "datatype": TENSOR_DATATYPES.get(clf.spec.dtype, "FP32"),
                       "shape": [-1, *clf.plan.output_shape]})
    inputs.append({"name": service.kind, "datatype": "BYTES", "shape": [-1]})
    n = clf.backend.info.num_outputs
    classes = -1 if n is None else (2 if n == 1 else n)  # a one-logit binary model is shown as [not X, X]
    outputs = [{"name": o, "datatype": "FP32", "shape": [-1, classes]} for o in OUTPUT_NAMES]
    return {"name": service.name, "versions": [], "platform": f"twoends/{type(clf.backend).__name__}",
            "inputs": inputs, "outputs": outputs}


async def _infer(service: Service, req: schemas.InferenceRequest) -> dict:
    clf = service.clf
    if len(req.inputs) != 1:
        raise HTTPError(f"expected exactly one input tensor ('input' or 'image'), got {len(req.inputs)}")
    wanted = [o.name for o in req.outputs] if req.outputs else list(OUTPUT_NAMES)
    unknown = sorted(set(wanted) - set(OUTPUT_NAMES))
    if unknown:
        raise HTTPError(f"unknown output(s) {unknown}: this model has outputs {list(OUTPUT_NAMES)}")
    temperature = _temperature(req.parameters)
    inp, rid = req.inputs[0], req.id or "request"
    if inp.name == "input" and service.kind == "image":
        rows = tensor_rows(inp.data, inp.shape, inp.datatype, inp.name, clf.plan.output_shape, clf.spec.dtype)
        prepared = [Prepared(f"{rid}[{i}]", rows[i]) for i in range(rows.shape[0])]
    elif inp.name == service.kind and inp.datatype == "BYTES":
        # JSON BYTES elements are strings: for images, base64 of the file; for text, the text itself
        payloads = bytes_elements(inp.data, inp.shape, inp.name, decode=(service.kind == "image"))
        prepared = await service.prepare([Item(f"{rid}[{i}]", p) for i, p in enumerate(payloads)])
        bad = next((p for p in prepared if p.error is not None), None)
        if bad is not None:
            raise _row_error(bad.id, bad.error)
    else:
        expected = ", ".join(f"{t['name']!r} ({t['datatype']})" for t in _metadata(service)["inputs"])
        raise HTTPError(f"unknown input {inp.name!r} ({inp.datatype}): this model takes {expected}")
    preds = service.rehead(await service.infer(prepared), temperature=temperature)
    failed = next((p for p in preds if not p.ok), None)
    if failed is not None:
        raise HTTPError(f"{failed.input}: {failed.error['message']}", status=422, kind=failed.error["type"])
    outputs = []
    for name in wanted:
        rows = np.stack([getattr(p, name) for p in preds]).astype(np.float32)
        outputs.append({"name": name, "datatype": "FP32", "shape": list(rows.shape), "data": json_numbers(rows)})
    return {"model_name": service.name, "model_version": None, "id": req.id,
            "parameters": {"activation": preds[0].activation, "temperature": preds[0].temperature}, "outputs": outputs}


def _temperature(parameters: dict | None) -> float | None:
    t = (parameters or {}).get("temperature")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0 or t == float("inf"):
        raise HTTPError(f"parameters.temperature must be a number > 0, got {t!r}", status=422, kind="ValidationError")
    return float(t)


def _row_error(input_id: str, exc: BaseException) -> HTTPError:
    body = error_body(exc)["error"]
    return HTTPError(f"{input_id}: {body['message']}", status=status_for(exc), kind=body["type"])


# --- OpenAPI -----------------------------------------------------------------------------


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, plus the request bodies that routes read themselves."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (schemas.InferenceRequest, schemas.PredictJSON):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    app.openapi_schema = spec
    return spec

