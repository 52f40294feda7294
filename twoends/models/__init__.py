"""Models that can be loaded by name.

Two kinds of names:

- **registered names** ("efficientnet_lite0", ...): ``register(name, builder,
  description, requires=...)`` adds one; the builder runs only when the model
  is loaded, so registering imports no framework.
- **prefixed names** ("torchvision:resnet50", "timm:...", "hf:...",
  "onnx:model.onnx"): ``register_prefix(prefix, builder, description)`` maps a
  prefix to a builder that receives the rest of the name.

``load_backend(name, **kwargs)`` resolves a name to a ``Backend``;
``available()`` lists (name, description, installed) for ``twoends models``.
An unknown name raises ModelError listing what is available, with a
"did you mean ...?" suggestion.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

from twoends.errors import ModelError

__all__ = [
    "ModelEntry",
    "register",
    "register_prefix",
    "available",
    "load_backend",
    "fingerprint",
    "imagenet_labels",
]

Builder = Callable[..., "object"]


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Builder
    description: str
    requires: tuple[str, ...]  # importable module names needed to build it
    fingerprint: Callable[..., Any] | None = None  # (**options) -> weights hash, without importing a framework

    def installed(self) -> bool:
        return all(_importable(m) for m in self.requires)


class ModelEntry(NamedTuple):
    """One row of ``available()``."""

    name: str
    description: str
    installed: bool


_NAMED: dict[str, _Entry] = {}
_PREFIXES: dict[str, _Entry] = {}  # "torchvision" -> builder(rest_of_name, **kwargs)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register(
    name: str,
    builder: Builder,
    description: str,
    *,
    requires: Sequence[str] = (),
    replace: bool = False,
    fingerprint: Callable[..., Any] | None = None,
) -> None:
    """Register a model by name. ``builder(**kwargs)`` returns a Backend.

    ``fingerprint(**options)``, where given, returns a hash of the weights the builder
    would load with those options (None if it cannot tell) without importing a framework:
    the runtimes' cache is consulted with it before the model is built.

    ``requires`` names the modules the builder imports, so ``available()``
    can say whether the model is installed without importing anything.
    Names are case-insensitive and "-" equals "_".
    """
    key = _normalize(name)
    if ":" in key:
        raise ModelError(f"model name {name!r} must not contain ':' (that is a prefix); use register_prefix")
    if key in _NAMED and not replace:
        raise ModelError(f"a model named {key!r} is already registered (pass replace=True to override)")
    _NAMED[key] = _Entry(key, builder, description, tuple(requires), fingerprint)


def register_prefix(
    prefix: str,
    builder: Builder,
    description: str,
    *,
    requires: Sequence[str] = (),
    replace: bool = False,
) -> None:
    """Register a family of names "prefix:rest". ``builder(rest, **kwargs)`` returns a Backend."""
    key = prefix.strip().lower().rstrip(":")
    if not key or ":" in key:
        raise ModelError(f"invalid prefix {prefix!r}: expected a word such as 'timm'")
    if key in _PREFIXES and not replace:
        raise ModelError(f"the prefix {key!r}: is already registered (pass replace=True to override)")
    _PREFIXES[key] = _Entry(key + ":", builder, description, tuple(requires))


def available() -> list[ModelEntry]:
    """(name, description, installed) for every registered name and prefix, names first."""
    rows = [ModelEntry(e.name, e.description, e.installed()) for e in _NAMED.values()]
    rows += [ModelEntry(e.name + "...", e.description, e.installed()) for e in _PREFIXES.values()]
    return rows


def load_backend(name: str, *, labels=None, run=None, device=None, **kwargs):
    """Build the backend for a model name (registered name or "prefix:rest").

    ``run`` (a RunOptions; ``device=`` alone sets its device) says how the model runs.

    ``labels`` reach only builders that take them (zero-shot models, whose labels
    are their classes); for the others they are the classifier's business.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"a model name must be a non-empty string, got {name!r}")
    from twoends.options import RunOptions

    kwargs["run"] = RunOptions.of(run, device=device)
    prefix, sep, rest = name.strip().partition(":")
    if sep:
        entry = _PREFIXES.get(prefix.lower())
        if entry is None:
            raise ModelError(_unknown_message(name, prefix_of=prefix.lower()))
        if not rest:
            raise ModelError(f"{name!r} names no model after the prefix; expected e.g. '{entry.name}NAME'")
        _check_installed(entry, name)
        return entry.builder(rest, **_checked(entry, labels, kwargs))
    entry = _NAMED.get(_normalize(name))
    if entry is None:
        raise ModelError(_unknown_message(name))
    _check_installed(entry, name)
    return entry.builder(**_checked(entry, labels, kwargs))


