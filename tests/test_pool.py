"""Pooling (max, average, adaptive, unpooling), forward and backward, against the
float64 reference in ref_pool.py, central differences, and PyTorch when installed.

Max pooling is a selection, so its values and indices are compared exactly;
sums (average pooling, overlapping backward scatters) with assert_close against
the same reference evaluated on |x| (the sum of |terms|).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from reference import RTOL, as_layout, assert_close, check_vjp
from ref_pool import (
    adaptive_avg_pool2d_backward_ref,
    adaptive_avg_pool2d_ref,
    adaptive_bins,
    adaptive_max_pool2d_ref,
    avg_pool2d_backward_ref,
    avg_pool2d_blocks_backward_ref,
    avg_pool2d_blocks_ref,
    avg_pool2d_ref,
    max_pool2d_backward_ref,
    max_pool2d_blocks_ref,
    max_pool2d_ref,
    max_unpool2d_backward_ref,
    max_unpool2d_ref,
    max_unpool2d_size,
    pool_out_size,
    pool_pair,
    scatter_plane_ref,
)

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]

MAX_KEYS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
AVG_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


# ---------------------------------------------------------------------------
# helpers


def distinct(shape, rng, dtype=np.float64):
    """Values without ties, 0.5 apart (exact in float32): argmaxes are unique and stable under ±1e-6."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.5).reshape(shape).astype(dtype)


