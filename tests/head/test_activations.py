"""The head's numerics against SciPy, on every array library, by property."""

import numpy as np
import pytest
import scipy.special as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twoends import ConfigError
from twoends.head import entropy, log_sigmoid, log_softmax, logsumexp, margin, sigmoid, softmax, topk

torch = pytest.importorskip("torch")

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
matrices = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40), elements=finite)
any_rank = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=12), elements=finite)


def test_seed_examples():
    np.testing.assert_allclose(softmax([1.0, 2.0, 3.0]), [0.0900, 0.2447, 0.6652], atol=5e-5)
    got = softmax(np.array([[2.0, 1.0, 0.1], [1.0, 3.0, 0.2]]))
    np.testing.assert_allclose(got, [[0.6590, 0.2424, 0.0986], [0.1131, 0.8360, 0.0508]], atol=5e-5)


@settings(max_examples=200, deadline=None)
@given(any_rank, st.integers(-3, 2))
def test_agrees_with_scipy_float64(x, axis):
    axis = axis % x.ndim
    np.testing.assert_allclose(softmax(x, axis=axis), ss.softmax(x, axis=axis), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(log_softmax(x, axis=axis), ss.log_softmax(x, axis=axis), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logsumexp(x, axis=axis), ss.logsumexp(x, axis=axis), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sigmoid(x), ss.expit(x), rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(log_sigmoid(x), ss.log_expit(x), rtol=1e-6, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(matrices, finite)
def test_rows_sum_to_one_and_shift_invariance(x, c):
    p = softmax(x)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-9)
    shifted = x + np.float64(c)[None] * np.arange(1, x.shape[0] + 1)[:, None] / x.shape[0]  # a constant per row
    np.testing.assert_allclose(softmax(shifted), p, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(matrices, st.integers(1, 50), st.floats(0.05, 20))
def test_topk_equals_full_softmax_and_sort(x, k, t):
    r = topk(x, k, temperature=t)
    kk = min(k, x.shape[1])
    assert r.k == kk and r.requested_k == k and r.clamped == (k > x.shape[1])
    full = ss.softmax(x / t, axis=-1)
    expected_p = -np.sort(-full, axis=-1)[:, :kk]
    np.testing.assert_allclose(r.probabilities, expected_p, rtol=1e-6, atol=1e-12)
    expected_logp = -np.sort(-ss.log_softmax(x / t, axis=-1), axis=-1)[:, :kk]
    np.testing.assert_allclose(r.log_probabilities, expected_logp, rtol=1e-6, atol=1e-6)
    # the indices point at those probabilities (ties may come in any order)
    np.testing.assert_allclose(np.take_along_axis(full, r.indices, -1), expected_p, rtol=1e-6, atol=1e-12)


def test_sigmoid_topk():
    x = np.random.default_rng(0).normal(size=(6, 30)) * 5
    r = topk(x, 4, activation="sigmoid")
    expected = -np.sort(-ss.expit(x), axis=-1)[:, :4]
    np.testing.assert_allclose(r.probabilities, expected, rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_no_overflow_at_1e4_any_precision(dtype):
    x64 = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, -1e4, -1e4, -1e4 + 1]])
    t = torch.tensor(x64, dtype=getattr(torch, dtype))
    for fn, ref in ((softmax, ss.softmax), (log_softmax, ss.log_softmax)):
        out = fn(t)
        assert out.dtype == t.dtype
        assert torch.isfinite(out[..., 0]).all()
        np.testing.assert_allclose(out.float().numpy(), ref(t.double().numpy(), axis=-1), atol=2e-2, rtol=1e-2)
    s = sigmoid(t)
    assert s.dtype == t.dtype and torch.isfinite(s).all()
    np.testing.assert_allclose(s.float().numpy(), ss.expit(t.double().numpy()), atol=1e-2)
    if dtype in ("float16", "float32", "float64"):
        a = x64.astype(dtype)
        assert softmax(a).dtype == a.dtype and np.isfinite(softmax(a)).all()
        assert np.isfinite(sigmoid(a)).all() and np.isfinite(log_sigmoid(a)).all()


def test_minus_inf_is_a_masked_class():
    x = np.array([[0.0, -np.inf, 1.0]])
    p = softmax(x)
    assert p[0, 1] == 0.0 and np.isclose(p.sum(), 1.0)
    assert log_softmax(x)[0, 1] == -np.inf
    assert entropy(p)[0] == pytest.approx(ss.entr(p).sum())
    r = topk(x, 3)
    assert r.probabilities[0, -1] == 0.0 and r.indices[0, -1] == 1


def test_all_masked_row_is_nan_not_an_answer():
    p = softmax(np.array([[-np.inf, -np.inf]]))
    assert np.isnan(p).all()
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "warm"])
def test_bad_temperature_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="temperature"):
        softmax([1.0, 2.0], temperature=bad)