def fingerprint(name: str, options: dict) -> tuple[str, str] | None:
    """(the model's registered name, its weights hash) for a named model that can tell without
    building it; None otherwise (a prefixed name, a model without a fingerprint, unknown options)."""
    entry = _NAMED.get(_normalize(name)) if isinstance(name, str) and ":" not in name else None
    if entry is None or entry.fingerprint is None:
        return None
    try:
        found = entry.fingerprint(**options)
    except TypeError:  # an option the fingerprint does not know: it cannot vouch for the weights
        return None
    return None if found is None else (entry.name, found)


def _check_installed(entry: _Entry, name: str) -> None:
    """A model whose framework is not installed: say which extra brings it, before importing anything.

    Modules no extra brings (weights packages installed with --no-deps) are left to the builder's own message.
    """
    from twoends.extras import EXTRA_OF, missing

    for module in entry.requires:
        if module.partition(".")[0] in EXTRA_OF and not _importable(module):
            raise missing(f"the model {name!r}", module, error=ModelError)


def _checked(entry: _Entry, labels, kwargs: dict) -> dict:
    """The builder's options, checked (did-you-mean), with the labels for builders whose classes they are."""
    import inspect

    from twoends.backends import check_options

    check_options(entry.builder, kwargs, f"the model {entry.name!r}")
    if labels is not None and "labels" in inspect.signature(entry.builder).parameters:
        return {**kwargs, "labels": labels}
    return kwargs


def _unknown_message(name: str, prefix_of: str | None = None) -> str:
    names = sorted(_NAMED)
    prefixes = sorted(e.name for e in _PREFIXES.values())
    if prefix_of is not None:
        what = f"unknown model prefix {prefix_of + ':'!r} in {name!r}"
        pool, query = [p.rstrip(":") for p in prefixes], prefix_of
        fmt = "{}:"
    else:
        what = f"unknown model {name!r}"
        pool, query = names, _normalize(name)
        fmt = "{}"
    close = [fmt.format(c) for c in difflib.get_close_matches(query, pool, n=3, cutoff=0.6)]
    if prefix_of is None:
        close = _prefixed_suggestions(name) + close
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    listing = ", ".join(names + [p + "..." for p in prefixes]) or "(none registered)"
    return f"{what}.{hint} Available: {listing}. Run `twoends models` to see them with descriptions."


# what a name without a prefix looks like, and the prefix it needs (frameworks.py registers these)
_FILE_PREFIXES = {".onnx": "onnx", ".keras": "keras", ".h5": "keras", ".tflite": "tflite"}


def _prefixed_suggestions(name: str) -> list[str]:
    """Prefixed names the user probably meant: a file by its extension, an ORG/NAME or a folder
    with a config.json for Hugging Face, a torchvision or timm model by its own name.

    Only checked when a name is unknown; torchvision and timm are imported only if installed
    (and only on this error path, to list their models).
    """
    import os

    text = name.strip()
    ext = os.path.splitext(text)[1].lower()
    if ext in _FILE_PREFIXES and _FILE_PREFIXES[ext] in _PREFIXES:
        return [f"{_FILE_PREFIXES[ext]}:{text}"]
    if os.path.isdir(text) and os.path.isfile(os.path.join(text, "config.json")):
        return [f"hf:{text}"]
    if "/" in text and not os.path.exists(text) and text.count("/") == 1:
        return [f"hf:{text}"]
    found = []
    if "torchvision" in _PREFIXES and _importable("torchvision"):
        import torchvision.models

        if text.lower() in torchvision.models.list_models():
            found.append(f"torchvision:{text.lower()}")
    if "timm" in _PREFIXES and _importable("timm"):
        import timm

        if timm.is_model(text.split(".")[0]):
            found.append(f"timm:{text}")
    return found


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard index order (bundled, no framework needed)."""
    from importlib.resources import files

    text = (files("twoends") / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
    labels = [line for line in text.splitlines() if line]
    if len(labels) != 1000:  # a packaging error, not a user error
        raise ModelError(f"the bundled ImageNet class list has {len(labels)} names, expected 1000")
    return labels


def _register_builtins() -> None:
    from twoends.models import efficientnet_lite, hub, silero, zero_shot

    efficientnet_lite.register_all(register)
    silero.register_all(register)
    hub.register_all(register_prefix)
    zero_shot.register_all(register)
    from twoends.models import frameworks

    frameworks.register_all(register, register_prefix)


_register_builtins()
