"""RunOptions: how the middle runs - device, precision, compile, memory layout - as one value.

Settled once by ``load`` / ``wrap`` and handed to the backend builders, which
read what they use and refuse (``require``) what they cannot do, so a user who
asks an ONNX model for ``precision="bf16"`` is told so instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import ConfigError

__all__ = ["PRECISIONS", "RUNTIMES", "RUNTIME_ENV", "RunOptions", "default_runtime"]

PRECISIONS = ("fp32", "bf16", "fp16")
RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
#: the runtime used when none is given (e.g. TWOENDS_RUNTIME=torch to keep PyTorch everywhere)
RUNTIME_ENV = "TWOENDS_RUNTIME"


def default_runtime() -> str:
    value = os.environ.get(RUNTIME_ENV, "").strip().lower() or "auto"
    if value not in RUNTIMES:
        raise ConfigError(f"{RUNTIME_ENV}={value!r} is not a runtime: expected one of {list(RUNTIMES)}, or unset it")
    return value


@dataclass(frozen=True)
class RunOptions:
    """``device``: "auto", "cpu", "cuda", "cuda:N", "mps".
    ``precision``: "fp32" (default), "bf16" or "fp16" (autocast; the head still sees float32).
    ``compile``: ``torch.compile`` the model (for big jobs).
    ``channels_last``: NHWC memory format for convolutional torch models ("auto": on for them).
    ``dtype``: cast a torch model's weights and inputs to this floating dtype (None: as it is).
    ``runtime``: what runs a PyTorch model's forward pass: "torch", or its graph exported once to
    ONNX (cached, checked against torch on real inputs) run by "onnxruntime" or "openvino";
    "auto" (the default, or ``TWOENDS_RUNTIME``) takes the fastest one that passed the check
    (``twoends.runtimes``).
    """

    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool | str = "auto"
    dtype: Any = None
    runtime: str = field(default_factory=default_runtime)

    def __post_init__(self) -> None:
        if not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))  # a torch.device is fine
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be True or False, got {self.compile!r}")
        if self.channels_last not in (True, False, "auto"):
            raise ConfigError(f"channels_last must be True, False or 'auto', got {self.channels_last!r}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {list(RUNTIMES)}, got {self.runtime!r}")

    @classmethod
    def of(cls, run: "RunOptions | None" = None, **fields: Any) -> "RunOptions":
        """``run`` (or the defaults) with the fields given here set on top; None leaves a field as is."""
        base = run if run is not None else cls()
        if not isinstance(base, RunOptions):
            raise ConfigError(f"run must be a twoends RunOptions, got {type(base).__name__}")
        changes = {k: v for k, v in fields.items() if v is not None}
        return dataclasses.replace(base, **changes) if changes else base

    def changed(self) -> dict[str, Any]:
        """The options that differ from the defaults (what ``describe()`` shows as explicit)."""
        default = RunOptions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def require(self, what: str, supported: Iterable[str]) -> None:
        """Refuse options this backend cannot honour (set to something else than their default)."""
        # the runtime is settled before the builders run (twoends.runtimes): never theirs to refuse
        refused = sorted(set(self.changed()) - set(supported) - {"device", "runtime"})
        if refused:
            asked = ", ".join(f"{k}={getattr(self, k)!r}" for k in refused)
            raise ConfigError(
                f"{asked} is not available for {what}: it takes {', '.join(sorted(supported)) or 'no run options'}; "
                "leave it at its default (precision and compile are for PyTorch models)"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dtype"] = None if self.dtype is None else str(self.dtype)
        return d
