"""Export a model with its two ends: ``export_onnx("efficientnet_lite0", "lite0.onnx")``.

Writes the ONNX graph (symbolic batch axis) and, beside it, the sidecar
``lite0.onnx.json`` (also embedded in the file's metadata): preprocessing
spec, labels, activation, output kind, model name, opset and twoends version.
``twoends.load("onnx:lite0.onnx")`` reads it back and needs only onnxruntime.

The exported graph is checked before the function returns: ONNX Runtime runs
it on a batch of a size other than the one traced, and its logits are compared
with PyTorch's (``check`` in the sidecar records the largest difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .sidecar import METADATA_KEY, sidecar_paths, write_sidecar

__all__ = ["ExportResult", "export_onnx"]

#: largest |onnx - torch| logit difference accepted by the export check (float32 reassociation noise)
CHECK_ATOL = 1e-3


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path
    opset: int
    exporter: str
    max_abs_diff: float | None  # ONNX Runtime vs PyTorch logits on a check batch; None if not checked


def export_onnx(model: Any, path: str | Path, *, opset: int | None = None, exporter: str = "dynamo",
                labels: Any = None, check: bool = True) -> ExportResult:
    """Export ``model`` (a model name, or a Classifier around a PyTorch model) to ONNX with a sidecar."""
    from ._version import __version__
    from .api import load
    from .backends.onnx_export import embed_metadata, export_module
    from .classifier import Classifier

    clf = model if isinstance(model, Classifier) else load(model, device="cpu", labels=labels)
    path = Path(path)
    if path.suffix != ".onnx":
        raise ModelError(f"the output path should end in .onnx, got {path.name!r}; e.g. {path.stem}.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)

    sample = _sample(clf, 2)
    opset_written = export_module(clf.backend, path, sample, opset=opset, exporter=exporter)
    settled = clf.settled
    fields = {
        "model": clf.name,
        "twoends_version": __version__,
        "spec": clf.spec.to_dict(),
        "labels": list(settled.head.labels) if settled.head.labels is not None else None,
        "activation": settled.head.activation,
        "outputs": settled.outputs,
        "input_name": "input",
        "output_name": "logits",
        "opset": opset_written,
        "exporter": exporter,
        "source": clf.backend.describe(),
    }
    diff = _check(clf, path) if check else None
    if diff is not None:
        fields["check"] = {"max_abs_diff": diff, "batch": 3, "against": "PyTorch on random inputs"}
    embed_metadata(path, METADATA_KEY, {"format": "twoends-sidecar/1", **fields})
    side = write_sidecar(sidecar_paths(path)[0], fields)
    return ExportResult(path, side, opset_written, exporter, diff)


def _sample(clf: Any, n: int, seed: int = 0) -> np.ndarray:
    shape = clf.plan.output_shape
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _check(clf: Any, path: Path) -> float:
    """ONNX Runtime vs PyTorch on a batch of 3 (not the traced 2: proves the batch axis is dynamic)."""
    from .backends.onnx import from_path
    from .backends.onnx_export import reference_logits

    x = _sample(clf, 3, seed=1)
    got = from_path(path, device="cpu", sidecar=False).forward(x)
    want = reference_logits(clf.backend, x)
    diff = float(np.max(np.abs(got - want)))
    if not diff <= CHECK_ATOL:
        raise ModelError(f"the exported graph {path} does not reproduce the PyTorch logits: largest difference "
                         f"{diff:.3g} (expected <= {CHECK_ATOL}); try the other exporter")
    return diff
