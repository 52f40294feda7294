"""The fast top-k paths against a plain reference: SciPy's softmax and a full sort.

Long rows take the blocked selection and the one-pass sum of exponentials in
``twoends.head.kernels``; short rows, other axes, autograd tensors and
non-contiguous arrays take the plain per-library path. Both must give the same
answers, including on -inf masks, +-1e4 logits, NaN and all -inf rows, ties,
16-bit inputs, k >= C, and 3-D inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

from twoends.head import kernels
from twoends.head.topk import topk

torch = pytest.importorskip("torch")
try:
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - JAX is optional
    jax = None

# sizes chosen to hit: the plain path, blocks of 256/512/1024, an exact multiple and a tail
SIZES = (1000, 12345, 32000, 65536, 100003)
LIBS = ("numpy", "torch") + (("jax",) if jax is not None else ())


def _to(lib, a, dtype=None):
    if lib == "numpy":
        return a if dtype is None else a.astype(dtype)
    if lib == "torch":
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if dtype is None else t.to(getattr(torch, dtype))
    return jnp.asarray(a) if dtype is None else jnp.asarray(a).astype(dtype)


def _np(a):
    if isinstance(a, np.ndarray):
        return a
    if torch.is_tensor(a):
        return a.detach().float().numpy() if a.dtype in (torch.float16, torch.bfloat16) else a.detach().numpy()
    return np.asarray(a).astype(np.float32) if a.dtype == jnp.bfloat16 else np.asarray(a)


def _logits(rng, b, c, scale=3.0):
    return (rng.standard_normal((b, c)) * scale).astype(np.float32)


def _check(res, x_ref, k, axis=-1, temperature=1.0, rtol=2e-5):
    """res (a TopK) against float64 SciPy on x_ref (the logits as the library saw them)."""
    x64 = np.moveaxis(np.asarray(x_ref, np.float64), axis, -1)
    vals = np.moveaxis(_np(res.logits).astype(np.float64), axis, -1)
    idx = np.moveaxis(_np(res.indices), axis, -1)
    prob = np.moveaxis(_np(res.probabilities).astype(np.float64), axis, -1)
    logp = np.moveaxis(_np(res.log_probabilities).astype(np.float64), axis, -1)
    kk = min(k, x64.shape[-1])
    assert res.k == kk and res.requested_k == k and vals.shape[-1] == kk
    # values: exactly the k largest (ties may pick any of the equal entries)
    want = -np.sort(-x64, axis=-1)[..., :kk]
    np.testing.assert_array_equal(vals, want)
    np.testing.assert_array_equal(np.take_along_axis(x64, idx.astype(np.int64), -1), vals)
    # indices are distinct within a row
    srt = np.sort(idx, axis=-1)
    assert (np.diff(srt, axis=-1) != 0).all()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ref_p = np.take_along_axis(sp_softmax(x64 / temperature, axis=-1), idx.astype(np.int64), -1)
        ref_lp = np.take_along_axis(sp_log_softmax(x64 / temperature, axis=-1), idx.astype(np.int64), -1)
    # log-probabilities: absolute error grows with the magnitude of the logits
    scale = np.max(np.abs(np.where(np.isfinite(x64), x64, 0)), axis=-1, keepdims=True) / temperature
    atol = rtol * np.maximum(1.0, scale) * 4
    np.testing.assert_allclose(prob, ref_p, rtol=rtol * 4, atol=rtol)
    same_inf = (logp == ref_lp) | (np.isnan(logp) & np.isnan(ref_lp))
    with np.errstate(invalid="ignore"):
        err = np.where(same_inf, 0.0, np.abs(logp - ref_lp))
    assert np.all(err <= atol + rtol * np.abs(np.where(same_inf, 0, ref_lp))), float(np.max(err))
    return idx


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("c", SIZES)
@pytest.mark.parametrize("k", (1, 5, 37))
def test_random_rows_match_reference(lib, c, k):
    rng = np.random.default_rng(c * 100 + k)
    x = _logits(rng, 9, c)
    _check(topk(_to(lib, x), k), x, k)


@pytest.mark.parametrize("lib", ("numpy", "torch"))
@pytest.mark.parametrize("c", (12345, 65536, 100003))
def test_fast_path_is_taken(lib, c):
    x = _to(lib, _logits(np.random.default_rng(0), 3, c))
    assert kernels._top_blocked(x, 5, -1, 1.0) is not None
    assert kernels._top_blocked(x, 5, -1, None) is not None


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("temperature", (0.25, 2.5))
def test_temperature(lib, temperature):
    x = _logits(np.random.default_rng(3), 5, 65536)
    _check(topk(_to(lib, x), 5, temperature=temperature), x, 5, temperature=temperature)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("c", (1000, 65536, 100003))
def test_masked_huge_nan_and_empty_rows(lib, c):
    rng = np.random.default_rng(7)
    x = _logits(rng, 8, c)
    x[0, rng.random(c) < 0.5] = -np.inf  # half the classes masked
    x[1, :] = -np.inf
    x[1, [3, c - 1]] = [2.0, 1.0]  # two finite classes, k = 5 reaches into the -inf ones
    x[2] *= 1e4 / 10  # logits of about +-1e4: the shifted fallback
    x[3, rng.integers(0, c, 50)] = 1e4
    x[4, :] = -1e4 + rng.standard_normal(c).astype(np.float32)  # all very negative
    x[5, :] = -np.inf  # no possible class: NaN probabilities
    x[6, : c // 2] = 7.0  # ties across many blocks
    x[7, :] = np.sort(x[7])  # sorted: the best classes all sit in the last blocks
    res = topk(_to(lib, x), 5)
    ok = np.array([0, 1, 2, 3, 4, 6, 7])
    sub = type(res)(
        *(getattr(res, f)[ok] for f in ("indices", "logits", "probabilities", "log_probabilities")),
        res.k,
        res.requested_k,
    )
    idx = _check(sub, x[ok], 5)
    assert np.all(idx[1, :2] == [3, c - 1])
    prob = _np(res.probabilities)
    assert np.isnan(prob[5]).all()
    assert np.all(prob[1, 2:] == 0) and np.all(_np(res.log_probabilities)[1, 2:] == -np.inf)


@pytest.mark.parametrize("lib", ("numpy", "torch"))
def test_fast_equals_plain_path_on_inf_nan_and_ties(lib, monkeypatch):
    rng = np.random.default_rng(11)
    x = _logits(rng, 6, 65536)
    x[0, 17] = np.inf
    x[1, 40000] = np.nan
    x[2, 100:30000] = np.nan
    x[3, :] = -np.inf
    x[4, ::7] = 9.0
    fast = topk(_to(lib, x), 5, temperature=1.5)
    assert kernels._top_blocked(_to(lib, x), 5, -1, 1.5) is not None
    monkeypatch.setattr(kernels, "_kernels_and_rows", lambda x, axis: (None, None))
    assert kernels._top_blocked(_to(lib, x), 5, -1, 1.5) is None
    plain = topk(_to(lib, x), 5, temperature=1.5)
    for f in ("logits", "probabilities", "log_probabilities"):
        np.testing.assert_array_equal(np.isnan(_np(getattr(fast, f))), np.isnan(_np(getattr(plain, f))), err_msg=f)
        np.testing.assert_array_equal(np.isinf(_np(getattr(fast, f))), np.isinf(_np(getattr(plain, f))), err_msg=f)
    np.testing.assert_array_equal(_np(fast.logits), _np(plain.logits))
    np.testing.assert_allclose(_np(fast.log_probabilities)[5], _np(plain.log_probabilities)[5], rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(_np(fast.indices)[[0, 5]], _np(plain.indices)[[0, 5]])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("dtype", ("float16", "bfloat16"))
def test_16_bit_inputs(lib, dtype):
    if dtype == "bfloat16" and lib == "numpy":
        pytest.skip("NumPy has no bfloat16")
    x = _logits(np.random.default_rng(5), 6, 65536)
    x[2] *= 1e3
    xi = _to(lib, x, dtype)
    res = topk(xi, 5)
    assert str(res.probabilities.dtype).endswith(dtype) and str(res.logits.dtype).endswith(dtype)
    seen = _np(xi).astype(np.float32)  # the logits as rounded to 16 bits
    _check(res, seen, 5, rtol=8e-3)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("c", (7, 1000, 65536))
def test_k_at_least_classes(lib, c):
    x = _logits(np.random.default_rng(c), 3, c)
    k = c if c < 1000 else c + 3
    if c > 1000:
        k = 1 << 17  # clamped to c
    res = topk(_to(lib, x), k)
    assert res.k == c and res.clamped == (k > c)
    _check(res, x, k)


@pytest.mark.parametrize("lib", LIBS)
def test_axis_0_and_3d(lib):
    rng = np.random.default_rng(9)
    x = _logits(rng, 40000, 3)
    _check(topk(_to(lib, x), 5, axis=0), x, 5, axis=0)
    x3 = (rng.standard_normal((2, 3, 50000)) * 3).astype(np.float32)
    res = topk(_to(lib, x3), 5)
    assert tuple(res.indices.shape) == (2, 3, 5)
    _check(res, x3, 5)
    if lib != "jax":
        assert kernels._top_blocked(_to(lib, x3), 5, -1, 1.0) is not None
    x3m = np.ascontiguousarray(np.moveaxis(x3, -1, 1))  # classes in the middle
    _check(topk(_to(lib, x3m), 5, axis=1), x3m, 5, axis=1)


@pytest.mark.parametrize("lib", ("numpy", "torch"))
def test_non_contiguous_rows(lib):
    rng = np.random.default_rng(13)
    xt = np.ascontiguousarray(_logits(rng, 70000, 6)).T  # a transposed view: rows are strided
    xi = xt if lib == "numpy" else torch.from_numpy(np.ascontiguousarray(xt.T)).T
    assert kernels._top_blocked(xi, 5, -1, 1.0) is None  # would need a copy: plain path
    _check(topk(xi, 5), xt, 5)
    sliced = _to(lib, _logits(rng, 4, 80000))[:, 1000:71000]  # 2-D, unit stride: still fast
    assert kernels._top_blocked(sliced, 5, -1, 1.0) is not None
    _check(topk(sliced, 5), _np(sliced), 5)


def test_select_top_blocked_matches_full_sort():
    rng = np.random.default_rng(17)
    for c in (12345, 65536):
        x = _logits(rng, 5, c)
        for xi in (x, torch.from_numpy(x)):
            vals, idx = kernels.select_top(xi, 9, -1)
            np.testing.assert_array_equal(_np(vals), -np.sort(-x, axis=-1)[:, :9])
            np.testing.assert_array_equal(np.take_along_axis(x, _np(idx), -1), _np(vals))


def test_autograd_tensor_keeps_gradients():
    x = torch.from_numpy(_logits(np.random.default_rng(19), 3, 65536)).requires_grad_()
    res = topk(x, 5)
    res.log_probabilities.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    _check(topk(x.detach(), 5), x.detach().numpy(), 5)


def test_float64_and_integer_inputs_keep_their_compute_dtype():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((3, 65536)) * 3
    res = topk(x, 5)
    assert res.probabilities.dtype == np.float64
    _check(res, x, 5, rtol=1e-12)
    xi = rng.integers(-50, 50, (3, 65536))
    res = topk(xi, 5)
    assert res.probabilities.dtype == np.float64 and res.logits.dtype == xi.dtype
    _check(res, xi, 5, rtol=1e-12)


@pytest.mark.parametrize("lib", ("numpy", "torch"))
@pytest.mark.parametrize("c", (1000, 12345, 30000))
def test_small_chunks_split_rows_and_columns(lib, c, monkeypatch):
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 16384)  # many row and column chunks
    x = _logits(np.random.default_rng(c + 1), 80, c)
    x[7, : c // 3] = -np.inf
    _check(topk(_to(lib, x), 5, temperature=0.7), x, 5, temperature=0.7)


@pytest.mark.parametrize("lib", ("numpy", "torch"))
def test_short_rows_take_the_fused_sum_but_plain_selection(lib):
    x = _to(lib, _logits(np.random.default_rng(29), 4, 1000))
    assert kernels._top_blocked(x, 5, -1, 1.0) is not None  # exp-sum without a max pass
    assert kernels._top_blocked(x, 5, -1, None) is None  # selection alone: the plain selector


@pytest.mark.parametrize("lib", ("numpy", "torch"))
@pytest.mark.parametrize("top", (-39.0, -41.0, 59.0, 61.0, -300.0))
def test_edges_of_the_unshifted_sum(lib, top):
    # the row max decides between the unshifted sum and the shifted fallback; both must agree
    rng = np.random.default_rng(31)
    x = _logits(rng, 3, 65536) + np.float32(top)
    x[1] -= 70  # most terms far below the max: underflow in the unshifted sum
    x[1, 5] = top
    _check(topk(_to(lib, x), 5), x, 5)
    _check(topk(_to(lib, x[:, :1000]), 5), x[:, :1000], 5)