def test_temperature_divides_logits():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(softmax(x, temperature=2.0), ss.softmax(x / 2.0))


def test_token_logits_rank3():
    x = np.random.default_rng(1).normal(size=(2, 5, 11))
    np.testing.assert_allclose(softmax(x), ss.softmax(x, axis=-1))
    r = topk(x, 3)
    assert r.indices.shape == (2, 5, 3)
    r0 = topk(x, 2, axis=1)
    np.testing.assert_allclose(r0.probabilities, -np.sort(-ss.softmax(x, axis=1), axis=1)[:, :2], rtol=1e-9)


def test_uncertainty_against_reference():
    p = ss.softmax(np.random.default_rng(2).normal(size=(8, 20)) * 3, axis=-1)
    np.testing.assert_allclose(entropy(p), ss.entr(p).sum(-1), rtol=1e-12)
    s = np.sort(p, -1)
    np.testing.assert_allclose(margin(p), s[:, -1] - s[:, -2], rtol=1e-12)


def _libraries():
    libs = [("numpy", lambda a: a, lambda r: r)]
    libs.append(("torch", torch.from_numpy, lambda r: r.numpy()))
    try:
        import jax  # noqa: F401
        import jax.numpy as jnp

        # float64 JAX arrays only inside the test (jax.enable_x64 as a context): a process-wide
        # jax_enable_x64 set at collection would leak into every later JAX test
        libs.append(("jax", jnp.asarray, np.asarray))
    except ImportError:
        pass
    return libs


@pytest.mark.parametrize("name,make,back", _libraries(), ids=[lib[0] for lib in _libraries()])
def test_same_results_in_each_library_and_stays_there(name, make, back):
    if name == "jax":
        import jax

        with jax.enable_x64(True):
            return _same_results(make, back)
    _same_results(make, back)


def test_collecting_this_module_leaves_jax_in_float32():
    jax = pytest.importorskip("jax")
    assert not jax.config.jax_enable_x64 and jax.numpy.asarray(1.0).dtype == jax.numpy.float32


def _same_results(make, back):
    x = np.random.default_rng(3).normal(size=(5, 17)) * 10
    a = make(x)
    for fn in (softmax, log_softmax, sigmoid, log_sigmoid, logsumexp):
        out = fn(a)
        assert type(out).__module__.split(".")[0] == type(a).__module__.split(".")[0], fn.__name__
        np.testing.assert_allclose(back(out), fn(x), rtol=1e-6, atol=1e-9)
    r = topk(a, 4)
    assert type(r.probabilities) is type(softmax(a))
    np.testing.assert_allclose(back(r.probabilities), topk(x, 4).probabilities, rtol=1e-6)
    np.testing.assert_array_equal(back(r.indices), topk(x, 4).indices)
    np.testing.assert_allclose(back(entropy(softmax(a))), entropy(softmax(x)), rtol=1e-6)
