"""Request and response bodies: the Open Inference Protocol v2 (REST) and ``/v1/predict``.

The v2 shapes follow the KServe / Triton "Open Inference Protocol" REST spec:
tensors are ``{name, shape, datatype, data}`` with ``data`` in row-major order
(flat, or nested as the shape), ``parameters`` optional everywhere. Tensor
``data`` is typed ``Any`` on purpose: an image tensor is 150,528 numbers and
validating each as a Python object would cost more than the forward pass;
the server checks it with NumPy instead (``inputs.py``).

``PredictionOut`` documents ``Prediction.to_dict()`` (the one output schema);
responses are that dict itself, not re-validated through this model.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

#: the temperatures a request may set: outside it, logits / T leave float range or change nothing visible
TEMPERATURE_RANGE = (1e-3, 1e3)

__all__ = [
    "ErrorOut",
    "ModelConfig",
    "V1ErrorOut",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelMetadata",
    "ModelReady",
    "PredictJSON",
    "PredictionOut",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLive",
    "ServerMetadata",
    "ServerReady",
]

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"
]


# --- errors -------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """The Open Inference Protocol's error body (every route outside /v1)."""

    error: str = Field(description="What was expected, what was got, and how to fix it.")
    type: str = Field(description="What kind of problem: DecodeError, PayloadTooLarge, ModelNotFound, Timeout, ...")


class ErrorDetail(BaseModel):
    type: str = Field(description="What kind of problem: DecodeError, PayloadTooLarge, Timeout, ...")
    message: str = Field(description="What was expected, what was got, and how to fix it.")


class V1ErrorOut(BaseModel):
    """The error body of /v1 routes: the error field of the Prediction schema."""

    error: ErrorDetail


# --- Open Inference Protocol v2 -----------------------------------------------------


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = []


class ModelReady(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 for a dimension of any size (the batch).")


class ModelMetadata(BaseModel):
    name: str
    versions: Optional[list[str]] = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Optional[dict[str, Any]] = None
    data: Any = Field(
        default=None,
        description="Row-major tensor data, flat or nested. BYTES: base64-encoded "
        "image files. Left out when parameters.binary_data_size says the data follows the JSON.",
    )


class RequestOutput(BaseModel):
    name: str
    parameters: Optional[dict[str, Any]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[dict[str, Any]] = Field(
        default=None, description='Supported: {"temperature": T} for the "probabilities" output.'
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: Optional[list[RequestOutput]] = Field(
        default=None, description='Which outputs to return: "logits", "probabilities" (default: both).'
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Optional[dict[str, Any]] = None
    data: Optional[list] = Field(default=None, description="Absent for an output sent as binary data.")


class ConfigTensor(BaseModel):
    name: str
    data_type: str = Field(description="TYPE_FP32, TYPE_STRING (BYTES), ...")
    format: Optional[str] = None
    dims: list[int] = Field(description="The shape of one input, without the batch dimension.")


class ModelConfig(BaseModel):
    """A Triton-style model configuration."""

    name: str
    platform: str
    backend: str
    max_batch_size: int = Field(description="The most inputs one request may hold.")
    input: list[ConfigTensor]
    output: list[ConfigTensor]
    dynamic_batching: dict[str, Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    outputs: list[ResponseOutput]


# --- /v1/predict --------------------------------------------------------------------


class PredictJSON(BaseModel):
    """A JSON body for ``POST /v1/predict``: exactly one of ``image`` and ``text``."""

    image: Optional[str] = Field(default=None, description="The image file, base64-encoded (a data: URL is fine).")
    text: Optional[str] = Field(default=None, description="The text, for text classifiers.")
    id: Optional[str] = Field(default=None, description='Echoed back as the prediction\'s "input".')
    top_k: Optional[int] = Field(default=None, ge=1, le=10000)
    temperature: Optional[float] = Field(
        default=None,
        ge=TEMPERATURE_RANGE[0],
        le=TEMPERATURE_RANGE[1],
        description="Divide logits by T before the activation.",
    )
    include_logits: Optional[bool] = None


class SegmentOut(BaseModel):
    start: float
    end: float
    label: str
    probability: float


class ClassScoreOut(BaseModel):
    index: int
    label: str
    probability: float
    logit: float | str | None


class GroupOut(BaseModel):
    label: str
    probability: float


class MemberOut(BaseModel):
    model: Optional[str]
    temperature: float
    ood_score: float | str | None
    top_k: list[ClassScoreOut]


class PredictionOut(BaseModel):
    """``Prediction.to_dict()``: the one output schema of twoends."""

    input: Optional[str]
    label: Optional[str]
    index: Optional[int]
    probability: Optional[float]
    top_k: list[ClassScoreOut]
    entropy: Optional[float] = Field(description="nats")
    margin: Optional[float] = Field(description="top-1 minus top-2 probability")
    activation: Literal["softmax", "sigmoid"]
    temperature: float
    positive_labels: Optional[list[str]]
    prediction_set: Optional[list[str]]
    calibration: Optional[str]
    model: Optional[str]
    segments: Optional[list[SegmentOut]] = Field(default=None, description="audio: where each label holds, in seconds")
    error: Optional[ErrorDetail]
    ood_score: float | str | None = Field(description="out-of-distribution score: higher = less like the training data")
    ood: Optional[bool] = Field(description="over the fitted threshold: none of the above (null without one)")
    groups: Optional[list[GroupOut]] = Field(description="label groups, most probable first")
    members: Optional[list[MemberOut]] = Field(description="an ensemble's members")
    logits: Optional[list[float | str | None]] = Field(default=None, description="with include_logits=true")
    probabilities: Optional[list[float | None]] = Field(default=None, description="with include_logits=true")
