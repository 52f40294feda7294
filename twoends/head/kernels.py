"""Top-k selection and a one-pass logsumexp, per array library.

The array API has no top-k, so partial selection is the one thing done per
library, einops-style: one small function per library, found by the array's
type. Long rows (many classes) go through a blocked selection that also sums
the exponentials on the same pass (see the comment above ``_block_length``).
"""

from __future__ import annotations

import numpy as np
from array_api_compat import is_jax_array, is_numpy_array, is_torch_array

from .activations import logsumexp
from .arrays import array_api

__all__ = ["select_top"]


def select_top(x, k: int, axis: int = -1):
    """The k largest values along ``axis`` and their indices, sorted descending.

    Partial selection: O(n) per row plus a sort of only k items. ``k`` must
    already be clamped to the axis length. Long rows go through a blocked
    selection (below) that reads the data once and selects among few candidates.
    """
    fast = _top_blocked(x, k, axis, None)
    if fast is not None:
        return fast[0], fast[1]
    return _select_plain(x, k, axis)


def _select_plain(x, k, axis):
    for matches, fn in _SELECTORS:
        if matches(x):
            return fn(x, k, axis)
    return _select_generic(x, k, axis)


_ARGMAX_K = 8  # up to this k, k argmax passes beat one argpartition (~2 ns per entry here)


def _select_numpy(x, k, axis):
    n = x.shape[axis]
    if k <= _ARGMAX_K and k < n and x.dtype.kind == "f" and x.ndim > 0:
        picked = _select_numpy_by_argmax(x, k, axis)
        if picked is not None:
            return picked
    if k < n:
        # argpartition on the negated values puts the k largest first; only those k get sorted
        part = np.argpartition(-x, k - 1, axis=axis)
        idx = np.take(part, np.arange(k), axis=axis)
    else:
        idx = np.broadcast_to(np.arange(n).reshape([-1 if a == axis % x.ndim else 1 for a in range(x.ndim)]), x.shape)
    vals = np.take_along_axis(x, idx, axis=axis)
    order = np.argsort(-vals, axis=axis, kind="stable")
    return np.take_along_axis(vals, order, axis=axis), np.take_along_axis(idx, order, axis=axis)


def _select_numpy_by_argmax(x, k, axis):
    """k rounds of argmax on a scratch copy, each winner knocked out with -inf.

    Rows where a winner is not finite (NaN: argmax ranks it first, argpartition
    last; -inf: knocked-out entries would be picked again) return None, and
    the caller uses argpartition, so both paths give the same answers.
    """
    n = x.shape[axis]
    last = axis % x.ndim == x.ndim - 1
    moved = x if last else np.moveaxis(x, axis, -1)
    scratch = np.array(moved.reshape(-1, n), copy=True)  # [rows, n]; fancy indexing on 2-D is cheap
    rows = np.arange(scratch.shape[0])
    idx = np.empty((scratch.shape[0], k), np.intp)
    vals = np.empty((scratch.shape[0], k), x.dtype)
    for j in range(k):
        i = np.argmax(scratch, axis=1)
        idx[:, j] = i
        vals[:, j] = scratch[rows, i]
        scratch[rows, i] = -np.inf
    if not np.isfinite(vals).all():
        return None
    vals, idx = vals.reshape(moved.shape[:-1] + (k,)), idx.reshape(moved.shape[:-1] + (k,))
    return (vals, idx) if last else (np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis))


def _select_torch(x, k, axis):
    vals, idx = x.topk(k, dim=axis, largest=True, sorted=True)
    return vals, idx


def _select_jax(x, k, axis):
    import jax  # the user handed us a JAX array, so JAX is already imported

    moved = jax.numpy.moveaxis(x, axis, -1)
    vals, idx = jax.lax.top_k(moved, k)
    return jax.numpy.moveaxis(vals, -1, axis), jax.numpy.moveaxis(idx, -1, axis)


def _select_generic(x, k, axis):
    # any other array-API library: a full stable sort is the portable fallback
    xp = array_api(x)
    idx = xp.argsort(x, axis=axis, descending=True, stable=True)
    idx = xp.take(idx, xp.arange(k), axis=axis)
    return xp.take_along_axis(x, idx, axis=axis), idx


_SELECTORS = ((is_numpy_array, _select_numpy), (is_torch_array, _select_torch), (is_jax_array, _select_jax))


