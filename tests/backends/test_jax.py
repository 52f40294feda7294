"""JAX / Flax backend: linen and nnx modules and plain apply functions, in inference mode,
checked against a direct ``apply`` call; the head works on the jax.Array the model returns.

Random weights: these tests are about plumbing (same numbers, right mode, right types),
never about what the model predicts.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402

import twoends  # noqa: E402
from twoends.backends.jax import JaxBackend, inference_kwargs, resolve_device, wrap_callable  # noqa: E402
from twoends.errors import ConfigError, ModelError  # noqa: E402

LABELS = ["a", "b", "c", "d", "e"]
SIZE = {"input_size": (16, 16)}  # the test images are 16x16 ready model inputs


class LinenCNN(linen.Module):
    """Conv -> BatchNorm -> Dropout -> Dense: every layer that behaves differently in training."""

    @linen.compact
    def __call__(self, x, train: bool = True):
        x = linen.relu(linen.Conv(8, (3, 3))(x))
        x = linen.BatchNorm(use_running_average=not train)(x)
        x = x.mean(axis=(1, 2))
        x = linen.Dropout(0.5, deterministic=not train)(x)
        return linen.Dense(5)(x)


class NnxCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(8, 5, rngs=rngs)

    def __call__(self, x):
        x = self.bn(nnx.relu(self.conv(x))).mean(axis=(1, 2))
        return self.out(self.drop(x))


def images(n: int = 4) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def linen_model():
    model = LinenCNN()
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, images(1), train=False)
    # non-trivial running statistics, so that using batch statistics instead would show
    stats = jax.tree_util.tree_map(lambda a: a + 0.3, variables["batch_stats"])
    return model, {"params": variables["params"], "batch_stats": stats}


def test_linen_module_runs_deterministic_and_matches_apply(linen_model):
    model, variables = linen_model
    clf = twoends.wrap(model, params=variables, labels=LABELS, spec=SIZE)
    assert isinstance(clf.backend, JaxBackend)
    assert any("train=False" in n for n in clf.backend.info.notes)
    x = images()
    out = clf.backend.forward(x)
    assert isinstance(out, jax.Array) and out.shape == (4, 5)
    want = model.apply(variables, x, train=False)
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-5, atol=1e-5)
    # training mode (batch statistics) would give other numbers
    trained, _ = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
    assert not np.allclose(np.asarray(trained), np.asarray(want), atol=1e-3)
    probs = np.stack([p.probabilities for p in clf.predict(list(x))])
    np.testing.assert_allclose(probs, np.asarray(jax.nn.softmax(want, axis=-1)), atol=1e-6)


def test_bare_params_tree_is_wrapped(linen_model):
    class Plain(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.Dense(3)(x.reshape((x.shape[0], -1)))

    model = Plain()
    params = model.init(jax.random.key(0), images(1))["params"]
    b = wrap_callable(model, params=params)
    x = images(2)
    np.testing.assert_allclose(np.asarray(b.forward(x)), np.asarray(model.apply({"params": params}, x)), atol=1e-6)
    assert any("bare tree" in n for n in b.info.notes)
    with pytest.raises(ConfigError, match="needs its variables"):
        wrap_callable(model)


def test_nnx_module_is_put_in_eval_mode_and_matches_a_direct_call():
    model = NnxCNN(nnx.Rngs(0))
    clf = twoends.wrap(model, labels=LABELS, spec=SIZE)
    assert model.drop.deterministic and model.bn.use_running_average
    x = images()
    out = clf.backend.forward(x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(jnp.asarray(x))), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(clf.backend.forward(x)))  # no dropout noise
    with pytest.raises(ConfigError, match="carries its own parameters"):
        wrap_callable(NnxCNN(nnx.Rngs(0)), params={})


def test_plain_jitted_apply_with_a_deterministic_keyword(linen_model):
    model, variables = linen_model
    seen = {}

    @functools.partial(jax.jit, static_argnames="deterministic")
    def apply(params, x, deterministic=False):
        return model.apply(params, x, train=not deterministic)

    def spy(params, x, deterministic=False):
        seen["deterministic"] = deterministic
        return apply(params, x, deterministic=deterministic)

    assert inference_kwargs(spy) == {"deterministic": True}
    clf = twoends.wrap(spy, params=variables, labels=LABELS, spec=SIZE)
    x = images()
    np.testing.assert_allclose(
        np.asarray(clf.backend.forward(x)), np.asarray(model.apply(variables, x, train=False)), rtol=1e-5, atol=1e-5
    )
    assert seen == {"deterministic": True}


def test_head_stays_in_jax_until_the_edge(linen_model, monkeypatch):
    import twoends.head.head as head_module

    model, variables = linen_model
    clf = twoends.wrap(model, params=variables, labels=LABELS, spec=SIZE)
    types = []
    real = head_module.to_numpy

    def spy(a):
        types.append(type(a))
        return real(a)

    monkeypatch.setattr(head_module, "to_numpy", spy)
    preds = clf.predict(list(images()))
    assert len(preds) == 4 and all(p.error is None for p in preds)
    assert types and all(issubclass(t, jax.Array) for t in types)  # logits, probabilities, top-k... all JAX


def test_default_spec_is_channels_last_and_explicit_spec_wins(linen_model):
    model, variables = linen_model
    clf = twoends.wrap(model, params=variables)
    assert clf.spec.layout == "NHWC" and clf.spec_source == "model"
    clf = twoends.wrap(model, params=variables, spec={"input_size": (16, 16)})
    assert clf.spec.layout == "NHWC" and clf.spec.input_size == (16, 16)


def test_real_photo_runs_end_to_end(linen_model):
    from skimage import data

    model, variables = linen_model
    clf = twoends.wrap(model, params=variables, labels=LABELS, spec={"input_size": (32, 32)})
    pred = clf.predict(data.chelsea())
    assert pred.error is None and pred.label in LABELS and abs(pred.probabilities.sum() - 1) < 1e-5


def test_devices_and_bad_outputs():
    assert resolve_device("cpu").platform == "cpu"
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("quantum")
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(ConfigError, match="gpu device"):
            resolve_device("cuda:0")
    b = wrap_callable(lambda x: {"a": x, "b": x})
    with pytest.raises(ModelError, match="no 'logits'"):
        b.forward(images(1))
    b = wrap_callable(lambda x: {"logits": x.mean(axis=(1, 2))})
    assert b.forward(images(2)).shape == (2, 3)


def test_an_explicit_whole_spec_keeps_the_models_layout(linen_model):
    """The README's JAX example: ImageSpec(input_size=...) says nothing about the layout."""
    from skimage import data

    model, variables = linen_model
    clf = twoends.wrap(model, params=variables, spec=twoends.ImageSpec(input_size=(32, 32)), labels=LABELS)
    assert clf.spec.layout == "NHWC" and clf.describe()["spec"]["layout"] == "NHWC"
    assert "layout NHWC from the model" in clf.spec_source
    pred = clf.predict(data.chelsea())
    assert pred.ok and pred.label in LABELS and len(pred.top(3)) == 3
    # forcing the other layout is still possible, on top of the model's spec
    forced = twoends.wrap(model, params=variables, spec={"input_size": (32, 32), "layout": "NCHW"}, labels=LABELS)
    assert forced.spec.layout == "NCHW" and forced.spec_source == "model+explicit"


def test_a_model_that_cannot_run_raises_for_one_input_and_rows_say_so(linen_model):
    from skimage import data

    model, variables = linen_model
    clf = twoends.wrap(model, params=variables, spec={"input_size": (32, 32), "layout": "NCHW"}, labels=LABELS)
    with pytest.raises(ModelError, match="layout"):
        clf.predict(data.chelsea())  # one input: an exception, not a quiet error row
    rows = clf.predict([data.chelsea(), data.coffee()])  # many: one error row each, the stream goes on
    assert [r.ok for r in rows] == [False, False] and rows[0].error["type"] == "ModelError"
    assert rows[0].label is None
    with pytest.raises(ModelError, match="no prediction"):
        rows[0].top(3)  # never a silent []
