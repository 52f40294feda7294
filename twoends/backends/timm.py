"""timm: the preprocessing ships with the model, in ``pretrained_cfg``.

``resolve_data_config(model=model)`` (timm's own precedence) gives input size,
interpolation, crop_pct, crop_mode, mean and std; they become an ``ImageSpec``
that reproduces ``create_transform(**config)`` (timm's eval transform, Pillow
resizes on PIL images, as ``ImagePlan``). Label names come from timm's offline
ImageNet metadata (``ImageNetInfo``) for the subset the weights were trained
on, first synonym of each class ("tench", "great white shark").

crop_mode support (square input sizes, which nearly all timm models have):

- ``center`` (default): resize the shorter side to ``floor(size / crop_pct)``,
  centre crop - exact;
- ``squash``: resize both sides to ``floor(size / crop_pct)``, centre crop - exact;
- ``border``: resize the longer side, pad to the crop with the mean colour -
  approximated (twoends pads with black and rounds the short side down where
  timm rounds to nearest): a warning says so.

Non-square input sizes are approximated within a pixel of timm's resize
(with a warning). ``load("timm:NAME")`` downloads weights through timm (the
Hugging Face hub cache); ``pretrained=False`` builds random weights.

Importing this module imports torch and timm.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from contextlib import contextmanager
from typing import Any

import timm
import torch
from timm.data import ImageNetInfo, infer_imagenet_subset, resolve_data_config

from twoends.backends.hub_access import offline_hint, offline_when_unreachable
from twoends.backends.torch import TorchBackend, info_from_module
from twoends.errors import ModelError
from twoends.options import RunOptions
from twoends.preprocess.spec import INTERPOLATIONS, ImageSpec

__all__ = ["spec_from_data_config", "labels_for", "wrap_model", "load"]


def spec_from_data_config(config: dict) -> tuple[ImageSpec, list[str]]:
    """The ImageSpec for a timm data config (``resolve_data_config``), and notes on any approximation."""
    _, h, w = config["input_size"]
    interpolation = config.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise ModelError(
            f"timm config interpolation {interpolation!r} is not an eval interpolation Pillow offers; "
            f"expected one of {sorted(INTERPOLATIONS)}; pass spec= explicitly"
        )
    crop_pct = config.get("crop_pct") or 0.875  # timm's DEFAULT_CROP_PCT
    mode = config.get("crop_mode") or "center"
    common = dict(
        input_size=(h, w),
        interpolation=interpolation,
        crop_pct=min(crop_pct, 1.0),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
    )
    notes = []
    if h != w:
        notes.append(f"non-square input {h}x{w}: twoends' resize is within a pixel of timm's")
    if mode == "center":
        rs = math.floor(min(h, w) / crop_pct)  # timm: floor(size / crop_pct), no rounding guard
        return ImageSpec(resize_mode="shorter", resize_size=rs, crop="center", **common), notes
    if mode == "squash":
        rs = math.floor(min(h, w) / crop_pct)
        return ImageSpec(resize_mode="exact", resize_size=rs, crop="center", **common), notes
    if mode == "border":
        rs = math.floor(max(h, w) / crop_pct)
        notes.append(
            "crop_mode 'border' approximated: timm pads to the crop with the mean colour, twoends with black, "
            "and the short side may differ by a pixel"
        )
        return ImageSpec(resize_mode="longer", resize_size=rs, crop="center", **common), notes
    raise ModelError(f"unknown timm crop_mode {mode!r}; expected 'center', 'squash' or 'border'")


def labels_for(model: torch.nn.Module) -> tuple[tuple[str, ...] | None, str]:
    """The class names timm knows offline for this model's weights, and where they came from."""
    subset = infer_imagenet_subset(model)
    if not subset:
        return None, "no labels: the weights' dataset is not an ImageNet subset timm describes; pass labels="
    info = ImageNetInfo(subset)
    names = tuple(d.split(",")[0].strip() for d in info.label_descriptions())
    if len(names) != getattr(model, "num_classes", len(names)):
        return None, f"no labels: {subset} has {len(names)} classes, the model {model.num_classes} outputs"
    return names, f"labels from timm ImageNetInfo({subset!r}), first synonym of each class"


def _info(model: torch.nn.Module, name: str | None):
    base = info_from_module(
        model, name=name or f"timm:{getattr(model, 'default_cfg', {}).get('architecture', type(model).__name__)}"
    )
    config = resolve_data_config(model=model)
    spec, notes = spec_from_data_config(config)
    for note in notes:
        warnings.warn(f"{base.name}: {note}", RuntimeWarning, stacklevel=4)
    labels, label_note = labels_for(model)
    return dataclasses.replace(
        base,
        spec=spec,
        labels=labels or base.labels,
        activation="softmax",  # timm classifiers: one class per image, cross-entropy trained
        notes=(*base.notes, "spec from timm resolve_data_config(model=model)", *notes, label_note),
    )


def wrap_model(model: torch.nn.Module, *, run: RunOptions | None = None, name: str | None = None) -> TorchBackend:
    """The backend for ``twoends.wrap(timm_model)``."""
    return TorchBackend(model, info=_info(model, name), run=run)


@contextmanager
def _nothing():
    yield None


def load(name: str, *, pretrained: bool = True, run: RunOptions | None = None, **create_options: Any) -> TorchBackend:
    """``twoends.load("timm:resnet50.a1_in1k")``; ``create_options`` go to ``timm.create_model``."""
    arch = name.split(".")[0]
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch}*")[:5]
        hint = f" Models with a similar name: {', '.join(close)}." if close else ""
        raise ModelError(f"timm has no model {name!r}.{hint} timm.list_models() lists them")
    with offline_when_unreachable() if pretrained else _nothing() as why:
        try:
            model = timm.create_model(name, pretrained=pretrained, **create_options)
        except (OSError, RuntimeError, ValueError) as e:  # hub unreachable, not cached, no such tag
            if not pretrained:
                raise
            raise ModelError(
                f"cannot get the pretrained weights of timm:{name} ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:300]}): they are not in the Hugging Face cache (HF_HOME) and the hub "
                f"could not be reached.{offline_hint(why)} Download them once with internet access, or pass "
                "pretrained=False for random weights"
            ) from e
    return wrap_model(model, run=run, name=f"timm:{name}")
