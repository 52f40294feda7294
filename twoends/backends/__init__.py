"""The middle: one adapter per framework behind the narrow ``Backend`` contract.

``backend_for(model, **options)`` finds the adapter for an in-memory model by
its type, without importing any framework: each adapter registers a test on the
names of the model's classes (their modules), and its own module - which
imports the framework - is imported only when it matches.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from ..errors import ConfigError, ModelError
from .base import Backend, ModelInfo

__all__ = ["Backend", "ModelInfo", "backend_for", "register_adapter"]

# (test on the model object, "module:function" that builds the backend)
_ADAPTERS: list[tuple[Callable[[Any], bool], str]] = []


def _from_library(*roots: str) -> Callable[[Any], bool]:
    def matches(obj: Any) -> bool:
        return any(c.__module__.split(".")[0] in roots for c in type(obj).__mro__)

    return matches


def register_adapter(matches: Callable[[Any], bool], target: str, *, first: bool = False) -> None:
    """Register an adapter: ``target`` is "twoends.backends.x:build", called as build(model, **options)."""
    entry = (matches, target)
    _ADAPTERS.insert(0, entry) if first else _ADAPTERS.append(entry)


def backend_for(model: Any, **options: Any) -> Backend:
    """The Backend for an in-memory model, chosen by the model's type."""
    if isinstance(model, Backend):
        return model
    for matches, target in _ADAPTERS:
        if matches(model):
            module, func = target.split(":")
            build = getattr(importlib.import_module(module), func)
            _check_options(build, options, model)
            return build(model, **options)
    raise ModelError(
        f"twoends does not know how to run a {type(model).__module__}.{type(model).__name__}: "
        "expected a torch.nn.Module (or a model of another supported framework); "
        "wrap a plain function in a Backend subclass"
    )


def _check_options(build: Callable, options: dict, model: Any) -> None:
    """An option the adapter does not take is an error that names the ones it does (never a bare TypeError)."""
    params = inspect.signature(build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params))
    if unknown:
        accepted = sorted(n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
        raise ConfigError(
            f"{', '.join(map(repr, unknown))} is not an option for a {type(model).__name__} "
            f"({build.__module__.rsplit('.', 1)[-1]} adapter); it takes: {', '.join(accepted)}. "
            "weights= is for torchvision models, processor=/tokenizer= for Hugging Face models"
        )


register_adapter(_from_library("torch"), "twoends.backends.torch:wrap_module")
# framework-specific torch adapters go before the generic one (their models are torch modules too)
register_adapter(_from_library("torchvision"), "twoends.backends.torchvision:wrap_model", first=True)
register_adapter(_from_library("timm"), "twoends.backends.timm:wrap_model", first=True)
register_adapter(_from_library("transformers"), "twoends.backends.transformers:wrap_model", first=True)
# Keras 3 models on the PyTorch backend are torch modules too: Keras goes first
register_adapter(_from_library("keras", "tf_keras"), "twoends.backends.keras:wrap_model", first=True)
register_adapter(_from_library("flax", "jax", "jaxlib"), "twoends.backends.jax:wrap_callable")
# last: any other callable (an apply function, a bound module.apply) is run as JAX when JAX is imported
register_adapter(lambda m: callable(m) and "jax" in __import__("sys").modules, "twoends.backends.jax:wrap_callable")
