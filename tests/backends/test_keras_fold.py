"""Folding BatchNormalization away (twoends.backends.keras_fold): exact where it folds, refused where
it would not be. Small Keras 3 models with BatchNormalization statistics set away from the identity;
the real cifar10_cnn (folded, then quantized) is in test_tflite.py."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("twoends.backends.keras")
import keras  # noqa: E402

from twoends.backends.keras_fold import fold_batchnorm  # noqa: E402
from twoends.errors import ModelError  # noqa: E402


def _stats(model, rng, *, sign=1.0):
    """Non-trivial moving statistics, so that a fold that ignored them would show."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [sign * rng.uniform(0.2, 3.0, n), rng.normal(0, 1, n), rng.normal(0, 1, n), rng.uniform(0.1, 4.0, n)]
            )
    return model


def _model(*body, rng):
    keras.utils.set_random_seed(0)
    return _stats(keras.Sequential([keras.Input((12, 12, 3)), *body]), rng)


L = keras.layers


def test_post_relu_and_plain_batchnorms_fold_exactly():
    rng = np.random.default_rng(0)
    model = _model(
        L.Conv2D(6, 3, activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(2),
        L.Conv2D(5, 3),
        L.BatchNormalization(),
        L.Conv2D(4, 2, activation="relu", use_bias=False),
        L.BatchNormalization(),
        L.Flatten(),
        L.Dropout(0.5),
        L.Dense(7, activation="relu"),
        L.BatchNormalization(),
        L.Dense(3),
        rng=rng,
    )
    folded = fold_batchnorm(model)
    assert [type(x).__name__ for x in folded.layers] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Conv2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    x = rng.uniform(0, 255, (16, 12, 12, 3)).astype(np.float32)
    want = model.predict_on_batch(x)
    assert np.abs(want).max() > 1  # the check below is not on a model that outputs ~0
    np.testing.assert_allclose(folded.predict_on_batch(x), want, rtol=1e-5, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize(
    "body, match",
    [
        (
            lambda: [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.Conv2D(3, 3, padding="same")],
            "'same' padding",
        ),
        (lambda: [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization()], "no Conv2D or Dense layer follows"),
        (
            lambda: [L.Conv2D(4, 3, activation="tanh"), L.BatchNormalization(), L.Flatten(), L.Dense(2)],
            "'tanh' activation",
        ),
        (
            lambda: [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.GlobalAveragePooling2D(), L.Dense(2)],
            "through .*GlobalAveragePooling2D",
        ),
        (lambda: [L.Conv2D(4, 3), L.ReLU(), L.BatchNormalization(), L.Flatten(), L.Dense(2)], "ReLU"),
    ],
)
def test_what_the_fold_would_get_wrong_is_refused(body, match):
    with pytest.raises(ModelError, match=match):
        fold_batchnorm(_model(*body(), rng=np.random.default_rng(1)))


def test_a_negative_scale_after_a_relu_is_refused():
    model = _model(
        L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.Flatten(), L.Dense(2), rng=np.random.default_rng(2)
    )
    _stats(model, np.random.default_rng(2), sign=-1.0)
    with pytest.raises(ModelError, match="factor <= 0"):
        fold_batchnorm(model)
