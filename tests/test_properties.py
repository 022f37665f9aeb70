"""Property-based tests (hypothesis) of the functional ops against the independent float64 references.

Every op of ``fastconv.functional`` that computes (conv2d, linear, the five
poolings) and its ``*_backward`` is checked on random shapes and options drawn
by hypothesis, including the degenerate corners: 1x1 images, empty batches
(N = 0), kernels exactly as large as the padded input, one channel, groups
equal to the channel count (depthwise), 'same' padding with an even
effective kernel (one more row/column at the bottom/right), unbatched 3-D
input, float32 and float64 (and mixed: the op then runs in float64), strided
views and byte-swapped inputs (the general Python path instead of the C++
fast entry point), each kernel path this CPU runs (``_core.set_isa``) and
the conv algorithms (automatic choice, forced im2col GEMM, Winograd where it applies).

References: tests/reference.py (conv2d, linear; float64 einsum) and
tests/ref_pool.py (pooling; plain loops). Tolerances: ``assert_close`` with
the reference evaluated on absolute values as the error scale, so the bound
follows the floating-point summation error of each output element. Max
pooling, its indices, unpooling and the gathers/scatters of their gradients
(with no overlapping windows) are compared exactly.

``derandomize=True``: the same examples run every time (no example database
needed to reproduce a failure; hypothesis prints the falsifying example).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.functional as F
from fastconv import _core
from reference import (
    as_layout,
    assert_close,
    conv2d_grads_ref,
    conv2d_ref,
    conv2d_scales,
    linear_grads_ref,
    linear_ref,
    linear_scales,
)
from ref_pool import (
    adaptive_avg_pool2d_backward_ref,
    adaptive_avg_pool2d_ref,
    adaptive_max_pool2d_ref,
    avg_pool2d_backward_ref,
    avg_pool2d_ref,
    max_pool2d_backward_ref,
    max_pool2d_ref,
    max_unpool2d_backward_ref,
    max_unpool2d_ref,
    max_unpool2d_size,
    pool_out_size,
)

ISAS = list(_core.available_isas())
LAYOUT_KINDS = ("contiguous", "contiguous", "contiguous", "fortran", "reversed", "sliced", "unaligned", "bigendian")


def _settings(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@contextlib.contextmanager
def runtime(isa=None, algorithm=None, threads=None):
    """Switch kernel path / conv algorithm / thread count for one example, then restore them."""
    before = (_core.active_isa(), _core.get_conv_algorithm(), fastconv.get_num_threads())
    try:
        if isa is not None:
            _core.set_isa(isa)
        if algorithm is not None:
            _core.set_conv_algorithm(algorithm)
        if threads is not None:
            fastconv.set_num_threads(threads)
        yield
    finally:
        _core.set_isa(before[0])
        _core.set_conv_algorithm(before[1])
        fastconv.set_num_threads(before[2])


def _values(rng, shape, dtype, kind="normal"):
    if kind == "int":  # small integers: sums are exact in float32 and max pooling has ties
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _layout(a, kind):
    if a is None or a.size == 0 or kind == "contiguous":
        return a
    out = as_layout(np.zeros_like(a), kind)  # (as_layout's self-check cannot compare NaNs)
    out[...] = a
    return out


def _close(actual, expected, scale, err_msg=""):
    """assert_close that also allows +-Inf: NaN and Inf (with sign) must sit exactly where the
    reference has them; finite elements within the summation-error bound."""
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{err_msg} shape {actual.shape} != {expected.shape}"
    a = actual.astype(np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(expected)), f"{err_msg} NaN positions differ"
    inf = np.isinf(expected)
    assert np.array_equal(np.isinf(a), inf), f"{err_msg} Inf positions differ"
    assert np.array_equal(a[inf], expected[inf]), f"{err_msg} Inf signs differ"
    fin = np.isfinite(expected)
    assert_close(actual[fin], expected[fin], np.asarray(scale, dtype=np.float64)[fin], err_msg=err_msg)


def _ref(fn, *args, **kw):
    """A reference evaluated on data that may hold NaN/Inf (IEEE results, no warnings)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return fn(*args, **kw)


