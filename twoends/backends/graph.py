"""What a model graph file says about its two ends, for any runtime that runs graph files.

ONNX Runtime and OpenVINO read the same ``.onnx`` files (OpenVINO also its own
``.xml``). What twoends learns from a graph is the same whichever runs it: the
input's layout, size and dtype, the batch axis, which output holds the scores,
whether the graph already ends in a Softmax/Sigmoid, and the sidecar's spec,
labels and activation. It lives here, framework-free, so that each runtime's
adapter only says how to read its graph and how to run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from twoends.backends import model_ends
from twoends.backends.base import Backend, ModelInfo
from twoends.errors import ConfigError, InputError, ModelError
from twoends.sidecar import METADATA_KEY, find_sidecar, parse_sidecar, read_sidecar

__all__ = [
    "GraphBackend",
    "Port",
    "fixed_batch",
    "one_input",
    "read_side",
    "graph_model_info",
    "pick_output",
    "show_shape",
    "onnx_final_op",
]

# ops that pass values through unchanged on the way to the output
PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast", "Convert", "Result"}


@dataclass(frozen=True)
class Port:
    """One input or output of a graph: its name, shape (ints where fixed) and element type."""

    name: str
    shape: tuple[Any, ...]
    dtype: str | None = None


def show_shape(shape: Sequence[Any]) -> str:
    return (
        "["
        + ", ".join(str(d) if isinstance(d, int) and d > 0 else "batch" if i == 0 else "?" for i, d in enumerate(shape))
        + "]"
    )


def read_side(path: Path, sidecar: Any, embedded: Callable[[], str | None]) -> tuple[dict, list[str]]:
    """The sidecar's fields and a note saying where they came from. ``sidecar``: a path, False
    to ignore any, None/True to look beside the file (then in the graph's metadata, via ``embedded``)."""
    if sidecar is False:
        return {}, []
    side_path = Path(sidecar) if sidecar not in (None, True) else find_sidecar(path)
    if side_path is not None:
        return read_sidecar(side_path), [f"spec, labels and activation from the sidecar {side_path.name}"]
    text = embedded()
    if text is None:
        return {}, []
    side = parse_sidecar(text, where=f"{path} (metadata '{METADATA_KEY}')")
    return side, [f"spec, labels and activation from the model's metadata '{METADATA_KEY}'"]


def pick_output(outputs: Sequence[Port], wanted: str | int | None) -> tuple[Port, str]:
    index, why = model_ends.pick_output([o.name for o in outputs], wanted)
    return outputs[index], why


def onnx_final_op(path: Path, output_name: str) -> str | None:
    """The op that produces ``output_name`` in an ONNX file, looking through pass-through ops;
    None if unknown (the ``onnx`` package is not installed, or the chain is long)."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(path), load_external_data=False)
    producer = {out: node for node in model.graph.node for out in node.output}
    name, seen = output_name, 0
    while name in producer and seen < 16:
        node = producer[name]
        if node.op_type not in PASS_THROUGH:
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


def fixed_batch(inp: Port) -> tuple[int | None, list[str]]:
    """The graph's fixed batch size (None: any) and what that means for the user."""
    first = inp.shape[0] if inp.shape else None
    batch = first if isinstance(first, int) and first > 0 else None
    if batch == 1:
        return 1, [
            "the graph has a fixed batch of 1: batches are run one row at a time "
            "(export it with a dynamic batch axis to batch for real)"
        ]
    if batch is not None:
        return batch, [
            f"the graph has a fixed batch of {batch}: batches are run in chunks of {batch}, the last one padded"
        ]
    return None, []


def graph_model_info(
    path: Path,
    *,
    inp: Port,
    out: Port,
    side: dict,
    final_op: Callable[[], str | None],
    notes: list[str],
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    outputs: str | None = None,
    name: str | None = None,
) -> ModelInfo:
    """The ModelInfo of an image graph: explicit arguments > sidecar > what the graph says > defaults."""
    graph_outputs, graph_activation = None, None
    # the sidecar says what the outputs are: no need to read the graph (faster start-up)
    op = final_op() if outputs is None and "outputs" not in side else None
    if op in ("Softmax", "Sigmoid"):
        graph_outputs, graph_activation = "probabilities", op.lower()
        notes.append(
            f"the graph ends in {op}: its outputs are probabilities, used as they are (not {op.lower()}ed again)"
        )
    elif op == "LogSoftmax":
        graph_activation = "softmax"
        notes.append(
            "the graph ends in LogSoftmax: log-probabilities, which softmax maps back to the same probabilities"
        )
    elif op is None and outputs is None and "outputs" not in side:
        notes.append(
            "the graph's last op was not read (install the onnx package to check for a final "
            "Softmax); its outputs are taken as logits: pass outputs='probabilities' if they are not"
        )

    layout, size = _layout(inp.shape)
    spec_value = _spec_from(side.get("spec"), str(path))
    if spec_value is None:
        from twoends.preprocess import ImageSpec

        fields: dict[str, Any] = {"dtype": inp.dtype if inp.dtype != "float64" else "float32"}
        if layout:
            fields["layout"] = layout
        if size:
            fields["input_size"] = size
        if fields["dtype"] == "uint8" or size or layout:
            spec_value = ImageSpec(**fields)
            notes.append(
                "no sidecar: the graph gives only the input size, layout and dtype; the resize and "
                "normalisation are twoends' defaults (ImageNet mean/std) unless spec=... says otherwise"
            )
    if spec is not None:
        spec_value = (
            spec_value.replace(**spec)
            if isinstance(spec, dict) and spec_value is not None
            else _spec_from(spec, "spec")
        )
    classes = model_ends.num_classes(out.shape)
    return ModelInfo(
        name=name or side.get("model") or path.stem,
        spec=spec_value,
        labels=labels if labels is not None else side.get("labels"),
        activation=activation or side.get("activation") or graph_activation,
        outputs=outputs or side.get("outputs") or graph_outputs or "logits",
        num_outputs=classes,
        notes=(*side.get("notes", ()), *notes),
    )


def one_input(path: Path, inputs: Sequence[Port]) -> Port:
    if len(inputs) != 1:
        raise ModelError(
            f"{path.name} has {len(inputs)} inputs {[(i.name, i.shape) for i in inputs]}; twoends runs "
            "image classifiers with one input. Wrap the model so it takes one image batch"
        )
    return inputs[0]


class GraphBackend(Backend):
    """A model graph file run by a runtime (subclasses say how: ``_run``). ``forward`` returns NumPy logits [B, C].

    A fixed batch axis is honoured (chunks, the last one padded); inputs are checked against the
    graph's shape and dtype so that a wrong layout fails with the fix."""

    runtime = "graph"

    def __init__(
        self,
        *,
        info: ModelInfo,
        input_name: str,
        output_name: str,
        batch: int | None,
        input_dtype: str,
        input_shape: Sequence[Any],
        device: str,
    ) -> None:
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
        out = self._run(x) if n is None else model_ends.run_in_chunks(self._run, x, n)
        out, self.info = model_ends.class_outputs(self.info, out)
        return out

    def describe(self) -> str:
        batch = "any batch" if self.fixed_batch is None else f"fixed batch {self.fixed_batch}"
        return f"{type(self).__name__}({self.info.name}, device={self.device}, {batch})"

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check(self, x: np.ndarray) -> np.ndarray:
        want = self.input_shape
        if x.ndim != len(want) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want[1:], x.shape[1:])):
            raise InputError(
                f"{self.info.name} takes inputs of shape {show_shape(want)} ({self.input_name!r}), got "
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
