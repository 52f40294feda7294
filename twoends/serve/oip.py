"""The Open Inference Protocol v2, without a transport: one inference call in, its outputs back.

REST (``rest.py``) and gRPC (``grpc_server.py``) both turn a request into a
``Call`` and an ``Answer`` into their own wire format; everything the two
share -- which model and version, parameters, limits, decoding, batching,
re-heading, the classification extension -- happens here once.

Order of work: every check that needs only the request's header (model,
parameters, input names, datatypes, shapes and the number of inputs) comes
before any tensor data is converted or any image decoded; the conversion runs
in the decode pool, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..preprocess import Item
from ..runner import Prepared
from .errors import BodyTooLarge, HTTPError, error_body, status_for
from .inputs import b64_bytes
from .schemas import TEMPERATURE_RANGE
from .service import Service
from .tensors import TENSOR_DATATYPES, check_shape, from_bytes_tensor, numeric

__all__ = [
    "Answer",
    "Call",
    "InTensor",
    "OutTensor",
    "OUTPUT_NAMES",
    "TEMPERATURE_RANGE",
    "infer",
    "model_config",
    "model_metadata",
    "server_metadata",
    "check_model",
    "temperature_param",
]

OUTPUT_NAMES = ("logits", "probabilities")
MODEL_VERSION = "1"
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration", "parameters"]


@dataclass
class InTensor:
    name: str
    datatype: str
    shape: Any
    parameters: dict = field(default_factory=dict)
    data: Any = None  # JSON data, or gRPC typed contents (an array, or a list of bytes)
    raw: Any = None  # binary data (REST binary extension, gRPC raw_input_contents)


@dataclass
class OutRequest:
    name: str
    parameters: dict = field(default_factory=dict)


@dataclass
class Call:
    model_name: str
    inputs: list[InTensor]
    model_version: str = ""
    id: str | None = None
    parameters: dict = field(default_factory=dict)
    outputs: list[OutRequest] | None = None


@dataclass
class OutTensor:
    name: str
    datatype: str  # "FP32" (an array) or "BYTES" (a list of bytes, row-major)
    shape: list[int]
    value: Any
    parameters: dict = field(default_factory=dict)  # what the request asked for this output (binary_data, ...)


@dataclass
class Answer:
    model_name: str
    model_version: str
    id: str | None
    parameters: dict
    outputs: list[OutTensor]


# --- what is served ---------------------------------------------------------------------------


def check_model(service: Service, name: str, version: str | None = "") -> None:
    if name != service.name:
        raise HTTPError(
            f"unknown model {name!r}: this server serves {service.name!r}", status=404, kind="ModelNotFound"
        )
    if version not in (None, "", MODEL_VERSION):
        raise HTTPError(
            f"unknown version {version!r} of model {name!r}: the only version is {MODEL_VERSION!r}",
            status=404,
            kind="ModelNotFound",
        )


def server_metadata() -> dict:
    return {"name": "twoends", "version": __version__, "extensions": list(EXTENSIONS)}


def _inputs(service: Service) -> list[dict]:
    clf, out = service.clf, []
    # a preprocessed tensor, as the model's input plan makes it (an ensemble's members each make their own: none)
    if service.kind == "image" and clf.plan.output_shape is not None:
        out.append(
            {
                "name": "input",
                "datatype": TENSOR_DATATYPES.get(clf.spec.dtype, "FP32"),
                "shape": [-1, *clf.plan.output_shape],
            }
        )
    out.append({"name": service.kind, "datatype": "BYTES", "shape": [-1]})  # raw inputs: files, or texts
    return out


def _classes(service: Service) -> int:
    n = service.clf.backend.info.num_outputs
    return -1 if n is None else (2 if n == 1 else n)  # a one-logit binary model is shown as [not X, X]


def model_metadata(service: Service) -> dict:
    outputs = [{"name": o, "datatype": "FP32", "shape": [-1, _classes(service)]} for o in OUTPUT_NAMES]
    return {
        "name": service.name,
        "versions": [MODEL_VERSION],
        "platform": f"twoends/{type(service.clf.backend).__name__}",
        "inputs": _inputs(service),
        "outputs": outputs,
    }


def model_config(service: Service) -> dict:
    """A Triton-style model configuration: dims without the batch dimension, max_batch_size beside them."""

    def tensor(t: dict, extra: dict) -> dict:
        return {
            "name": t["name"],
            "data_type": "TYPE_STRING" if t["datatype"] == "BYTES" else f"TYPE_{t['datatype']}",
            **extra,
            "dims": t["shape"][1:] or [1],
        }

    inputs = [tensor(t, {"format": "FORMAT_NCHW" if t["name"] == "input" else "FORMAT_NONE"}) for t in _inputs(service)]
    outputs = [tensor({"name": o, "datatype": "FP32", "shape": [-1, _classes(service)]}, {}) for o in OUTPUT_NAMES]
    return {
        "name": service.name,
        "platform": f"twoends/{type(service.clf.backend).__name__}",
        "backend": "twoends",
        "max_batch_size": service.max_inputs,
        "input": inputs,
        "output": outputs,
        "dynamic_batching": {
            "max_queue_delay_microseconds": int(service.config.max_delay_ms * 1000),
            "preferred_batch_size": [service.config.max_batch_size],
        },
    }


# --- parameters -------------------------------------------------------------------------------


def temperature_param(value: Any, where: str = "parameters.temperature") -> float | None:
    """A temperature within ``TEMPERATURE_RANGE`` (a 422 naming the range otherwise)."""
    if value is None:
        return None
    lo, hi = TEMPERATURE_RANGE
    # compared before float(): a 400-digit integer is out of range, not an OverflowError
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise HTTPError(
            f"{where} must be a number from {lo:g} to {hi:g} (1 leaves the logits unchanged), got {_short(value)}",
            status=422,
            kind="ValidationError",
        )
    return float(value)


def _count_param(value: Any, where: str, most: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema counts 44.0 as an integer, and so do JSON clients
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise HTTPError(
            f"{where} must be a whole number from 1 to {most} (the number of classes), got {_short(value)}",
            status=422,
            kind="ValidationError",
        )
    return int(value)


def _bool_param(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise HTTPError(f"{where} must be true or false, got {_short(value)}", status=422, kind="ValidationError")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wanted(service: Service, call: Call) -> list[OutRequest]:
    if not call.outputs:
        return [OutRequest(o) for o in OUTPUT_NAMES]
    unknown = sorted({o.name for o in call.outputs} - set(OUTPUT_NAMES))
    if unknown:
        raise HTTPError(f"unknown output(s) {unknown}: this model has outputs {list(OUTPUT_NAMES)}")
    classes = _classes(service)
    for o in call.outputs:
        params = o.parameters = dict(o.parameters or {})
        if "classification" in params:
            params["classification"] = _count_param(
                params["classification"],
                f"outputs[{o.name!r}].parameters.classification",
                classes if classes > 0 else 10**6,
            )
        if "binary_data" in params:
            _bool_param(params["binary_data"], f"outputs[{o.name!r}].parameters.binary_data")
    return call.outputs


# --- the call ---------------------------------------------------------------------------------


async def infer(service: Service, call: Call) -> Answer:
    """Check, convert, batch, run and re-head one inference call."""
    check_model(service, call.model_name, call.model_version)
    params = call.parameters or {}
    temperature = temperature_param(params.get("temperature"))
    if "binary_data_output" in params:
        _bool_param(params["binary_data_output"], "parameters.binary_data_output")
    wanted = _wanted(service, call)
    if len(call.inputs) != 1:
        expected = " or ".join(f"{t['name']!r}" for t in _inputs(service))
        raise HTTPError(f"expected exactly one input tensor ({expected}), got {len(call.inputs)}")
    inp = call.inputs[0]
    shape = check_shape(inp.shape, inp.name)
    rid = call.id or "request"
    prepared = await service.offload(_prepare_call, service, inp, shape, rid)
    if prepared and isinstance(prepared[0], Item):  # files or texts: decoded in the pool, one per input
        prepared = await service.prepare(prepared)
        bad = next((p for p in prepared if p.error is not None), None)
        if bad is not None:
            kind = error_body(bad.error)["error"]["type"]
            raise HTTPError(
                f"{bad.id}: {error_body(bad.error)['error']['message']}", status=status_for(bad.error), kind=kind
            )
    preds = service.rehead(await service.infer(prepared), temperature=temperature)
    failed = next((p for p in preds if not p.ok), None)
    if failed is not None:
        raise HTTPError(f"{failed.input}: {failed.error['message']}", status=422, kind=failed.error["type"])
    outputs = await service.offload(_outputs, service, preds, wanted)
    return Answer(
        service.name,
        MODEL_VERSION,
        call.id,
        {"activation": preds[0].activation, "temperature": preds[0].temperature},
        outputs,
    )


def _prepare_call(service: Service, inp: InTensor, shape: list[int], rid: str) -> list:
    """Prepared rows (a ready tensor) or Items (files, texts) for one input; runs in the decode pool."""
    clf = service.clf
    names = {t["name"]: t for t in _inputs(service)}
    spec = names.get(inp.name)
    if spec is None:
        expected = ", ".join(f"{t['name']!r} ({t['datatype']})" for t in names.values())
        raise HTTPError(f"unknown input {inp.name!r} ({inp.datatype}): this model takes {expected}")
    if inp.datatype != spec["datatype"]:
        raise HTTPError(f"input {inp.name!r} must be {spec['datatype']}, got {inp.datatype}")
    if spec["datatype"] != "BYTES":
        expected = list(clf.plan.output_shape)
        if len(shape) != 1 + len(expected) or shape[1:] != expected or shape[0] < 1:
            raise HTTPError(
                f"input {inp.name!r} must have shape [B, {', '.join(map(str, expected))}] (the model's preprocessed "
                f"input, B >= 1), got {shape}; send a preprocessed batch, or image files as the BYTES input 'image'"
            )
        _check_count(service, shape[0], inp.name)
        rows = numeric(inp.name, inp.datatype, shape, data=inp.data, raw=inp.raw)
        return [Prepared(f"{rid}[{i}]", rows[i]) for i in range(shape[0])]
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 1:
        raise HTTPError(f"input {inp.name!r} (BYTES) must have shape [B] or [B, 1] with B >= 1, got {shape}")
    _check_count(service, shape[0], inp.name)
    elements = _bytes_elements(inp, shape[0], as_text=service.kind == "text")
    return [Item(f"{rid}[{i}]", e) for i, e in enumerate(elements)]


def _check_count(service: Service, count: int, name: str) -> None:
    if count > service.max_inputs:
        raise BodyTooLarge(
            f"input {name!r} holds {count} inputs; the limit per request is {service.max_inputs}: "
            "split the batch into smaller requests (the server batches concurrent requests itself)"
        )


def _bytes_elements(inp: InTensor, count: int, as_text: bool) -> list:
    if inp.raw is not None:
        elements = from_bytes_tensor(inp.name, count, inp.raw)
        if not as_text:
            return elements
        try:
            return [e.decode("utf-8") for e in elements]
        except UnicodeDecodeError:
            raise HTTPError(f"input {inp.name!r}: texts must be UTF-8") from None
    data = inp.data
    if isinstance(data, list) and data and all(isinstance(x, list) for x in data):
        data = [y for x in data for y in x]  # [B, 1] nested
    if not isinstance(data, list) or len(data) != count:
        got = f"{len(data)} elements" if isinstance(data, list) else type(data).__name__
        raise HTTPError(f"input {inp.name!r}: shape declares {count} elements, data has {got}")
    if all(isinstance(x, bytes) for x in data):  # gRPC bytes_contents: the files (or UTF-8 texts) themselves
        return [x.decode("utf-8", "replace") for x in data] if as_text else data
    bad = next((i for i, x in enumerate(data) if not isinstance(x, str)), None)
    if bad is not None:
        raise HTTPError(f"input {inp.name!r}: element {bad} must be a string, got {type(data[bad]).__name__}")
    # JSON cannot carry bytes: image files arrive base64-encoded, texts as they are
    return data if as_text else [b64_bytes(x, what=f"{inp.name}[{i}]") for i, x in enumerate(data)]


def _outputs(service: Service, preds: list, wanted: list[OutRequest]) -> list[OutTensor]:
    out = []
    for o in wanted:
        rows = np.stack([getattr(p, o.name) for p in preds]).astype(np.float32)
        count = (o.parameters or {}).get("classification")
        if count:
            labels = _labels(service)
            out.append(OutTensor(o.name, "BYTES", [rows.shape[0], count], _classify(rows, count, labels), o.parameters))
        else:
            out.append(OutTensor(o.name, "FP32", list(rows.shape), rows, o.parameters or {}))
    return out


def _labels(service: Service):
    n = service.clf.backend.info.num_outputs
    return None if n is None else service.clf.head.resolve_labels(n)


def _classify(rows: np.ndarray, count: int, labels) -> list[bytes]:
    """Triton's classification strings "value:index[:label]", highest value first, row-major."""
    out = []
    for row in rows:
        order = np.argsort(-row, kind="stable")[:count]  # ties: the lower index first
        for i in order:
            text = f"{row[i]:f}:{i}" + (f":{labels[i]}" if labels is not None else "")
            out.append(text.encode("utf-8"))
    return out