def _check_array(a, dtype, shape, name):
    assert isinstance(a, np.ndarray), (name, type(a))
    assert a.dtype == np.dtype(dtype), (name, a.dtype, dtype)
    assert a.shape == tuple(shape), (name, a.shape, shape)
    assert a.flags.c_contiguous, name


seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


# ---------------------------------------------------------------------------
# conv2d


def _extent(k, d):
    return d * (k - 1) + 1


@st.composite
def conv_cases(draw):
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise", "pointwise", "wide"]))
    if kind == "dense":
        G, Cg, OCg = 1, draw(st.integers(1, 4)), draw(st.integers(1, 5))
    elif kind == "grouped":
        G, Cg, OCg = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    elif kind == "depthwise":  # groups == channels, channel multiplier 1 or 2
        G, Cg, OCg = draw(st.integers(1, 8)), 1, draw(st.integers(1, 2))
    elif kind == "pointwise":
        G, Cg, OCg = 1, draw(st.integers(1, 16)), draw(st.integers(1, 20))
    else:  # enough channels for several GEMM tiles (mr 6 / nr 16, partial tiles)
        G, Cg, OCg = draw(st.integers(1, 2)), draw(st.integers(6, 24)), draw(st.integers(7, 40))
    if kind == "pointwise":
        KH = KW = 1
    else:
        KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad_kind = draw(st.sampled_from(["int", "pair", "valid", "same"]))
    if pad_kind == "same":
        stride = 1
        eh, ew = _extent(KH, dil[0]), _extent(KW, dil[1])
        pads = ((eh - 1) // 2, eh - 1 - (eh - 1) // 2, (ew - 1) // 2, ew - 1 - (ew - 1) // 2)
        padding = "same"
    else:
        stride = draw(st.sampled_from([1, 1, 2, 3, (1, 2), (3, 1)]))
        if pad_kind == "valid":
            padding, ph, pw = "valid", 0, 0
        elif pad_kind == "int":
            ph = pw = draw(st.integers(0, 3))
            padding = ph
        else:
            ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            padding = (ph, pw)
        pads = (ph, ph, pw, pw)
    # input sizes: from "kernel exactly as large as the padded input" (one output row/column) upwards
    small = kind != "wide"
    sizes = []
    for k, d, p0, p1 in ((KH, dil[0], pads[0], pads[1]), (KW, dil[1], pads[2], pads[3])):
        lo = max(1, _extent(k, d) - p0 - p1)
        sizes.append(lo + draw(st.sampled_from([0, 0, 1, 2, 3, 5]) if small else st.integers(0, 10)))
    H, W = sizes
    N = draw(st.sampled_from([2, 1, 3, 1, 2, 0, None]))  # None: unbatched (C, H, W)
    return dict(
        N=N, C=G * Cg, H=H, W=W, OC=G * OCg, KH=KH, KW=KW, groups=G,
        opts=dict(stride=stride, padding=padding, dilation=dil if dil[0] != dil[1] else dil[0], groups=G),
        bias=draw(st.booleans()),
    )


@_settings(400)
@given(
    case=conv_cases(),
    dtype=dtypes,
    mixed=st.sampled_from([False, False, False, True]),
    values=st.sampled_from(["normal", "normal", "int"]),
    layout=st.sampled_from(LAYOUT_KINDS),
    isa=st.sampled_from(ISAS),
    algorithm=st.sampled_from(["auto", "auto", "im2col", "winograd"]),
    use_out=st.booleans(),
    seed=seeds,
)
def test_conv2d_forward(case, dtype, mixed, values, layout, isa, algorithm, use_out, seed):
    rng = np.random.default_rng(seed)
    N, C, H, W, OC = case["N"], case["C"], case["H"], case["W"], case["OC"]
    xs = (C, H, W) if N is None else (N, C, H, W)
    x = _values(rng, xs, dtype, values)
    w = _values(rng, (OC, C // case["groups"], case["KH"], case["KW"]), np.float64 if mixed else dtype, values)
    b = _values(rng, (OC,), dtype, values) if case["bias"] else None
    want_dtype = np.float64 if mixed else dtype
    o = case["opts"]
    ref = conv2d_ref(x, w, b, **o)
    out = np.full(ref.shape, np.nan, want_dtype) if use_out and layout == "contiguous" else None
    with runtime(isa, algorithm):
        y = F.conv2d(_layout(x, layout), _layout(w, layout), b, out=out, **o)
    _check_array(y, want_dtype, ref.shape, "conv2d output")
    if out is not None:  # the result was written into out (an unbatched call returns a view of it)
        assert y is out or y.base is out
    assert_close(y, ref, conv2d_scales(x, w, b, **o), err_msg=f"conv2d forward {case}")


@_settings(300)
@given(
    case=conv_cases(),
    dtype=dtypes,
    values=st.sampled_from(["normal", "normal", "int"]),
    layout=st.sampled_from(LAYOUT_KINDS),
    need=st.sampled_from([(True, True, True)] * 4 + [(True, False, False), (False, True, False), (False, False, True),
                                                      (False, True, True), (False, False, False)]),
    isa=st.sampled_from(ISAS),
    algorithm=st.sampled_from(["auto", "auto", "im2col", "winograd"]),
    seed=seeds,
)
def test_conv2d_backward(case, dtype, values, layout, need, isa, algorithm, seed):
    rng = np.random.default_rng(seed)
    N, C, H, W, OC = case["N"], case["C"], case["H"], case["W"], case["OC"]
    xs = (C, H, W) if N is None else (N, C, H, W)
    x = _values(rng, xs, dtype, values)
    w = _values(rng, (OC, C // case["groups"], case["KH"], case["KW"]), dtype, values)
    o = case["opts"]
    dy = _values(rng, conv2d_ref(x, w, None, **o).shape, dtype, values)
    with runtime(isa, algorithm):
        got = F.conv2d_backward(_layout(dy, layout), _layout(x, layout), w, needs_input_grad=need, **o)
    assert isinstance(got, tuple) and len(got) == 3
    refs = conv2d_grads_ref(dy, x, w, **o)
    scales = conv2d_scales(x, w, None, dy, **o)[1:]
    for name, g, r, s, n in zip(("dx", "dw", "db"), got, refs, scales, need):
        if not n:
            assert g is None, f"{name} was not asked for"
            continue
        _check_array(g, dtype, r.shape, f"conv2d {name}")
        assert_close(g, r, s, err_msg=f"conv2d {name} {case}")


@st.composite
def per_side_cases(draw):
    G = draw(st.integers(1, 3))
    Cg = 1 if draw(st.booleans()) else draw(st.integers(1, 3))
    OCg = draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.integers(0, 4)) for _ in range(4))  # top, bottom, left, right: any combination
    H = max(1, _extent(KH, dil[0]) - pads[0] - pads[1]) + draw(st.integers(0, 4))
    W = max(1, _extent(KW, dil[1]) - pads[2] - pads[3]) + draw(st.integers(0, 4))
    return dict(N=draw(st.sampled_from([1, 2, 0])), G=G, Cg=Cg, OCg=OCg, K=(KH, KW), dil=dil, stride=stride, pads=pads, H=H, W=W)


@_settings(120)
@given(case=per_side_cases(), dtype=dtypes, algorithm=st.sampled_from(["auto", "im2col", "winograd"]), seed=seeds)
def test_conv2d_per_side_padding_kernels(case, dtype, algorithm, seed):
    """The kernels take four independent pads (top, bottom, left, right); the public API reaches
    uneven ones through padding='same'. Checked against the reference on an explicitly
    zero-padded input (forward, and the gradient cropped back from the padded one)."""
    rng = np.random.default_rng(seed)
    G, Cg, OCg, (KH, KW) = case["G"], case["Cg"], case["OCg"], case["K"]
    x = _values(rng, (case["N"], G * Cg, case["H"], case["W"]), dtype)
    w = _values(rng, (G * OCg, Cg, KH, KW), dtype)
    b = _values(rng, (G * OCg,), dtype)
    t, bo, l, r = case["pads"]
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    o = dict(stride=case["stride"], dilation=case["dil"], groups=G)
    ref = conv2d_ref(xp, w, b, **o)
    dy = _values(rng, ref.shape, dtype)
    with runtime(algorithm=algorithm):
        y = _core.conv2d_forward(x, w, b, case["stride"], case["pads"], case["dil"], G)
        dx, dw, db = _core.conv2d_backward(dy, x, w, case["stride"], case["pads"], case["dil"], G)
    assert_close(y, ref, conv2d_scales(xp, w, b, **o), err_msg="per-side forward")
    rdx, rdw, rdb = conv2d_grads_ref(dy, xp, w, **o)
    _, sdx, sdw, sdb = conv2d_scales(xp, w, None, dy, **o)
    crop = (slice(None), slice(None), slice(t, t + case["H"]), slice(l, l + case["W"]))
    assert_close(dx, rdx[crop], sdx[crop], err_msg="per-side dx")
    assert_close(dw, rdw, sdw, err_msg="per-side dw")
    assert_close(db, rdb, sdb, err_msg="per-side db")


# ---------------------------------------------------------------------------
# linear


@st.composite
def linear_cases(draw):
    kind = draw(st.sampled_from(["small", "small", "vector", "gemv", "wide", "empty"]))
    if kind == "vector":  # 1-D input
        lead = ()
    elif kind == "gemv":
        lead = (1,)
    elif kind == "empty":
        lead = tuple(draw(st.lists(st.integers(0, 3), min_size=1, max_size=3)))
    else:
        lead = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    if kind in ("wide", "gemv"):
        IN, OUT = draw(st.integers(1, 300)), draw(st.integers(1, 70))
        if kind == "wide":
            lead = (draw(st.integers(1, 40)),)
    else:
        IN, OUT = draw(st.integers(0 if kind == "empty" else 1, 20)), draw(st.integers(0 if kind == "empty" else 1, 20))
    return lead, IN, OUT


@_settings(250)
@given(
    case=linear_cases(),
    dtype=dtypes,
    mixed=st.sampled_from([False, False, False, True]),
    bias=st.booleans(),
    values=st.sampled_from(["normal", "normal", "int"]),
    layout=st.sampled_from(LAYOUT_KINDS),
    isa=st.sampled_from(ISAS),
    use_out=st.booleans(),
    need=st.sampled_from([(True, True, True)] * 3 + [(True, False, False), (False, True, True), (False, False, True)]),
    seed=seeds,
)
def test_linear_forward_backward(case, dtype, mixed, bias, values, layout, isa, use_out, need, seed):
    rng = np.random.default_rng(seed)
    lead, IN, OUT = case
    x = _values(rng, lead + (IN,), dtype, values)
    w = _values(rng, (OUT, IN), np.float64 if mixed else dtype, values)
    b = _values(rng, (OUT,), dtype, values) if bias else None
    want_dtype = np.float64 if mixed else dtype
    ref = linear_ref(x, w, b)
    out = np.full(ref.shape, np.nan, want_dtype) if use_out and layout == "contiguous" else None
    dy = _values(rng, ref.shape, dtype, values)
    with runtime(isa):
        y = F.linear(_layout(x, layout), _layout(w, layout), b, out=out)
        grads = F.linear_backward(_layout(dy, layout), x, _layout(w, layout), needs_input_grad=need)
    _check_array(y, want_dtype, ref.shape, "linear output")
    if out is not None:
        assert y is out
    assert_close(y, ref, linear_scales(x, w, b), err_msg=f"linear forward {case}")
    refs = linear_grads_ref(dy, x, w)
    scales = linear_scales(x, w, None, dy)[1:]
    for name, g, r, s, n in zip(("dx", "dw", "db"), grads, refs, scales, need):
        if not n:
            assert g is None, name
            continue
        _check_array(g, want_dtype, r.shape, f"linear {name}")
        assert_close(g, r, s, err_msg=f"linear {name} {case}")


# ---------------------------------------------------------------------------
# pooling


def _pool_input(draw_value, rng, N, C, H, W, dtype, values):
    shape = (C, H, W) if N is None else (N, C, H, W)
    x = _values(rng, shape, dtype, values)
    if values == "special" and x.size:  # NaN / +-Inf sprinkled in (NaN wins max pooling)
        k = max(1, x.size // 5)
        flat = x.reshape(-1)
        flat[rng.integers(0, x.size, k)] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype), k)
    return x


@st.composite
def window_cases(draw, dilation=True, ceil=True):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([None, None, 1, 2, 3, (1, 2), (2, 3)]))
    ph, pw = draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans()) if ceil else False
    sizes = []
    for k, d, p in ((KH, dil[0], ph), (KW, dil[1], pw)):
        lo = max(1, _extent(k, d) - 2 * p)
        sizes.append(lo + draw(st.sampled_from([0, 0, 1, 2, 3, 4, 6])))
    H, W = sizes
    sh, sw = (KH, KW) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    # a window must touch the input (a dilated kernel over a tiny padded input may not)
    assume(pool_out_size(H, KH, sh, ph, dil[0], ceil_mode) >= 1 and pool_out_size(W, KW, sw, pw, dil[1], ceil_mode) >= 1)
    N = draw(st.sampled_from([1, 2, 1, 2, 0, None]))
    C = draw(st.integers(1, 3))
    return dict(
        N=N, C=C, H=H, W=W, kernel_size=(KH, KW) if KH != KW else KH, stride=stride,
        padding=(ph, pw) if ph != pw else ph, dilation=dil, ceil_mode=ceil_mode,
    )


