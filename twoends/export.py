"""Export a model with its two ends: ``export_onnx("efficientnet_lite0", "lite0.onnx")``, and
``export_tflite("cifar10_cnn", "cifar.tflite")`` for TensorFlow / Keras models (see export_tflite).

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

from .errors import ConfigError, ModelError
from .sidecar import METADATA_KEY, sidecar_paths, write_sidecar

__all__ = ["ExportResult", "TFLiteExportResult", "export_onnx", "export_tflite"]

#: largest |onnx - torch| logit difference accepted by the export check (float32 reassociation noise)
CHECK_ATOL = 1e-3
#: largest |tflite - source| output difference accepted for a float TFLite export (and a folded model)
TFLITE_ATOL = 1e-4


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path
    opset: int
    exporter: str
    max_abs_diff: float | None  # ONNX Runtime vs PyTorch logits on a check batch; None if not checked
    quantize: str | None = None  # None: float32; "int8": calibrated on the user's images
    quantization_check: dict | None = None  # int8 against the float32 graph: agreement and speed


def export_onnx(
    model: Any,
    path: str | Path,
    *,
    opset: int | None = None,
    exporter: str = "dynamo",
    labels: Any = None,
    check: bool = True,
    quantize: str | None = None,
    representative: str | Path | None = None,
    check_images: str | Path | None = None,
    calibration: str = "minmax",
    max_images: int = 1000,
) -> ExportResult:
    """Export ``model`` (a model name, or a Classifier around a PyTorch model) to ONNX with a sidecar.

    ``quantize="int8"`` (opt-in: it changes the numbers) writes a statically quantized graph instead,
    calibrated on the images in the folder ``representative`` (read and preprocessed with the model's
    own spec; ``calibration``: minmax, percentile or entropy), and measures what it costs against the
    float32 graph on ``check_images`` (default: the representative images): top-1 agreement, max |dp|
    and inputs/s of both, recorded in the sidecar's ``quantization.check``.
    """
    from ._version import __version__
    from .api import load
    from .backends.onnx_export import embed_metadata, export_module
    from .classifier import Classifier

    # runtime="torch": exporting needs the PyTorch module itself, not a cached export of it
    clf = model if isinstance(model, Classifier) else load(model, device="cpu", labels=labels, runtime="torch")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ModelError(f"the output path should end in .onnx, got {path.name!r}; e.g. {path.stem}.onnx")
    if quantize not in (None, "int8"):
        raise ConfigError(f"ONNX export quantizes to int8 only, got quantize={quantize!r}")
    if quantize is None and (representative is not None or check_images is not None):
        raise ConfigError("representative / check images are for quantize='int8'; without it the export is float32")
    if quantize == "int8" and representative is None:
        raise ConfigError(
            "quantize='int8' needs representative images: a folder of your own images (a few hundred, like "
            "those the model will see) to measure the activations' ranges on"
        )
    # read the images before the long export: a wrong folder fails in a second
    rep = _folder_images(clf, representative, max_images) if representative is not None else None
    checks = _folder_images(clf, check_images, max_images) if check_images is not None else rep
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
    qcheck = None
    if quantize == "int8":
        assert rep is not None and checks is not None
        qcheck = _quantize(path, fields, rep, checks, calibration, representative, check_images)
    embed_metadata(path, METADATA_KEY, {"format": "twoends-sidecar/1", **fields})
    side = write_sidecar(sidecar_paths(path)[0], fields)
    return ExportResult(path, side, opset_written, exporter, diff, quantize, qcheck)


def _quantize(path: Path, fields: dict, rep: np.ndarray, checks: np.ndarray, calibration: str, rep_dir, check_dir):
    """Replace the float32 graph at ``path`` by its int8 version and measure the change against it."""
    import shutil
    import tempfile

    from .backends.onnx import from_path
    from .backends.onnx_quantize import quantize_int8
    from .runtimes.check import inputs_per_s

    with tempfile.TemporaryDirectory(prefix="twoends-export-") as tmp:
        float32 = Path(tmp) / "float32.onnx"
        shutil.copyfile(path, float32)
        fields["quantization"] = {
            **quantize_int8(float32, path, rep, input_name=fields["input_name"], calibration=calibration),
            "representative": str(rep_dir),
        }
        want = from_path(float32, device="cpu", sidecar=False)
        got = from_path(path, device="cpu", sidecar=False)
        zf = np.concatenate([want.forward(checks[i : i + 8]) for i in range(0, len(checks), 8)])
        zq = np.concatenate([got.forward(checks[i : i + 8]) for i in range(0, len(checks), 8)])
        batch = checks[:8]
        rates = inputs_per_s({"float32": lambda: want.forward(batch), "int8": lambda: got.forward(batch)}, len(batch))
        speed = {key: round(rate, 1) for key, rate in rates.items()}
    pf, pq = _probabilities(zf, fields["activation"]), _probabilities(zq, fields["activation"])
    what = (
        f"the {len(checks)} images in {check_dir}"
        if check_dir is not None
        else f"the {len(checks)} representative images (the calibration set itself: pass check_images for others)"
    )
    qcheck = {
        "against": f"the float32 graph on {what}",
        "images": int(len(checks)),
        "top1_agreement": float(np.mean(zf.argmax(axis=1) == zq.argmax(axis=1))),
        "max_dp": float(np.abs(pf - pq).max()),
        "mean_dp_top1": float(np.mean(np.abs(pf.max(axis=1) - np.take_along_axis(pq, pf.argmax(1)[:, None], 1)[:, 0]))),
        "inputs_per_s": speed,
    }
    fields["quantization"]["check"] = qcheck
    return qcheck


def _probabilities(z: np.ndarray, activation: str) -> np.ndarray:
    from .head.activations import sigmoid, softmax

    z = np.asarray(z, dtype=np.float64)
    return sigmoid(z) if activation == "sigmoid" else softmax(z, axis=1)


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
        raise ModelError(
            f"the exported graph {path} does not reproduce the PyTorch logits: largest difference "
            f"{diff:.3g} (expected <= {CHECK_ATOL}); try the other exporter"
        )
    return diff


@dataclass(frozen=True)
class TFLiteExportResult:
    path: Path
    sidecar: Path
    quantize: str | None  # None: float; "uint8" / "int8": full-integer
    check: dict | None  # what the sidecar's "check" says; None if not checked


def export_tflite(
    model: Any,
    path: str | Path,
    *,
    quantize: str | None = None,
    representative: str | Path | None = None,
    check_images: str | Path | None = None,
    fold_batchnorm: bool = False,
    labels: Any = None,
    check: bool = True,
    max_images: int = 1000,
) -> TFLiteExportResult:
    """Export a TensorFlow or Keras model (a model name, or a Classifier) to TFLite with a sidecar.

    ``quantize``: None (float) or "uint8" / "int8" (full-integer ends, calibrated on the images in the
    folder ``representative``, read and preprocessed with the model's own spec). ``fold_batchnorm``:
    fold the BatchNormalization layers of a Sequential Keras model first (exact; see
    backends/keras_fold.py). The check: the TFLite file against the source model on ``check_images``
    (default: the representative images, else 8 random-noise images): a float file whose outputs
    differ by more than TFLITE_ATOL is refused (deleted); a full-integer file's top-1 agreement and
    largest output change are recorded in the sidecar's "check".
    """
    from ._version import __version__
    from .api import load
    from .classifier import Classifier
    from .errors import ConfigError

    clf = model if isinstance(model, Classifier) else load(model, device="cpu", labels=labels)
    path = Path(path)
    if path.suffix != ".tflite":
        raise ModelError(f"the output path should end in .tflite, got {path.name!r}; e.g. {path.stem}.tflite")
    if type(clf.backend).__name__ not in ("KerasBackend", "TensorFlowBackend"):  # refused before importing TensorFlow
        raise ModelError(
            f"TFLite export takes TensorFlow and Keras models; {clf.backend.describe()} is not one. "
            "Export it to ONNX instead: `twoends export --onnx MODEL OUT.onnx` (there is no "
            "PyTorch -> TensorFlow path in twoends)"
        )
    if clf.plan.kind != "image" or clf.plan.output_shape is None:
        raise ModelError(
            f"TFLite export takes image classifiers with a fixed input size; {clf.name} takes {clf.plan.kind} inputs"
        )
    if quantize is not None and representative is None:
        raise ConfigError(
            f"quantize={quantize!r} needs a representative set: a folder of your own images "
            "(--representative DIR) to calibrate the integer ranges on"
        )
    from .backends import tflite_export

    source = tflite_export.traceable_of(clf.backend)
    rep = _folder_images(clf, representative, max_images) if representative is not None else None
    checks = (
        _folder_images(clf, check_images, max_images)
        if check_images is not None
        else rep
        if rep is not None
        else _noise_images(clf, 8)
    )
    rewrites = []
    if fold_batchnorm:
        source, _ = tflite_export.fold(source)
        diff = float(np.max(np.abs(tflite_export.run(source, checks) - clf.backend.forward(checks))))
        if not diff <= TFLITE_ATOL:
            raise ModelError(
                f"folding the BatchNormalization layers changed the outputs by {diff:.3g} "
                f"(expected <= {TFLITE_ATOL}); export without fold_batchnorm"
            )
        rewrites.append(
            f"BatchNormalization layers folded into the weights (exact in float: max |output diff| "
            f"{diff:.2g} on the check images)"
        )
    data = tflite_export.convert(source, tuple(clf.plan.output_shape), quantize=quantize, representative=rep)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    settled = clf.settled
    import tensorflow as tf

    fields: dict[str, Any] = {
        "model": clf.name,
        "twoends_version": __version__,
        "spec": clf.spec.to_dict(),
        "labels": list(settled.head.labels) if settled.head.labels is not None else None,
        "activation": settled.head.activation,
        "outputs": settled.outputs,
        "exporter": f"TFLiteConverter (TensorFlow {tf.__version__})",
        "source": clf.backend.describe(),
        "quantization": None
        if quantize is None
        else {
            "ends": quantize,
            "ops": "int8 builtins only",
            "representative_images": len(rep),
            "representative": str(representative),
        },
        "rewrites": rewrites,
    }
    what = (
        f"the {len(checks)} images in {check_images}"
        if check_images is not None
        else f"the {len(checks)} representative images (the calibration set)"
        if rep is not None
        else f"{len(checks)} random-noise images"
    )
    if check:
        try:
            fields["check"] = _check_tflite(clf, path, checks, quantize, what)
        except ModelError:
            path.unlink(missing_ok=True)  # a file that failed its check is not left behind
            raise
    side = write_sidecar(sidecar_paths(path)[0], fields)
    return TFLiteExportResult(path, side, quantize, fields.get("check"))


def _check_tflite(clf: Any, path: Path, x: np.ndarray, quantize: str | None, what: str) -> dict:
    from .backends.tflite import from_path

    got = from_path(path, device="cpu", sidecar=False).forward(x)
    want = np.asarray(clf.backend.forward(x), dtype=np.float32)
    diff = float(np.max(np.abs(got - want)))
    if quantize is None:
        if not diff <= TFLITE_ATOL:
            raise ModelError(
                f"the float TFLite file {path} does not reproduce the source model: largest output "
                f"difference {diff:.3g} (expected <= {TFLITE_ATOL}); it was not written"
            )
        return {"max_abs_diff": diff, "images": len(x), "against": f"the source model on {what}"}
    agree = float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))
    return {"top1_agreement": agree, "max_abs_diff": diff, "images": len(x), "against": f"the source model on {what}"}


def _folder_images(clf: Any, folder: str | Path, limit: int) -> np.ndarray:
    """The images under ``folder`` (at most ``limit``), preprocessed with the model's own plan."""
    from .errors import ConfigError, TwoEndsError

    if not Path(folder).is_dir():
        raise ConfigError(f"expected a folder of images, got {folder!r}")
    plan, out = clf.plan, []
    for item in plan.items(str(folder)):
        try:
            out.append(np.asarray(plan.prepare(item), dtype=np.float32))
        except TwoEndsError as e:
            raise ConfigError(f"{item.id}: {e} (remove it from {folder}, or fix it)") from e
        if len(out) >= limit:
            break
    if not out:
        raise ConfigError(f"no images in {folder}: expected image files ({', '.join(sorted(_extensions()))})")
    return np.stack(out)


def _extensions() -> frozenset:
    from .preprocess import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


def _noise_images(clf: Any, n: int) -> np.ndarray:
    """Random uint8 pictures through the model's own plan: inputs in the model's own value range."""
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    return np.stack([np.asarray(clf.plan.prepare(item), dtype=np.float32) for item in clf.plan.items(pictures)])
