"""``/v1``: one input in, the one Prediction schema out; and ``/v1/model``, what is served.

Errors here have the Prediction schema's error field, ``{"error": {"type", "message"}}``;
an input that cannot be read is the whole Prediction error row.
"""

from __future__ import annotations

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from ..prediction import Prediction
from ..preprocess import Item
from . import schemas
from .errors import HTTPError, UnsupportedMediaType, status_for, validation_error
from .inputs import b64_bytes
from .schemas import TEMPERATURE_RANGE
from .service import Service

__all__ = ["add_v1_routes"]

IMAGE_MEDIA = "image/*, application/octet-stream"


def add_v1_routes(app: FastAPI, service: Service) -> None:
    clf = service.clf

    @app.get("/v1/model", tags=["v1"], summary="What is served: model, preprocessing, labels, head, limits")
    async def model_info() -> dict:
        return {
            **clf.describe(),
            "ready": service.ready,
            "takes": service.kind,
            "top_k": clf.head.top_k,
            "num_outputs": clf.backend.info.num_outputs,
            "server": {
                k: getattr(service.config, k)
                for k in ("max_batch_size", "max_delay_ms", "max_body_mb", "timeout_s", "max_queue")
            },
        }

    @app.post(
        "/v1/predict",
        tags=["v1"],
        summary="Classify one image (multipart upload, raw image body, or JSON with base64) or one text",
        # an input error is a whole Prediction error row, which has the V1ErrorOut shape too
        responses={
            200: {"model": schemas.PredictionOut},
            **{s: {"model": schemas.V1ErrorOut} for s in (400, 408, 413, 415, 422, 503, 504)},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictJSON"}},
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def predict(
        request: Request,
        top_k: int | None = Query(None, ge=1, le=10000, description="Classes in top_k (default: the server's)."),
        temperature: float | None = Query(
            None,
            ge=TEMPERATURE_RANGE[0],
            le=TEMPERATURE_RANGE[1],
            description="Divide logits by T before the activation.",
        ),
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
                    f"expected the {_file_kind(service)} as a file field named 'file' in the multipart form "
                    "(curl -F file=@cat.jpg ...), got " + (f"fields {sorted(form.keys())}" if form else "no fields")
                )
            data = await upload.read()
        finally:
            await form.close()
        _needs_images(service)
        return Item(upload.filename or "<upload>", data), {}
    if media == "application/json" or media.endswith("+json"):
        body = await _json_body(request, service, schemas.PredictJSON)
        params = body.model_dump(include={"top_k", "temperature", "include_logits"}, exclude_none=True)
        if (body.image is None) == (body.text is None):
            raise HTTPError('expected exactly one of "image" (base64 image file) and "text" in the JSON body')
        if body.image is not None:
            _needs_images(service)
            return Item(body.id or "<image>", b64_bytes(body.image)), params
        if service.kind == "audio":
            raise HTTPError(
                f'{service.name} classifies audio clips, got "text"; upload the audio file '
                "(multipart field 'file', or the raw file as the body)"
            )
        if service.kind == "image":
            raise HTTPError(f'{service.name} classifies images, got "text"; send {{"image": <base64 image file>}}')
        return Item(body.id or "<text>", body.text), params
    if media.startswith(("image/", "audio/", "video/")) or media == "application/octet-stream":
        _needs_images(service)
        return Item("<body>", await request.body()), {}
    if service.kind == "audio":
        raise UnsupportedMediaType(
            "expected an audio clip as multipart/form-data (field 'file') or a raw body (audio/*, video/*, "
            f"application/octet-stream); got Content-Type {media or '(none)'}"
        )
    raise UnsupportedMediaType(
        f"expected an image as multipart/form-data (field 'file'), a raw image body ({IMAGE_MEDIA}) or "
        f'application/json with a base64 "image"; got Content-Type {media or "(none)"}'
    )


def _needs_images(service: Service) -> None:
    """Files (images, audio clips) go to models whose inputs are files; a text model takes text."""
    if service.kind == "text":
        raise HTTPError(f'{service.name} classifies text, got a file; send {{"text": "..."}} as JSON')


def _file_kind(service: Service) -> str:
    return "audio clip" if service.kind == "audio" else "image"


async def _json_body(request: Request, service: Service, model: type[BaseModel]):
    return await service.offload(_validate, model, await request.body())  # parsed off the event loop


def _validate(model: type[BaseModel], body: bytes):
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False)) from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