pool_values = st.sampled_from(["normal", "normal", "int", "special"])


@_settings(200)
@given(case=window_cases(), dtype=dtypes, values=pool_values, layout=st.sampled_from(LAYOUT_KINDS), seed=seeds)
def test_max_pool2d_forward_backward(case, dtype, values, layout, seed):
    rng = np.random.default_rng(seed)
    x = _pool_input(None, rng, case["N"], case["C"], case["H"], case["W"], dtype, values)
    opts = dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"],
                dilation=case["dilation"], ceil_mode=case["ceil_mode"])
    ry, rind = max_pool2d_ref(x, **opts)
    y, ind = F.max_pool2d(_layout(x, layout), return_indices=True, **opts)
    _check_array(y, dtype, ry.shape, "max_pool2d output")
    _check_array(ind, np.int64, ry.shape, "max_pool2d indices")
    np.testing.assert_array_equal(y, ry.astype(dtype), err_msg=f"max_pool2d values {case}")
    np.testing.assert_array_equal(ind, rind, err_msg=f"max_pool2d indices {case}")
    # values only (no indices kept): same values
    np.testing.assert_array_equal(F.max_pool2d(x, **opts), y)
    if x.ndim == 4:
        out = np.full(y.shape, np.nan, dtype)
        assert F.max_pool2d(x, out=out, **opts) is out
        np.testing.assert_array_equal(out, y)
    # backward: dy scattered into the argmax positions (overlapping windows add up)
    dy = _values(rng, y.shape, dtype)
    dx = F.max_pool2d_backward(_layout(dy, layout), ind, x.shape)
    _check_array(dx, dtype, x.shape, "max_pool2d_backward")
    assert_close(dx, max_pool2d_backward_ref(dy, rind, x.shape), max_pool2d_backward_ref(np.abs(dy), rind, x.shape),
                 err_msg=f"max_pool2d_backward {case}")


