"""INT8 post-training quantization of an ONNX graph with ONNX Runtime, calibrated on the user's images.

Static quantization in the QDQ format (QuantizeLinear/DequantizeLinear pairs around each
quantized operator; what ONNX Runtime's CPU kernels and OpenVINO both read): weights int8 per
output channel, activations uint8 with ranges measured on the representative images, already
preprocessed with the model's own plan. The graph is first given ONNX Runtime's own
pre-processing (shape inference, folding), as its documentation asks.

The numbers change: the caller (``twoends.export.export_onnx``) measures by how much against
the float32 graph and records it; nothing here decides for the user that the change is fine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["CALIBRATIONS", "quantize_int8"]

#: calibration methods offered: how an activation's range is taken from the representative images
CALIBRATIONS = ("minmax", "percentile", "entropy")


def quantize_int8(
    source: str | Path,
    out: str | Path,
    images: np.ndarray,
    *,
    input_name: str,
    calibration: str = "minmax",
) -> dict[str, Any]:
    """Write ``out``: ``source`` with int8 weights and uint8 activations calibrated on ``images``
    (N, ...) float32 model inputs. Returns what was done, for the sidecar."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:  # onnxruntime without its quantization tools (or without onnx)
        raise ConfigError(
            f"INT8 quantization needs onnxruntime's quantization tools and onnx ({e}); "
            'pip install "twoends[onnx]" onnx'
        ) from None
    if calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {calibration!r}")
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[calibration]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            # one image per call: ONNX Runtime's histogram calibrators stack what they see, and a shorter
            # last batch made them fail (percentile, entropy)
            self._batches = iter([{input_name: images[i : i + 1]} for i in range(len(images))])

        def get_next(self) -> dict | None:
            return next(self._batches, None)

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="twoends-int8-") as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(str(source), prepared)
        written = os.path.join(tmp, "int8.onnx")
        quantize_static(
            prepared,
            written,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
        )
        shutil.move(written, out)  # across file systems too (the temporary folder may be elsewhere)
    return {
        "weights": "int8, per output channel",
        "activations": "uint8",
        "format": "QDQ (ONNX Runtime static quantization)",
        "calibration": calibration,
        "representative_images": int(len(images)),
    }