# Large class counts: blocked selection and a one-pass sum of exponentials.
#
# Split each row of C classes into G = C // L blocks of L (plus a tail of C % L).
# The k largest entries lie in the k blocks with the largest maxima (plus the
# tail): an entry outside them is beaten by k block maxima, k distinct entries.
# So one streaming pass takes the G block maxima, a small selection picks k
# blocks, and the exact top-k is chosen among k * L + C % L candidates instead
# of C; a partial selection over all C costs far more than reading them.
#
# For topk's probabilities the same pass also accumulates sum(exp(x / T)) chunk
# by chunk through one small buffer that stays in cache (no [B, C] temporary).
# The max is not subtracted first: with the row max m satisfying -40 <= m / T <= 60,
# no term overflows (C * e^60 is far below the float32 limit) and the sum is at
# least e^-40, so terms lost to underflow (< 1.2e-38 each, even with denormals
# flushed) change it by under C * 3e-21 relative: as accurate as the shifted
# form. Rows outside that range (logits of +-1e4, -inf or NaN rows) are redone
# with the shifted logsumexp. Only NumPy arrays and CPU torch tensors without
# autograd take this path; anything else uses the per-library selection above.
# Short rows (too few classes for blocks) still get the one-pass sum.

_CHUNK_ELEMENTS = 1 << 17  # 512 KiB of float32 per chunk: stays in L2 between the passes over it
_SAFE_RANGE = (-40.0, 60.0)


def _block_length(n_classes: int, k: int, lengths=(1024, 512, 256)):
    """Longest block length (of ``lengths``) that keeps the candidates under 1/4 of the row."""
    for length in lengths:
        if 4 * k * length <= n_classes:
            return length
    return None


class _NumpyKernels:
    dtypes = (np.float16, np.float32, np.float64)
    block_lengths = (1024, 512, 256)  # NumPy's max over short rows is slow: prefer long blocks

    @classmethod
    def rows(cls, x):
        """x as a [N, C] view when that needs no copy, else None."""
        if not is_numpy_array(x) or x.dtype not in cls.dtypes or x.ndim == 0:
            return None
        if x.ndim == 2 and x.strides[1] == x.itemsize:
            return x
        return x.reshape(-1, x.shape[-1]) if x.flags.c_contiguous else None

    work = staticmethod(lambda x: np.float64 if x.dtype == np.float64 else np.float32)
    empty = staticmethod(lambda shape, dtype: np.empty(shape, dtype))
    zeros64 = staticmethod(lambda n: np.zeros(n, np.float64))
    # fmax ignores NaN, as argpartition does (it ranks NaN last): both orders agree
    block_max = staticmethod(lambda blocks, out: np.fmax.reduce(blocks, axis=-1, out=out))
    top_blocks = staticmethod(lambda gm, k: np.argpartition(-gm, k - 1, axis=1)[:, :k])
    select = staticmethod(lambda cand, k: _select_numpy(cand, k, 1))
    concat = staticmethod(lambda parts: np.concatenate(parts, axis=1))
    # einsum's SIMD sum is ~3x faster than .sum(1) here; chunks are summed again in float64
    row_sum = staticmethod(lambda v: np.einsum("ij->i", v))
    arange = staticmethod(lambda n: np.arange(n))

    @staticmethod
    def exp_into(chunk, t, out):
        if t == 1.0:
            np.exp(chunk, out=out, dtype=out.dtype)
        else:
            np.divide(chunk, t, out=out, dtype=out.dtype)
            np.exp(out, out=out)


class _TorchKernels:
    block_lengths = (256,)  # amax is fast at this length; torch.topk on the candidates is not

    @staticmethod
    def rows(x):
        if not is_torch_array(x) or x.device.type != "cpu" or x.requires_grad or x.ndim == 0:
            return None
        import torch  # the user handed us a tensor, so torch is already imported

        if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64) or x.layout != torch.strided:
            return None
        if x.ndim == 2 and x.stride(1) == 1:
            return x
        return x.reshape(-1, x.shape[-1]) if x.is_contiguous() else None

    @staticmethod
    def work(x):
        import torch

        return torch.float64 if x.dtype == torch.float64 else torch.float32

    @staticmethod
    def empty(shape, dtype):
        import torch

        return torch.empty(shape, dtype=dtype)

    @staticmethod
    def zeros64(n):
        import torch

        return torch.zeros(n, dtype=torch.float64)

    @staticmethod
    def arange(n):
        import torch

        return torch.arange(n)

    # amax propagates NaN and topk ranks NaN first: both orders agree
    @staticmethod
    def block_max(blocks, out):
        import torch

        torch.amax(blocks, -1, out=out)

    top_blocks = staticmethod(lambda gm, k: gm.topk(k, 1, largest=True, sorted=False).indices)
    select = staticmethod(lambda cand, k: _select_torch(cand, k, 1))
    row_sum = staticmethod(lambda v: v.sum(1))

    @staticmethod
    def concat(parts):
        import torch

        return torch.cat(parts, 1)

    @staticmethod
    def exp_into(chunk, t, out):
        import torch

        if chunk.dtype != out.dtype:
            out.copy_(chunk)  # 16-bit logits: upcast first, exp and sum in float32
            if t != 1.0:
                out.div_(t)
            out.exp_()
        elif t == 1.0:
            torch.exp(chunk, out=out)
        else:
            torch.div(chunk, t, out=out)
            out.exp_()


