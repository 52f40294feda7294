"""The middle: one adapter per framework behind the narrow ``Backend`` contract.

``backend_for(model, **options)`` finds the adapter for an in-memory model by
its type, without importing any framework: each adapter registers a test on the
names of the model's classes (their modules), and its own module - which
imports the framework - is imported only when it matches.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable

from ..errors import ConfigError, ModelError
from .base import Backend, ModelInfo

__all__ = ["Backend", "ModelInfo", "backend_for", "check_options", "register_adapter"]

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
            check_options(build, options, f"a {type(model).__name__} ({module.rsplit('.', 1)[-1]} adapter)")
            return build(model, **options)
    raise ModelError(
        f"twoends does not know how to run a {type(model).__module__}.{type(model).__name__}: "
        "expected a torch.nn.Module (or a model of another supported framework); "
        "wrap a plain function in a Backend subclass"
    )


def check_options(build: Callable, options: dict, what: str) -> None:
    """An option ``build`` does not take is a ConfigError naming the ones it does, with a
    did-you-mean (never a bare TypeError). A builder with ``**kwargs`` passes them on: not checked here."""
    params = inspect.signature(build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        close = {u: difflib.get_close_matches(u, accepted, n=1) for u in unknown}
        hints = "".join(f" Did you mean {c[0]!r} for {u!r}?" for u, c in close.items() if c)
        raise ConfigError(
            f"{', '.join(map(repr, unknown))} is not an option for {what}; it takes: "
            f"{', '.join(accepted) or 'no options'}.{hints} Every model also takes the settings of twoends.load/wrap "
            "(spec, labels, activation, outputs, temperature, top_k, batch_size, device, precision, compile, ...). "
            "weights= is for torchvision models, processor=/tokenizer= for Hugging Face models"
        )


register_adapter(_from_library("torch"), "twoends.backends.torch:wrap_module")
# framework-specific torch adapters go before the generic one (their models are torch modules too)
register_adapter(_from_library("torchvision"), "twoends.backends.torchvision:wrap_model", first=True)
register_adapter(_from_library("timm"), "twoends.backends.timm:wrap_model", first=True)
register_adapter(_from_library("transformers"), "twoends.backends.transformers:wrap_model", first=True)
# Keras 3 models on the PyTorch backend are torch modules too: Keras goes first
register_adapter(_from_library("keras"), "twoends.backends.keras:wrap_model", first=True)
# TensorFlow models (tf-keras, SavedModels, tf.Module, tf.function) after Keras 3: a Keras 3 model on the
# TensorFlow backend is a tf.Module too
register_adapter(_from_library("tensorflow", "tf_keras"), "twoends.backends.tensorflow:wrap_model")
register_adapter(_from_library("flax", "jax", "jaxlib"), "twoends.backends.jax:wrap_callable")
# last: any other callable (an apply function, a bound module.apply) is run as JAX when JAX is imported
register_adapter(lambda m: callable(m) and "jax" in __import__("sys").modules, "twoends.backends.jax:wrap_callable")
