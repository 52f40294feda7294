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

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from twoends.options import RunOptions
from twoends.backends.base import Backend, ModelInfo
from twoends.backends.model_ends import class_outputs, pick_output, run_in_chunks
from twoends.errors import ConfigError, InputError, ModelError
from twoends.sidecar import METADATA_KEY, find_sidecar, parse_sidecar, read_sidecar

__all__ = ["OnnxBackend", "from_path", "providers_for"]

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
           "tensor(double)": "float64"}
# ops that pass values through unchanged on the way to the output
_PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}


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


# --------------------------------------------------------------------------- reading the graph


def _final_op(path: Path, output_name: str) -> str | None:
    """The op that produces ``output_name``, looking through pass-through ops; None if unknown."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(path), load_external_data=False)
    producer = {out: node for node in model.graph.node for out in node.output}
    name, seen = output_name, 0
    while name in producer and seen < 16:
        node = producer[name]
        if node.op_type not in _PASS_THROUGH:
            return node.op_type
        name, seen = node.input[0], seen + 1
    return None


def _layout(shape: Sequence[Any]) -> tuple[str | None, tuple[int, int] | None]:
    """(layout, (H, W)) from a rank-4 image input shape; None where the graph does not say."""
    if len(shape) != 4:
        return None, None
    def fixed(d):
        return d if isinstance(d, int) and d > 0 else None
    _, a, b, c = (fixed(d) for d in shape)
    if a in (1, 3) and c not in (1, 3):
        return "NCHW", (b, c) if b and c else None
    if c in (1, 3) and a not in (1, 3):
        return "NHWC", (a, b) if a and b else None
    return None, None


def _embedded_sidecar(session: Any, path: Path) -> dict | None:
    meta = session.get_modelmeta().custom_metadata_map or {}
    text = meta.get(METADATA_KEY)
    return None if text is None else parse_sidecar(text, where=f"{path} (metadata '{METADATA_KEY}')")


# --------------------------------------------------------------------------- backend


class OnnxBackend(Backend):
    """Run an ONNX model with ONNX Runtime. ``forward`` returns NumPy logits [B, C]."""

    def __init__(self, session: Any, *, info: ModelInfo, input_name: str, output_name: str,
                 batch: int | None, input_dtype: str, input_shape: Sequence[Any], device: str) -> None:
        self.session = session
        self.info = info
        self.input_name = input_name
        self.output_name = output_name
        self.fixed_batch = batch  # None: any batch size
        self.input_dtype = np.dtype(input_dtype)
        self.input_shape = tuple(input_shape)
        self.device = device

    def forward(self, batch: Any) -> np.ndarray:
        x = self._check(np.asarray(batch))
        n = self.fixed_batch  # a graph with a fixed batch axis runs in chunks of n, the last one padded
        out = self._run(x) if n is None else run_in_chunks(self._run, x, n)
        out, self.info = class_outputs(self.info, out)
        return out

    def describe(self) -> str:
        batch = "any batch" if self.fixed_batch is None else f"fixed batch {self.fixed_batch}"
        return f"OnnxBackend({self.info.name}, device={self.device}, {batch})"

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def _check(self, x: np.ndarray) -> np.ndarray:
        want = self.input_shape
        if x.ndim != len(want) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want[1:], x.shape[1:])):
            raise InputError(
                f"{self.info.name} takes inputs of shape {_show(want)} ({self.input_name!r}), got "
                f"{list(x.shape)}: set the spec's layout and input_size to match "
                f"(e.g. spec={{'layout': 'NHWC'}}) or pass the model's own spec"
            )
        if x.dtype == self.input_dtype:
            return np.ascontiguousarray(x)
        if x.dtype.kind == "f" and self.input_dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=self.input_dtype)  # float64 -> float32 and the like
        raise InputError(
            f"{self.info.name} takes {self.input_dtype.name} inputs, got {x.dtype.name}: "
            f"set spec={{'dtype': '{self.input_dtype.name}'}}"
        )


def _show(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) and d > 0 else "batch" if i == 0 else "?"
                           for i, d in enumerate(shape)) + "]"


def _pick_output(outputs: Sequence[Any], wanted: str | int | None) -> tuple[Any, str]:
    index, why = pick_output([o.name for o in outputs], wanted)
    return outputs[index], why


def _spec_from(value: Any, where: str):
    """A spec from a sidecar or an argument: an audio model's says its ``sample_rate``, an image model's does not."""
    from twoends.preprocess import ImageSpec, InputSpec

    if value is None or isinstance(value, InputSpec):
        return value
    if isinstance(value, dict):
        if value.get("kind") == "audio" or "sample_rate" in value:
            from twoends.preprocess.audio_spec import AudioSpec

            return AudioSpec.from_dict({k: v for k, v in value.items() if k != "kind"})
        return ImageSpec.from_dict(value)
    raise ConfigError(f"{where}: spec must be an ImageSpec, an AudioSpec or a dict, got {type(value).__name__}")


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
        session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        raise ModelError(f"ONNX Runtime cannot load {path}: {e}") from e

    notes: list[str] = []
    side: dict | None = None
    if sidecar is not False:
        side_path = Path(sidecar) if sidecar not in (None, True) else find_sidecar(path)
        if side_path is not None:
            side = read_sidecar(side_path)
            notes.append(f"spec, labels and activation from the sidecar {side_path.name}")
        else:
            side = _embedded_sidecar(session, path)
            if side is not None:
                notes.append(f"spec, labels and activation from the model's metadata '{METADATA_KEY}'")
    side = side or {}

    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(
            f"{path.name} has {len(inputs)} inputs {[(i.name, i.shape) for i in inputs]}; twoends runs "
            "image classifiers with one input. Wrap the model so it takes one image batch"
        )
    inp = inputs[0]
    input_dtype = _DTYPES.get(inp.type)
    if input_dtype is None:
        raise ModelError(f"{path.name}: input {inp.name!r} is {inp.type}; expected a float or uint8 image tensor")
    out, why = _pick_output(session.get_outputs(), output if output is not None else side.get("output_name"))
    notes.append(f"input {inp.name!r} {_show(inp.shape)} {input_dtype}; {why}")

    first = inp.shape[0] if inp.shape else None
    batch = first if isinstance(first, int) and first > 0 else None
    if batch == 1:
        notes.append("the graph has a fixed batch of 1: batches are run one row at a time "
                     "(export it with a dynamic batch axis to batch for real)")
    elif batch is not None:
        notes.append(f"the graph has a fixed batch of {batch}: batches are run in chunks of {batch}, "
                     "the last one padded")

    # what the graph itself says about its output: probabilities or logits
    graph_outputs, graph_activation = None, None
    op = _final_op(path, out.name)
    if op in ("Softmax", "Sigmoid"):
        graph_outputs, graph_activation = "probabilities", op.lower()
        notes.append(f"the graph ends in {op}: its outputs are probabilities, used as they are (not {op.lower()}ed again)")
    elif op == "LogSoftmax":
        graph_activation = "softmax"
        notes.append("the graph ends in LogSoftmax: log-probabilities, which softmax maps back to the same probabilities")
    elif op is None and outputs is None and "outputs" not in side:
        notes.append("the graph's last op was not read (install the onnx package to check for a final "
                     "Softmax); its outputs are taken as logits: pass outputs='probabilities' if they are not")

    # spec: explicit > sidecar > what the graph's input says on top of the defaults
    layout, size = _layout(inp.shape)
    spec_value = _spec_from(side.get("spec"), str(path))
    if spec_value is None:
        from twoends.preprocess import ImageSpec

        fields: dict[str, Any] = {"dtype": input_dtype if input_dtype != "float64" else "float32"}
        if layout:
            fields["layout"] = layout
        if size:
            fields["input_size"] = size
        if fields["dtype"] == "uint8" or size or layout:
            spec_value = ImageSpec(**fields)
            notes.append("no sidecar: the graph gives only the input size, layout and dtype; the resize and "
                         "normalisation are twoends' defaults (ImageNet mean/std) unless spec=... says otherwise")
    if spec is not None:
        spec_value = spec_value.replace(**spec) if isinstance(spec, dict) and spec_value is not None else _spec_from(spec, "spec")

    outputs_kind = outputs or side.get("outputs") or graph_outputs or "logits"
    info = ModelInfo(
        name=name or side.get("model") or path.stem,
        spec=spec_value,
        labels=labels if labels is not None else side.get("labels"),
        activation=activation or side.get("activation") or graph_activation,
        outputs=outputs_kind,
        num_outputs=_fixed_classes(out.shape),
        notes=tuple(notes),
    )
    return OnnxBackend(session, info=info, input_name=inp.name, output_name=out.name, batch=batch,
                       input_dtype=input_dtype, input_shape=inp.shape, device=dev)


def _fixed_classes(shape: Sequence[Any]) -> int | None:
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return shape[1]
    return None


def build(rest: str, **options: Any) -> OnnxBackend:
    """The ``onnx:`` prefix: ``load("onnx:path/to/model.onnx", ...)``."""
    from twoends.backends import check_options

    check_options(from_path, options, "an ONNX model")
    return from_path(rest, **options)

