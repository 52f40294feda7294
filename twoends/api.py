"""``load`` and ``wrap``: the two ways in. Thin: they pick a backend and build a Classifier."""

from __future__ import annotations

from typing import Any

from .backends import backend_for
from .classifier import Classifier
from .preprocess import DEFAULT_MAX_PIXELS

__all__ = ["load", "wrap"]


def load(
    name: str,
    *,
    device: str = "auto",
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    temperature: float = 1.0,
    thresholds: Any = None,
    top_k: int = 5,
    batch_size: int = 8,
    workers: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    calibration: Any = None,
    **model_options: Any,
) -> Classifier:
    """A Classifier for a model known by name (``twoends models`` lists them).

    ``"efficientnet_lite0"`` (the embedded default; lite1, lite2), and prefixed
    names such as ``"torchvision:resnet50"``, ``"timm:..."``, ``"hf:ORG/NAME"``,
    ``"onnx:path.onnx"`` where those backends are installed. ``model_options``
    go to the model's builder, which rejects any it does not know.
    ``calibration``: a calibration file from ``twoends calibrate`` (or a
    Calibration): its temperature, conformal sets and thresholds are applied,
    after checking that it was fitted for this model's classes.
    """
    from .models import load_backend

    backend = load_backend(name, device=device, labels=labels, **model_options)
    return Classifier(
        backend,
        spec=spec,
        labels=labels,
        activation=activation,
        temperature=temperature,
        thresholds=thresholds,
        top_k=top_k,
        batch_size=batch_size,
        workers=workers,
        max_pixels=max_pixels,
        calibration=calibration,
    )


def wrap(
    model: Any,
    *,
    spec: Any = None,
    labels: Any = None,
    activation: str | None = None,
    temperature: float = 1.0,
    thresholds: Any = None,
    top_k: int = 5,
    batch_size: int = 8,
    workers: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    calibration: Any = None,
    device: str = "auto",
    name: str | None = None,
    **backend_options: Any,
) -> Classifier:
    """A Classifier around a model you already have in memory (e.g. a ``torch.nn.Module``).

    The model is put in evaluation mode and run without gradients. ``spec`` is
    its preprocessing (an ImageSpec, or a dict of overrides); ``labels`` its
    class names. ``backend_options`` are the framework adapter's own (e.g.
    ``weights=`` for torchvision), rejected if unknown.
    """
    backend = backend_for(model, device=device, name=name, **backend_options)
    return Classifier(
        backend,
        spec=spec,
        labels=labels,
        activation=activation,
        temperature=temperature,
        thresholds=thresholds,
        top_k=top_k,
        batch_size=batch_size,
        workers=workers,
        max_pixels=max_pixels,
        calibration=calibration,
        name=name,
    )
