"""The sidecar: a model file's two ends, written beside it as JSON.

``model.onnx`` carries only the middle (the graph). ``model.onnx.json`` carries
the rest: the preprocessing spec, the labels, the activation, whether the
outputs are logits or probabilities, and where the model came from. Loading
``onnx:model.onnx`` reads it back, so an exported model runs with its own two
ends on a machine that has ONNX Runtime and no PyTorch.

The same JSON is also embedded in the ONNX file's metadata (key ``twoends``),
so a model that lost its sidecar still knows its ends. Plain JSON and the
standard library only: no framework is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["FORMAT", "METADATA_KEY", "sidecar_paths", "find_sidecar", "read_sidecar", "parse_sidecar", "write_sidecar"]

FORMAT = "twoends-sidecar/1"
METADATA_KEY = "twoends"  # key of the same JSON in the ONNX file's metadata_props
KNOWN = {
    "format",
    "model",
    "twoends_version",
    "spec",
    "labels",
    "activation",
    "outputs",
    "input_name",
    "output_name",
    "opset",
    "exporter",
    "source",
    "check",
    "notes",
    "cache_key",
    "quantization",
    "rewrites",
}


def sidecar_paths(model_path: str | Path) -> tuple[Path, Path]:
    """Where a sidecar may be, in the order looked at: ``X.onnx.json`` then ``X.twoends.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json"), p.with_suffix(".twoends.json")


def find_sidecar(model_path: str | Path) -> Path | None:
    return next((p for p in sidecar_paths(model_path) if p.is_file()), None)


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """Read and check a sidecar file; errors name the file and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the sidecar {path}: {e}") from e
    return parse_sidecar(text, where=str(path))


def parse_sidecar(text: str, *, where: str = "sidecar") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigError(
            f"{where}: nests JSON too deeply to be a twoends sidecar; delete it or write it again with `twoends export`"
        ) from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{where}: expected a twoends sidecar JSON object, got invalid JSON ({e}); "
            "delete it or write it again with `twoends export`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(
            f'{where}: expected a JSON object with "format": {FORMAT!r}, got {got!r}; '
            "write it again with `twoends export`"
        )
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown sidecar field(s) {unknown}; known fields: {sorted(KNOWN)}")
    labels = data.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise ConfigError(f'{where}: "labels" must be a list of strings or null')
    for key, ok, expected in _FIELD_TYPES:
        if data.get(key) is not None and not ok(data[key]):
            shown = repr(data[key])
            raise ConfigError(
                f'{where}: "{key}" must be {expected} or null, got {shown[:80]}; '
                "write the sidecar again with `twoends export`"
            )
    return data


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1000


# every other field's type: a hand-edited sidecar fails here, by name, not deep inside a backend
_FIELD_TYPES = (
    ("model", lambda v: isinstance(v, str), "a string"),
    ("twoends_version", lambda v: isinstance(v, str), "a string"),
    ("spec", lambda v: isinstance(v, dict), "a JSON object (an ImageSpec's fields)"),
    ("activation", lambda v: v in ("softmax", "sigmoid", "auto"), "'softmax', 'sigmoid' or 'auto'"),
    ("outputs", lambda v: v in ("logits", "probabilities"), "'logits' or 'probabilities'"),
    ("input_name", lambda v: isinstance(v, str), "a string"),
    ("output_name", lambda v: isinstance(v, str), "a string"),
    ("opset", _is_int, "a whole number"),
    ("exporter", lambda v: isinstance(v, str), "a string"),
    ("source", lambda v: isinstance(v, (str, dict)), "a string or an object"),
    ("check", lambda v: isinstance(v, dict), "a JSON object"),
)


def write_sidecar(path: str | Path, fields: Mapping[str, Any]) -> Path:
    data = {"format": FORMAT, **fields}
    parse_sidecar(json.dumps(data), where=str(path))  # never write what we could not read back
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return Path(path)