def normal(shape, rng, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def cid(case):
    shape, opts = case[0], case[1]
    s = "x".join(map(str, shape))
    o = "-".join(f"{k[:4]}{v}" for k, v in opts.items()).replace(" ", "")
    return f"{s}-{o}" if o else s


def pick(opts, keys):
    return {k: v for k, v in opts.items() if k in keys}


def max_ref(x, opts):
    return max_pool2d_ref(x, **pick(opts, MAX_KEYS))


def avg_ref(x, opts):
    return avg_pool2d_ref(x, **pick(opts, AVG_KEYS))


def empty_window(H, W, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Whether some max-pooling window has no tap inside the input (a row or a column of windows misses it)."""
    kh, kw = pool_pair(kernel_size)
    sh, sw = (kh, kw) if stride in (None, ()) else pool_pair(stride)
    ph, pw = pool_pair(padding)
    dh, dw = pool_pair(dilation)
    for L, k, s, p, d in ((H, kh, sh, ph, dh), (W, kw, sw, pw, dw)):
        for o in range(pool_out_size(L, k, s, p, d, ceil_mode)):
            if not any(0 <= o * s - p + i * d < L for i in range(k)):
                return True
    return False


def check_fresh(a, dtype, shape):
    assert isinstance(a, np.ndarray) and a.dtype == np.dtype(dtype) and a.flags.c_contiguous, (type(a), a.dtype)
    assert a.shape == tuple(shape), (a.shape, shape)


# ---------------------------------------------------------------------------
# the reference itself: hand-worked values, the reshape variant, central differences


def test_reference_output_size_rule():
    assert pool_out_size(5, 2, 2) == 2
    assert pool_out_size(5, 2, 2, ceil_mode=True) == 3
    assert pool_out_size(6, 3, 2, 1) == 3
    assert pool_out_size(6, 3, 2, 1, ceil_mode=True) == 4  # the 4th window starts at 5, inside the input
    # ceil would give 4 windows; the 4th would start at 3*2-1 = 5 = L + p: only padding. PyTorch drops it.
    assert pool_out_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert pool_out_size(4, 2, 3, 1, ceil_mode=True) == 2  # 2nd window starts at 2, inside
    assert pool_out_size(7, 3, 2, 0, 2) == 2  # dilated span 5
    assert pool_out_size(6, 7, 7, ceil_mode=True) == 1  # span larger than the input, still one window
    assert pool_out_size(6, 7, 7) == 0


def test_reference_max_pool_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, ind = max_pool2d_ref(x, 2)
    assert np.array_equal(y[0, 0], [[5, 7], [13, 15]]) and np.array_equal(ind[0, 0], [[5, 7], [13, 15]])
    y, ind = max_pool2d_ref(-x, 3, stride=2, padding=1)
    # windows start at -1 and 1; the largest of -x is its first in-bounds tap
    assert np.array_equal(ind[0, 0], [[0, 1], [4, 5]]) and np.array_equal(y[0, 0], [[0, -1], [-4, -5]])
    t = np.zeros((1, 1, 3, 3))
    t[0, 0, 1, 2] = t[0, 0, 2, 0] = 7.0  # a tie: the first in scan order (row-major) wins
    assert max_pool2d_ref(t, 3)[1].item() == 5
    t[0, 0, 0, 1], t[0, 0, 2, 2] = np.nan, np.nan  # NaN wins, the last one scanned
    y, ind = max_pool2d_ref(t, 3)
    assert np.isnan(y.item()) and ind.item() == 8
    # a window with no in-bounds tap (rows -1 and 2 of a 2-row input): -inf, index of its first
    # tap after whole dilation steps, (2, 2) -> 2*2 + 2, outside the plane
    y, ind = max_pool2d_ref(np.ones((1, 1, 2, 2)), 2, padding=1, dilation=3)
    assert y.item() == -np.inf and ind.item() == 6


def test_reference_avg_pool_by_hand():
    x = np.ones((1, 1, 3, 3))
    y = avg_pool2d_ref(x, 3, stride=1, padding=1)
    assert np.allclose(y[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])
    assert np.allclose(avg_pool2d_ref(x, 3, 1, 1, count_include_pad=False), 1.0)
    assert np.allclose(avg_pool2d_ref(x, 3, 1, 1, divisor_override=2)[0, 0], [[2, 3, 2], [3, 4.5, 3], [2, 3, 2]])
    # ceil_mode: the last window of 5 with k=2, s=2 starts at 4 and sticks out past the (unpadded) input;
    # it is clipped to the padded input [0, 5) for count_include_pad, so it divides by 1
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    assert np.allclose(avg_pool2d_ref(x, (1, 2), ceil_mode=True)[0, 0, 0], [0.5, 2.5, 4.0])
    # with padding 1 the last window [3, 5) is full; a window starting at -1 counts the padding column
    assert np.allclose(avg_pool2d_ref(x, (1, 2), padding=(0, 1), ceil_mode=True)[0, 0, 0], [0.0, 1.5, 3.5])
    assert np.allclose(avg_pool2d_ref(x, (1, 2), padding=(0, 1), ceil_mode=True, count_include_pad=False)[0, 0, 0],
                       [0.0, 1.5, 3.5])


def test_reference_adaptive_bins():
    assert adaptive_bins(6, 3) == [(0, 2), (2, 4), (4, 6)]
    assert adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]  # overlapping bins
    assert adaptive_bins(3, 5) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]  # output larger than input
    assert adaptive_bins(7, 1) == [(0, 7)]
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert np.allclose(adaptive_avg_pool2d_ref(x, 1), x.mean())
    assert np.array_equal(adaptive_avg_pool2d_ref(x, (3, 4)), x)
    assert np.array_equal(adaptive_max_pool2d_ref(x, (None, 2))[0][0, 0], [[1, 3], [5, 7], [9, 11]])


def test_reference_unpool_by_hand():
    x = np.array([[[[5.0, 7.0]]]])
    ind = np.array([[[[4, 1]]]])
    assert max_unpool2d_size(1, 2, 2) == (2, 4)
    y = max_unpool2d_ref(x, ind, 2)
    assert np.array_equal(y[0, 0], [[0, 7, 0, 0], [5, 0, 0, 0]])
    assert np.array_equal(max_unpool2d_backward_ref(np.arange(8.0).reshape(1, 1, 2, 4), ind)[0, 0], [[4, 1]])


@pytest.mark.parametrize("k", [(2, 2), (3, 1), (1, 4), (2, 4)], ids=str)
def test_reference_loops_match_reshape_variant(k, rng):
    x = rng.standard_normal((2, 3, 6, 8))
    y, ind = max_pool2d_ref(x, k)
    yb, ib = max_pool2d_blocks_ref(x, k)
    assert np.array_equal(y, yb) and np.array_equal(ind, ib)
    assert np.allclose(avg_pool2d_ref(x, k), avg_pool2d_blocks_ref(x, k), rtol=1e-14, atol=1e-15)
    dy = rng.standard_normal(yb.shape)
    assert np.allclose(avg_pool2d_backward_ref(dy, x.shape, k), avg_pool2d_blocks_backward_ref(dy, k), atol=1e-15)
    assert np.array_equal(max_pool2d_backward_ref(dy, ind, x.shape), scatter_plane_ref(dy, ib, x.shape))
    if k == (2, 2):  # adaptive bins that divide evenly are plain blocks
        assert np.allclose(adaptive_avg_pool2d_ref(x, (3, 4)), avg_pool2d_blocks_ref(x, k), atol=1e-15)
        assert np.array_equal(adaptive_max_pool2d_ref(x, (3, 4))[1], ib)


REF_GRAD_CASES = [
    ((1, 2, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 1, 5, 5), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), ceil_mode=True)),
    ((1, 2, 7, 5), dict(kernel_size=2, stride=3, ceil_mode=True, count_include_pad=False)),
    ((2, 4, 4), dict(kernel_size=3, stride=1, padding=1, divisor_override=4)),
]


@pytest.mark.parametrize("case", REF_GRAD_CASES, ids=cid)
def test_reference_gradients_match_central_differences(case, rng):
    shape, opts = case
    x = normal(shape, rng)
    dy = normal(avg_ref(x, opts).shape, rng)
    ao = pick(opts, AVG_KEYS)
    check_vjp(lambda a: avg_pool2d_ref(a, **ao), [x], dy, [avg_pool2d_backward_ref(dy, x.shape, **ao)])
    xd = distinct(shape, rng)
    y, ind = max_ref(xd, opts)
    dy = normal(y.shape, rng)
    check_vjp(lambda a: max_ref(a, opts)[0], [xd], dy, [max_pool2d_backward_ref(dy, ind, x.shape)])
    for size in ((2, 3), (4, 7)):
        dy = normal(adaptive_avg_pool2d_ref(x, size).shape, rng)
        check_vjp(lambda a: adaptive_avg_pool2d_ref(a, size), [x], dy, [adaptive_avg_pool2d_backward_ref(dy, x.shape)])


# ---------------------------------------------------------------------------
# max_pool2d: the option space, forward (exact) and backward

B = (2, 3, 9, 10)

MAX_CASES = [
    # kernels: odd, even, rectangular, 1x1
    (B, dict(kernel_size=1)),
    (B, dict(kernel_size=2)),
    (B, dict(kernel_size=3)),
    (B, dict(kernel_size=(2, 3))),
    (B, dict(kernel_size=(3, 1))),
    (B, dict(kernel_size=(1, 4))),
    (B, dict(kernel_size=[4, 2])),
    # stride: None / () default to the kernel, int, pair, larger than the kernel (gaps)
    (B, dict(kernel_size=3, stride=None)),
    (B, dict(kernel_size=2, stride=())),
    (B, dict(kernel_size=3, stride=1)),
    (B, dict(kernel_size=3, stride=2)),
    (B, dict(kernel_size=2, stride=(1, 2))),
    (B, dict(kernel_size=(3, 2), stride=(2, 3))),
    (B, dict(kernel_size=2, stride=3)),
    (B, dict(kernel_size=5, stride=1)),
    # padding up to kernel/2
    (B, dict(kernel_size=2, padding=1)),
    (B, dict(kernel_size=3, stride=2, padding=1)),
    (B, dict(kernel_size=4, stride=1, padding=2)),
    (B, dict(kernel_size=(5, 3), stride=(2, 1), padding=(2, 1))),
    (B, dict(kernel_size=(3, 4), padding=(0, 2))),
    (B, dict(kernel_size=(1, 3), stride=1, padding=(0, 1))),
    # dilation
    (B, dict(kernel_size=2, stride=1, dilation=2)),
    (B, dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (B, dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(3, 2))),
    (B, dict(kernel_size=3, stride=1, padding=1, dilation=(1, 4))),
    # ceil_mode where it adds a window, and where PyTorch's rule takes it away again
    (B, dict(kernel_size=2, ceil_mode=True)),
    (B, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (B, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 5, 7), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 5, 6), dict(kernel_size=(2, 3), stride=(2, 3), padding=(1, 1), ceil_mode=True)),
    ((2, 2, 8, 7), dict(kernel_size=3, stride=3, padding=1, dilation=2, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=4, stride=4, padding=1, ceil_mode=True)),
    # sizes at the edges
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((1, 1, 1, 1), dict(kernel_size=2, padding=1)),
    ((2, 3, 1, 1), dict(kernel_size=(1, 2), padding=(0, 1), ceil_mode=True)),
    ((2, 2, 5, 7), dict(kernel_size=(5, 7))),  # kernel == input
    ((1, 2, 4, 4), dict(kernel_size=6, padding=1)),  # kernel == padded input
    ((1, 2, 4, 5), dict(kernel_size=(6, 7), stride=1, padding=(1, 1))),
    ((1, 2, 3, 3), dict(kernel_size=4, padding=2)),  # kernel larger than the input, not the padded one
    ((1, 2, 6, 6), dict(kernel_size=7, stride=7, ceil_mode=True)),  # ceil_mode: one clipped window
    ((2, 2, 1, 9), dict(kernel_size=(1, 3), stride=(1, 2))),
    ((2, 2, 9, 1), dict(kernel_size=(3, 1), padding=(1, 0))),
    ((1, 1, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    ((0, 3, 5, 5), dict(kernel_size=2)),  # empty batch
    ((5, 2, 4, 6), dict(kernel_size=2, stride=1)),
    ((3, 9, 10), dict(kernel_size=3, stride=2, padding=1)),  # unbatched
    ((1, 7, 7), dict(kernel_size=2, ceil_mode=True)),
    # windows with no tap inside the input: -inf, an index past the plane, no gradient
    ((1, 2, 2, 2), dict(kernel_size=2, padding=1, dilation=3)),
    ((1, 2, 2, 5), dict(kernel_size=2, stride=1, padding=1, dilation=(3, 1))),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", MAX_CASES, ids=cid)
def test_max_pool2d_forward(case, dtype, rng):
    shape, opts = case
    x = distinct(shape, rng, dtype)
    ry, rind = max_ref(x, opts)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    check_fresh(y, dtype, ry.shape)
    check_fresh(ind, np.int64, ry.shape)
    assert np.array_equal(y, ry), f"max err {np.abs(y - ry).max() if y.size else 0}"
    assert np.array_equal(ind, rind)
    y2 = F.max_pool2d(x, **opts)  # values only: a separate kernel path
    check_fresh(y2, dtype, ry.shape)
    assert np.array_equal(y2, ry)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", MAX_CASES, ids=cid)
def test_max_pool2d_backward(case, dtype, rng):
    shape, opts = case
    x = distinct(shape, rng, dtype)
    ry, rind = max_ref(x, opts)
    dy = normal(ry.shape, rng, dtype)
    dx = F.max_pool2d_backward(dy, rind, x.shape)
    check_fresh(dx, dtype, x.shape)
    want = max_pool2d_backward_ref(dy, rind, x.shape)
    assert_close(dx, want, max_pool2d_backward_ref(np.abs(dy), rind, x.shape), err_msg="max_pool2d dx")
    # the gradient reaches exactly the argmax of each window with an in-bounds tap, nothing else
    hit = np.zeros(x.shape, bool) if x.ndim == 4 else np.zeros((1,) + x.shape, bool)
    r4 = rind.reshape((-1,) + rind.shape[-3:])
    H, W = x.shape[-2:]
    for n, c, oh, ow in np.ndindex(r4.shape):
        k = r4[n, c, oh, ow]
        if np.isfinite(ry.reshape(r4.shape)[n, c, oh, ow]):
            assert 0 <= k < H * W
            hit[n, c, k // W, k % W] = True
    assert not np.any(dx.reshape(hit.shape)[~hit])


# central differences in float64 through fastconv's own forward (no ties: values 0.5 apart)
MAX_GRADCHECK = [
    ((2, 2, 5, 6), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 6, 5), dict(kernel_size=(2, 3), stride=1, padding=(1, 0), dilation=(2, 1))),
    ((1, 3, 5, 5), dict(kernel_size=2, ceil_mode=True)),
    ((2, 5, 4), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1))),
]


@pytest.mark.parametrize("case", MAX_GRADCHECK, ids=cid)
def test_max_pool2d_backward_central_differences(case, rng):
    shape, opts = case
    x = distinct(shape, rng)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    dy = normal(y.shape, rng)
    check_vjp(lambda a: F.max_pool2d(a, **opts), [x], dy, [F.max_pool2d_backward(dy, ind, x.shape)])


def test_max_pool2d_gradient_routes_to_argmax_by_hand():
    x = np.array([[[[1.0, 9.0, 2.0], [3.0, 4.0, 8.0], [7.0, 5.0, 6.0]]]])
    y, ind = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert np.array_equal(y[0, 0], [[9, 9], [7, 8]]) and np.array_equal(ind[0, 0], [[1, 1], [6, 5]])
    dx = F.max_pool2d_backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]), ind, x.shape)
    assert np.array_equal(dx[0, 0], [[0, 11, 0], [0, 0, 1000], [100, 0, 0]])


# ---------------------------------------------------------------------------
# avg_pool2d

AVG_CASES = [
    (B, dict(kernel_size=1)),
    (B, dict(kernel_size=2)),
    (B, dict(kernel_size=3)),
    (B, dict(kernel_size=(2, 3))),
    (B, dict(kernel_size=(3, 1), stride=(1, 2))),
    (B, dict(kernel_size=3, stride=None)),
    (B, dict(kernel_size=3, stride=1)),
    (B, dict(kernel_size=2, stride=3)),
    (B, dict(kernel_size=5, stride=2)),
    # padding, with and without counting it
    (B, dict(kernel_size=3, stride=1, padding=1)),
    (B, dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    (B, dict(kernel_size=2, padding=1)),
    (B, dict(kernel_size=2, padding=1, count_include_pad=False)),
    (B, dict(kernel_size=(5, 4), stride=(2, 3), padding=(2, 2))),
    (B, dict(kernel_size=(5, 4), stride=(2, 3), padding=(2, 2), count_include_pad=False)),
    # ceil_mode: windows sticking out past the padded input
    (B, dict(kernel_size=2, ceil_mode=True)),
    (B, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (B, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (B, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((1, 2, 5, 7), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=4, stride=4, padding=1, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=4, stride=4, padding=2, ceil_mode=True, count_include_pad=False)),
    # divisor_override (overrides count_include_pad either way)
    (B, dict(kernel_size=3, divisor_override=2)),
    (B, dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    (B, dict(kernel_size=3, stride=2, padding=1, divisor_override=5, count_include_pad=False)),
    (B, dict(kernel_size=2, stride=1, ceil_mode=True, divisor_override=1)),
    # sizes at the edges
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((1, 1, 1, 1), dict(kernel_size=2, padding=1)),
    ((1, 1, 1, 1), dict(kernel_size=3, padding=1, count_include_pad=False)),
    ((2, 2, 5, 7), dict(kernel_size=(5, 7))),
    ((1, 2, 4, 4), dict(kernel_size=6, padding=1)),
    ((1, 2, 3, 3), dict(kernel_size=4, padding=2, count_include_pad=False)),
    ((1, 2, 6, 6), dict(kernel_size=7, stride=7, ceil_mode=True)),
    ((2, 2, 1, 9), dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))),
    ((0, 3, 5, 5), dict(kernel_size=2)),
    ((3, 9, 10), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 7, 7), dict(kernel_size=2, ceil_mode=True, count_include_pad=False)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", AVG_CASES, ids=cid)
def test_avg_pool2d_forward(case, dtype, rng):
    shape, opts = case
    x = normal(shape, rng, dtype)
    ry = avg_ref(x, opts)
    y = F.avg_pool2d(x, **opts)
    check_fresh(y, dtype, ry.shape)
    assert_close(y, ry, avg_ref(np.abs(x), opts), err_msg="avg_pool2d")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", AVG_CASES, ids=cid)
def test_avg_pool2d_backward(case, dtype, rng):
    shape, opts = case
    x = normal(shape, rng, dtype)
    ao = pick(opts, AVG_KEYS)
    dy = normal(avg_ref(x, opts).shape, rng, dtype)
    dx = F.avg_pool2d_backward(dy, x.shape, **ao)
    check_fresh(dx, dtype, x.shape)
    want = avg_pool2d_backward_ref(dy, x.shape, **ao)
    assert_close(dx, want, avg_pool2d_backward_ref(np.abs(dy), x.shape, **ao), err_msg="avg_pool2d dx")


@pytest.mark.parametrize("case", AVG_CASES[9:26:2] + [AVG_CASES[-2]], ids=cid)
def test_avg_pool2d_backward_central_differences(case, rng):
    shape, opts = case
    x = normal(shape[:-3] + (2,) + shape[-2:], rng)  # fewer planes: central differences are per element
    dy = normal(avg_ref(x, opts).shape, rng)
    ao = pick(opts, AVG_KEYS)
    check_vjp(lambda a: F.avg_pool2d(a, **ao), [x], dy, [F.avg_pool2d_backward(dy, x.shape, **ao)])


def test_avg_pool2d_small_integers_are_exact(rng):
    # every partial sum of small integers is exact in float32 and the divisors are powers of two
    x = rng.integers(-8, 9, (2, 3, 8, 8)).astype(np.float32)
    for opts in (dict(kernel_size=2), dict(kernel_size=4, stride=2, padding=2, divisor_override=16),
                 dict(kernel_size=2, stride=1, padding=1)):  # every window inside the padded input: /4
        y = F.avg_pool2d(x, **opts)
        assert np.array_equal(y, avg_ref(x, opts))
    assert np.array_equal(F.avg_pool2d(x, 2), avg_pool2d_blocks_ref(x, 2))


# ---------------------------------------------------------------------------
# adaptive pooling

ADAPTIVE_CASES = [
    ((2, 3, 8, 8), (4, 4)),  # divides
    ((2, 3, 8, 6), (2, 3)),
    ((2, 3, 7, 5), (3, 2)),  # does not divide: overlapping bins
    ((2, 3, 5, 7), (4, 3)),
    ((1, 2, 13, 11), (4, 6)),
    ((2, 2, 3, 4), (5, 7)),  # output larger than the input
    ((1, 2, 2, 2), (5, 5)),
    ((1, 2, 1, 1), (3, 2)),
    ((2, 3, 5, 5), (5, 5)),  # identity
    ((2, 3, 6, 7), (1, 1)),  # global pooling
    ((2, 3, 6, 7), 1),
    ((2, 3, 6, 7), 3),  # int
    ((2, 3, 6, 7), (None, 3)),  # None keeps that input size
    ((2, 3, 6, 7), (4, None)),
    ((2, 3, 6, 7), [2, 5]),
    ((1, 1, 1, 1), 1),
    ((1, 1, 9, 1), (4, 1)),
    ((0, 3, 6, 7), (2, 3)),
    ((3, 6, 7), (4, 5)),  # unbatched
    ((3, 5, 4), (None, 2)),
]


def acid(case):
    return "x".join(map(str, case[0])) + "-to-" + str(case[1]).replace(" ", "")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=acid)
def test_adaptive_avg_pool2d(case, dtype, rng):
    shape, size = case
    x = normal(shape, rng, dtype)
    ry = adaptive_avg_pool2d_ref(x, size)
    y = F.adaptive_avg_pool2d(x, size)
    check_fresh(y, dtype, ry.shape)
    assert_close(y, ry, adaptive_avg_pool2d_ref(np.abs(x), size), err_msg="adaptive_avg_pool2d")
    dy = normal(ry.shape, rng, dtype)
    dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
    check_fresh(dx, dtype, x.shape)
    assert_close(dx, adaptive_avg_pool2d_backward_ref(dy, x.shape),
                 adaptive_avg_pool2d_backward_ref(np.abs(dy), x.shape), err_msg="adaptive_avg_pool2d dx")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=acid)
def test_adaptive_max_pool2d(case, dtype, rng):
    shape, size = case
    x = distinct(shape, rng, dtype)
    ry, rind = adaptive_max_pool2d_ref(x, size)
    y, ind = F.adaptive_max_pool2d(x, size, return_indices=True)
    check_fresh(y, dtype, ry.shape)
    check_fresh(ind, np.int64, ry.shape)
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    assert np.array_equal(F.adaptive_max_pool2d(x, size), ry)
    dy = normal(ry.shape, rng, dtype)
    dx = F.adaptive_max_pool2d_backward(dy, ind, x.shape)
    check_fresh(dx, dtype, x.shape)
    assert_close(dx, max_pool2d_backward_ref(dy, rind, x.shape),
                 max_pool2d_backward_ref(np.abs(dy), rind, x.shape), err_msg="adaptive_max_pool2d dx")


@pytest.mark.parametrize("case", [c for c in ADAPTIVE_CASES if 0 not in c[0]][2:9], ids=acid)
def test_adaptive_backward_central_differences(case, rng):
    shape, size = case
    x = normal(shape, rng)
    dy = normal(adaptive_avg_pool2d_ref(x, size).shape, rng)
    check_vjp(lambda a: F.adaptive_avg_pool2d(a, size), [x], dy, [F.adaptive_avg_pool2d_backward(dy, x.shape)])
    xd = distinct(shape, rng)
    _, ind = F.adaptive_max_pool2d(xd, size, return_indices=True)
    check_vjp(lambda a: F.adaptive_max_pool2d(a, size), [xd], dy, [F.adaptive_max_pool2d_backward(dy, ind, x.shape)])


# ---------------------------------------------------------------------------
# max_unpool2d

UNPOOL_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 9, 11), dict(kernel_size=3, stride=2, padding=1)),  # the default size is the input size
    ((2, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1, output_size=(9, 10))),
    ((2, 3, 9, 10), dict(kernel_size=2, stride=1)),  # overlapping windows: a pixel can be picked twice
    ((1, 2, 7, 7), dict(kernel_size=2, output_size=(7, 7))),  # odd input: indices need the full size
    ((1, 2, 7, 6), dict(kernel_size=2, output_size=(1, 2, 7, 6))),  # (N, C, H, W) form
    ((1, 2, 9, 9), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), output_size=(9, 9))),
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((0, 2, 4, 4), dict(kernel_size=2)),
    ((3, 8, 6), dict(kernel_size=2, stride=(2, 1))),  # unbatched
    ((3, 7, 7), dict(kernel_size=3, stride=2, output_size=(7, 7))),
    ((3, 7, 7), dict(kernel_size=3, stride=2, output_size=[3, 8, 8])),  # (C, H, W) form for an unbatched input
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", UNPOOL_CASES, ids=cid)
def test_max_unpool2d(case, dtype, rng):
    shape, opts = case
    po = {k: v for k, v in opts.items() if k != "output_size"}
    x = distinct(shape, rng, dtype)
    y, ind = max_ref(x, po)
    y = y.astype(dtype)
    u = F.max_unpool2d(y, ind, **opts)
    ru = max_unpool2d_ref(y, ind, **opts)
    check_fresh(u, dtype, ru.shape)
    assert np.array_equal(u, ru)
    if "output_size" in opts:
        assert u.shape[-2:] == tuple(opts["output_size"])[-2:]
    else:
        assert u.shape[-2:] == max_unpool2d_size(y.shape[-2], y.shape[-1], **po)
    du = normal(ru.shape, rng, dtype)
    dyu = F.max_unpool2d_backward(du, ind)
    check_fresh(dyu, dtype, y.shape)
    assert np.array_equal(dyu, max_unpool2d_backward_ref(du, ind))
    if 0 not in shape and u.shape == x.shape:
        # pool then unpool keeps each window's max in place and zeros the rest
        mask = u != 0
        assert np.array_equal(u[mask], x[mask])


def test_max_unpool2d_backward_central_differences(rng):
    # indices without repeats (non-overlapping windows). With a repeated index the forward keeps the
    # last write, while the backward (as PyTorch's) gathers dy for every input that named it.
    x = distinct((2, 2, 6, 7), rng)
    y, ind = F.max_pool2d(x, (3, 2), stride=(3, 2), padding=(1, 1), return_indices=True)
    u_shape = F.max_unpool2d(y, ind, (3, 2), (3, 2), (1, 1), output_size=(6, 7)).shape
    du = normal(u_shape, rng)
    check_vjp(lambda a: F.max_unpool2d(a, ind, (3, 2), (3, 2), (1, 1), output_size=(6, 7)), [y], du,
              [F.max_unpool2d_backward(du, ind)])


# ---------------------------------------------------------------------------
# NaN, Inf and ties (PyTorch: a NaN wins, the last one scanned; ties keep the first in scan order)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "opts",
    [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, stride=1, dilation=2), dict(kernel_size=3, stride=1)],
    ids=["k3s2p1", "k2s1d2", "k3s1"],
)
def test_max_pool2d_nan_and_inf(opts, dtype, rng):
    x = distinct((2, 2, 8, 9), rng, dtype)
    x[0, 0, 3, 4] = np.nan
    x[0, 0, 4, 5] = np.nan  # two NaN in some windows: the last scanned is the index
    x[0, 1, 2, 2] = np.inf
    x[1, 0, 5, 5] = np.nan
    x[1, 0, 5, 6] = np.inf  # NaN beats +inf whichever comes first
    x[1, 1] = -np.inf  # a plane of -inf: -inf, index of the first in-bounds tap
    x[1, 1, 7, 8] = np.nan
    ry, rind = max_ref(x, opts)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    assert np.array_equal(y, ry, equal_nan=True) and np.array_equal(ind, rind)
    assert np.array_equal(F.max_pool2d(x, **opts), ry, equal_nan=True)
    assert np.isnan(y).any() and np.isposinf(y).any() and np.isneginf(y).any()
    # the gradient of a NaN output goes to the NaN that produced it
    dy = np.ones(y.shape, dtype)
    dx = F.max_pool2d_backward(dy, ind, x.shape)
    assert_close(dx, max_pool2d_backward_ref(dy, rind, x.shape))
    assert dx[0, 0, 3, 4] + dx[0, 0, 4, 5] > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "opts",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=(3, 2), stride=2),
     dict(kernel_size=(2, 3), stride=2, padding=(1, 0)), dict(kernel_size=3, stride=2, ceil_mode=True)],
    ids=["k2s2", "k3s2", "k3x2s2", "k2x3s2-padrows", "k3s2-ceil"],
)
@pytest.mark.parametrize("W", [16, 17, 19, 35, 55])
def test_max_pool2d_stride2_rows_values_only(opts, W, dtype, isa, rng):
    # the values-only stride-2 kernels for 2 and 3 columns (AVX2: rows reduced on
    # whole vectors, blocks of 8 outputs, the last block overlapping): NaN, Inf and
    # ties anywhere, including the first and last columns and overlapping blocks
    x = normal((2, 3, 7, W), rng, dtype).round(1)  # rounding makes ties
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 3, W - 1] = np.nan
    x[0, 1, 2, W // 2] = np.inf
    x[1, 0, 4, W - 2] = np.nan
    x[1, 0, 4, W - 3] = np.inf
    x[1, 1] = -np.inf
    x[1, 2, :, 9] = np.nan  # a NaN column: several blocks take the NaN path
    ry, _ = max_ref(x, opts)
    y = F.max_pool2d(x, **opts)
    assert np.array_equal(y, ry, equal_nan=True)
    assert np.array_equal(np.isnan(y), np.isnan(ry))
    y2, _ = F.max_pool2d(x, **opts, return_indices=True)
    assert np.array_equal(y2, ry, equal_nan=True)


_SHORT_ROW_OPTS = {
    "k2s2": dict(kernel_size=2),
    "k3s2": dict(kernel_size=3, stride=2),
    "k3x2s2": dict(kernel_size=(3, 2), stride=2),
    "k2x3s2-padrows": dict(kernel_size=(2, 3), stride=2, padding=(1, 0)),
    "k3s2-ceil": dict(kernel_size=3, stride=2, ceil_mode=True),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "name,W",
    [(n, W) for n, o in _SHORT_ROW_OPTS.items() for W in (2, 3, 4, 7, 10, 12, 13, 15, 16)
     if W >= pool_pair(o["kernel_size"])[1]],  # (a window wider than the row: an error, tested elsewhere)
)
def test_max_pool2d_stride2_short_rows_values_only(name, W, dtype, isa, rng):
    # rows of 1-7 outputs (LeNet's 10x10 -> 5x5; AVX2: one block per row, loads
    # masked to the row, the store to its outputs) and of 8: NaN, Inf, signed-zero
    # ties (the first in scan order is kept), first and last columns; planes next
    # to each other in memory
    opts = _SHORT_ROW_OPTS[name]
    x = normal((3, 4, 6, W), rng, dtype).round(0)  # rounding makes ties, -0.0 among them
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 3, W - 1] = np.nan
    x[0, 1, 2, W // 2] = np.inf
    x[1, 0, 4, 0] = np.nan
    x[1, 0, 5, 0] = np.inf
    x[1, 1] = -np.inf
    x[2, 0] = 0.0
    x[2, 0, :, ::2] = -0.0  # ties of -0.0 and 0.0: the first scanned is kept
    x[2, 1, :, -1] = np.nan  # the last column, past the last window of odd rows
    ry, _ = max_ref(x, opts)
    y = F.max_pool2d(x, **opts)
    assert np.array_equal(y, ry, equal_nan=True)
    assert np.array_equal(np.signbit(y), np.signbit(ry))
    assert np.array_equal(np.isnan(y), np.isnan(ry))


@pytest.mark.parametrize(
    "opts",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=(3, 2), stride=2, padding=(1, 0)),
     dict(kernel_size=(2, 3), stride=2, padding=(1, 0), count_include_pad=False),
     dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=2, divisor_override=3),
     # column padding: the divisors vary along the row (per-lane counts)
     dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
     dict(kernel_size=(2, 4), stride=2, padding=(1, 2), ceil_mode=True, count_include_pad=False),
     dict(kernel_size=(2, 4), stride=2, padding=(0, 2), ceil_mode=True),
     dict(kernel_size=3, stride=2, padding=1, divisor_override=7)],
    ids=["k2s2", "k3s2", "k3x2s2-padrows", "k2x3s2-exclude-pad", "k3s2-ceil", "divisor", "k3s2p1", "k3s2p1-exclude-pad",
         "k2x4s2p12-ceil-exclude-pad", "k2x4s2p02-ceil", "k3s2p1-divisor"],
)
@pytest.mark.parametrize("W", [16, 19, 55])
def test_avg_pool2d_stride2_same_bits_on_every_isa(opts, W, rng):
    # the AVX2 stride-2 kernels add the taps in the portable order: every path gives the same bits
    from fastconv import _core

    x = normal((2, 3, 7, W), rng, np.float32)
    x[0, 0, 2, 3] = np.nan
    x[1, 1, 4, W - 1] = np.inf
    before = _core.active_isa()
    outs = {}
    try:
        for isa_name in _core.available_isas():
            _core.set_isa(isa_name)
            outs[isa_name] = F.avg_pool2d(x, **opts)
    finally:
        _core.set_isa(before)
    ref = outs.pop("scalar")
    for isa_name, y in outs.items():
        assert np.array_equal(y.view(np.uint32), ref.view(np.uint32)), isa_name
    r64 = avg_ref(x.astype(np.float64), opts)
    assert np.array_equal(np.isnan(ref), np.isnan(r64)) and np.allclose(ref, r64, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_max_pool2d_nan_by_hand():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan], [np.inf, 0.0, -np.inf, 2.0]]]], np.float32)
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and ind[0, 0, 0, 0] == 1
    assert np.isnan(y[0, 0, 0, 1]) and ind[0, 0, 0, 1] == 3
    y, ind = F.max_pool2d(x, (2, 4), return_indices=True)
    assert np.isnan(y.item()) and ind.item() == 3  # the last NaN
    y, ind = F.adaptive_max_pool2d(x, 1, return_indices=True)
    assert np.isnan(y.item()) and ind.item() == 3


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_adaptive_max_pool2d_nan_and_inf(dtype, rng):
    x = distinct((2, 2, 7, 6), rng, dtype)
    x[0, 0, 1, 1] = x[0, 0, 2, 3] = np.nan
    x[0, 1, 3, 3] = np.inf
    x[1, 0] = -np.inf
    for size in ((3, 4), (5, 5), (10, 3)):
        ry, rind = adaptive_max_pool2d_ref(x, size)
        y, ind = F.adaptive_max_pool2d(x, size, return_indices=True)
        assert np.array_equal(y, ry, equal_nan=True) and np.array_equal(ind, rind)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_avg_pooling_propagates_nan_and_inf(dtype, rng):
    x = normal((1, 2, 6, 6), rng, dtype)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 4] = np.inf
    for y, ry, scale in (
        (F.avg_pool2d(x, 3, 1, 1), avg_pool2d_ref(x, 3, 1, 1), avg_pool2d_ref(np.abs(x), 3, 1, 1)),
        (F.adaptive_avg_pool2d(x, (4, 3)), adaptive_avg_pool2d_ref(x, (4, 3)), adaptive_avg_pool2d_ref(np.abs(x), (4, 3))),
    ):
        assert np.array_equal(np.isnan(y), np.isnan(ry)) and np.array_equal(np.isposinf(y), np.isposinf(ry))
        assert np.isnan(y).any() and np.isposinf(y).any()
        fin = np.isfinite(ry)
        assert fin.any()
        assert_close(y[fin], ry[fin], scale[fin])


@pytest.mark.parametrize(
    "opts",
    [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1), padding=(1, 1)),
     dict(kernel_size=2, ceil_mode=True)],
    ids=["k3s2p1", "dilated", "ceil"],
)
def test_max_pool2d_ties_keep_the_first(opts, rng):
    x = rng.integers(0, 3, (2, 3, 7, 8)).astype(np.float32)  # many ties
    ry, rind = max_ref(x, opts)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    z = np.zeros((1, 1, 5, 5), np.float32)  # all equal: the first in-bounds tap of every window
    _, ind = F.max_pool2d(z, 3, stride=2, padding=1, return_indices=True)
    assert np.array_equal(ind[0, 0], [[0, 1, 3], [5, 6, 8], [15, 16, 18]])
    _, ind = F.adaptive_max_pool2d(z, (2, 3), return_indices=True)
    assert np.array_equal(ind[0, 0], [[0, 1, 3], [10, 11, 13]])


# ---------------------------------------------------------------------------
# memory layouts, unbatched inputs, dtype policy, fresh results

LAYOUT_KINDS = ["fortran", "transposed", "channels_last", "reversed", "sliced", "unaligned", "bigendian"]


@pytest.mark.parametrize("kind", LAYOUT_KINDS)
def test_non_contiguous_inputs(kind, rng):
    x = distinct((2, 3, 7, 8), rng)
    xv = as_layout(x, kind)
    opts = dict(kernel_size=3, stride=2, padding=1)
    ry, rind = max_ref(x, opts)
    y, ind = F.max_pool2d(xv, **opts, return_indices=True)
    assert y.dtype == np.float64 and y.flags.c_contiguous
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    dy = normal(ry.shape, rng)
    dx = F.max_pool2d_backward(as_layout(dy, kind), as_layout(rind, kind), x.shape)
    assert_close(dx, max_pool2d_backward_ref(dy, rind, x.shape), max_pool2d_backward_ref(np.abs(dy), rind, x.shape))

    ao = dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)
    assert_close(F.avg_pool2d(xv, **ao), avg_pool2d_ref(x, **ao), avg_pool2d_ref(np.abs(x), **ao))
    assert_close(F.avg_pool2d_backward(as_layout(dy, kind), x.shape, **ao), avg_pool2d_backward_ref(dy, x.shape, **ao),
                 avg_pool2d_backward_ref(np.abs(dy), x.shape, **ao))
    assert_close(F.adaptive_avg_pool2d(xv, (3, 5)), adaptive_avg_pool2d_ref(x, (3, 5)),
                 adaptive_avg_pool2d_ref(np.abs(x), (3, 5)))
    da = normal((2, 3, 3, 5), rng)
    assert_close(F.adaptive_avg_pool2d_backward(as_layout(da, kind), x.shape),
                 adaptive_avg_pool2d_backward_ref(da, x.shape), adaptive_avg_pool2d_backward_ref(np.abs(da), x.shape))
    ay, aind = F.adaptive_max_pool2d(xv, (3, 5), return_indices=True)
    ry3, rind3 = adaptive_max_pool2d_ref(x, (3, 5))
    assert np.array_equal(ay, ry3) and np.array_equal(aind, rind3)

    u = F.max_unpool2d(as_layout(ry, kind), as_layout(rind, kind), 3, 2, 1, output_size=(7, 8))
    assert np.array_equal(u, max_unpool2d_ref(ry, rind, 3, 2, 1, output_size=(7, 8)))
    du = normal(u.shape, rng)
    assert np.array_equal(F.max_unpool2d_backward(as_layout(du, kind), as_layout(rind, kind)),
                          max_unpool2d_backward_ref(du, rind))


def test_views_permuted_negative_strides_and_slices(rng):
    base = distinct((4, 9, 12, 3), rng, np.float32)
    for xv in (base.transpose(0, 3, 1, 2),  # permuted (NHWC memory)
               base[::-1, ::-1, ::-2].transpose(0, 3, 2, 1),  # negative strides on several axes
               base[1:3, 2:8, 1:11, ::2].transpose(3, 0, 2, 1)[0]):  # sliced, then unbatched
        x = np.array(xv)
        ry, rind = max_ref(x, dict(kernel_size=2, stride=1, padding=1))
        y, ind = F.max_pool2d(xv, 2, 1, 1, return_indices=True)
        assert np.array_equal(y, ry) and np.array_equal(ind, rind)
        assert_close(F.avg_pool2d(xv, 3, 2, 1, True), avg_pool2d_ref(x, 3, 2, 1, True),
                     avg_pool2d_ref(np.abs(x), 3, 2, 1, True))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_unbatched_matches_batch_of_one(dtype, rng):
    x = distinct((3, 7, 6), rng, dtype)
    x4 = x[None]
    mo = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    y, ind = F.max_pool2d(x, **mo, return_indices=True)
    ry, rind = max_ref(x4, mo)
    assert y.shape == ry.shape[1:] and np.array_equal(y, ry[0]) and np.array_equal(ind, rind[0])
    dy = normal(y.shape, rng, dtype)
    assert_close(F.max_pool2d_backward(dy, ind, x.shape), max_pool2d_backward_ref(dy[None], rind, x4.shape)[0],
                 max_pool2d_backward_ref(np.abs(dy[None]), rind, x4.shape)[0])
    ao = dict(kernel_size=2, stride=1, padding=1, count_include_pad=False)
    y = F.avg_pool2d(x, **ao)
    assert y.shape == avg_ref(x4, ao).shape[1:]
    assert_close(y, avg_ref(x4, ao)[0], avg_ref(np.abs(x4), ao)[0])
    dy = normal(y.shape, rng, dtype)
    assert_close(F.avg_pool2d_backward(dy, x.shape, **ao), avg_pool2d_backward_ref(dy[None], x4.shape, **ao)[0],
                 avg_pool2d_backward_ref(np.abs(dy[None]), x4.shape, **ao)[0])
    y = F.adaptive_avg_pool2d(x, (4, None))
    assert y.shape == (3, 4, 6)
    assert_close(y, adaptive_avg_pool2d_ref(x4, (4, 6))[0], adaptive_avg_pool2d_ref(np.abs(x4), (4, 6))[0])
    assert_close(F.adaptive_avg_pool2d_backward(y, x.shape), adaptive_avg_pool2d_backward_ref(y[None], x4.shape)[0],
                 adaptive_avg_pool2d_backward_ref(np.abs(y[None]), x4.shape)[0])
    y, ind = F.adaptive_max_pool2d(x, 4, return_indices=True)
    ry, rind = adaptive_max_pool2d_ref(x4, 4)
    assert np.array_equal(y, ry[0]) and np.array_equal(ind, rind[0])
    assert_close(F.adaptive_max_pool2d_backward(y, ind, x.shape), max_pool2d_backward_ref(y[None], rind, x4.shape)[0],
                 max_pool2d_backward_ref(np.abs(y[None]), rind, x4.shape)[0])


@pytest.mark.parametrize("in_dtype", [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16],
                         ids=lambda d: np.dtype(d).name)
def test_integer_bool_half_inputs_compute_in_float32(in_dtype, rng):
    x = rng.integers(0, 2 if in_dtype is np.bool_ else 50, (2, 2, 6, 6)).astype(in_dtype)
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    ry, rind = max_ref(x, dict(kernel_size=2))
    assert y.dtype == np.float32 and np.array_equal(y, ry) and np.array_equal(ind, rind)
    y = F.avg_pool2d(x, 2, divisor_override=4)  # small integers / 4: exact in float32
    assert y.dtype == np.float32 and np.array_equal(y, avg_pool2d_ref(x, 2, divisor_override=4))
    assert F.adaptive_avg_pool2d(x, 3).dtype == np.float32
    assert F.adaptive_max_pool2d(x, 3).dtype == np.float32
    dx = F.max_pool2d_backward(np.ones((2, 2, 3, 3), in_dtype), ind.astype(np.int32), x.shape)
    assert dx.dtype == np.float32 and np.array_equal(dx, max_pool2d_backward_ref(np.ones((2, 2, 3, 3)), rind, x.shape))


def test_indices_of_other_integer_dtypes_are_accepted(rng):
    x = distinct((1, 2, 6, 6), rng)
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    for dt in (np.int32, np.uint16, np.int16):
        i2 = ind.astype(dt)
        assert np.array_equal(F.max_pool2d_backward(y, i2, x.shape), max_pool2d_backward_ref(y, ind, x.shape))
        assert np.array_equal(F.max_unpool2d(y, i2, 2), max_unpool2d_ref(y, ind, 2))
        u = F.max_unpool2d(y, ind, 2)
        assert np.array_equal(F.max_unpool2d_backward(u, i2), max_unpool2d_backward_ref(u, ind))
    assert F.max_unpool2d(y.astype(np.float32), ind, 2).dtype == np.float32


def test_results_are_fresh_and_inputs_untouched(rng):
    x = distinct((2, 3, 5, 5), rng)
    keep = x.copy()
    outs = [F.max_pool2d(x, 1), F.avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, (5, 5)),
            F.adaptive_max_pool2d(x, (None, None))]
    y, ind = F.max_pool2d(x, 1, return_indices=True)
    outs += [y, ind, F.max_pool2d_backward(x, ind, x.shape), F.avg_pool2d_backward(x, x.shape, 1),
             F.adaptive_avg_pool2d_backward(x, x.shape), F.max_unpool2d(x, ind, 1), F.max_unpool2d_backward(x, ind)]
    for o in outs:
        assert not np.shares_memory(o, x) and o.flags.c_contiguous and o.flags.writeable
    assert np.array_equal(x, keep)
    for o in outs[:4]:
        assert np.array_equal(o, x)  # 1x1 windows and identity-sized adaptive bins are the identity


def test_readonly_and_broadcast_inputs(rng):
    x = distinct((1, 2, 6, 6), rng)
    xb = np.broadcast_to(x, (3, 2, 6, 6))  # stride 0 along the batch, read-only
    y, ind = F.max_pool2d(xb, 3, 2, 1, return_indices=True)
    ry, rind = max_ref(x, dict(kernel_size=3, stride=2, padding=1))
    assert np.array_equal(y, np.broadcast_to(ry, y.shape)) and np.array_equal(ind, np.broadcast_to(rind, ind.shape))
    dyb = np.broadcast_to(np.ones(ry.shape), y.shape)
    assert np.array_equal(F.max_pool2d_backward(dyb, ind, xb.shape)[2], max_pool2d_backward_ref(dyb[:1], rind, x.shape)[0])
    assert_close(F.avg_pool2d(xb, 2)[1], avg_pool2d_ref(x, 2)[0], avg_pool2d_ref(np.abs(x), 2)[0])


def test_python_lists_are_accepted():
    x = [[[[1, 5], [3, 2]], [[0, 0], [4, 4]]]]
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    assert y.dtype == np.float32 and np.array_equal(y.ravel(), [5, 4]) and np.array_equal(ind.ravel(), [1, 2])
    assert np.array_equal(F.avg_pool2d(x, 2).ravel(), [2.75, 2.0])
    assert np.array_equal(F.max_pool2d_backward([[[[1.0]], [[2.0]]]], [[[[1]], [[2]]]], (1, 2, 2, 2)).ravel(),
                          [0, 1, 0, 0, 0, 0, 2, 0])


# ---------------------------------------------------------------------------
# out=


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("unbatched", [False, True], ids=["4d", "3d"])
def test_out_argument(dtype, unbatched, rng):
    x = distinct((2, 3, 7, 8), rng, dtype)
    if unbatched:
        x = x[1]
    mo = dict(kernel_size=3, stride=2, padding=1)
    ry, rind = max_ref(x, mo)
    for ret in (False, True):
        out = np.full(ry.shape, np.nan, dtype)
        res = F.max_pool2d(x, **mo, return_indices=ret, out=out)
        y = res[0] if ret else res
        assert np.shares_memory(y, out) and np.array_equal(out, ry)
        if ret:
            assert np.array_equal(res[1], rind)
    ao = dict(kernel_size=2, stride=1, padding=1, ceil_mode=True, count_include_pad=False)
    ra = avg_ref(x, ao)
    out = np.full(ra.shape, np.nan, dtype)
    y = F.avg_pool2d(x, **ao, out=out)
    assert np.shares_memory(y, out)
    assert_close(out, ra, avg_ref(np.abs(x), ao))
    rd = adaptive_avg_pool2d_ref(x, (3, 5))
    out = np.full(rd.shape, np.nan, dtype)
    y = F.adaptive_avg_pool2d(x, (3, 5), out=out)
    assert np.shares_memory(y, out)
    assert_close(out, rd, adaptive_avg_pool2d_ref(np.abs(x), (3, 5)))


@pytest.mark.parametrize(
    "fn",
    [lambda x, out: F.max_pool2d(x, 2, out=out), lambda x, out: F.avg_pool2d(x, 2, out=out),
     lambda x, out: F.adaptive_avg_pool2d(x, 3, out=out)],
    ids=["max", "avg", "adaptive_avg"],
)
def test_out_errors(fn):
    x = np.zeros((2, 3, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(2, 3, 3, 4\), expected \(2, 3, 3, 3\)"):
        fn(x, np.empty((2, 3, 3, 4), np.float32))
    with pytest.raises(TypeError, match=r"out has dtype float64, expected float32"):
        fn(x, np.empty((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"C-contiguous"):
        fn(x, np.empty((2, 3, 3, 6), np.float32)[..., ::2])
    with pytest.raises(ValueError, match=r"writeable"):
        fn(x, np.broadcast_to(np.float32(0), (2, 3, 3, 3)))
    with pytest.raises(TypeError, match=r"out must be a numpy.ndarray"):
        fn(x, [[0.0]])
    buf = np.zeros(2 * 3 * 6 * 6, np.float32)
    with pytest.raises(ValueError, match=r"overlap"):
        fn(buf.reshape(2, 3, 6, 6), buf[: 2 * 3 * 3 * 3].reshape(2, 3, 3, 3))
    # unbatched input: out must be the unbatched shape
    with pytest.raises(ValueError, match=r"out has shape \(1, 3, 3, 3\), expected a 3-D array"):
        fn(x[0], np.empty((1, 3, 3, 3), np.float32))


def test_out_with_tensor_input_is_type_error():
    t = fastconv.tensor(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="out= is for NumPy inputs"):
        F.max_pool2d(t, 2, out=np.empty((1, 1, 2, 2), np.float32))


# ---------------------------------------------------------------------------
# ceil_mode output sizes, and extreme but valid options


@pytest.mark.parametrize(
    "L,k,s,p,d,floor_size,ceil_size",
    [
        (5, 2, 2, 0, 1, 2, 3),
        (6, 2, 2, 0, 1, 3, 3),
        (5, 2, 2, 1, 1, 3, 3),  # ceil would add a window starting in the right padding: dropped
        (7, 3, 2, 1, 1, 4, 4),
        (8, 3, 2, 1, 1, 4, 5),
        (6, 4, 4, 2, 1, 2, 2),  # the last window [2*4-2 = 6, ...) starts right after the input: dropped
        (6, 4, 4, 1, 1, 2, 2),
        (10, 3, 3, 1, 2, 3, 4),
        (6, 7, 7, 0, 1, None, 1),  # floor: an error; ceil: one window bigger than the input
    ],
)
def test_ceil_mode_output_sizes(L, k, s, p, d, floor_size, ceil_size):
    x = np.ones((1, 1, L, 3), np.float32)
    kw = dict(kernel_size=(k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1))
    assert pool_out_size(L, k, s, p, d, True) == ceil_size
    assert F.max_pool2d(x, **kw, ceil_mode=True).shape == (1, 1, ceil_size, 3)
    if d == 1:
        ao = {n: v for n, v in kw.items() if n != "dilation"}
        assert F.avg_pool2d(x, **ao, ceil_mode=True).shape == (1, 1, ceil_size, 3)
    if floor_size is None:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.max_pool2d(x, **kw)
    else:
        assert pool_out_size(L, k, s, p, d) == floor_size
        assert F.max_pool2d(x, **kw).shape == (1, 1, floor_size, 3)


@pytest.mark.parametrize("axis", ["h", "w", "both"])
def test_huge_kernel_and_padding_on_a_tiny_image(axis):
    # kernel 2**31 (the largest allowed) with padding 2**30 on one pixel: a single window whose only
    # in-bounds tap is the pixel. The kernels must visit the taps that touch the input, not all 2**62.
    k, p = 2**31, 2**30
    ks = {"h": (k, 1), "w": (1, k), "both": (k, k)}[axis]
    ps = {"h": (p, 0), "w": (0, p), "both": (p, p)}[axis]
    x = np.full((2, 1, 1, 1), 3.0)
    y, ind = F.max_pool2d(x, ks, padding=ps, return_indices=True)
    assert np.array_equal(y, x) and np.array_equal(ind, np.zeros((2, 1, 1, 1), np.int64))
    assert np.array_equal(F.max_pool2d(x, ks, padding=ps), x)
    assert np.array_equal(F.max_pool2d_backward(np.ones_like(x), ind, x.shape), np.ones_like(x))
    # average: the window clipped to the padded input spans k (p + 1 + p - 1 ... = 2p = k) per padded axis
    div = ks[0] * ks[1]
    assert np.array_equal(F.avg_pool2d(x, ks, padding=ps), x / div)
    assert np.array_equal(F.avg_pool2d(x, ks, padding=ps, count_include_pad=False), x)
    assert np.array_equal(F.avg_pool2d_backward(np.ones_like(x), x.shape, ks, padding=ps), np.ones_like(x) / div)
    # stride 1, ceil_mode: several windows, each covering the whole input along the huge axis
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    y, ind = F.max_pool2d(x, ks, stride=1, padding=ps, ceil_mode=True, return_indices=True)
    want = {"h": x.max(axis=2, keepdims=True), "w": x.max(axis=3, keepdims=True), "both": x.max()}[axis]
    assert y.shape == {"h": (1, 1, 4, 4), "w": (1, 1, 3, 5), "both": (1, 1, 4, 5)}[axis]
    assert np.array_equal(y, np.broadcast_to(want, y.shape)) and np.array_equal(ind, y.astype(np.int64))


def test_huge_stride():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y, ind = F.max_pool2d(x, 2, stride=2**62, return_indices=True)
    assert np.array_equal(y, [[[[4.0]]]]) and ind.item() == 4
    y, ind = F.max_pool2d(x, (1, 2), stride=2**62, padding=(0, 1), ceil_mode=True, return_indices=True)
    ry, rind = max_pool2d_ref(x, (1, 2), 2**62, (0, 1), 1, True)
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    assert np.array_equal(F.avg_pool2d(x, 2, stride=2**62), avg_pool2d_ref(x, 2, 2**62))
    with pytest.raises(MemoryError):
        F.max_unpool2d(np.ones((1, 1, 3, 3)), np.zeros((1, 1, 3, 3), np.int64), 2, stride=2**62)


def test_huge_output_sizes_are_memory_errors():
    x = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(MemoryError):
        F.adaptive_avg_pool2d(x, (2**40, 2**40))
    with pytest.raises(MemoryError):
        F.adaptive_max_pool2d(x, (2**31, 2**31))
    with pytest.raises(MemoryError):
        F.max_pool2d_backward(x, np.zeros((1, 1, 3, 3), np.int64), (1, 1, 2**40, 2**40))
    with pytest.raises(MemoryError):
        F.max_unpool2d(x, np.zeros((1, 1, 3, 3), np.int64), 2, 2**40)


# ---------------------------------------------------------------------------
# threads: each plane is one task; large inputs are split between threads


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_large_inputs_each_thread_count(dtype, num_threads, rng):
    x = rng.standard_normal((8, 16, 96, 96)).astype(dtype)  # enough work to start a second thread
    k = 4
    ry, rind = max_pool2d_blocks_ref(x, k)
    y, ind = F.max_pool2d(x, k, return_indices=True)
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    dy = rng.standard_normal(ry.shape).astype(dtype)
    assert np.array_equal(F.max_pool2d_backward(dy, ind, x.shape), scatter_plane_ref(dy, rind, x.shape))
    rtol = 4 * RTOL[np.dtype(dtype)]
    assert_close(F.avg_pool2d(x, k), avg_pool2d_blocks_ref(x, k), avg_pool2d_blocks_ref(np.abs(x), k), rtol=rtol)
    assert_close(F.avg_pool2d_backward(dy, x.shape, k), avg_pool2d_blocks_backward_ref(dy, k), rtol=rtol,
                 scale=avg_pool2d_blocks_backward_ref(np.abs(dy), k))
    assert_close(F.adaptive_avg_pool2d(x, 24), avg_pool2d_blocks_ref(x, k), avg_pool2d_blocks_ref(np.abs(x), k),
                 rtol=rtol)
    assert_close(F.adaptive_avg_pool2d_backward(dy, x.shape), avg_pool2d_blocks_backward_ref(dy, k), rtol=rtol,
                 scale=avg_pool2d_blocks_backward_ref(np.abs(dy), k))
    ay, aind = F.adaptive_max_pool2d(x, 24, return_indices=True)
    assert np.array_equal(ay, ry) and np.array_equal(aind, rind)
    u = F.max_unpool2d(ry, rind, k)
    assert np.array_equal(u, scatter_plane_ref(ry, rind, x.shape))
    assert np.array_equal(F.max_unpool2d_backward(u, rind), ry)


# ---------------------------------------------------------------------------
# a randomized sweep of the options against the reference (fixed seed)


def _random_max_configs(n, seed):
    r = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        kh, kw = int(r.integers(1, 5)), int(r.integers(1, 5))
        opts = dict(
            kernel_size=(kh, kw),
            stride=None if r.random() < 0.2 else (int(r.integers(1, 4)), int(r.integers(1, 4))),
            padding=(int(r.integers(0, kh // 2 + 1)), int(r.integers(0, kw // 2 + 1))),
            dilation=(int(r.integers(1, 4)), int(r.integers(1, 3))),
            ceil_mode=bool(r.random() < 0.5),
        )
        shape = (int(r.integers(0, 3)), int(r.integers(1, 4)), int(r.integers(1, 11)), int(r.integers(1, 11)))
        if r.random() < 0.15:
            shape = shape[1:]
        s = opts["stride"] or opts["kernel_size"]
        if min(pool_out_size(shape[-2], kh, s[0], opts["padding"][0], opts["dilation"][0], opts["ceil_mode"]),
               pool_out_size(shape[-1], kw, s[1], opts["padding"][1], opts["dilation"][1], opts["ceil_mode"])) >= 1:
            out.append((shape, opts))
    return out


def _avg_of(cfg, r):
    shape, opts = cfg
    o = {k: v for k, v in opts.items() if k != "dilation"}
    o["count_include_pad"] = bool(r.random() < 0.5)
    o["divisor_override"] = None if r.random() < 0.7 else int(r.integers(1, 10))
    return shape, o


RANDOM_MAX = _random_max_configs(30, seed=20240611)
_R = np.random.default_rng(7)
RANDOM_AVG = [
    _avg_of(c, _R) for c in _random_max_configs(40, seed=99)
    if min(pool_out_size(c[0][-2 + i], c[1]["kernel_size"][i], (c[1]["stride"] or c[1]["kernel_size"])[i],
                         c[1]["padding"][i], 1, c[1]["ceil_mode"]) for i in range(2)) >= 1
][:30]


@pytest.mark.parametrize("case", RANDOM_MAX, ids=cid)
def test_random_max_pool2d_configs(case, rng):
    shape, opts = case
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    x = distinct(shape, rng, dtype)
    ry, rind = max_ref(x, opts)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    assert np.array_equal(y, ry) and np.array_equal(ind, rind)
    assert np.array_equal(F.max_pool2d(x, **opts), ry)
    dy = normal(ry.shape, rng, dtype)
    assert_close(F.max_pool2d_backward(dy, ind, x.shape), max_pool2d_backward_ref(dy, rind, x.shape),
                 max_pool2d_backward_ref(np.abs(dy), rind, x.shape))


@pytest.mark.parametrize("case", RANDOM_AVG, ids=cid)
def test_random_avg_pool2d_configs(case, rng):
    shape, opts = case
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    x = normal(shape, rng, dtype)
    ry = avg_ref(x, opts)
    assert_close(F.avg_pool2d(x, **opts), ry, avg_ref(np.abs(x), opts))
    dy = normal(ry.shape, rng, dtype)
    assert_close(F.avg_pool2d_backward(dy, x.shape, **opts), avg_pool2d_backward_ref(dy, x.shape, **opts),
                 avg_pool2d_backward_ref(np.abs(dy), x.shape, **opts))


# ---------------------------------------------------------------------------
# errors (API.md section 6): ValueError / TypeError naming the argument and the shapes

X = np.zeros((2, 3, 6, 6), np.float32)
Y2, IND2 = F.max_pool2d(X, 2, return_indices=True)  # (2, 3, 3, 3)

COMMON_VALUE_ERRORS = [
    ("kernel larger than input", dict(kernel_size=7),
     r"kernel_size \(7, 7\).*spans \(7, 7\), larger than the padded input \(6, 6\).*\(2, 3, 6, 6\)"),
    ("kernel larger than padded input", dict(kernel_size=9, padding=1), r"spans \(9, 9\), larger than the padded input \(8, 8\)"),
    ("kernel larger, ceil_mode", dict(kernel_size=(9, 2), stride=1, padding=(1, 0), ceil_mode=True),
     r"larger than the padded input \(8, 6\)"),
    ("padding more than half the kernel", dict(kernel_size=3, padding=2), r"padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"),
    ("padding more than half, rectangular", dict(kernel_size=(4, 3), padding=(2, 2)), r"padding \(2, 2\).*kernel_size \(4, 3\)"),
    ("padding with a 1x1 kernel", dict(kernel_size=1, padding=1), r"at most half of kernel_size"),
    ("kernel 0", dict(kernel_size=0), r"kernel_size must be positive, got 0"),
    ("kernel negative", dict(kernel_size=(2, -1)), r"kernel_size must be positive, got \(2, -1\)"),
    ("stride 0", dict(kernel_size=2, stride=0), r"stride must be positive, got 0"),
    ("stride negative", dict(kernel_size=2, stride=(1, -2)), r"stride must be positive, got \(1, -2\)"),
    ("padding negative", dict(kernel_size=2, padding=-1), r"padding must be non-negative, got -1"),
    ("kernel triple", dict(kernel_size=(2, 2, 2)), r"kernel_size must be an int or a pair"),
    ("stride triple", dict(kernel_size=2, stride=(1, 1, 1)), r"stride must be an int or a pair"),
    ("input 2-D", dict(input=np.zeros((6, 6)), kernel_size=2), r"3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(6, 6\)"),
    ("input 5-D", dict(input=np.zeros((1, 2, 3, 6, 6)), kernel_size=2), r"got shape \(1, 2, 3, 6, 6\)"),
    ("zero channels", dict(input=np.zeros((2, 0, 6, 6)), kernel_size=2), r"non-zero channels, height and width.*\(2, 0, 6, 6\)"),
    ("zero width", dict(input=np.zeros((2, 3, 6, 0)), kernel_size=1), r"non-zero channels, height and width"),
]

MAX_VALUE_ERRORS = COMMON_VALUE_ERRORS + [
    ("dilated kernel larger than input", dict(kernel_size=3, dilation=3), r"spans \(7, 7\), larger than the padded input \(6, 6\)"),
    ("dilation 0", dict(kernel_size=2, dilation=0), r"dilation must be positive, got 0"),
    ("dilation negative", dict(kernel_size=2, dilation=(1, -1)), r"dilation must be positive"),
]

AVG_VALUE_ERRORS = COMMON_VALUE_ERRORS + [
    ("divisor_override 0", dict(kernel_size=2, divisor_override=0), r"divisor_override must be a positive integer, got 0"),
    ("divisor_override negative", dict(kernel_size=2, divisor_override=-3), r"divisor_override must be a positive integer, got -3"),
]


def _call(fn, kw):
    kw = dict(kw)
    return fn(kw.pop("input", X), **kw)


@pytest.mark.parametrize("kw,match", [c[1:] for c in MAX_VALUE_ERRORS], ids=[c[0] for c in MAX_VALUE_ERRORS])
def test_max_pool2d_value_errors(kw, match):
    with pytest.raises(ValueError, match=r"max_pool2d: .*" + match):
        _call(F.max_pool2d, kw)
    with pytest.raises(ValueError, match=match):
        _call(F.max_pool2d, dict(kw, return_indices=True))


@pytest.mark.parametrize("kw,match", [c[1:] for c in AVG_VALUE_ERRORS], ids=[c[0] for c in AVG_VALUE_ERRORS])
def test_avg_pool2d_value_errors(kw, match):
    with pytest.raises(ValueError, match=r"avg_pool2d: .*" + match):
        _call(F.avg_pool2d, kw)
    kw = dict(kw)
    x = kw.pop("input", X)
    if x.ndim in (3, 4):  # the backward validates the same options on input_shape
        with pytest.raises(ValueError, match=r"avg_pool2d_backward: .*" + match):
            F.avg_pool2d_backward(np.zeros((2, 3, 1, 1), np.float32), x.shape, **kw)


TYPE_ERRORS = [
    ("float kernel", dict(kernel_size=2.0), r"kernel_size must be an int, got float"),
    ("bool kernel", dict(kernel_size=True), r"kernel_size must be an int, got bool"),
    ("string stride", dict(kernel_size=2, stride="2"), r"stride must be an int"),
    ("float padding", dict(kernel_size=2, padding=0.5), r"padding must be an int"),
    ("int ceil_mode", dict(kernel_size=2, ceil_mode=1), r"ceil_mode must be a bool, got 1"),
    ("None ceil_mode", dict(kernel_size=2, ceil_mode=None), r"ceil_mode must be a bool"),
    ("complex input", dict(input=X.astype(np.complex64), kernel_size=2), r"input is complex"),
    ("object input", dict(input=X.astype(object), kernel_size=2), r"input has unsupported dtype object"),
    ("ragged input", dict(input=[[[1.0, 2.0], [3.0]]], kernel_size=1), r"input could not be converted"),
]


@pytest.mark.parametrize("kw,match", [c[1:] for c in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_type_errors(op, kw, match):
    with pytest.raises(TypeError, match=op + r": .*" + match):
        _call(getattr(F, op), kw)


def test_dilation_divisor_and_count_include_pad_type_errors():
    with pytest.raises(TypeError, match=r"max_pool2d: dilation must be an int, got float 1.5"):
        F.max_pool2d(X, 2, dilation=1.5)
    with pytest.raises(TypeError, match=r"avg_pool2d: divisor_override must be an int, got float 2.0"):
        F.avg_pool2d(X, 2, divisor_override=2.0)
    with pytest.raises(TypeError, match=r"avg_pool2d: divisor_override must be an int, got bool"):
        F.avg_pool2d(X, 2, divisor_override=True)
    with pytest.raises(TypeError, match=r"avg_pool2d: count_include_pad must be a bool, got 'no'"):
        F.avg_pool2d(X, 2, count_include_pad="no")
    with pytest.raises(TypeError, match=r"avg_pool2d_backward: count_include_pad must be a bool, got None"):
        F.avg_pool2d_backward(np.zeros((2, 3, 3, 3)), X.shape, 2, count_include_pad=None)
    with pytest.raises(TypeError, match=r"avg_pool2d_backward: ceil_mode must be a bool"):
        F.avg_pool2d_backward(np.zeros((2, 3, 3, 3)), X.shape, 2, ceil_mode=0)


MAX_BACKWARD_ERRORS = [
    ("indices shape", dict(indices=IND2[:, :, :2]), ValueError, r"indices shape \(2, 3, 2, 3\) must equal \(2, 3, 3, 3\)"),
    ("indices float", dict(indices=IND2.astype(np.float64)), TypeError, r"indices must be an integer array, got dtype float64"),
    ("indices bool", dict(indices=IND2 > 0), TypeError, r"indices must be an integer array, got dtype bool"),
    ("input_shape batch", dict(input_shape=(3, 3, 6, 6)), ValueError, r"grad_output has shape \(2, 3, 3, 3\), expected \(3, 3, 3, 3\)"),
    ("input_shape channels", dict(input_shape=(2, 4, 6, 6)), ValueError, r"grad_output has shape \(2, 3, 3, 3\), expected \(2, 4, 3, 3\)"),
    ("input_shape 2 entries", dict(input_shape=(6, 6)), ValueError, r"input_shape must have 3 \(C, H, W\) or 4 \(N, C, H, W\) entries, got \(6, 6\)"),
    ("input_shape 5 entries", dict(input_shape=(1, 2, 3, 6, 6)), ValueError, r"input_shape must have 3 .* entries"),
    ("input_shape 3-D, grad 4-D", dict(input_shape=(3, 6, 6)), ValueError,
     r"grad_output has shape \(2, 3, 3, 3\), expected a 3-D array for input_shape \(3, 6, 6\)"),
    ("grad 3-D, input_shape 4-D", dict(grad_output=Y2[0], indices=IND2[0]), ValueError,
     r"grad_output has shape \(3, 3, 3\), expected a 4-D array for input_shape \(2, 3, 6, 6\)"),
    ("input_shape negative", dict(input_shape=(2, 3, -6, 6)), ValueError, r"negative dimension in input shape \(2, 3, -6, 6\)"),
    ("input_shape None", dict(input_shape=None), TypeError, r"input_shape must be a sequence of 3 .* or 4 .* ints, got None"),
    ("input_shape float", dict(input_shape=(2, 3, 6.5, 6)), TypeError, r"input_shape must be an int, got float 6.5"),
    ("grad complex", dict(grad_output=Y2.astype(np.complex64)), TypeError, r"grad_output is complex"),
    ("grad ragged", dict(grad_output=[[1.0], [1.0, 2.0]]), TypeError, r"grad_output could not be converted"),
]


@pytest.mark.parametrize("kw,exc,match", [c[1:] for c in MAX_BACKWARD_ERRORS], ids=[c[0] for c in MAX_BACKWARD_ERRORS])
@pytest.mark.parametrize("fn", [F.max_pool2d_backward, F.adaptive_max_pool2d_backward], ids=["max", "adaptive_max"])
def test_max_pool2d_backward_errors(fn, kw, exc, match):
    args = dict(grad_output=Y2, indices=IND2, input_shape=X.shape)
    args.update(kw)
    with pytest.raises(exc, match=r"max_pool2d_backward: .*" + match):
        fn(**args)


def test_max_pool2d_backward_never_writes_outside_the_plane():
    # indices a max pooling cannot produce (negative, or past the plane): nothing is written out of
    # bounds; an index past the plane is what PyTorch gives a window with no in-bounds tap, and routes nowhere
    dy = np.ones((1, 2, 2, 2))
    ind = np.array([[[[0, -1], [4, 2**40]], [[-(2**62), 3], [3, 99]]]])
    dx = F.max_pool2d_backward(dy, ind, (1, 2, 2, 2))
    assert np.array_equal(dx, [[[[1, 0], [0, 0]], [[0, 0], [0, 2]]]])


@pytest.mark.parametrize(
    "args,exc,match",
    [
        ((np.zeros((2, 3, 3, 3)), (2, 3, 6, 8)), ValueError, r"grad_output has shape \(2, 3, 3, 3\), expected \(2, 3, 3, 4\)"),
        ((np.zeros((3, 3, 3)), (2, 3, 6, 6)), ValueError, r"grad_output has shape \(3, 3, 3\), expected a 4-D array"),
        ((np.zeros((1, 3, 3, 3)), (3, 6, 6)), ValueError, r"grad_output has shape \(1, 3, 3, 3\), expected a 3-D array"),
        ((np.zeros((2, 3, 3, 3)), (6, 6)), ValueError, r"input_shape must have 3 .* or 4 .* entries"),
        ((np.zeros((2, 3, 3, 3)), 6), TypeError, r"input_shape must be a sequence"),
    ],
    ids=["spatial", "grad 3-D", "grad 4-D for 3-D input", "input_shape 2-D", "input_shape int"],
)
def test_avg_pool2d_backward_shape_errors(args, exc, match):
    with pytest.raises(exc, match=r"avg_pool2d_backward: " + match):
        F.avg_pool2d_backward(*args, kernel_size=2)


ADAPTIVE_ERRORS = [
    ("output_size 0", 0, ValueError, r"output_size must be positive, got 0"),
    ("output_size negative", (2, -1), ValueError, r"output_size must be positive, got \(2, -1\)"),
    ("output_size triple", (2, 2, 2), ValueError, r"output_size must be an int or a pair, got \(2, 2, 2\)"),
    ("output_size single", [3], ValueError, r"output_size must be an int or a pair"),
    ("output_size float", 2.0, TypeError, r"output_size must be an int, got float"),
    ("output_size string", "2", TypeError, r"output_size must be an int"),
]


@pytest.mark.parametrize("size,exc,match", [c[1:] for c in ADAPTIVE_ERRORS], ids=[c[0] for c in ADAPTIVE_ERRORS])
@pytest.mark.parametrize("op", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_adaptive_errors(op, size, exc, match):
    with pytest.raises(exc, match=op + ": " + match):
        getattr(F, op)(X, size)


def test_adaptive_input_errors():
    for op in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
        with pytest.raises(ValueError, match=r"got shape \(6, 6\)"):
            op(np.zeros((6, 6)), 2)
        with pytest.raises(ValueError, match=r"non-zero channels"):
            op(np.zeros((1, 0, 6, 6)), 2)
        with pytest.raises(TypeError, match=r"input is complex"):
            op(X.astype(np.complex128), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d_backward: grad_output has shape \(2, 4, 2, 2\), expected \(2, 3, 2, 2\)"):
        F.adaptive_avg_pool2d_backward(np.zeros((2, 4, 2, 2)), X.shape)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d_backward: grad_output has shape \(3, 2, 2\), expected a 4-D"):
        F.adaptive_avg_pool2d_backward(np.zeros((3, 2, 2)), X.shape)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d_backward: input_shape must have 3"):
        F.adaptive_avg_pool2d_backward(np.zeros((3, 2, 2)), (6, 6))


UNPOOL_ERRORS = [
    ("index past the output", dict(indices=IND2 + 36), ValueError,
     r"found an index outside the output plane of size \(6, 6\) = 36 elements; indices must be in \[0, 36\)"),
    ("negative index", dict(indices=IND2 - 1), ValueError, r"indices must be in \[0, 36\)"),
    ("indices from a larger input", dict(indices=np.full(IND2.shape, 48)), ValueError, r"indices must be in \[0, 36\)"),
    ("indices float", dict(indices=IND2.astype(np.float32)), TypeError, r"indices must be an integer array, got dtype float32"),
    ("indices shape", dict(indices=IND2[:1]), ValueError, r"indices shape \(1, 3, 3, 3\) must equal input shape \(2, 3, 3, 3\)"),
    ("indices 3-D", dict(indices=IND2[0]), ValueError, r"indices shape \(3, 3, 3\) must equal input shape \(2, 3, 3, 3\)"),
    ("output_size too large", dict(output_size=(8, 6)), ValueError, r"invalid output_size \(8, 6\) \(dim 0 must be between 4 and 8, exclusive\)"),
    ("output_size too small", dict(output_size=(6, 4)), ValueError, r"dim 1 must be between 4 and 8"),
    ("output_size length", dict(output_size=(7,)), ValueError, r"output_size must have 2 \(H, W\) or 4 \(N, C, H, W\) entries"),
    ("output_size int", dict(output_size=7), TypeError, r"output_size must be a sequence of 2 .* or 4 .* ints, got 7"),
    ("output_size float", dict(output_size=(6.0, 6)), TypeError, r"output_size must be an int, got float"),
    ("kernel 0", dict(kernel_size=0), ValueError, r"kernel_size must be positive"),
    ("stride 0", dict(stride=0), ValueError, r"stride must be positive"),
    ("padding negative", dict(padding=-1), ValueError, r"padding must be non-negative"),
    ("padding too large", dict(padding=4), ValueError, r"output size \(-2, -2\) must be positive"),
    ("input 2-D", dict(input=Y2[0, 0], indices=IND2[0, 0]), ValueError, r"3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(3, 3\)"),
    ("input complex", dict(input=Y2.astype(np.complex64)), TypeError, r"input is complex"),
]


@pytest.mark.parametrize("kw,exc,match", [c[1:] for c in UNPOOL_ERRORS], ids=[c[0] for c in UNPOOL_ERRORS])
def test_max_unpool2d_errors(kw, exc, match):
    args = dict(input=Y2, indices=IND2, kernel_size=2)
    args.update(kw)
    with pytest.raises(exc, match=r"max_unpool2d: .*" + match):
        F.max_unpool2d(args.pop("input"), args.pop("indices"), **args)


def test_max_unpool2d_indices_of_an_odd_input_need_output_size(rng):
    # 7x7 pooled by 2 gives 3x3; its argmax indices are flat in the 7-wide plane, so the default
    # 6x6 output cannot hold them: a ValueError, not a write past the buffer
    x = distinct((1, 2, 7, 7), rng)
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    assert ind.max() >= 36
    with pytest.raises(ValueError, match=r"indices must be in \[0, 36\)"):
        F.max_unpool2d(y, ind, 2)
    assert np.array_equal(F.max_unpool2d(y, ind, 2, output_size=(7, 7)), max_unpool2d_ref(y, ind, 2, output_size=(7, 7)))


UNPOOL_BACKWARD_ERRORS = [
    ("index past the plane", dict(indices=IND2 + 36), ValueError, r"found an index outside the output plane of size \(6, 6\)"),
    ("negative index", dict(indices=IND2 - 1), ValueError, r"indices must be in \[0, 36\)"),
    ("indices float", dict(indices=IND2.astype(np.float64)), TypeError, r"indices must be an integer array"),
    ("batch mismatch", dict(grad_output=np.zeros((1, 3, 6, 6))), ValueError,
     r"grad_output shape \(1, 3, 6, 6\) does not match indices shape \(2, 3, 3, 3\)"),
    ("channel mismatch", dict(grad_output=np.zeros((2, 2, 6, 6))), ValueError, r"does not match indices shape"),
    ("grad 3-D, indices 4-D", dict(grad_output=np.zeros((3, 6, 6))), ValueError,
     r"grad_output \(3, 6, 6\) and indices \(2, 3, 3, 3\) must both be 3-D \(C, H, W\) or both 4-D"),
    ("grad 4-D, indices 3-D", dict(indices=IND2[0]), ValueError, r"grad_output \(2, 3, 6, 6\) and indices \(3, 3, 3\)"),
    ("grad 2-D", dict(grad_output=np.zeros((6, 6)), indices=IND2[0, 0]), ValueError, r"must both be 3-D"),
    ("grad complex", dict(grad_output=np.zeros((2, 3, 6, 6), np.complex64)), TypeError, r"grad_output is complex"),
]


@pytest.mark.parametrize("kw,exc,match", [c[1:] for c in UNPOOL_BACKWARD_ERRORS], ids=[c[0] for c in UNPOOL_BACKWARD_ERRORS])
def test_max_unpool2d_backward_errors(kw, exc, match):
    args = dict(grad_output=np.zeros((2, 3, 6, 6)), indices=IND2)
    args.update(kw)
    with pytest.raises(exc, match=r"max_unpool2d_backward: .*" + match):
        F.max_unpool2d_backward(**args)


def test_numpy_integer_options_are_accepted():
    k, s, p = np.int64(3), (np.int32(2), np.uint8(2)), np.int16(1)
    assert F.max_pool2d(X, k, s, p, np.int64(1)).shape == (2, 3, 3, 3)
    assert F.avg_pool2d(X, k, s, p, np.bool_(False), np.bool_(True), np.int64(4)).shape == (2, 3, 3, 3)
    assert F.adaptive_avg_pool2d(X, (np.int64(2), None)).shape == (2, 3, 2, 6)
    assert F.max_pool2d_backward(Y2, IND2, np.array(X.shape)).shape == X.shape


# ---------------------------------------------------------------------------
# PyTorch parity (forward and backward) over a randomized sweep of the options


def _torch(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _torch_random_max(n, seed):
    r = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        kh, kw = int(r.integers(1, 6)), int(r.integers(1, 6))
        stride = (int(r.integers(1, 4)), int(r.integers(1, 4))) if r.random() < 0.8 else None
        opts = dict(kernel_size=(kh, kw), stride=stride,
                    padding=(int(r.integers(0, kh // 2 + 1)), int(r.integers(0, kw // 2 + 1))),
                    dilation=(int(r.integers(1, 4)), int(r.integers(1, 4))), ceil_mode=bool(r.random() < 0.5))
        shape = (int(r.integers(1, 4)), int(r.integers(1, 5)), int(r.integers(1, 17)), int(r.integers(1, 17)))
        s = stride or (kh, kw)
        if min(pool_out_size(shape[2 + i], (kh, kw)[i], s[i], opts["padding"][i], opts["dilation"][i],
                             opts["ceil_mode"]) for i in range(2)) >= 1:
            cases.append((shape, opts))
    return cases


TORCH_MAX = [
    ((2, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 9, 10), dict(kernel_size=2, ceil_mode=True)),
    ((1, 2, 5, 7), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 8, 7), dict(kernel_size=3, stride=3, padding=1, dilation=2, ceil_mode=True)),
    ((1, 2, 6, 6), dict(kernel_size=7, stride=7, ceil_mode=True)),
    ((1, 2, 2, 2), dict(kernel_size=2, padding=1, dilation=3)),  # no in-bounds tap: forward only
] + _torch_random_max(24, seed=31337)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", TORCH_MAX, ids=cid)
def test_max_pool2d_matches_pytorch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    shape, opts = case
    x = normal(shape, rng, dtype)
    tx = _torch(torch, x).requires_grad_(True)
    to = dict(opts, stride=opts.get("stride") or ())
    ty, tind = torch.nn.functional.max_pool2d(tx, **to, return_indices=True)
    y, ind = F.max_pool2d(x, **opts, return_indices=True)
    assert y.shape == tuple(ty.shape)
    assert np.array_equal(y, ty.detach().numpy()) and np.array_equal(ind, tind.numpy())
    assert np.array_equal(F.max_pool2d(x, **opts), ty.detach().numpy())
    # torch 2.x scatters its backward through the forward's indices without a bounds check: a window
    # with no in-bounds tap has an index past the plane and corrupts the heap. fastconv drops it;
    # compare backward only where every window has an in-bounds tap.
    if empty_window(shape[-2], shape[-1], **opts):
        return
    dy = normal(y.shape, rng, dtype)
    ty.backward(_torch(torch, dy))
    dx = F.max_pool2d_backward(dy, ind, x.shape)
    assert_close(dx, tx.grad.numpy(), max_pool2d_backward_ref(np.abs(dy), ind, x.shape),
                 rtol=2 * RTOL[np.dtype(dtype)], err_msg="max_pool2d dx vs torch")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_max_pool2d_nan_inf_ties_match_pytorch(dtype, rng):
    torch = pytest.importorskip("torch")
    x = rng.integers(-2, 3, (3, 4, 11, 12)).astype(dtype)  # ties everywhere
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    x[2, 3] = -np.inf
    for opts in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                 dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)):
        ty, tind = torch.nn.functional.max_pool2d(_torch(torch, x), **opts, return_indices=True)
        y, ind = F.max_pool2d(x, **opts, return_indices=True)
        assert np.array_equal(y, ty.numpy(), equal_nan=True) and np.array_equal(ind, tind.numpy())
        assert np.array_equal(F.max_pool2d(x, **opts), ty.numpy(), equal_nan=True)
    for size in ((4, 5), (13, 7), 1):
        ty, tind = torch.nn.functional.adaptive_max_pool2d(_torch(torch, x), size, return_indices=True)
        y, ind = F.adaptive_max_pool2d(x, size, return_indices=True)
        assert np.array_equal(y, ty.numpy(), equal_nan=True) and np.array_equal(ind, tind.numpy())


TORCH_AVG = [
    ((2, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((2, 3, 9, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 5, 7), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((2, 2, 6, 6), dict(kernel_size=4, stride=4, padding=2, ceil_mode=True)),
    ((1, 2, 6, 6), dict(kernel_size=7, stride=7, ceil_mode=True, divisor_override=3)),
] + [_avg_of(c, np.random.default_rng(i)) for i, c in enumerate(_torch_random_max(40, seed=4242))
     if min(pool_out_size(c[0][2 + d], c[1]["kernel_size"][d], (c[1]["stride"] or c[1]["kernel_size"])[d],
                          c[1]["padding"][d], 1, c[1]["ceil_mode"]) for d in range(2)) >= 1][:24]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", TORCH_AVG, ids=cid)
def test_avg_pool2d_matches_pytorch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    shape, opts = case
    x = normal(shape, rng, dtype)
    tx = _torch(torch, x).requires_grad_(True)
    ty = torch.nn.functional.avg_pool2d(tx, **dict(opts, stride=opts.get("stride") or None))
    y = F.avg_pool2d(x, **opts)
    rtol = 2 * RTOL[np.dtype(dtype)]
    assert_close(y, ty.detach().numpy(), avg_ref(np.abs(x), opts), rtol=rtol, err_msg="avg_pool2d vs torch")
    dy = normal(y.shape, rng, dtype)
    ty.backward(_torch(torch, dy))
    ao = pick(opts, AVG_KEYS)
    assert_close(F.avg_pool2d_backward(dy, x.shape, **ao), tx.grad.numpy(),
                 avg_pool2d_backward_ref(np.abs(dy), x.shape, **ao), rtol=rtol, err_msg="avg_pool2d dx vs torch")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", [c for c in ADAPTIVE_CASES if 0 not in c[0]] + [((2, 3, 17, 23), (5, 9)),
                                                                             ((1, 4, 7, 9), (20, 30))], ids=acid)
def test_adaptive_pooling_matches_pytorch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    shape, size = case
    x = normal(shape, rng, dtype)
    rtol = 2 * RTOL[np.dtype(dtype)]
    tx = _torch(torch, x).requires_grad_(True)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, size)
    y = F.adaptive_avg_pool2d(x, size)
    assert_close(y, ty.detach().numpy(), adaptive_avg_pool2d_ref(np.abs(x), size), rtol=rtol)
    dy = normal(y.shape, rng, dtype)
    ty.backward(_torch(torch, dy))
    assert_close(F.adaptive_avg_pool2d_backward(dy, x.shape), tx.grad.numpy(),
                 adaptive_avg_pool2d_backward_ref(np.abs(dy), x.shape), rtol=rtol)
    tx = _torch(torch, x).requires_grad_(True)
    ty, tind = torch.nn.functional.adaptive_max_pool2d(tx, size, return_indices=True)
    y, ind = F.adaptive_max_pool2d(x, size, return_indices=True)
    assert np.array_equal(y, ty.detach().numpy()) and np.array_equal(ind, tind.numpy())
    ty.backward(_torch(torch, dy))
    assert_close(F.adaptive_max_pool2d_backward(dy, ind, x.shape), tx.grad.numpy(),
                 max_pool2d_backward_ref(np.abs(dy), ind, x.shape), rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", [c for c in UNPOOL_CASES if 0 not in c[0]], ids=cid)
def test_max_unpool2d_matches_pytorch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    shape, opts = case
    po = {k: v for k, v in opts.items() if k != "output_size"}
    x = normal(shape, rng, dtype)
    y, ind = F.max_pool2d(x, **po, return_indices=True)
    to = dict(opts)
    if len(shape) == 3 and "output_size" in to:  # torch takes (H, W) or (N, C, H, W) only
        to["output_size"] = tuple(to["output_size"])[-2:]
    ty = _torch(torch, y).requires_grad_(True)
    tu = torch.nn.functional.max_unpool2d(ty, _torch(torch, ind), **to)
    u = F.max_unpool2d(y, ind, **opts)
    assert np.array_equal(u, tu.detach().numpy())
    du = normal(u.shape, rng, dtype)
    tu.backward(_torch(torch, du))
    assert np.array_equal(F.max_unpool2d_backward(du, ind), ty.grad.numpy())


def test_pytorch_modules_agree_on_a_small_pipeline(rng):
    # pool -> unpool -> avg -> adaptive, forward and backward chained through the functional backwards
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 12, 11))
    tx = _torch(torch, x).requires_grad_(True)
    t1, tind = tf.max_pool2d(tx, 3, 2, 1, return_indices=True)
    t2 = tf.max_unpool2d(t1, tind, 3, 2, 1, output_size=(12, 11))
    t3 = tf.avg_pool2d(t2, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    t4 = tf.adaptive_avg_pool2d(t3, (3, 4))
    dy = rng.standard_normal(tuple(t4.shape))
    t4.backward(_torch(torch, dy))
    y1, ind = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    y2 = F.max_unpool2d(y1, ind, 3, 2, 1, output_size=(12, 11))
    y3 = F.avg_pool2d(y2, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    y4 = F.adaptive_avg_pool2d(y3, (3, 4))
    assert np.allclose(y4, t4.detach().numpy(), rtol=1e-12, atol=1e-12)
    g3 = F.adaptive_avg_pool2d_backward(dy, y3.shape)
    g2 = F.avg_pool2d_backward(g3, y2.shape, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    g1 = F.max_unpool2d_backward(g2, ind)
    g0 = F.max_pool2d_backward(g1, ind, x.shape)
    assert np.allclose(g0, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
