"""The Open Inference Protocol v2 over gRPC: KServe's and Triton's ``GRPCInferenceService``.

Runs on the app's event loop (``grpc.aio``) beside the HTTP server and shares
its ``Service``: one batcher, one model thread, the same limits. The largest
message accepted is the HTTP body limit, enforced by gRPC before a message is
parsed; converting tensor contents and encoding outputs run in the decode
pool. Errors are gRPC statuses with the same message the HTTP route gives
(INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED).
Outputs are sent as ``raw_output_contents``, as Triton sends them.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import grpc
import numpy as np

from ..errors import ConfigError
from . import oip
from .errors import GRPC_CODES, HTTPError, kind_and_message, status_for
from .oip_pb import SERVICE, message
from .service import Service
from .tensors import NUMPY_TYPES, to_bytes_tensor

__all__ = ["GrpcServer", "start_grpc"]

log = logging.getLogger("twoends.serve")

# datatype -> the typed field of InferTensorContents that carries it
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class GrpcServer:
    def __init__(self, server: grpc.aio.Server, port: int):
        self.server, self.port = server, port

    async def stop(self, grace: float | None = 5) -> None:
        await self.server.stop(grace)


async def start_grpc(service: Service, host: str, port: int) -> GrpcServer:
    """Start serving ``service`` over gRPC on host:port (0: a free port); call inside the running loop."""
    limit = service.config.max_body_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", -1)])
    rpcs = _Rpcs(service)
    handlers = {}
    for name, (request, response) in _METHODS.items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _guarded(service, name, getattr(rpcs, name)),
            request_deserializer=message(request).FromString,
            response_serializer=message(response).SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise ConfigError(f"gRPC cannot listen on {host}:{port} ({exc}); choose another --grpc-port") from None
    if bound == 0:
        raise ConfigError(f"gRPC cannot listen on {host}:{port}; is the port taken? choose another --grpc-port")
    await server.start()
    log.info("twoends: gRPC on %s:%d", host, bound)
    return GrpcServer(server, bound)


_METHODS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelConfig": ("ModelConfigRequest", "ModelConfigResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}


def _guarded(service: Service, name: str, fn: Callable[[Any], Awaitable[Any]]):
    """Every error as a gRPC status with the HTTP route's message; counted in the metrics like HTTP requests."""
    route = f"grpc:{name}"

    async def handle(request, context):
        try:
            response = await fn(request)
        except Exception as exc:
            status = status_for(exc)
            if status >= 500 and not isinstance(exc, HTTPError):
                log.exception("unhandled error on gRPC %s", name)
            code = GRPC_CODES.get(status, "INTERNAL")
            service.metrics.requests.inc({"route": route, "method": "GRPC", "status": code})
            await context.abort(getattr(grpc.StatusCode, code), kind_and_message(exc)[1])
        service.metrics.requests.inc({"route": route, "method": "GRPC", "status": "OK"})
        return response

    return handle


class _Rpcs:
    def __init__(self, service: Service):
        self.service = service

    async def ServerLive(self, request):
        return message("ServerLiveResponse")(live=True)

    async def ServerReady(self, request):
        return message("ServerReadyResponse")(ready=self.service.ready)

    async def ModelReady(self, request):
        oip.check_model(self.service, request.name, request.version)
        return message("ModelReadyResponse")(ready=self.service.ready)

    async def ServerMetadata(self, request):
        return message("ServerMetadataResponse")(**oip.server_metadata())

    async def ModelMetadata(self, request):
        oip.check_model(self.service, request.name, request.version)
        meta = oip.model_metadata(self.service)
        Tensor = message("ModelMetadataResponse").TensorMetadata
        return message("ModelMetadataResponse")(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[Tensor(**t) for t in meta["inputs"]],
            outputs=[Tensor(**t) for t in meta["outputs"]],
        )

    async def ModelConfig(self, request):
        oip.check_model(self.service, request.name, request.version)
        config = oip.model_config(self.service)
        batching = config.pop("dynamic_batching")
        msg = message("ModelConfig")(**{k: v for k, v in config.items() if k not in ("input", "output")})
        for t in config["input"]:
            msg.input.add(**t)  # enum fields take their value names
        for t in config["output"]:
            msg.output.add(**t)
        msg.dynamic_batching.max_queue_delay_microseconds = batching["max_queue_delay_microseconds"]
        msg.dynamic_batching.preferred_batch_size.extend(batching["preferred_batch_size"])
        return message("ModelConfigResponse")(config=msg)

    async def ModelInfer(self, request):
        service = self.service
        oip.check_model(service, request.model_name, request.model_version)
        call = await service.offload(to_call, request)
        answer = await service.within_timeout(oip.infer(service, call))
        return await service.offload(to_response, answer)


def _param(p) -> Any:
    kind = p.WhichOneof("parameter_choice")
    return None if kind is None else getattr(p, kind)


def to_call(request) -> oip.Call:
    """A ModelInferRequest as a Call; runs in the decode pool (typed contents are converted here)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise HTTPError(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
            "send one per input, in order, or none"
        )
    inputs = []
    for i, t in enumerate(request.inputs):
        tensor = oip.InTensor(t.name, t.datatype, list(t.shape), {k: _param(v) for k, v in t.parameters.items()})
        if raw:
            tensor.raw = raw[i]
        else:
            field = _CONTENTS.get(t.datatype)
            values = getattr(t.contents, field) if field else []
            if t.datatype == "BYTES":
                tensor.data = list(values)
            elif t.datatype in NUMPY_TYPES and field:
                tensor.data = np.asarray(values, dtype=NUMPY_TYPES[t.datatype])
            else:
                tensor.data = []  # a datatype without typed contents (FP16): refused with the reason later
        inputs.append(tensor)
    outputs = [oip.OutRequest(o.name, {k: _param(v) for k, v in o.parameters.items()}) for o in request.outputs]
    parameters = {k: _param(v) for k, v in request.parameters.items()}
    t = parameters.get("temperature")
    if isinstance(t, str):  # KServe's gRPC client sends no doubles: "0.5" is how it can say 0.5
        try:
            parameters["temperature"] = float(t)
        except ValueError:
            pass  # refused, with the range, by the protocol check
    return oip.Call(
        request.model_name,
        inputs,
        model_version=request.model_version,
        id=request.id or None,
        parameters=parameters,
        outputs=outputs or None,
    )


def to_response(answer: oip.Answer):
    Response = message("ModelInferResponse")
    Param = message("InferParameter")
    response = Response(model_name=answer.model_name, model_version=answer.model_version, id=answer.id or "")
    for key, value in answer.parameters.items():
        response.parameters[key].CopyFrom(
            Param(string_param=value) if isinstance(value, str) else Param(double_param=float(value))
        )
    for o in answer.outputs:
        response.outputs.add(name=o.name, datatype=o.datatype, shape=o.shape)
        blob = to_bytes_tensor(o.value) if o.datatype == "BYTES" else np.ascontiguousarray(o.value, "<f4").tobytes()
        response.raw_output_contents.append(blob)
    return response
