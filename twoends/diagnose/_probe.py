"""Find the probe for a user's model by its type, importing only the framework it already comes from."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["probe_for"]

# root module of the model's classes -> "module:class" of its probe (in backends/, where framework code lives)
_PROBES = {"torch": "twoends.backends.torch_probe:TorchProbe"}


def probe_for(model: Any):
    """A probe for ``model`` (training flag, side-effect-free forward, last layer), or None if unknown."""
    if model is None:
        return None
    module = getattr(model, "module", None)  # a twoends Backend holding a framework model
    for obj in (model, module):
        if obj is None:
            continue
        for cls in type(obj).__mro__:
            target = _PROBES.get(cls.__module__.split(".")[0])
            if target:
                mod, name = target.split(":")
                return getattr(importlib.import_module(mod), name)(obj)
    return None
