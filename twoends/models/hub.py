"""Prefixed names for models that live in a framework's own hub: "torchvision:", "timm:", "hf:".

Each builder imports its backend module (and so its framework) only when a
model is loaded; registering them imports nothing.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register_all"]


def _torchvision(rest: str, **options: Any):
    from twoends.backends import check_options
    from twoends.backends.torchvision import load

    check_options(load, options, "a torchvision model")
    return load(rest, **options)


def _timm(rest: str, **options: Any):
    from twoends.backends import check_options
    from twoends.backends.timm import load

    check_options(load, options, "a timm model")
    return load(rest, **options)


def _hf(rest: str, **options: Any):
    from twoends.backends import check_options
    from twoends.backends.transformers import load

    check_options(load, options, "a Hugging Face model")
    return load(rest, **options)


def register_all(register_prefix: Callable[..., None]) -> None:
    register_prefix(
        "torchvision",
        _torchvision,
        "torchvision classifiers with their weights' transforms and categories, e.g. torchvision:resnet50 "
        "(weights=... picks others; downloads once to the torch hub cache)",
        requires=("torchvision",),
    )
    register_prefix(
        "timm",
        _timm,
        "timm models with their pretrained_cfg preprocessing and ImageNet labels, e.g. timm:resnet50.a1_in1k "
        "(downloads once from the Hugging Face hub; pretrained=False for random weights)",
        requires=("timm",),
    )
    register_prefix(
        "hf",
        _hf,
        "Hugging Face image/text classifiers with their processor and id2label, e.g. hf:ORG/NAME or hf:/local/folder",
        requires=("transformers",),
    )
