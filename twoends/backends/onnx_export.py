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

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from twoends.backends.torch import TorchBackend
from twoends.errors import ConfigError, ModelError

__all__ = ["EXPORTERS", "export_module", "embed_metadata"]

EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_module(backend: Any, path: Path, sample: np.ndarray, *, opset: int | None = None,
                  exporter: str = "dynamo") -> int:
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' progress chatter and deprecation notes
        try:
            if exporter == "dynamo":
                program = torch.onnx.export(
                    module, (x,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=opset,
                    verbose=False,
                )
                program.save(str(path), external_data=False)
            else:
                torch.onnx.export(
                    module, (x,), str(path), dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=opset or 17,
                )
        except Exception as e:  # the exporters raise many kinds; say which one failed and what to try
            other = "torchscript" if exporter == "dynamo" else "dynamo"
            raise ModelError(f"the {exporter} ONNX exporter failed on {backend.info.name}: {e}; "
                             f"try exporter={other!r}") from e
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
