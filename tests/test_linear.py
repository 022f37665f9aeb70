"""linear forward and backward against the float64 NumPy reference (and PyTorch when installed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _core
from reference import (
    LAYOUTS,
    RTOL,
    as_layout,
    assert_close,
    check_vjp,
    linear_grads_ref,
    linear_ref,
    linear_scales,
)

DTYPES = [np.float32, np.float64]


def make_case(lead, IN, OUT, dtype, rng, bias=True, integer=False):
    def draw(shape):
        if integer:
            return rng.integers(-2, 3, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    x, w = draw(tuple(lead) + (IN,)), draw((OUT, IN))
    b = draw((OUT,)) if bias else None
    return x, w, b, draw(tuple(lead) + (OUT,))


def check_forward(x, w, b, dtype, exact=False):
    y = F.linear(x, w, b)
    ref = linear_ref(x, w, b)
    assert isinstance(y, np.ndarray) and y.dtype == np.dtype(dtype) and y.flags.c_contiguous
    assert y.shape == ref.shape
    if exact:
        assert np.array_equal(y, ref), f"max err {np.abs(y - ref).max()}"
    else:
        assert_close(y, ref, linear_scales(x, w, b), err_msg="linear forward")
    return y


def check_backward(dy, x, w, dtype, exact=False):
    dx, dw, db = F.linear_backward(dy, x, w)
    refs = linear_grads_ref(dy, x, w)
    _, sx, sw, sb = linear_scales(x, w, None, dy)
    for name, got, want, scale, like in (("dx", dx, refs[0], sx, x), ("dw", dw, refs[1], sw, w),
                                         ("db", db, refs[2], sb, None)):
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype) and got.flags.c_contiguous, name
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if like is not None:
            assert got.shape == np.shape(like)
        if exact:
            assert np.array_equal(got, want), f"{name}: max err {np.abs(got - want).max()}"
        else:
            assert_close(got, want, scale, err_msg=f"linear {name}")
    return dx, dw, db


SHAPES = [
    # (leading dims, in_features, out_features)
    ((), 7, 5),  # 1-D input
    ((1,), 7, 5),  # batch 1: the GEMV path
    ((1,), 300, 600),  # GEMV over several 256-row blocks of w, K > KC
    ((1,), 1, 1),
    ((2,), 7, 5),
    ((3,), 16, 17),
    ((5,), 33, 31),
    ((6,), 15, 16),
    ((7,), 1, 33),
    ((17,), 6, 1),
    ((4, 3), 10, 6),  # any leading dims
    ((2, 3, 4), 5, 7),
    ((1, 1, 1), 9, 4),
    ((64,), 257, 10),
    ((8,), 513, 150),  # K blocking and M > MC
    ((2,), 9216, 10),  # AlexNet-like fc: long K, small out
    ((1,), 9216, 10),
    ((33,), 100, 200),
    # the GEMM with w read in place (batch >= 16 and a large weight, or batch >= 256)
    ((16,), 256, 256),
    ((17,), 300, 301),  # ragged row panels and K slices
    ((2, 10), 600, 115),
    ((33,), 513, 131),
    ((256,), 20, 7),
    ((300,), 9, 13),
]


def sid(s):
    lead, IN, OUT = s
    return f"{'x'.join(map(str, lead)) or 'vec'}-in{IN}-out{OUT}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_forward_backward(shape, dtype, isa, rng):
    lead, IN, OUT = shape
    x, w, b, dy = make_case(lead, IN, OUT, dtype, rng)
    check_forward(x, w, b, dtype)
    check_forward(x, w, None, dtype)
    check_backward(dy, x, w, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_integer_valued_data_is_exact(shape, isa, rng):
    lead, IN, OUT = shape
    x, w, b, dy = make_case(lead, IN, OUT, np.float32, rng, integer=True)
    check_forward(x, w, b, np.float32, exact=True)
    check_backward(dy, x, w, np.float32, exact=True)


@pytest.mark.parametrize("OUT", [1, 5, 6, 7, 15, 16, 17, 31, 33])
@pytest.mark.parametrize("B", [1, 2, 5, 6, 7, 15, 16, 17, 31, 33])
def test_tile_edges(B, OUT, isa, rng):
    for dtype in DTYPES:
        x, w, b, dy = make_case((B,), 11, OUT, dtype, rng, integer=True)
        check_forward(x, w, b, dtype, exact=True)
        check_backward(dy, x, w, dtype, exact=True)


@pytest.mark.parametrize("OUT", [1, 5, 6, 7, 8, 9, 13, 17, 33])
@pytest.mark.parametrize("B", [256, 257, 271])
def test_tile_edges_weight_in_place(B, OUT, isa, rng):
    # batches >= 256 take the GEMM that reads w in place: ragged row panels of w
    # (MR 4, 6 or 8 by ISA) and ragged batch panels (NR 4 .. 32)
    for dtype in DTYPES:
        for IN in (3, 257):
            x, w, b, dy = make_case((B,), IN, OUT, dtype, rng, integer=True)
            check_forward(x, w, b, dtype, exact=True)
            check_forward(x, w, None, dtype, exact=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemv_lengths(dtype, isa, rng):
    # batch 1 runs the dot-product kernel: every tail length of its vector loop
    for IN in list(range(1, 41)) + [63, 64, 65, 255, 256, 257]:
        for lead in ((1,), ()):
            x, w, b, dy = make_case(lead, IN, 9, dtype, rng, integer=True)
            check_forward(x, w, b, dtype, exact=True)
            check_forward(x[..., ::-1], w[:, ::-1], None, dtype, exact=True)


@pytest.mark.parametrize(
    "lead,IN,OUT",
    [((4,), 0, 5), ((1,), 0, 5), ((), 0, 3), ((4,), 6, 0), ((1,), 6, 0), ((0,), 6, 5), ((2, 0), 6, 5), ((0,), 0, 0)],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_empty_dimensions(lead, IN, OUT, dtype, rng):
    x, w, b, dy = make_case(lead, IN, OUT, dtype, rng, integer=True)
    y = F.linear(x, w, b)
    assert y.shape == tuple(lead) + (OUT,) and y.dtype == np.dtype(dtype)
    # in_features == 0: the empty sum is 0, so y is the bias
    assert np.array_equal(y, linear_ref(x, w, b))
    assert np.array_equal(F.linear(x, w), linear_ref(x, w))
    dx, dw, db = F.linear_backward(dy, x, w)
    rx, rw, rb = linear_grads_ref(dy, x, w)
    for got, want in ((dx, rx), (dw, rw), (db, rb)):
        assert got.shape == want.shape and got.dtype == np.dtype(dtype)
        assert np.array_equal(got, want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_noncontiguous_inputs(layout, rng):
    x, w, b, dy = make_case((3, 4), 10, 6, np.float64, rng)
    want_y, want_g = F.linear(x, w, b), F.linear_backward(dy, x, w)
    xv, wv, bv, dyv = (as_layout(a, layout) for a in (x, w, b, dy))
    copies = [a.copy() for a in (xv, wv, bv, dyv)]
    y = F.linear(xv, wv, bv)
    assert y.flags.c_contiguous and np.array_equal(y, want_y)
    for got, want in zip(F.linear_backward(dyv, xv, wv), want_g):
        assert got.flags.c_contiguous and np.array_equal(got, want)
    for a, c in zip((xv, wv, bv, dyv), copies):
        assert np.array_equal(a, c)


def test_transposed_weight_view(rng):
    # the common "w.T" of a (in, out) matrix
    x, _, b, dy = make_case((4,), 12, 9, np.float32, rng)
    wt = rng.standard_normal((12, 9)).astype(np.float32)
    check_forward(x, wt.T, b, np.float32)
    check_backward(dy, x, wt.T, np.float32)
    check_forward(x[::-1], wt.T[:, ::-1], b, np.float32)


@pytest.mark.parametrize(
    "in_dtype", [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16], ids=lambda d: np.dtype(d).name
)
def test_integer_bool_half_inputs_compute_in_float32(in_dtype, rng):
    x, w, b, dy = make_case((3,), 8, 5, np.float64, rng, integer=True)
    if in_dtype in (np.uint8, np.bool_):
        x, w, b, dy = (np.abs(a) for a in (x, w, b, dy))
    x, w, b, dy = (a.astype(in_dtype) for a in (x, w, b, dy))
    y = F.linear(x, w, b)
    assert y.dtype == np.float32 and np.array_equal(y, linear_ref(x, w, b))
    for got, want in zip(F.linear_backward(dy, x, w), linear_grads_ref(dy, x, w)):
        assert got.dtype == np.float32 and np.array_equal(got, want)


@pytest.mark.parametrize(
    "dts",
    [(np.float32, np.float64, None), (np.float64, np.float32, np.float32), (np.float32, np.float32, np.float64),
     (np.int64, np.float64, None)],
    ids=lambda d: "-".join("none" if t is None else np.dtype(t).name for t in d),
)
def test_mixed_precision_computes_in_float64(dts, rng):
    x, w, b, dy = make_case((3,), 8, 5, np.float64, rng, bias=dts[2] is not None, integer=dts[0] is np.int64)
    x, w = x.astype(dts[0]), w.astype(dts[1])
    b = None if b is None else b.astype(dts[2])
    y = F.linear(x, w, b)
    assert y.dtype == np.float64
    assert_close(y, linear_ref(x, w, b), linear_scales(x, w, b))
    grads = F.linear_backward(dy.astype(np.float32), x, w)
    for got in grads:
        assert got.dtype == (np.float64 if np.float64 in dts[:2] else np.float32)
    grads = F.linear_backward(dy, x.astype(np.float32), w.astype(np.float32))
    for got, want in zip(grads, linear_grads_ref(dy, x.astype(np.float32), w.astype(np.float32))):
        assert got.dtype == np.float64 and np.allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_complex_is_type_error(which, rng):
    x, w, b, _ = make_case((2,), 4, 3, np.float64, rng)
    args = {"input": x, "weight": w, "bias": b}
    args[which] = args[which] + 1j
    with pytest.raises(TypeError, match="complex"):
        F.linear(args["input"], args["weight"], args["bias"])


def test_nan_and_inf_propagate(isa, rng):
    for B in (1, 4):  # GEMV and GEMM paths
        x, w, b, _ = make_case((B,), 20, 9, np.float32, rng)
        x[0, 3] = np.nan
        x[-1, 7] = np.inf
        y = F.linear(x, w, b)
        ref = linear_ref(x, w, b)
        assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.isnan(y).any()
        assert np.array_equal(np.isinf(y), np.isinf(ref))
        if B > 1:
            assert np.isfinite(y[1:-1]).all()


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=3)), ids=str)
def test_needs_input_grad(flags, rng):
    x, w, _, dy = make_case((4,), 9, 6, np.float64, rng)
    full = F.linear_backward(dy, x, w)
    part = F.linear_backward(dy, x, w, needs_input_grad=flags)
    assert len(part) == 3
    for need, got, want in zip(flags, part, full):
        if need:
            assert np.array_equal(got, want)
        else:
            assert got is None


@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 2)], ids=str)
def test_backward_matches_central_differences(lead, rng):
    x, w, b, dy = make_case(lead, 5, 4, np.float64, rng)
    check_vjp(lambda x, w, b: F.linear(x, w, b), [x, w, b], dy, F.linear_backward(dy, x, w))


def test_reference_matches_numeric_grads(rng):
    x, w, b, dy = make_case((2, 3), 4, 3, np.float64, rng)
    check_vjp(linear_ref, [x, w, b], dy, linear_grads_ref(dy, x, w))
    np.testing.assert_allclose(linear_ref(x, w, b), x @ w.T + b, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [((1,), 9216, 64), ((3,), 4096, 40), ((64,), 300, 100), ((2, 5), 700, 33), ((64,), 600, 130), ((300,), 40, 9)], ids=sid)
def test_bitwise_identical_for_1_and_2_threads(shape, dtype, isa, restore_runtime, rng):
    lead, IN, OUT = shape
    x, w, b, dy = make_case(lead, IN, OUT, dtype, rng)
    out = {}
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        out[nt] = (F.linear(x, w, b),) + tuple(F.linear_backward(dy, x, w))
    for name, a, c in zip(("y", "dx", "dw", "db"), out[1], out[2]):
        assert np.array_equal(a, c), f"{name} differs between 1 and 2 threads"
    check_forward(x, w, b, dtype)


def test_batch_one_agrees_with_batched_rows(rng):
    # the GEMV path (batch 1) and the GEMM path compute the same products
    x, w, b, _ = make_case((6,), 300, 40, np.float64, rng)
    y = F.linear(x, w, b)
    for i in range(6):
        assert_close(F.linear(x[i : i + 1], w, b)[0], y[i], linear_scales(x[i], w, b), rtol=2 * RTOL[np.dtype(np.float64)])
        assert_close(F.linear(x[i], w, b), y[i], linear_scales(x[i], w, b), rtol=2 * RTOL[np.dtype(np.float64)])


# ---------------------------------------------------------------------------
# PyTorch parity


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "shape", [((), 7, 5), ((1,), 300, 20), ((4,), 33, 17), ((2, 3), 9, 6), ((8,), 9216, 10)], ids=sid
)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_matches_pytorch(shape, dtype, bias, rng):
    torch = pytest.importorskip("torch")
    lead, IN, OUT = shape
    x, w, b, dy = make_case(lead, IN, OUT, dtype, rng, bias=bias)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.tensor(dy))
    sy, sx, sw, sb = linear_scales(x, w, b, dy)
    rtol = 2 * RTOL[np.dtype(dtype)]
    assert_close(F.linear(x, w, b), ty.detach().numpy(), sy, rtol=rtol, err_msg="forward vs torch")
    dx, dw, db = F.linear_backward(dy, x, w)
    assert_close(dx, tx.grad.numpy(), sx, rtol=rtol, err_msg="dx vs torch")
    assert_close(dw, tw.grad.numpy(), sw, rtol=rtol, err_msg="dw vs torch")
    if b is not None:
        assert_close(db, tb.grad.numpy(), sb, rtol=rtol, err_msg="db vs torch")


# ---------------------------------------------------------------------------
# randomized

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:

    @settings(max_examples=40, deadline=None)
    @given(
        lead=st.lists(st.integers(0, 4), min_size=0, max_size=3),
        IN=st.integers(0, 40),
        OUT=st.integers(0, 40),
        bias=st.booleans(),
        dtype=st.sampled_from(DTYPES),
        isa_name=st.sampled_from(_core.available_isas()),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_random_shapes(lead, IN, OUT, bias, dtype, isa_name, seed):
        before = _core.active_isa()
        _core.set_isa(isa_name)
        try:
            x, w, b, dy = make_case(lead, IN, OUT, dtype, np.random.default_rng(seed), bias=bias)
            check_forward(x, w, b, dtype)
            check_backward(dy, x, w, dtype)
        finally:
            _core.set_isa(before)

else:  # pragma: no cover

    def test_random_shapes():
        pytest.skip("hypothesis is not installed (it belongs in the test extra)")