@_settings(200)
@given(
    case=window_cases(dilation=False),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, None, None, 1, 2, 3, 7]),
    dtype=dtypes,
    values=pool_values,
    layout=st.sampled_from(LAYOUT_KINDS),
    seed=seeds,
)
def test_avg_pool2d_forward_backward(case, count_include_pad, divisor_override, dtype, values, layout, seed):
    rng = np.random.default_rng(seed)
    x = _pool_input(None, rng, case["N"], case["C"], case["H"], case["W"], dtype, values)
    opts = dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"],
                ceil_mode=case["ceil_mode"], count_include_pad=count_include_pad, divisor_override=divisor_override)
    ref = _ref(avg_pool2d_ref, x, **opts)
    y = F.avg_pool2d(_layout(x, layout), **opts)
    _check_array(y, dtype, ref.shape, "avg_pool2d output")
    _close(y, ref, _ref(avg_pool2d_ref, np.abs(x), **opts), err_msg=f"avg_pool2d {case}")
    if x.ndim == 4:
        out = np.full(y.shape, np.nan, dtype)
        assert F.avg_pool2d(x, out=out, **opts) is out
        np.testing.assert_array_equal(out, y)
    dy = _values(rng, y.shape, dtype)
    dx = F.avg_pool2d_backward(_layout(dy, layout), x.shape, **opts)
    _check_array(dx, dtype, x.shape, "avg_pool2d_backward")
    assert_close(dx, avg_pool2d_backward_ref(dy, x.shape, **opts),
                 avg_pool2d_backward_ref(np.abs(dy), x.shape, **opts), err_msg=f"avg_pool2d_backward {case}")


