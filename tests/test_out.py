"""out= on the computing ops: results written into the caller's buffer."""

import numpy as np
import pytest

import fastconv
import fastconv.functional as F

rng = np.random.default_rng(5)


@pytest.mark.parametrize(
    "fn,args,shape",
    [
        (F.conv2d, lambda: (rng.standard_normal((2, 3, 9, 9)).astype(np.float32),
                            rng.standard_normal((4, 3, 3, 3)).astype(np.float32), None, 2, 1), (2, 4, 5, 5)),
        (F.conv2d, lambda: (rng.standard_normal((3, 9, 9)), rng.standard_normal((4, 3, 3, 3))), (4, 7, 7)),
        (F.linear, lambda: (rng.standard_normal((5, 7)).astype(np.float32),
                            rng.standard_normal((3, 7)).astype(np.float32)), (5, 3)),
        (F.max_pool2d, lambda: (rng.standard_normal((2, 3, 8, 8)).astype(np.float32), 2), (2, 3, 4, 4)),
        (F.avg_pool2d, lambda: (rng.standard_normal((3, 8, 8)), 3, 2, 1), (3, 4, 4)),
        (F.adaptive_avg_pool2d, lambda: (rng.standard_normal((2, 3, 7, 7)).astype(np.float32), 2), (2, 3, 2, 2)),
    ],
)
def test_out_matches_fresh_result(fn, args, shape):
    a = args()
    expected = fn(*a)
    out = np.full(shape, np.nan, dtype=expected.dtype)
    got = fn(*a, out=out)
    assert got is out or np.shares_memory(got, out)
    assert np.array_equal(out, expected)


def test_out_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(1, 3, 3, 4\), expected \(1, 3, 3, 3\)"):
        F.conv2d(x, w, out=np.empty((1, 3, 3, 4), np.float32))
    with pytest.raises(TypeError, match="out has dtype float64, expected float32"):
        F.conv2d(x, w, out=np.empty((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.conv2d(x, w, out=np.empty((1, 3, 3, 6), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="overlap"):
        F.max_pool2d(x, 1, out=x)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        F.linear(np.zeros((2, 2)), np.zeros((2, 2)), out=[[0, 0], [0, 0]])
    with pytest.raises(TypeError, match="out= is for NumPy inputs"):
        F.conv2d(fastconv.tensor(x), w, out=np.empty((1, 3, 3, 3), np.float32))


def _in_one_buffer(first, second_shape, gap, dtype):
    """`first` copied to the start of one buffer, and a C-contiguous array of
    `second_shape` placed `gap` elements after its end (negative: overlapping)."""
    n1, n2 = first.size, int(np.prod(second_shape))
    buf = np.zeros(n1 + max(gap, 0) + n2 + 8, dtype)
    a = buf[:n1].reshape(first.shape)
    a[...] = first
    start = n1 + gap
    return a, buf[start:start + n2].reshape(second_shape)


_CONV_W = rng.standard_normal((4, 3, 3, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "op,which",
    [("conv2d", "input"), ("conv2d", "weight"), ("conv2d", "bias"), ("linear", "input"), ("linear", "weight"),
     ("linear", "bias"), ("max_pool2d", "input")],
)
@pytest.mark.parametrize("gap", [-1, 0])
def test_out_next_to_or_over_an_input(dtype, op, which, gap):
    # The C++ fast path tests out's memory bounds against every input: one
    # element of overlap is an error, an out that starts right after is fine.
    x = {"conv2d": rng.standard_normal((2, 3, 6, 6)), "linear": rng.standard_normal((5, 7)),
         "max_pool2d": rng.standard_normal((2, 3, 6, 6))}[op].astype(dtype)
    args = {"conv2d": [x, _CONV_W.astype(dtype), rng.standard_normal(4).astype(dtype)],
            "linear": [x, rng.standard_normal((3, 7)).astype(dtype), rng.standard_normal(3).astype(dtype)],
            "max_pool2d": [x, 2]}[op]
    fn = getattr(F, op)
    expected = fn(*args)
    i = {"input": 0, "weight": 1, "bias": 2}[which]
    args[i], out = _in_one_buffer(args[i], expected.shape, gap, dtype)
    if gap < 0:
        with pytest.raises(ValueError, match="must not overlap an input"):
            fn(*args, out=out)
    else:
        assert fn(*args, out=out) is out
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("op", ["conv2d", "linear", "max_pool2d"])
def test_out_read_only_and_wrong_shape_on_the_fast_path(op):
    x = np.ones((1, 2, 4, 4), np.float32)
    args = {"conv2d": (x, np.ones((3, 2, 3, 3), np.float32)), "linear": (x, np.ones((5, 4), np.float32)),
            "max_pool2d": (x, 2)}[op]
    shape = getattr(F, op)(*args).shape
    ro = np.zeros(shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        getattr(F, op)(*args, out=ro)
    assert not ro.any()
    with pytest.raises(ValueError, match="out has shape"):
        getattr(F, op)(*args, out=np.zeros(shape[:-1] + (shape[-1] + 1,), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        getattr(F, op)(*args, out=np.zeros(shape + (1,), np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        getattr(F, op)(*args, out=np.zeros(shape, np.float64))
