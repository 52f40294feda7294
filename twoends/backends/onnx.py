"""ONNX Runtime backend: a ``.onnx`` file run with what its graph and sidecar tell.

What is read, and from where (explicit arguments always win):

- the input and output names, from the session (one image input; the output
  named "logits" when there are several, else the first, said in the notes);
- the batch axis: symbolic -> any batch size; a fixed 1 -> the batch is run
  row by row; a fixed N -> run in chunks of N, the last one padded;
- layout (NCHW / NHWC), input size and dtype (float32 / float16 / uint8),
  from the input's shape and element type;
- whether the outputs are already probabilities: the op that produces the
  output (through Identity / Reshape / Flatten / Squeeze / Cast) is Softmax or
  Sigmoid. That needs the ``onnx`` package to read the graph; without it the
  outputs are taken as logits and the notes say so;
- preprocessing spec, labels, activation: from the sidecar ``X.onnx.json``
  (or ``X.twoends.json``, or the same JSON in the file's metadata) that
  ``twoends export`` writes.

Importing this module imports onnxruntime (not torch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from twoends.backends.graph import (
    GraphBackend,
    Port,
    fixed_batch,
    graph_model_info,
    one_input,
    onnx_final_op,
    pick_output,
    read_side,
    show_shape,
)
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions
from twoends.sidecar import METADATA_KEY

__all__ = ["OnnxBackend", "from_path", "providers_for", "tuned_session_options", "usable_cores"]

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(double)": "float64",
}


def providers_for(device: str | None = "auto") -> tuple[list[Any], str]:
    """ONNX Runtime providers for a device name, and the device as a plain string.

    "auto" takes CUDA when this onnxruntime build has it, else the CPU.
    """
    have = ort.get_available_providers()
    key = "auto" if device is None else str(device).strip().lower()
    if key == "auto":
        key = "cuda" if "CUDAExecutionProvider" in have else "cpu"
    if key == "cpu":
        return ["CPUExecutionProvider"], "cpu"
    if key.startswith("cuda"):
        if "CUDAExecutionProvider" not in have:
            raise ConfigError(
                f"device {device!r} was asked for but this onnxruntime has no CUDA provider "
                f"(it has {', '.join(have)}); install onnxruntime-gpu or use device='cpu'"
            )
        _, _, index = key.partition(":")
        if index and not index.isdigit():
            raise ConfigError(f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N")
        i = int(index or 0)
        return [("CUDAExecutionProvider", {"device_id": i}), "CPUExecutionProvider"], f"cuda:{i}"
    raise ConfigError(f"unknown device {device!r} for ONNX Runtime: expected auto, cpu, cuda or cuda:N")


def tuned_session_options(threads: int | None = None, spinning: bool | None = None) -> Any:
    """ONNX Runtime session options as twoends runs them (bench/RESULTS.md has the measurements).

    ``threads``: intra-op threads (default: the cores this process may use).
    ``spinning``: whether idle intra-op threads spin waiting for work. Off by default: on the CPU
    the decoding threads run between two forward passes (runner.py), and spinning threads took
    their cores, as PyTorch's OpenMP threads did (process.py). ``TWOENDS_ORT_SPINNING=1`` turns
    it back on. The graph is optimised fully (ORT_ENABLE_ALL: constant folding, fusions,
    layout changes), which is ONNX Runtime's default for the Python API, set here to say so.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or usable_cores()
    if spinning is None:
        spinning = os.environ.get("TWOENDS_ORT_SPINNING", "0").strip() in ("1", "true", "yes", "on")
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    return opts


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- backend


class OnnxBackend(GraphBackend):
    """Run an ONNX model with ONNX Runtime. ``forward`` returns NumPy logits [B, C]."""

    runtime = "onnxruntime"

    def __init__(self, session: Any, **fields: Any) -> None:
        super().__init__(**fields)
        self.session = session

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]


def from_path(
    path: str | Path,
    *,
    run: RunOptions | None = None,
    device: str | None = None,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    output: str | int | None = None,
    name: str | None = None,
    sidecar: str | Path | bool | None = None,
    session_options: Any = None,
) -> OnnxBackend:
    """A backend for ``path``. ``sidecar``: a path, False to ignore any, None to look beside the file.

    ``spec`` here may be a full ImageSpec or a dict of fields (the classifier's
    ``spec=`` argument overrides on top of what this returns).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"no ONNX model at {path}: expected a path to a .onnx file, as in 'onnx:path/to/model.onnx'")
    run = RunOptions.of(run, device=device)
    run.require("an ONNX Runtime model", {"device"})
    providers, dev = providers_for(run.device)
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options or tuned_session_options(), providers=providers
        )
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        raise ModelError(f"ONNX Runtime cannot load {path}: {e}") from e

    meta = lambda: (session.get_modelmeta().custom_metadata_map or {}).get(METADATA_KEY)  # noqa: E731
    side, notes = read_side(path, sidecar, meta)
    inp = one_input(path, [Port(i.name, tuple(i.shape), _DTYPES.get(i.type)) for i in session.get_inputs()])
    if inp.dtype is None:
        raise ModelError(
            f"{path.name}: input {inp.name!r} is {session.get_inputs()[0].type}; expected a float or uint8 image tensor"
        )
    out, why = pick_output(
        [Port(o.name, tuple(o.shape)) for o in session.get_outputs()],
        output if output is not None else side.get("output_name"),
    )
    notes.append(f"input {inp.name!r} {show_shape(inp.shape)} {inp.dtype}; {why}")
    batch, batch_notes = fixed_batch(inp)
    info = graph_model_info(
        path,
        inp=inp,
        out=out,
        side=side,
        final_op=lambda: onnx_final_op(path, out.name),
        notes=notes + batch_notes,
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        name=name,
    )
    return OnnxBackend(
        session,
        info=info,
        input_name=inp.name,
        output_name=out.name,
        batch=batch,
        input_dtype=inp.dtype,
        input_shape=inp.shape,
        device=dev,
    )


def build(rest: str, **options: Any) -> OnnxBackend:
    """The ``onnx:`` prefix: ``load("onnx:path/to/model.onnx", ...)``."""
    from twoends.backends import check_options

    check_options(from_path, options, "an ONNX model")
    return from_path(rest, **options)


def graph_runner(path: str | Path, *, run: RunOptions | None = None) -> tuple[Any, list[str], str]:
    """A multi-input graph (a text model's token tensors) as ``run(feed) -> first output``, its input names
    and its device."""
    run = run or RunOptions()
    providers, dev = providers_for(run.device)
    session = ort.InferenceSession(str(path), sess_options=tuned_session_options(), providers=providers)
    output = session.get_outputs()[0].name
    return (lambda feed: session.run([output], feed)[0]), [i.name for i in session.get_inputs()], dev
