"""OpenVINO backend: a ``.onnx`` or OpenVINO ``.xml`` model run on the CPU by OpenVINO.

``twoends.load("openvino:model.onnx")`` (or ``model.xml``, its weights in ``model.bin``
beside it). What twoends reads from the graph and the sidecar is the same as for ONNX
Runtime (``backends/graph.py``); only reading and running the graph are OpenVINO's.

Precision: OpenVINO's CPU plugin runs in bfloat16 *by default* on CPUs that have
AVX-512 BF16 or AMX. twoends always says which: ``precision="fp32"`` (the default)
sets ``INFERENCE_PRECISION_HINT`` to f32, so the numbers are float32's; ``"bf16"``
(or ``"fp16"``) sets it to bf16 (f16) where the CPU supports it and is refused where
it does not (the plugin would silently run float32). 16-bit precision changes the
numbers: it is opt-in, and bench/RESULTS.md reports its agreement with float32.

Importing this module imports openvino (not torch, not onnxruntime).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from twoends.backends.graph import (
    GraphBackend,
    Port,
    fixed_batch,
    graph_model_info,
    one_input,
    pick_output,
    read_side,
    show_shape,
)
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions
from twoends.sidecar import METADATA_KEY

__all__ = ["OpenVinoBackend", "from_path", "supported_precisions", "keep_compiled_models", "HINTS"]

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_DTYPES = {"f32": "float32", "f16": "float16", "u8": "uint8", "f64": "float64"}
_FINAL = {"Softmax": "Softmax", "SoftMax": "Softmax", "Sigmoid": "Sigmoid", "LogSoftmax": "LogSoftmax"}
_PASS = {"Convert", "Reshape", "Squeeze", "Unsqueeze", "Identity"}


@functools.lru_cache(maxsize=1)
def core() -> Any:
    return ov.Core()


def keep_compiled_models(folder: str) -> None:
    """Keep compiled models in ``folder`` (OpenVINO's ``CACHE_DIR``): a later process loads the
    compiled blob instead of compiling again (40 ms instead of 95 for EfficientNet-Lite0 here).
    OpenVINO keys the blobs by model, configuration, device and its own version."""
    core().set_property({"CACHE_DIR": folder})


def supported_precisions() -> tuple[str, ...]:
    """The twoends precisions this CPU runs natively in OpenVINO (from its OPTIMIZATION_CAPABILITIES)."""
    caps = set(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ("fp32",) + tuple(p for p, cap in (("bf16", "BF16"), ("fp16", "FP16")) if cap in caps)


class OpenVinoBackend(GraphBackend):
    """Run a graph compiled by OpenVINO. One infer request per thread (a request is not thread-safe)."""

    runtime = "openvino"

    def __init__(self, compiled: Any, *, precision: str, output_index: int, **fields: Any) -> None:
        super().__init__(**fields)
        self.compiled = compiled
        self.precision = precision
        self._output = compiled.outputs[output_index]
        self._local = threading.local()

    def describe(self) -> str:
        return super().describe()[:-1] + f", {HINTS[self.precision]})"

    def _run(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: x})[self._output]
        return np.array(result, copy=True)  # the request's output buffer is reused by its next call


def _final_op(model: Any, index: int) -> str | None:
    node = model.get_results()[index].input_value(0).get_node()
    for _ in range(16):
        kind = node.get_type_name()
        if kind in _FINAL:
            return _FINAL[kind]
        if kind not in _PASS or node.get_input_size() == 0:
            return kind
        node = node.input_value(0).get_node()
    return None


def _dims(port: Any) -> tuple[Any, ...]:
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return ()
    return tuple(d.get_length() if d.is_static else "?" for d in shape)


def _name(port: Any, i: int) -> str:
    try:
        return port.get_any_name()
    except RuntimeError:  # an unnamed port
        return f"#{i}"


def _embedded(path: Path) -> str | None:
    """The sidecar JSON in an ONNX file's metadata (needs the onnx package; None for .xml)."""
    if path.suffix != ".onnx":
        return None
    try:
        import onnx
    except ImportError:
        return None
    props = onnx.load(str(path), load_external_data=False).metadata_props
    return next((p.value for p in props if p.key == METADATA_KEY), None)


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
    threads: int | None = None,
) -> OpenVinoBackend:
    """A backend for ``path`` (.onnx, or .xml with its .bin). ``sidecar`` as for ONNX Runtime."""
    path = Path(path).expanduser()
    if not path.is_file() or path.suffix not in (".onnx", ".xml"):
        raise ModelError(f"no OpenVINO model at {path}: expected a .onnx or .xml file, as in 'openvino:path/model.xml'")
    run = RunOptions.of(run, device=device)
    run.require("an OpenVINO model", {"device", "precision"})
    if str(run.device).lower() not in ("auto", "cpu"):
        raise ConfigError(
            f"device {run.device!r}: twoends runs OpenVINO on the CPU; use device='cpu' (or 'auto'), "
            "or the PyTorch / ONNX Runtime runtimes for a GPU"
        )
    supported = supported_precisions()
    if run.precision not in supported:
        raise ConfigError(
            f"precision {run.precision!r} is not native on this CPU for OpenVINO (it has "
            f"{', '.join(supported)}); use precision='fp32'"
        )
    try:
        model = core().read_model(str(path))
    except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own for bad files
        raise ModelError(f"OpenVINO cannot read {path}: {e}") from e

    side, notes = read_side(path, sidecar, lambda: _embedded(path))
    inp = one_input(
        path,
        [
            Port(_name(p, i), _dims(p), _DTYPES.get(p.get_element_type().get_type_name()))
            for i, p in enumerate(model.inputs)
        ],
    )
    if inp.dtype is None:
        raise ModelError(
            f"{path.name}: input {inp.name!r} is {model.inputs[0].get_element_type()}; "
            "expected a float or uint8 image tensor"
        )
    ports = [Port(_name(p, i), _dims(p)) for i, p in enumerate(model.outputs)]
    out, why = pick_output(ports, output if output is not None else side.get("output_name"))
    index = ports.index(out)
    notes.append(
        f"input {inp.name!r} {show_shape(inp.shape)} {inp.dtype}; {why}; "
        f"OpenVINO {ov.get_version().split('-')[0]}, inference precision {HINTS[run.precision]}"
    )
    batch, batch_notes = fixed_batch(inp)
    info = graph_model_info(
        path,
        inp=inp,
        out=out,
        side=side,
        final_op=lambda: _final_op(model, index),
        notes=notes + batch_notes,
        spec=spec,
        labels=labels,
        activation=activation,
        outputs=outputs,
        name=name,
    )
    config = {"INFERENCE_PRECISION_HINT": HINTS[run.precision], "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = core().compile_model(model, "CPU", config)
    except Exception as e:
        raise ModelError(f"OpenVINO cannot compile {path} for the CPU: {e}") from e
    return OpenVinoBackend(
        compiled,
        precision=run.precision,
        output_index=index,
        info=info,
        input_name=inp.name,
        output_name=out.name,
        batch=batch,
        input_dtype=inp.dtype,
        input_shape=inp.shape,
        device="cpu",
    )


def build(rest: str, **options: Any) -> OpenVinoBackend:
    """The ``openvino:`` prefix: ``load("openvino:path/to/model.xml", ...)``."""
    from twoends.backends import check_options

    check_options(from_path, options, "an OpenVINO model")
    return from_path(rest, **options)


def graph_runner(path: str | Path, *, run: RunOptions | None = None) -> tuple[Any, list[str], str]:
    """A multi-input graph (a text model's token tensors) as ``run(feed) -> first output``, its input names
    and its device; one infer request per thread."""
    run = run or RunOptions()
    if run.precision not in supported_precisions():
        raise ConfigError(f"precision {run.precision!r} is not native on this CPU for OpenVINO")
    compiled = core().compile_model(
        str(path), "CPU", {"INFERENCE_PRECISION_HINT": HINTS[run.precision], "PERFORMANCE_HINT": "LATENCY"}
    )
    local, output = threading.local(), compiled.outputs[0]

    def run_graph(feed: dict) -> np.ndarray:
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        return np.array(local.request.infer(feed)[output], copy=True)

    return run_graph, [_name(p, i) for i, p in enumerate(compiled.inputs)], "cpu"
