"""torchvision: a model's weights enum carries both of its ends.

``W.transforms()`` is the preprocessing the weights were evaluated with (an
``ImageClassification`` preset: resize the shorter side, center-crop, /255,
normalise) and ``W.meta["categories"]`` the class names. Both are read into
twoends' own ``ImageSpec`` and labels, so the model runs with exactly its own
two ends (on a PIL image torchvision resizes with Pillow, as ``ImagePlan`` does;
tests compare the tensors on real photos).

``load("torchvision:resnet50")`` builds the model with its weights through
torchvision's own builder, so builder side effects (Inception's
``transform_input``, SWAG ViTs' image size) stay right. The weights file comes
from the torch hub cache, downloaded once if missing; before torchvision
unpickles it, the file is checked to load with ``weights_only=True`` (rule 7:
untrusted files stay data).

Importing this module imports torch and torchvision.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from torchvision.models import WeightsEnum
from torchvision.transforms._presets import ImageClassification

from twoends.backends.torch import TorchBackend, info_from_module
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions
from twoends.preprocess.spec import INTERPOLATIONS, ImageSpec

__all__ = ["spec_from_transforms", "resolve_weights", "wrap_model", "load", "weights_path", "check_weights_match"]


def spec_from_transforms(transforms: Any) -> ImageSpec:
    """The ImageSpec equivalent of a torchvision ``ImageClassification`` preset (or ``W.transforms``)."""
    if callable(transforms) and not isinstance(transforms, torch.nn.Module):
        transforms = transforms()  # W.transforms is a partial that builds the preset
    if not isinstance(transforms, ImageClassification):
        raise ModelError(
            f"expected torchvision's ImageClassification preset (image classification weights), got "
            f"{type(transforms).__name__}: twoends runs classifiers; pass spec= to describe the preprocessing"
        )
    mode = getattr(transforms.interpolation, "value", str(transforms.interpolation))
    if mode not in INTERPOLATIONS:
        raise ModelError(
            f"the weights resize with interpolation {mode!r}, which Pillow does not offer; "
            f"expected one of {sorted(INTERPOLATIONS)}; pass spec= with the closest one if that is acceptable"
        )
    crop = list(transforms.crop_size)
    resize = list(transforms.resize_size)
    if len(crop) == 1:
        crop = crop * 2
    # antialias: torchvision always antialiases PIL images (Pillow does), whatever the flag says.
    common = dict(
        input_size=(int(crop[0]), int(crop[1])),
        interpolation=mode,
        antialias=True,
        scale=1 / 255,
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
    )
    if len(resize) == 1:  # Resize(int): the shorter side, aspect kept; then CenterCrop
        return ImageSpec(resize_mode="shorter", resize_size=int(resize[0]), crop="center", **common)
    if tuple(resize) == tuple(crop):  # Resize((h, w)) to the crop size: a plain squash
        return ImageSpec(resize_mode="exact", crop="none", **common)
    raise ModelError(
        f"the preset resizes to {resize} and crops {crop}, which an ImageSpec does not express; pass spec= explicitly"
    )


def resolve_weights(weights: Any, model_name: str | None = None) -> WeightsEnum:
    """A weights enum member from a member, "ResNet50_Weights.IMAGENET1K_V2", or (with a model name)
    "DEFAULT" / "IMAGENET1K_V2"."""
    if isinstance(weights, WeightsEnum):
        return weights
    if not isinstance(weights, str) or not weights:
        raise ConfigError(
            f"weights must be a torchvision weights enum member or its name, got {weights!r}; "
            "e.g. weights=ResNet50_Weights.IMAGENET1K_V2 or weights='IMAGENET1K_V2'"
        )
    try:
        if "." in weights or model_name is None:
            return torchvision.models.get_weight(weights)
        enum = torchvision.models.get_model_weights(model_name)
    except (ValueError, KeyError, AttributeError) as e:
        raise ConfigError(f"unknown torchvision weights {weights!r}: {e}") from None
    if weights.upper() == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[weights]
    except KeyError:
        known = ", ".join(["DEFAULT", *(m.name for m in enum)])
        raise ConfigError(f"{model_name} has no weights {weights!r}; expected one of: {known}") from None


def _info(module: torch.nn.Module, weights: WeightsEnum, name: str | None):
    base = info_from_module(module, name=name or f"torchvision:{weights}")
    categories = weights.meta.get("categories")
    notes = [f"spec from {type(weights).__name__}.{weights.name}.transforms()"]
    if categories:
        notes.append(f"labels from {type(weights).__name__}.{weights.name}.meta['categories']")
    return dataclasses.replace(
        base,
        spec=spec_from_transforms(weights.transforms),
        labels=tuple(categories) if categories else base.labels,
        activation="softmax",  # torchvision classifiers are trained with cross-entropy over classes
        num_outputs=base.num_outputs or (len(categories) if categories else None),
        notes=(*base.notes, *notes),
    )


def wrap_model(
    model: torch.nn.Module,
    *,
    weights: Any = None,
    run: RunOptions | None = None,
    name: str | None = None,
) -> TorchBackend:
    """The backend for a torchvision model handed to ``twoends.wrap(model, weights=W)``."""
    if weights is None:
        info = info_from_module(model, name=name)
        info = dataclasses.replace(
            info,
            notes=(*info.notes, "no weights= given: pass the weights enum to use its preprocessing and categories"),
        )
    else:
        w = resolve_weights(weights)
        info = _info(model, w, name)
        categories = w.meta.get("categories") or ()
        if not categories or info.num_outputs == len(categories):  # otherwise the labels check says it better
            info = dataclasses.replace(info, notes=(*info.notes, check_weights_match(model, w)))
    return TorchBackend(model, info=info, run=run)


def check_weights_match(model: torch.nn.Module, weights: WeightsEnum) -> str:
    """Refuse a model that does not hold ``weights`` (its labels and preprocessing would be a lie).

    ``wrap(resnet50(), weights=W)`` builds a randomly initialised network and would run it
    under W's categories. When W's file is in the torch hub cache, every tensor is compared
    with it; otherwise a network whose batch-norm statistics are all still at their
    initial values (mean 0, variance 1) has never seen data and is refused. Returns a note.
    """
    what = f"{type(weights).__name__}.{weights.name}"
    fix = f"build it with its weights: {type(model).__name__.lower()}(weights={what}) (or load the state dict first)"
    path = weights_path(weights)
    if os.path.isfile(path):
        try:
            reference = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            return f"weights not compared with {what}: its cached file does not load ({type(e).__name__})"
        mine = model.state_dict()
        differ = [
            k
            for k, v in reference.items()
            if k not in mine or mine[k].shape != v.shape or not torch.equal(mine[k].detach().cpu().to(v.dtype), v)
        ]
        if differ:
            raise ConfigError(
                f"the model does not hold the weights {what}: {len(differ)} of its {len(reference)} tensors differ "
                f"from {path} (first: {differ[0]!r}), so W's labels and preprocessing would be applied to other "
                f"weights; {fix}"
            )
        return f"weights checked: every tensor equals {what}"
    norms = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None
    ]
    if norms and all(bool((m.running_mean == 0).all() and (m.running_var == 1).all()) for m in norms):
        raise ConfigError(
            f"the model has never been trained (all {len(norms)} batch-norm layers are at their initial statistics), "
            f"yet weights={what} says it holds W: its answers would be random under W's labels; {fix}"
        )
    return f"weights not compared with {what} (its file is not in the torch hub cache at {path})"


def weights_path(weights: WeightsEnum) -> str:
    """Where the torch hub cache keeps this weights file (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    filename = os.path.basename(urlparse(weights.url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def _fetch(weights: WeightsEnum) -> str:
    """The cached weights file, downloaded (hash-checked) if missing, checked to be plain tensors."""
    path = weights_path(weights)
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            torch.hub.download_url_to_file(weights.url, path, hash_prefix=_hash_prefix(path), progress=True)
        except Exception as e:  # URLError, timeouts, HTTP errors, hash mismatch
            raise ModelError(
                f"weights {type(weights).__name__}.{weights.name} are not in the torch hub cache at {path} "
                f"and could not be downloaded from {weights.url} ({type(e).__name__}: {e}); download them once "
                "with internet access (or copy the file to that path; TORCH_HOME moves the cache)"
            ) from e
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(
            f"{path} does not load as plain tensors (weights_only=True): {type(e).__name__}: {e}; "
            "delete it and download it again"
        ) from e
    return path


def _hash_prefix(path: str) -> str | None:
    # torchvision names files "<name>-<first sha256 hex digits>.pth"; check them as torch.hub does
    stem = os.path.splitext(os.path.basename(path))[0]
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return tail if len(tail) >= 6 and all(c in "0123456789abcdef" for c in tail) else None


def load(
    name: str,
    *,
    weights: Any = "DEFAULT",
    run: RunOptions | None = None,
) -> TorchBackend:
    """``twoends.load("torchvision:resnet50", weights="IMAGENET1K_V2")``: the model with its weights."""
    model_name = name.strip().lower()
    if model_name not in torchvision.models.list_models():
        import difflib

        close = difflib.get_close_matches(model_name, torchvision.models.list_models(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"torchvision has no model {name!r}.{hint} torchvision.models.list_models() lists them")
    w = resolve_weights(weights, model_name)
    _fetch(w)
    module = torchvision.models.get_model(model_name, weights=w)
    return TorchBackend(module, info=_info(module, w, f"torchvision:{model_name}"), run=run)