@st.composite
def adaptive_cases(draw):
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    OH, OW = draw(st.integers(1, H + 3)), draw(st.integers(1, W + 3))  # more bins than inputs too
    form = draw(st.sampled_from(["pair", "int", "none_h", "none_w", "list"]))
    if form == "int":
        OW = OH
        size = OH
    elif form == "none_h":
        OH, size = H, (None, OW)
    elif form == "none_w":
        OW, size = W, (OH, None)
    elif form == "list":
        size = [OH, OW]
    else:
        size = (OH, OW)
    return dict(N=draw(st.sampled_from([1, 2, 3, 2, 0, None])), C=draw(st.integers(1, 3)), H=H, W=W, size=size, out=(OH, OW))


@_settings(150)
@given(case=adaptive_cases(), dtype=dtypes, values=pool_values, layout=st.sampled_from(LAYOUT_KINDS), seed=seeds)
def test_adaptive_avg_pool2d_forward_backward(case, dtype, values, layout, seed):
    rng = np.random.default_rng(seed)
    x = _pool_input(None, rng, case["N"], case["C"], case["H"], case["W"], dtype, values)
    ref = _ref(adaptive_avg_pool2d_ref, x, case["size"])
    assert ref.shape[-2:] == case["out"]
    y = F.adaptive_avg_pool2d(_layout(x, layout), case["size"])
    _check_array(y, dtype, ref.shape, "adaptive_avg_pool2d output")
    _close(y, ref, _ref(adaptive_avg_pool2d_ref, np.abs(x), case["size"]), err_msg=f"adaptive_avg_pool2d {case}")
    dy = _values(rng, y.shape, dtype)
    dx = F.adaptive_avg_pool2d_backward(_layout(dy, layout), x.shape)
    _check_array(dx, dtype, x.shape, "adaptive_avg_pool2d_backward")
    assert_close(dx, adaptive_avg_pool2d_backward_ref(dy, x.shape),
                 adaptive_avg_pool2d_backward_ref(np.abs(dy), x.shape), err_msg=f"adaptive_avg_pool2d_backward {case}")