def _kernels_and_rows(x, axis):
    if x.ndim == 0 or axis % x.ndim != x.ndim - 1:
        return None, None
    for kernels in (_NumpyKernels, _TorchKernels):
        rows = kernels.rows(x)
        if rows is not None:
            return kernels, rows
    return None, None


def _top_blocked(x, k: int, axis: int, temperature):
    """Top-k (values, indices) and, if ``temperature`` is given, the logsumexp of x / T.

    None when no fast path applies (non-last class axis, other libraries,
    devices or layouts, or short rows when no logsumexp is asked for); callers
    then use the plain path. Rows too short for blocks still get the plain
    selection plus the unshifted sum of exponentials, which skips a max pass.
    Shapes: values/indices [..., k], logsumexp [..., 1] in the compute dtype.
    """
    try:
        kernels, x2 = _kernels_and_rows(x, axis)
    except (AttributeError, TypeError):
        return None
    if kernels is None:
        return None
    n, c = x2.shape
    length = _block_length(c, k, kernels.block_lengths)
    if n == 0 or (length is None and temperature is None):
        return None
    gm = None if length is None else kernels.empty((n, c // length), x2.dtype)
    if temperature is None and gm is not None:  # (no temperature means a block length, so gm is there)
        kernels.block_max(x2[:, : gm.shape[1] * length].reshape(n, gm.shape[1], length), gm)
        acc = None
    else:
        acc = _scan(kernels, x2, length, temperature, gm)
    if length is None:
        vals, idx = kernels.select(x2, k)
    else:
        vals, idx = _select_in_blocks(kernels, x2, k, length, gm)
    batch = tuple(x.shape[:-1])
    vals, idx = vals.reshape(batch + (k,)), idx.reshape(batch + (k,))
    if acc is None:
        return vals, idx, None
    lse = _finish_logsumexp(kernels, x2, vals.reshape(n, k)[:, 0], acc, temperature)
    return vals, idx, lse.reshape(batch + (1,))


def _scan(kernels, x2, length, t, gm):
    """sum(exp(x / t)) per row (float64) in one pass, filling the block maxima ``gm`` on the way.

    With ``length`` None there are no blocks: only the sum.
    """
    n, c = x2.shape
    step = length or 1
    full = c // step * step
    width = min(full, max(step, (_CHUNK_ELEMENTS // n) // step * step))
    height = max(1, min(n, _CHUNK_ELEMENTS // width))
    work = kernels.work(x2)
    buf = kernels.empty((height, width), work)
    acc = kernels.zeros64(n)
    for r0 in range(0, n, height):
        r1 = min(n, r0 + height)
        part = acc[r0:r1]
        for a in range(0, full, width):
            b = min(full, a + width)
            chunk, out = x2[r0:r1, a:b], buf[: r1 - r0, : b - a]
            if length is not None:
                kernels.block_max(
                    chunk.reshape(r1 - r0, (b - a) // length, length), gm[r0:r1, a // length : b // length]
                )
            kernels.exp_into(chunk, t, out)
            part += kernels.row_sum(out)
    if full < c:
        tail = kernels.empty((n, c - full), work)
        kernels.exp_into(x2[:, full:], t, tail)
        acc += kernels.row_sum(tail)
    return acc


def _select_in_blocks(kernels, x2, k, length, gm):
    n, c = x2.shape
    g = gm.shape[1]
    full = g * length
    blocks = kernels.top_blocks(gm, k)  # [n, k] block numbers, any order
    picked = x2[:, :full].reshape(n, g, length)[kernels.arange(n)[:, None], blocks]
    cand = picked.reshape(n, k * length)
    if full < c:
        cand = kernels.concat([cand, x2[:, full:]])
    vals, local = kernels.select(cand, k)
    xp = array_api(local)
    in_block = local < k * length
    slot = xp.where(in_block, local // length, xp.zeros_like(local))  # tail entries: any valid slot
    block = xp.take_along_axis(blocks, slot, axis=1)
    idx = xp.where(in_block, block * length + local % length, full + local - k * length)
    return vals, idx


def _finish_logsumexp(kernels, x2, row_max, acc, t):
    xp = array_api(x2)
    work = kernels.work(x2)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf: an all -inf row
        lse = xp.astype(xp.log(acc), work)
    m = xp.astype(row_max, xp.float64) / t
    bad = ~((m >= _SAFE_RANGE[0]) & (m <= _SAFE_RANGE[1]))  # also catches -inf, +inf and NaN maxima
    if bool(xp.any(bad)):
        lse[bad] = logsumexp(xp.astype(x2[bad], work), axis=-1, temperature=t)
    return lse
