"""The real cifar10_cnn (the .h5 in cifar-10-model) and the TensorFlow files the tests make from it,
with real photos cut into many 32x32 views (this CNN takes unscaled 0..255 pixels).

Views: random square-ish crops (20%..100% of the shorter side) of the five real photos in
tests/photos.py, half of them mirrored, squashed to 32x32 by the model's own spec. The
representative set given to the TFLite converter and the views the tests measure on are drawn
with different seeds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tests.photos import load_photos


def cifar_h5() -> Path | None:
    found = importlib.util.find_spec("cifar_10_model")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "trained_models" / "cnn_model.h5"


def photo_views(n: int, seed: int) -> list[Image.Image]:
    """``n`` crops of the real photos as RGB PIL images."""
    rng = np.random.default_rng(seed)
    photos = list(load_photos().values())
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        short = min(im.size)
        side = int(short * rng.uniform(0.2, 1.0))
        w = min(im.width, int(side * rng.uniform(0.8, 1.25)))
        left, top = rng.integers(0, im.width - w + 1), rng.integers(0, im.height - side + 1)
        view = im.crop((int(left), int(top), int(left) + w, int(top) + side))
        out.append(ImageOps.mirror(view) if rng.random() < 0.5 else view)
    return out


def cifar_batch(views: list[Image.Image]) -> np.ndarray:
    """The views as the model's inputs [N, 32, 32, 3] float32 0..255, through twoends' plan of its spec."""
    from twoends.models.frameworks import CIFAR10_SPEC
    from twoends.preprocess import ImageSpec

    plan = ImageSpec(**CIFAR10_SPEC).plan()
    return np.stack([np.asarray(plan(v), dtype=np.float32) for v in views])


def tf_keras_model():
    import tf_keras

    return tf_keras.models.load_model(cifar_h5(), compile=False)


def convert(
    model, *, quantize: str | None = None, representative: np.ndarray | None = None, softmax: bool = False
) -> bytes:
    """TFLite bytes from a tf-keras model with TensorFlow's converter: float, or full-integer with
    ``quantize`` "uint8" / "int8" ends calibrated on ``representative`` (images [N, 32, 32, 3], 0..255)."""
    import tensorflow as tf
    import tf_keras

    if softmax:
        model = tf_keras.Sequential([model, tf_keras.layers.Softmax()])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, quantize)
    return converter.convert()