@_settings(150)
@given(case=adaptive_cases(), dtype=dtypes, values=pool_values, layout=st.sampled_from(LAYOUT_KINDS), seed=seeds)
def test_adaptive_max_pool2d_forward_backward(case, dtype, values, layout, seed):
    rng = np.random.default_rng(seed)
    x = _pool_input(None, rng, case["N"], case["C"], case["H"], case["W"], dtype, values)
    ry, rind = adaptive_max_pool2d_ref(x, case["size"])
    y, ind = F.adaptive_max_pool2d(_layout(x, layout), case["size"], return_indices=True)
    _check_array(y, dtype, ry.shape, "adaptive_max_pool2d output")
    _check_array(ind, np.int64, ry.shape, "adaptive_max_pool2d indices")
    np.testing.assert_array_equal(y, ry.astype(dtype), err_msg=f"adaptive_max_pool2d {case}")
    np.testing.assert_array_equal(ind, rind, err_msg=f"adaptive_max_pool2d indices {case}")
    np.testing.assert_array_equal(F.adaptive_max_pool2d(x, case["size"]), y)
    dy = _values(rng, y.shape, dtype)
    dx = F.adaptive_max_pool2d_backward(_layout(dy, layout), ind, x.shape)
    _check_array(dx, dtype, x.shape, "adaptive_max_pool2d_backward")
    assert_close(dx, max_pool2d_backward_ref(dy, rind, x.shape), max_pool2d_backward_ref(np.abs(dy), rind, x.shape),
                 err_msg=f"adaptive_max_pool2d_backward {case}")


