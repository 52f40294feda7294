"""Fold a Keras CNN's BatchNormalization layers away, exactly, before full-integer quantization.

Why: TensorFlow's TFLite converter folds a BatchNormalization into the convolution before it only
when nothing sits between them. A CNN that puts BatchNormalization AFTER the ReLU (cifar10_cnn:
Conv2D(relu) -> BatchNormalization, six times) keeps it as a per-channel MUL and ADD, which a
full-integer model runs in int8 with coarse scales: cifar10_cnn's uint8 model then agrees with the
float model on top-1 for about 75% of real-photo crops. Folded as below, about 98%.

How (BatchNormalization at inference is a per-channel affine map y = a*x + b):
- the scale a goes into the layer BEFORE the ReLU: relu(a*z) = a*relu(z) when a > 0, so that
  layer's kernel and bias (output-channel axis) are multiplied by a. Exact; a <= 0 is refused.
  A BatchNormalization right after a layer without activation folds the same way (a and b both).
- the shift b travels forward through MaxPooling (max(x + b) = max(x) + b per channel), Dropout
  (identity at inference) and Flatten (repeated per position), into the bias of the next Conv2D
  (b summed through the kernel) or Dense (b @ kernel). Exact only for a 'valid' convolution: with
  'same' zero padding the border windows see zeros, not b, so that case is refused.
- Folding the scale into the NEXT layer instead (kernel scaled on its input-channel axis) is just as
  exact in float, but measured worse after quantization (51% on cifar10_cnn): per-output-channel
  weight scales cannot absorb a per-input-channel spread of 0.04..31.

Only plain chains (a Sequential model of the layers named above) are folded; anything else is a
ModelError that names the layer. Works on Keras 3 and tf-keras models alike (the model's own
package builds the new one); numpy only here, no framework import.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from twoends.errors import ModelError

__all__ = ["fold_batchnorm"]

_WEIGHTED = ("Conv2D", "Dense")
_SHIFT_PASSES = ("MaxPooling2D", "Dropout", "Flatten", "InputLayer")


def _input_shape(layer: Any) -> tuple:
    """A layer's input shape, batch first: tf-keras has ``input_shape``, Keras 3 ``input.shape``."""
    return tuple(layer.input.shape) if not hasattr(layer, "input_shape") else tuple(layer.input_shape)


def _affine(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization at inference as y = a*x + b (per channel, on the last axis)."""
    cfg = layer.get_config()
    axis = cfg.get("axis")
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, len(_input_shape(layer)) - 1):
        raise ModelError(f"cannot fold {layer.name}: it normalizes axis {axis}, expected the channels-last axis")
    weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
    gamma = weights.pop(0) if cfg.get("scale", True) else 1.0
    beta = weights.pop(0) if cfg.get("center", True) else 0.0
    mean, var = weights
    a = gamma / np.sqrt(var + cfg["epsilon"]) * np.ones_like(mean)
    return a, beta - a * mean


def fold_batchnorm(model: Any) -> Any:
    """A new model without BatchNormalization layers that computes the same function (see module doc).

    Raises ModelError for a model or layer this exact fold does not cover; the caller should compare
    the two models on real inputs (float differences of ~1e-5 are the reassociation of float32 sums).
    """
    layers = getattr(model, "layers", None)
    if type(model).__name__ != "Sequential" or not layers:
        raise ModelError(f"BatchNormalization folding takes a Sequential Keras model, got {type(model).__name__}")
    package = importlib.import_module(type(model).__module__.split(".")[0])  # keras or tf_keras
    kept: list[tuple[Any, list[np.ndarray]]] = []  # (new layer config owner, float64 weights)
    shift: np.ndarray | None = None  # a per-channel b waiting for the next weighted layer
    last_weighted: int | None = None  # index in kept of the layer a BatchNormalization may scale
    fresh = True  # nothing but the weighted layer (and its own activation) since last_weighted
    for layer in layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            a, b = _affine(layer)
            if last_weighted is None or not fresh or shift is not None:
                raise ModelError(f"cannot fold {layer.name}: it does not directly follow a Conv2D or Dense layer")
            owner, (kernel, bias) = kept[last_weighted]
            act = owner.get_config().get("activation")
            if act == "relu":
                if not np.all(a > 0):
                    raise ModelError(
                        f"cannot fold {layer.name}: it follows a ReLU and scales some channels by "
                        "a factor <= 0 (relu(a*z) = a*relu(z) needs a > 0)"
                    )
                kept[last_weighted] = (owner, [kernel * a, bias * a])
                shift = b
            elif act == "linear":
                kept[last_weighted] = (owner, [kernel * a, bias * a + b])
            else:
                raise ModelError(f"cannot fold {layer.name}: it follows a {act!r} activation (relu or none folds)")
            fresh = False
            continue
        if kind in _SHIFT_PASSES:
            if kind == "Flatten" and shift is not None:
                shift = np.tile(shift, int(np.prod(_input_shape(layer)[1:-1])))  # channels-last order
            if kind in ("Dropout", "InputLayer"):
                continue
            kept.append((layer, []))
            fresh = False
            continue
        if kind not in _WEIGHTED:
            raise ModelError(
                f"cannot fold BatchNormalization through {layer.name} ({kind}); "
                f"only {', '.join(_WEIGHTED + _SHIFT_PASSES)} layers are handled"
            )
        cfg = layer.get_config()
        weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
        if not cfg.get("use_bias", True):
            weights.append(np.zeros(weights[0].shape[-1]))
        kernel, bias = weights
        if shift is not None:
            if kind == "Conv2D":
                if cfg.get("padding") != "valid":
                    raise ModelError(
                        f"cannot fold a BatchNormalization shift into {layer.name}: its "
                        f"{cfg.get('padding')!r} padding pads with zeros, not with the shift"
                    )
                bias = bias + np.einsum("hwio,i->o", kernel, shift)
            else:
                bias = bias + shift @ kernel
            shift = None
        kept.append((layer, [kernel, bias]))
        last_weighted, fresh = len(kept) - 1, True
    if shift is not None:
        raise ModelError("cannot fold the last BatchNormalization: no Conv2D or Dense layer follows it")
    new_layers = []
    for layer, weights in kept:
        cfg = layer.get_config()
        if weights:
            cfg["use_bias"] = True
        new_layers.append(type(layer).from_config(cfg))
    input_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else model.input_shape[1:]
    folded = package.Sequential([package.Input(input_shape), *new_layers], name=f"{model.name}_bn_folded")
    for new, (_, weights) in zip(new_layers, kept):
        if weights:
            new.set_weights([w.astype(np.float32) for w in weights])
    return folded
