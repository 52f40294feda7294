"""PyTorch -> ONNX: the torch half of ``twoends export --onnx``.

The exporter is ``torch.onnx.export(..., dynamo=True)``: the default and the
supported path since PyTorch 2.9 (it traces with ``torch.export`` and writes
the graph with onnxscript). The older TorchScript exporter (``dynamo=False``)
still works in torch 2.14, is about 4x faster to export, but is deprecated;
it is kept as ``exporter="torchscript"`` for models ``torch.export`` cannot
trace. Both give the same logits to ~1e-5 on EfficientNet-Lite0.

The batch axis is exported symbolic ("batch"), so the ONNX model takes any
batch size. Weights are stored inside the one .onnx file (no external data)
so the file and its sidecar are all a user needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from twoends.backends.torch import TorchBackend
from twoends.errors import ConfigError, ModelError

__all__ = ["EXPORTERS", "export_module", "export_any", "export_text_module", "embed_metadata"]

EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME, OUTPUT_NAME = "input", "logits"


#: torch.onnx's notes that a user cannot act on: "torchvision is not installed. Skipping torchvision::nms" (four
#: lines on every first export where torchvision is absent: a classifier has no detection ops to register)
_CHATTY_LOGGERS = ("torch.onnx._internal.exporter._registration",)


@contextlib.contextmanager
def _quiet_exporter():
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)


def export_module(
    backend: Any, path: Path, sample: np.ndarray, *, opset: int | None = None, exporter: str = "dynamo"
) -> int:
    """Write ``backend``'s module to ``path`` with a dynamic batch axis; return the opset written.

    ``sample`` is one preprocessed batch laid out as the model's spec says.
    """
    if not isinstance(backend, TorchBackend):
        raise ModelError(
            f"export to ONNX needs a PyTorch model; {backend.describe()} is not one "
            "(an ONNX model is already ONNX; Keras and JAX models export with their own tools)"
        )
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    module = backend.module.to("cpu").float().eval()
    x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")  # the exporters' progress chatter and deprecation notes
        try:
            if exporter == "dynamo":
                program = torch.onnx.export(
                    module,
                    (x,),
                    dynamo=True,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                    opset_version=opset,
                    verbose=False,
                )
                program.save(str(path), external_data=False)
            else:
                torch.onnx.export(
                    module,
                    (x,),
                    str(path),
                    dynamo=False,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=opset or 17,
                )
        except Exception as e:  # the exporters raise many kinds; say which one failed and what to try
            other = "torchscript" if exporter == "dynamo" else "dynamo"
            raise ModelError(
                f"the {exporter} ONNX exporter failed on {backend.info.name}: {e}; try exporter={other!r}"
            ) from e
    return _opset(path)


def export_any(backend: Any, path: Path, values: list) -> tuple[str, list[str]]:
    """Export an image or text model for the runtimes' cache; the exporter that worked, and why the
    ones tried before it failed.

    ``values`` are real prepared inputs (the export check's batch): the first two are traced.
    The dynamo exporter first (the supported one); the TorchScript one if dynamo cannot trace it.
    """
    text = hasattr(backend, "tokenizer")
    errors = []
    for exporter in EXPORTERS:
        try:
            with _quiet_exporter():
                if text:
                    export_text_module(backend, path, values[:2], exporter=exporter)
                else:
                    export_module(backend, path, np.stack([np.asarray(v) for v in values[:2]]), exporter=exporter)
            return exporter, errors
        except ModelError as e:
            errors.append(str(e)[:500])
    raise ModelError("; ".join(errors))


class _TextGraph(torch.nn.Module):
    """A text classifier as a graph of positional token tensors -> logits."""

    def __init__(self, module: torch.nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.module, self.names = module, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        from twoends.backends.torch import _extract_logits

        return _extract_logits(self.module(**dict(zip(self.names, tensors))))


def export_text_module(
    backend: Any, path: Path, texts: list, *, opset: int | None = None, exporter: str = "dynamo"
) -> int:
    """Write a Hugging Face text backend's module to ``path``: inputs named as the tokenizer's
    outputs (input_ids, attention_mask, ...), batch and sequence axes dynamic."""
    from twoends.backends.text_batches import pad

    enc = pad(backend.tokenizer, backend.collate(texts), tensors="pt")
    names = tuple(enc)
    graph = _TextGraph(backend.module.to("cpu").float().eval(), names)
    args = tuple(enc[n].to(torch.int64) for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if exporter == "dynamo":
                batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
                program = torch.onnx.export(
                    graph,
                    args,
                    dynamo=True,
                    input_names=list(names),
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=tuple({0: batch, 1: seq} for _ in names),
                    opset_version=opset,
                    verbose=False,
                )
                program.save(str(path), external_data=False)
            else:
                axes = {n: {0: "batch", 1: "sequence"} for n in names}
                torch.onnx.export(
                    graph,
                    args,
                    str(path),
                    dynamo=False,
                    input_names=list(names),
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}},
                    opset_version=opset or 17,
                )
        except Exception as e:
            raise ModelError(f"the {exporter} ONNX exporter failed on {backend.info.name}: {e}") from e
    return _opset(path)


def reference_logits(backend: Any, sample: np.ndarray) -> np.ndarray:
    """The PyTorch logits for ``sample``, to check the exported graph against."""
    with torch.inference_mode():
        return backend.module(torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))).float().numpy()


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def embed_metadata(path: Path, key: str, fields: dict) -> None:
    """Store the sidecar JSON in the ONNX file's metadata_props as well."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=key, value=json.dumps(fields))
    onnx.save(model, str(path))