@st.composite
def unpool_cases(draw):
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, None, 1, 2, (1, 3)]))
    sh, sw = (KH, KW) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    ph, pw = draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))
    H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))  # the pooled (unpool input) size
    OH, OW = max_unpool2d_size(H, W, (KH, KW), (sh, sw), (ph, pw))
    assume(OH >= 1 and OW >= 1)
    size_kind = draw(st.sampled_from(["default", "default", "hw", "nchw", "plus"]))
    N = draw(st.sampled_from([1, 2, 1, 0, None]))
    C = draw(st.integers(1, 3))
    if size_kind == "default":
        output_size = None
    else:  # any size strictly within one stride of the default
        dh = draw(st.integers(-(sh - 1), sh - 1)) if size_kind == "plus" else 0
        dw = draw(st.integers(-(sw - 1), sw - 1)) if size_kind == "plus" else 0
        OH, OW = OH + dh, OW + dw
        assume(OH >= 1 and OW >= 1)
        output_size = (OH, OW) if size_kind != "nchw" else ((N or 1, C, OH, OW) if N is not None else (C, OH, OW))
    return dict(N=N, C=C, H=H, W=W, kernel_size=(KH, KW), stride=stride, padding=(ph, pw),
                output_size=output_size, out=(OH, OW))


@_settings(150)
@given(
    case=unpool_cases(),
    dtype=dtypes,
    index_kind=st.sampled_from(["distinct", "repeats"]),
    layout=st.sampled_from(LAYOUT_KINDS),
    seed=seeds,
)
def test_max_unpool2d_forward_backward(case, dtype, index_kind, layout, seed):
    rng = np.random.default_rng(seed)
    N, C, H, W = case["N"], case["C"], case["H"], case["W"]
    OH, OW = case["out"]
    shape = (C, H, W) if N is None else (N, C, H, W)
    planes = int(np.prod(shape[:-2]))
    if index_kind == "distinct":  # as max pooling without overlap produces them
        assume(H * W <= OH * OW)
        ind = np.array([rng.permutation(OH * OW)[: H * W] for _ in range(planes)], dtype=np.int64).reshape(shape)
    else:  # overlapping windows share an argmax: the last write wins
        ind = rng.integers(0, OH * OW, size=shape)
    ind = ind.astype(np.int64)
    x = _values(rng, shape, dtype)
    opts = dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"],
                output_size=case["output_size"])
    ref = max_unpool2d_ref(x, ind, **opts)
    y = F.max_unpool2d(_layout(x, layout), _layout(ind, layout), **opts)
    _check_array(y, dtype, ref.shape, "max_unpool2d output")
    assert y.shape[-2:] == (OH, OW)
    np.testing.assert_array_equal(y, ref.astype(dtype), err_msg=f"max_unpool2d {case}")
    dy = _values(rng, y.shape, dtype)
    dx = F.max_unpool2d_backward(_layout(dy, layout), ind)
    _check_array(dx, dtype, x.shape, "max_unpool2d_backward")
    np.testing.assert_array_equal(dx, max_unpool2d_backward_ref(dy, ind).astype(dtype))


@_settings(80)
@given(case=window_cases(dilation=False, ceil=False), dtype=dtypes, seed=seeds)
def test_max_unpool2d_inverts_max_pool2d(case, dtype, seed):
    """unpool(pool(x)) keeps each window maximum at its argmax (what the pair is for)."""
    rng = np.random.default_rng(seed)
    x = _values(rng, (case["N"] or 1, case["C"], case["H"], case["W"]), dtype)
    opts = dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"])
    y, ind = F.max_pool2d(x, return_indices=True, **opts)
    assume(y.size)
    u = F.max_unpool2d(y, ind, output_size=x.shape[-2:], **opts)
    np.testing.assert_array_equal(u, max_unpool2d_ref(y, ind, output_size=x.shape[-2:], **opts).astype(dtype))
    flat_u, flat_x = u.reshape(u.shape[0] * u.shape[1], -1), x.reshape(x.shape[0] * x.shape[1], -1)
    for p in range(flat_u.shape[0]):
        nz = np.unique(ind.reshape(flat_u.shape[0], -1)[p])
        np.testing.assert_array_equal(flat_u[p, nz], flat_x[p, nz])
