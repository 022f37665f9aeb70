"""Activations, softmax, losses, flatten, dropout and batch_norm (forward and backward).

References: tests/ref_elementwise.py (plain float64 loops) and central finite
differences; PyTorch parity tests at the end skip when torch is not installed
(only they import it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv.functional as F
from fastconv import _elementwise as E
from fastconv._norm import batch_norm_forward

import ref_elementwise as R

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)


def rng(seed=0):
    return np.random.default_rng(seed)


def layouts(x):
    """The same values as ``x`` in several memory layouts."""
    yield "contiguous", x
    if x.ndim >= 2:
        yield "fortran", np.asfortranarray(x)
    if x.ndim >= 1:
        yield "negative", np.ascontiguousarray(x[..., ::-1])[..., ::-1]
        z = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        z[..., ::2] = x
        yield "strided", z[..., ::2]


def check_fresh(y, *inputs, dtype=None):
    assert isinstance(y, np.ndarray)
    assert y.flags.c_contiguous
    if dtype is not None:
        assert y.dtype == dtype
    for a in inputs:
        if isinstance(a, np.ndarray):
            assert not np.shares_memory(y, a)


def gradcheck(f, x, dy, analytic, rtol=1e-6, atol=1e-8):
    """``analytic`` against the central-difference gradient of ``sum(f(x) * dy)``."""
    num = R.numeric_grad(lambda v: np.sum(np.asarray(f(v), dtype=np.float64) * dy), x)
    np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# elementwise activations

UNARY = {
    "relu": (F.relu, R.relu),
    "leaky_relu": (F.leaky_relu, R.leaky_relu),
    "leaky_relu_0.3": (lambda x: F.leaky_relu(x, 0.3), lambda x: R.leaky_relu(x, 0.3)),
    "leaky_relu_neg": (lambda x: F.leaky_relu(x, negative_slope=-0.5), lambda x: R.leaky_relu(x, -0.5)),
    "sigmoid": (F.sigmoid, R.sigmoid),
    "tanh": (F.tanh, R.tanh),
    "softmax1": (lambda x: F.softmax(x, 1), lambda x: R.softmax(x, 1)),
    "softmax-1": (lambda x: F.softmax(x, dim=-1), lambda x: R.softmax(x, -1)),
    "softmax0": (lambda x: F.softmax(x, 0), lambda x: R.softmax(x, 0)),
    "log_softmax1": (lambda x: F.log_softmax(x, 1), lambda x: R.log_softmax(x, 1)),
    "log_softmax-1": (lambda x: F.log_softmax(x, dim=-1), lambda x: R.log_softmax(x, -1)),
    "log_softmax0": (lambda x: F.log_softmax(x, 0), lambda x: R.log_softmax(x, 0)),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_forward(name, dtype):
    f, ref = UNARY[name]
    x = (rng(1).standard_normal((3, 4, 5)) * 3).astype(dtype)
    x[0, 0, :2] = [40.0, -40.0]  # softmax shift and sigmoid tails
    expected = ref(x.astype(np.float64))
    for layout, xv in layouts(x):
        y = f(xv)
        check_fresh(y, xv, dtype=dtype)
        np.testing.assert_allclose(y, expected, **tol(dtype), err_msg=layout)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_dtype_policy(name):
    f, ref = UNARY[name]
    for src in (np.int64, np.int32, np.uint8, np.float16, np.bool_):
        x = (np.arange(-6, 6).reshape(3, 4) % 5).astype(src)
        y = f(x)
        assert y.dtype == np.float32, (src, y.dtype)
        np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=2e-6, atol=2e-6)
    y = f([[1, 2], [3, -4]])  # lists
    assert y.dtype == np.float32
    with pytest.raises(TypeError, match="complex"):
        f(np.ones((2, 2), np.complex64))
    with pytest.raises(TypeError, match="input"):
        f(np.array([["a", "b"]]))


def test_unary_scalar_and_empty():
    assert F.relu(np.float64(-2.0)).shape == ()
    assert isinstance(F.relu(-2.0), np.ndarray) and F.relu(-2.0) == 0.0
    assert F.sigmoid(0.0) == np.float32(0.5)
    assert F.softmax(np.float32(3.0), 0) == 1.0 and F.softmax(np.float32(3.0), 0).shape == ()
    assert F.log_softmax(np.float64(3.0), -1) == 0.0
    for f in (F.relu, F.leaky_relu, F.sigmoid, F.tanh, lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 0)):
        for shape in ((0, 3), (2, 0), (0, 0)):
            y = f(np.ones(shape, np.float32))
            assert y.shape == shape and y.dtype == np.float32


def test_unary_nan_inf_propagation():
    nan, inf = math.nan, math.inf
    x = np.array([nan, -inf, inf, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(F.relu(x), [nan, 0, inf, 0, 0, 2])
    np.testing.assert_array_equal(F.leaky_relu(x, 0.1), [nan, -inf, inf, -0.1, 0, 2])
    np.testing.assert_array_equal(F.sigmoid(x)[:3], [nan, 0, 1])
    np.testing.assert_array_equal(F.tanh(x)[:3], [nan, -1, 1])
    # extreme inputs: no overflow warnings (filterwarnings=error), correct tails
    big = np.array([-1000.0, -85.0, -30.0, 30.0, 1000.0], np.float32)
    np.testing.assert_allclose(F.sigmoid(big), R.sigmoid(big), rtol=1e-6, atol=0)
    # softmax: a NaN poisons its row only; +inf or an all -inf row gives NaN (as PyTorch)
    z = np.array([[nan, 1.0, 2.0], [0.0, 1.0, 2.0], [inf, 1.0, 2.0], [-inf, -inf, -inf], [-inf, 0.0, -inf]])
    for f in (F.softmax, F.log_softmax):
        y = f(z, 1)
        assert np.isnan(y[[0, 2, 3]]).all()
        assert np.isfinite(y[1]).all()
    np.testing.assert_array_equal(F.softmax(z, 1)[4], [0, 1, 0])
    np.testing.assert_array_equal(F.log_softmax(z, 1)[4], [-inf, 0, -inf])


def test_softmax_extreme_values_stable():
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e4, -1e4 + 1, -1e4]], np.float32)
    np.testing.assert_allclose(F.softmax(x, 1), R.softmax(x, 1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(F.log_softmax(x, 1), R.log_softmax(x, 1), rtol=1e-6, atol=1e-4)


def test_softmax_dim_errors():
    x = np.ones((2, 3))
    for f in (F.softmax, F.log_softmax):
        with pytest.raises(TypeError, match="dim must be given as an int"):
            f(x, None)
        with pytest.raises(TypeError, match="dim must be an int"):
            f(x, 1.0)
        with pytest.raises(ValueError, match=r"dim=2 is out of range for a 2-D input"):
            f(x, 2)
        with pytest.raises(ValueError, match=r"dim=-3 is out of range"):
            f(x, -3)
        with pytest.raises(ValueError, match=r"dim=1 is out of range for a 0-D input"):
            f(np.float64(1.0), 1)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        F.leaky_relu(x, "0.1")


# ---------------------------------------------------------------------------------------------
# activation backward


def _away_from_zero(shape, seed=0):
    x = rng(seed).uniform(0.1, 2.0, shape) * rng(seed + 1).choice([-1.0, 1.0], shape)
    return x


@pytest.mark.parametrize(
    "name",
    [
        "relu",
        "relu_out",
        "leaky_relu",
        "leaky_relu_neg",
        "sigmoid",
        "tanh",
        "softmax",
        "softmax0",
        "log_softmax",
        "log_softmax-1",
    ],
)
def test_activation_backward_gradcheck(name):
    x = _away_from_zero((3, 4, 2))
    dy = rng(5).standard_normal(x.shape)
    fwd, bwd = {
        "relu": (F.relu, lambda: F.relu_backward(dy, x)),
        "relu_out": (F.relu, lambda: F.relu_backward(dy, F.relu(x))),
        "leaky_relu": (lambda v: F.leaky_relu(v, 0.2), lambda: F.leaky_relu_backward(dy, x, 0.2)),
        "leaky_relu_neg": (lambda v: F.leaky_relu(v, -1.5), lambda: F.leaky_relu_backward(dy, x, -1.5)),
        "sigmoid": (F.sigmoid, lambda: F.sigmoid_backward(dy, F.sigmoid(x))),
        "tanh": (F.tanh, lambda: F.tanh_backward(dy, F.tanh(x))),
        "softmax": (lambda v: F.softmax(v, 1), lambda: F.softmax_backward(dy, F.softmax(x, 1), 1)),
        "softmax0": (lambda v: F.softmax(v, 0), lambda: F.softmax_backward(dy, F.softmax(x, 0), 0)),
        "log_softmax": (lambda v: F.log_softmax(v, 1), lambda: F.log_softmax_backward(dy, F.log_softmax(x, 1), 1)),
        "log_softmax-1": (
            lambda v: F.log_softmax(v, -1),
            lambda: F.log_softmax_backward(dy, F.log_softmax(x, -1), -1),
        ),
    }[name]
    g = bwd()
    check_fresh(g, dy, x, dtype=np.float64)
    gradcheck(fwd, x, dy, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_dtypes_and_layouts(dtype):
    x = _away_from_zero((4, 5)).astype(dtype)
    dy = rng(3).standard_normal((4, 5)).astype(dtype)
    y = F.softmax(x, 1)
    expected = F.softmax_backward(dy.astype(np.float64), y.astype(np.float64), 1)
    for (_, dyv), (_, yv) in zip(layouts(dy), layouts(y)):
        g = F.softmax_backward(dyv, yv, 1)
        check_fresh(g, dyv, yv, dtype=dtype)
        np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)
    # mixed float32/float64 runs in float64; ints become float32
    assert F.relu_backward(dy.astype(np.float32), x.astype(np.float64)).dtype == np.float64
    assert F.tanh_backward(np.ones((2, 2), np.int64), np.zeros((2, 2), np.int32)).dtype == np.float32
    with pytest.raises(TypeError, match="complex"):
        F.sigmoid_backward(np.ones(2, np.complex128), np.ones(2))


def test_activation_backward_values_and_errors():
    x = np.array([-1.0, 0.0, math.nan, 2.0])
    g = np.array([1.0, 2.0, 3.0, 4.0])
    # PyTorch masks with x <= 0: the gradient passes through at NaN, not at 0
    np.testing.assert_array_equal(F.relu_backward(g, x), [0, 0, 3, 4])
    np.testing.assert_array_equal(F.leaky_relu_backward(g, x, 0.5), [0.5, 1, 1.5, 4])
    # a NaN/Inf gradient into a dead ReLU gives 0 (PyTorch selects, it does not multiply)
    np.testing.assert_array_equal(F.relu_backward([math.nan, math.inf, math.nan], [-1.0, 0.0, 1.0]), [0, 0, math.nan])
    # special values for every slope regime (0, (0, 1], > 1, < 0)
    xs = np.array([math.inf, -math.inf, math.nan, -0.0, 0.0, 3.0, -3.0], np.float32)
    for slope in (0.0, 0.25, 1.0, 2.0, -0.5):
        with np.errstate(invalid="ignore"):
            want = [v if v > 0 else v * np.float32(slope) for v in xs]
        np.testing.assert_array_equal(F.leaky_relu(xs, slope), want)
        np.testing.assert_array_equal(np.signbit(F.leaky_relu(xs, slope)), np.signbit(want))
    with pytest.raises(ValueError, match=r"grad_output shape \(3,\) does not match input shape \(4,\)"):
        F.relu_backward(g[:3], x)
    with pytest.raises(ValueError, match=r"grad_output shape \(4,\) does not match output shape \(2, 2\)"):
        F.sigmoid_backward(g, x.reshape(2, 2))
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        F.softmax_backward(g, x, 2)
    # 0-d and empty arrays
    for back in (
        F.relu_backward,
        F.leaky_relu_backward,
        lambda g, v: F.leaky_relu_backward(g, v, -2.0),
        F.sigmoid_backward,
        F.tanh_backward,
    ):
        r = back(np.float32(2.0), np.float32(-1.0))
        assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float32
        assert back(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)
    assert F.leaky_relu_backward(np.float32(2.0), np.float32(-1.0), -2.0) == -4.0
    assert F.softmax_backward(np.zeros((2, 0)), np.zeros((2, 0)), 1).shape == (2, 0)
    assert F.softmax_backward(np.float64(2.0), np.float64(1.0), 0) == 0.0
    assert F.log_softmax_backward(np.float64(2.0), np.float64(0.0), -1) == 0.0


# ---------------------------------------------------------------------------------------------
# cross_entropy

CE_CASES = [
    # (logits shape, target shape)
    ((5, 4), (5,)),
    ((3, 4, 2, 3), (3, 2, 3)),
    ((2, 3, 5), (2, 5)),
    ((6,), ()),
]


def _ce_data(lshape, tshape, seed=0, ignore=True, ignore_index=-100):
    r = rng(seed)
    z = r.standard_normal(lshape) * 2
    C = lshape[0] if len(lshape) == 1 else lshape[1]
    t = r.integers(0, C, tshape)
    if ignore and t.size > 1:
        t.flat[1] = ignore_index
    return z, t


@pytest.mark.parametrize("shapes", CE_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_forward(shapes, reduction, ls, dtype):
    z, t = _ce_data(*shapes)
    z = z.astype(dtype)
    expected = R.cross_entropy(z.astype(np.float64), t, reduction, -100, ls)
    for layout, zv in layouts(z):
        y = F.cross_entropy(zv, t, reduction=reduction, label_smoothing=ls)
        check_fresh(y, zv, dtype=dtype)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, **tol(dtype), err_msg=layout)


@pytest.mark.parametrize("ignore_index", [-1, 0, 2, 7])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_ignore_index(ignore_index, reduction):
    z, t = _ce_data((6, 3), (6,), seed=2, ignore=True, ignore_index=ignore_index)
    y = F.cross_entropy(z, t, reduction, ignore_index, 0.1)
    np.testing.assert_allclose(y, R.cross_entropy(z, t, reduction, ignore_index, 0.1), rtol=1e-12, atol=1e-12)


def test_cross_entropy_target_dtypes_and_layouts():
    z, t = _ce_data((5, 4), (5,), seed=3)
    expected = R.cross_entropy(z, t)
    for tdt in (np.int64, np.int32, np.int16, np.int8):
        np.testing.assert_allclose(F.cross_entropy(z, t.astype(tdt)), expected, rtol=1e-12)
    tu = np.where(t < 0, 0, t).astype(np.uint8)
    np.testing.assert_allclose(F.cross_entropy(z, tu), R.cross_entropy(z, tu), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(z, t.tolist()), expected, rtol=1e-12)
    for _, tv in layouts(t):
        np.testing.assert_allclose(F.cross_entropy(z, tv), expected, rtol=1e-12)
    # integer logits compute in float32
    y = F.cross_entropy(np.arange(8).reshape(2, 4), [1, 3])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, R.cross_entropy(np.arange(8).reshape(2, 4), np.array([1, 3])), rtol=1e-6)
    # unbatched target given as shape (1,), as PyTorch allows
    np.testing.assert_allclose(F.cross_entropy(z[0], np.array([2])), R.cross_entropy(z[0], np.array(2)), rtol=1e-12)


@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("lshape", [(4, 5), (2, 3, 4), (5,)])
def test_cross_entropy_probability_targets(ls, reduction, lshape):
    r = rng(4)
    z = r.standard_normal(lshape)
    p = r.random(lshape)
    y = F.cross_entropy(z, p, reduction, label_smoothing=ls)
    expected = R.cross_entropy(z, p, reduction, label_smoothing=ls)
    assert y.shape == expected.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # float32 target with float64 logits -> float64; float32 both -> float32
    assert F.cross_entropy(z.astype(np.float32), p.astype(np.float32)).dtype == np.float32
    assert F.cross_entropy(z.astype(np.float32), p).dtype == np.float64


def test_cross_entropy_edge_cases():
    # all targets ignored: mean is NaN (0/0), sum is 0, as PyTorch
    z = rng(0).standard_normal((3, 4))
    t = np.full(3, -100)
    assert np.isnan(F.cross_entropy(z, t))
    assert np.isnan(F.cross_entropy(z, t, label_smoothing=0.2))
    assert F.cross_entropy(z, t, "sum") == 0.0
    np.testing.assert_array_equal(F.cross_entropy(z, t, "none"), np.zeros(3))
    # empty batch
    ze = np.zeros((0, 4), np.float32)
    te = np.zeros(0, np.int64)
    assert np.isnan(F.cross_entropy(ze, te))
    assert F.cross_entropy(ze, te, "sum") == 0.0
    assert F.cross_entropy(ze, te, "none").shape == (0,)
    assert np.isnan(F.cross_entropy(ze, np.zeros((0, 4), np.float32)))
    np.testing.assert_array_equal(F.cross_entropy_backward(1.0, ze, te), ze)
    # NaN/Inf logits propagate
    zn = z.copy()
    zn[1, 2] = math.nan
    assert np.isnan(F.cross_entropy(zn, [0, 1, 2]))
    out = F.cross_entropy(zn, [0, 1, 2], reduction="none")
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    zi = z.copy()
    zi[0, 0] = math.inf
    assert np.isnan(F.cross_entropy(zi, [0, 1, 2]))
    # very confident logits stay finite
    big = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    np.testing.assert_allclose(F.cross_entropy(big, [1]), 2000.0, rtol=1e-6)


def test_cross_entropy_errors():
    z = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"target value 5 is out of range for 5 classes"):
        F.cross_entropy(z, [2, 5, 1])
    with pytest.raises(ValueError, match=r"target value -1 is out of range"):
        F.cross_entropy(z, [2, -1, 1])
    F.cross_entropy(z, [2, -1, 1], ignore_index=-1)  # fine when ignored
    with pytest.raises(ValueError, match=r"target value 9 is out of range"):
        F.cross_entropy(np.zeros((1, 5, 2)), [[0, 9]])
    with pytest.raises(ValueError, match=r"target value 18446744073709551615 is out of range"):
        F.cross_entropy(z, np.array([1, 2, 2**64 - 1], np.uint64))
    with pytest.raises(TypeError, match=r"target has float dtype float64 and shape \(3,\)"):
        F.cross_entropy(z, [2.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="target must be an integer array"):
        F.cross_entropy(z, np.array([True, False, True]))
    with pytest.raises(TypeError, match="target is complex"):
        F.cross_entropy(z, np.zeros(3, np.complex64))
    with pytest.raises(TypeError, match="input is complex"):
        F.cross_entropy(z.astype(np.complex64), [1, 2, 3])
    with pytest.raises(
        ValueError, match=r"target shape \(2,\) does not match input shape \(3, 5\); expected target shape \(3,\)"
    ):
        F.cross_entropy(z, [1, 2])
    with pytest.raises(ValueError, match=r"expected target shape \(3, 2\)"):
        F.cross_entropy(np.zeros((3, 5, 2)), [[1, 2]] * 3 + [[1, 1]])
    with pytest.raises(ValueError, match=r"unbatched input of shape \(5,\), target must be a single class index"):
        F.cross_entropy(np.zeros(5), [1, 2])
    with pytest.raises(ValueError, match="0-d array"):
        F.cross_entropy(np.float64(1.0), 0)
    with pytest.raises(ValueError, match=r"no classes \(C = 0\)"):
        F.cross_entropy(np.zeros((2, 0)), [-100, -100])
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(z, [1, 2, 3], label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        F.cross_entropy(z, [1, 2, 3], label_smoothing=-0.1)
    with pytest.raises(ValueError, match=r"reduction='avg' is not valid"):
        F.cross_entropy(z, [1, 2, 3], reduction="avg")
    with pytest.raises(TypeError, match="reduction must be a str"):
        F.cross_entropy(z, [1, 2, 3], reduction=None)
    with pytest.raises(ValueError, match="ignore_index=1 is not supported with probability"):
        F.cross_entropy(z, np.ones((3, 5)), ignore_index=1)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        F.cross_entropy(z, [1, 2, 3], ignore_index=1.5)
    with pytest.raises(ValueError, match=r"grad_output must be a scalar for reduction='mean', got shape \(3,\)"):
        F.cross_entropy_backward(np.ones(3), z, [1, 2, 3])
    with pytest.raises(ValueError, match=r"grad_output shape \(\) does not match the loss shape \(3,\)"):
        F.cross_entropy_backward(1.0, z, [1, 2, 3], reduction="none")


@pytest.mark.parametrize("shapes", CE_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_cross_entropy_backward_gradcheck(shapes, reduction, ls):
    z, t = _ce_data(*shapes, seed=6)
    loss_shape = np.asarray(R.cross_entropy(z, t, reduction)).shape
    dy = rng(7).standard_normal(loss_shape) if reduction == "none" else np.asarray(1.7)
    g = F.cross_entropy_backward(dy, z, t, reduction, -100, ls)
    check_fresh(g, z, dtype=np.float64)
    assert g.shape == z.shape
    gradcheck(lambda v: F.cross_entropy(v, t, reduction, label_smoothing=ls), z, dy, g)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("lshape", [(4, 3), (2, 3, 2), (4,)])
def test_cross_entropy_backward_probability_gradcheck(reduction, lshape):
    z = rng(8).standard_normal(lshape)
    p = rng(9).random(lshape)  # unnormalised on purpose: the gradient must use sum(q)
    loss_shape = np.asarray(R.cross_entropy(z, p, reduction)).shape
    dy = rng(10).standard_normal(loss_shape) if reduction == "none" else np.asarray(0.6)
    g = F.cross_entropy_backward(dy, z, p, reduction, label_smoothing=0.2)
    gradcheck(lambda v: F.cross_entropy(v, p, reduction, label_smoothing=0.2), z, dy, g)


def test_cross_entropy_backward_ignored_and_dtypes():
    z = rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(F.cross_entropy_backward(1.0, z, [-100] * 3, label_smoothing=0.1), np.zeros((3, 4)))
    g = F.cross_entropy_backward(1.0, z, [0, -100, 3], label_smoothing=0.1)
    np.testing.assert_array_equal(g[1], 0.0)
    assert F.cross_entropy_backward(np.float32(1.0), z.astype(np.float32), [0, 1, 2]).dtype == np.float32
    assert F.cross_entropy_backward(np.float64(1.0), z.astype(np.float32), [0, 1, 2]).dtype == np.float64
    g32 = F.cross_entropy_backward(1.0, np.asfortranarray(z.astype(np.float32)), [0, 1, 2], label_smoothing=0.2)
    check_fresh(g32, dtype=np.float32)
    np.testing.assert_allclose(
        g32, F.cross_entropy_backward(1.0, z, [0, 1, 2], label_smoothing=0.2), rtol=1e-5, atol=1e-7
    )


# ---------------------------------------------------------------------------------------------
# mse_loss

MSE_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 5)), ((2, 3), ()), ((), ())]


@pytest.mark.parametrize("shapes", MSE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_forward(shapes, reduction, dtype):
    r = rng(11)
    a = r.standard_normal(shapes[0]).astype(dtype)
    b = r.standard_normal(shapes[1]).astype(dtype)
    expected = R.mse_loss(a, b, reduction)
    for (_, av), (_, bv) in zip(layouts(a), layouts(b)):
        y = F.mse_loss(av, bv, reduction)
        check_fresh(y, av, bv, dtype=dtype)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, **tol(dtype))


def test_mse_dtypes_edges_errors():
    assert F.mse_loss(np.arange(4), np.ones(4, np.int32)).dtype == np.float32
    assert F.mse_loss(np.ones(4, np.float32), np.ones(4)).dtype == np.float64
    assert F.mse_loss([1, 2], [0.5, 0.5], "sum") == np.float32(2.5)
    # Python scalars are weak (as in PyTorch): they do not promote float32 to float64
    assert F.mse_loss(np.ones(3, np.float32), 0.5).dtype == np.float32
    assert F.mse_loss(np.ones(3, np.float32), np.float64(0.5)).dtype == np.float64
    assert F.mse_loss(2.0, 0.5).dtype == np.float64
    assert F.mse_loss_backward(1.0, np.ones(3, np.float32), 0.5)[0].dtype == np.float32
    assert np.isnan(F.mse_loss(np.zeros(0), np.zeros(0)))
    assert F.mse_loss(np.zeros(0), np.zeros(0), "sum") == 0.0
    assert F.mse_loss(np.zeros((0, 3)), np.zeros(3), "none").shape == (0, 3)
    assert np.isnan(F.mse_loss([1.0, math.nan], [0.0, 0.0]))
    assert F.mse_loss([math.inf], [0.0]) == math.inf
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(2,\) do not broadcast"):
        F.mse_loss(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="reduction='elementwise_mean' is not valid"):
        F.mse_loss(np.zeros(3), np.zeros(3), "elementwise_mean")
    with pytest.raises(TypeError, match="complex"):
        F.mse_loss(np.zeros(3), np.zeros(3, np.complex128))
    with pytest.raises(ValueError, match=r"grad_output shape \(3,\) does not match the loss shape \(3, 3\)"):
        F.mse_loss_backward(np.ones(3), np.zeros((3, 1)), np.zeros(3), "none")
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        F.mse_loss_backward(np.ones(3), np.zeros(3), np.zeros(3), "sum")


@pytest.mark.parametrize("shapes", MSE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_backward_gradcheck(shapes, reduction):
    r = rng(12)
    a = r.standard_normal(shapes[0])
    b = r.standard_normal(shapes[1])
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    dy = r.standard_normal(out_shape) if reduction == "none" else np.asarray(1.3)
    ga, gb = F.mse_loss_backward(dy, a, b, reduction)
    assert ga.shape == a.shape and gb.shape == b.shape
    check_fresh(ga, a, b, dy, dtype=np.float64)
    check_fresh(gb, a, b, dy, ga, dtype=np.float64)
    gradcheck(lambda v: F.mse_loss(v, b, reduction), a, dy, ga)
    gradcheck(lambda v: F.mse_loss(a, v, reduction), b, dy, gb)
    ga2, gb2 = F.mse_loss_backward(dy, a, b, reduction, needs_input_grad=(False, True))
    assert ga2 is None
    np.testing.assert_array_equal(gb2, gb)
    assert F.mse_loss_backward(dy, a, b, reduction, needs_input_grad=(True, False))[1] is None


# ---------------------------------------------------------------------------------------------
# flatten


def test_flatten():
    x = rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for s, e in [(1, -1), (0, -1), (1, 2), (2, 3), (-2, -1), (0, 0), (3, 3), (-4, 1)]:
        y = F.flatten(x, s, e)
        np.testing.assert_array_equal(y, R.flatten(x, s, e))
        assert y.dtype == np.float32
    assert F.flatten(x).shape == (2, 60)
    assert np.shares_memory(F.flatten(x), x)  # a view when possible, like PyTorch
    xt = x.transpose(0, 3, 2, 1)
    np.testing.assert_array_equal(F.flatten(xt), R.flatten(xt))
    assert F.flatten(np.float64(3.0), 0).shape == (1,)
    assert F.flatten(np.zeros((0, 3, 2))).shape == (0, 6)
    assert F.flatten(np.arange(6).reshape(2, 3)).dtype == np.float32  # dtype policy
    assert F.flatten(np.ones((2, 3), np.float64)).dtype == np.float64
    with pytest.raises(ValueError, match="start_dim=3 comes after end_dim=1"):
        F.flatten(x, 3, 1)
    with pytest.raises(ValueError, match=r"start_dim=1 is out of range for a 1-D input"):
        F.flatten(np.ones(3))
    with pytest.raises(ValueError, match="end_dim=4 is out of range"):
        F.flatten(x, 0, 4)
    with pytest.raises(TypeError, match="complex"):
        F.flatten(np.ones((2, 2), np.complex64))
    g = F.flatten_backward(np.ones((2, 60)), x.shape)
    assert g.shape == x.shape and g.flags.c_contiguous
    with pytest.raises(ValueError, match=r"grad_output shape \(2, 59\) has 118 elements"):
        F.flatten_backward(np.ones((2, 59)), x.shape)


# ---------------------------------------------------------------------------------------------
# dropout


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_values(dtype):
    x = rng(0).uniform(1, 2, (200, 500)).astype(dtype)
    p = 0.3
    y = F.dropout(x, p, generator=np.random.default_rng(1))
    check_fresh(y, x, dtype=dtype)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert abs(kept.mean() - (1 - p)) < 0.01  # 100000 draws: std of the mean is 0.0014
    # reproducible with an explicit generator (alias rng=) and with manual_seed
    np.testing.assert_array_equal(y, F.dropout(x, p, rng=np.random.default_rng(1)))
    E.manual_seed(123)
    a = F.dropout(x, p)
    E.manual_seed(123)
    b = F.dropout(x, p)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, F.dropout(x, p))
    for _, xv in layouts(x[:20, :30]):
        yv = F.dropout(xv, 0.5, generator=np.random.default_rng(5))
        np.testing.assert_array_equal(yv, F.dropout(x[:20, :30], 0.5, generator=np.random.default_rng(5)))
        check_fresh(yv, xv)


def test_dropout_special_cases():
    x = np.array([[1.0, math.nan, math.inf, -2.0]], np.float32)
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y, [[0, math.nan, math.nan, 0]])  # x * 0: NaN*0 and Inf*0 are NaN, as PyTorch
    y0 = F.dropout(x, 0.0)
    np.testing.assert_array_equal(y0, x)
    check_fresh(y0, x)
    assert F.dropout(x, 0.5, training=False) is x
    xi = np.arange(4)
    assert F.dropout(xi, 0.5, training=False).dtype == np.float32
    assert F.dropout(xi, 0.5).dtype == np.float32
    assert F.dropout(np.float64(2.0), 0.5).shape == ()
    assert F.dropout(np.zeros((0, 3)), 0.5).shape == (0, 3)
    for p in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="dropout probability p has to be between 0 and 1"):
            F.dropout(x, p)
    with pytest.raises(TypeError, match="p must be a real number"):
        F.dropout(x, "0.5")
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        F.dropout(x, 0.5, generator=np.random.RandomState(0))
    with pytest.raises(TypeError, match="not both"):
        F.dropout(x, 0.5, generator=np.random.default_rng(), rng=np.random.default_rng())
    with pytest.raises(TypeError, match="complex"):
        F.dropout(np.ones(2, np.complex64))
    with pytest.raises(TypeError, match="seed must be an int"):
        E.manual_seed(1.5)
    assert isinstance(E.manual_seed(-3), np.random.Generator)
    g = E.manual_seed(7)
    assert E.default_generator() is g


@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_dropout_backward(p):
    x = rng(0).standard_normal((5, 6))
    dy = rng(1).standard_normal((5, 6))
    y, mask = E._dropout_with_mask(x, p, generator=np.random.default_rng(3))
    g = F.dropout_backward(dy, mask, p)
    check_fresh(g, dy)
    # the same generator state gives the same mask, so dropout is a fixed linear map here
    gradcheck(lambda v: F.dropout(v, p, generator=np.random.default_rng(3)), x, dy, g)
    if mask is not None:
        np.testing.assert_array_equal(mask, y != 0)
        assert mask.dtype == np.bool_
    y_eval, mask_eval = E._dropout_with_mask(x, p, training=False)
    assert mask_eval is None and y_eval is x
    np.testing.assert_array_equal(F.dropout_backward(dy, None, p), dy)
    with pytest.raises(ValueError, match=r"grad_output shape \(5, 6\) does not match mask shape \(6,\)"):
        F.dropout_backward(dy, np.ones(6, bool), 0.5)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        F.dropout_backward(dy, np.ones((5, 6)), 0.5)


# ---------------------------------------------------------------------------------------------
# batch_norm

BN_SHAPES = [(6, 3), (4, 3, 5), (3, 2, 4, 5)]


def _bn_data(shape, dtype=np.float64, seed=0):
    r = rng(seed)
    C = shape[1]
    x = (r.standard_normal(shape) * 2 + 1).astype(dtype)
    return (
        x,
        r.standard_normal(C).astype(dtype),
        r.uniform(0.5, 2, C).astype(dtype),
        r.standard_normal(C).astype(dtype),
        r.standard_normal(C).astype(dtype),
    )


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_forward(shape, training, affine, dtype):
    x, rm, rv, w, b = _bn_data(shape, dtype)
    if not affine:
        w = b = None
    exp_y, exp_rm, exp_rv = R.batch_norm(x, rm, rv, w, b, training, 0.3, 1e-3)
    for layout, xv in layouts(x):
        rm2, rv2 = rm.copy(), rv.copy()
        y = F.batch_norm(xv, rm2, rv2, w, b, training=training, momentum=0.3, eps=1e-3)
        check_fresh(y, xv, rm2, rv2, dtype=dtype)
        np.testing.assert_allclose(y, exp_y, **tol(dtype), err_msg=layout)
        # running statistics updated in place (training) or untouched (eval)
        np.testing.assert_allclose(rm2, exp_rm, **tol(dtype))
        np.testing.assert_allclose(rv2, exp_rv, **tol(dtype))
        assert rm2.dtype == dtype and rv2.dtype == dtype


def test_batch_norm_running_stats_and_options():
    x, rm, rv, w, b = _bn_data((8, 3, 2))
    # default momentum 0.1, eps 1e-5; repeated updates accumulate
    rm2, rv2 = rm.copy(), rv.copy()
    exp_rm, exp_rv = rm.copy(), rv.copy()
    for k in range(3):
        xk = x + k
        F.batch_norm(xk, rm2, rv2, training=True)
        _, exp_rm, exp_rv = R.batch_norm(xk, exp_rm, exp_rv, training=True)
    np.testing.assert_allclose(rm2, exp_rm, rtol=1e-12)
    np.testing.assert_allclose(rv2, exp_rv, rtol=1e-12)
    # no running statistics in training: batch statistics, nothing to update
    np.testing.assert_allclose(
        F.batch_norm(x, None, None, w, b, True), R.batch_norm(x, None, None, w, b, True)[0], rtol=1e-12
    )
    # float32 running stats with float64 input: computes in float64, writes back float32 in place
    rm32, rv32 = rm.astype(np.float32), rv.astype(np.float32)
    y = F.batch_norm(x, rm32, rv32, training=True, momentum=0.5)
    assert y.dtype == np.float64 and rm32.dtype == np.float32
    _, e_rm, e_rv = R.batch_norm(x, rm.astype(np.float32), rv.astype(np.float32), training=True, momentum=0.5)
    np.testing.assert_allclose(rm32, e_rm, rtol=1e-6)
    np.testing.assert_allclose(rv32, e_rv, rtol=1e-6)
    # non-contiguous running stats are updated through the view
    base = np.zeros((3, 2))
    base[:, 0] = rm
    view = base[:, 0]
    F.batch_norm(x, view, rv.copy(), training=True)
    np.testing.assert_allclose(base[:, 0], R.batch_norm(x, rm, rv, training=True)[1], rtol=1e-12)
    # eval accepts lists and int input (-> float32)
    y = F.batch_norm(np.arange(12).reshape(4, 3), [0, 1, 2], [1, 1, 4])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, R.batch_norm(np.arange(12).reshape(4, 3), [0, 1, 2], [1, 1, 4])[0], rtol=1e-6)
    # saved statistics from the forward variant
    y, sm, si = batch_norm_forward(x, None, None, training=True)
    np.testing.assert_allclose(sm, x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(si, 1 / np.sqrt(x.var(axis=(0, 2)) + 1e-5), rtol=1e-12)
    _, sm, si = batch_norm_forward(x, rm, rv, training=False)
    np.testing.assert_allclose(sm, rm, rtol=1e-12)
    np.testing.assert_allclose(si, 1 / np.sqrt(rv + 1e-5), rtol=1e-12)


def test_batch_norm_edges_and_nan():
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(np.zeros((0, 3)), rm, rv, training=True)
    assert y.shape == (0, 3)
    np.testing.assert_array_equal(rm, 0)  # empty batch: running stats unchanged, as PyTorch
    np.testing.assert_array_equal(rv, 1)
    assert F.batch_norm(np.zeros((2, 3, 0)), rm, rv, training=True).shape == (2, 3, 0)
    assert F.batch_norm(np.zeros((0, 3)), rm, rv).shape == (0, 3)
    # two values per channel is enough
    F.batch_norm(np.ones((1, 3, 2)), rm, rv, training=True)
    # NaN in one channel poisons that channel only (and its running stats)
    x = rng(0).standard_normal((4, 3))
    x[2, 1] = math.nan
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, rm, rv, training=True)
    assert np.isnan(y[:, 1]).all() and np.isfinite(y[:, [0, 2]]).all()
    assert np.isnan(rm[1]) and np.isnan(rv[1]) and np.isfinite(rm[[0, 2]]).all()
    y = F.batch_norm(x, np.zeros(3), np.ones(3))
    assert np.isnan(y[2, 1]) and np.isfinite(np.delete(y.ravel(), 7)).all()


def test_batch_norm_errors():
    x = np.ones((4, 3))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(
        ValueError, match=r"expected more than 1 value per channel when training, got input shape \(1, 3\)"
    ):
        F.batch_norm(np.ones((1, 3)), rm, rv, training=True)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3, 1, 1\)"):
        F.batch_norm(np.ones((1, 3, 1, 1)), None, None, training=True)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C\).*got shape \(3,\)"):
        F.batch_norm(np.ones(3), rm, rv)
    with pytest.raises(ValueError, match=r"running_mean should contain 3 elements .*got shape \(4,\)"):
        F.batch_norm(x, np.zeros(4), rv)
    with pytest.raises(ValueError, match=r"weight should contain 3 elements .*got shape \(2,\)"):
        F.batch_norm(x, rm, rv, weight=np.ones(2))
    with pytest.raises(ValueError, match=r"bias should contain 3 elements"):
        F.batch_norm(x, rm, rv, bias=np.ones(5))
    with pytest.raises(ValueError, match="must be given in evaluation mode"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="both be None or neither"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(TypeError, match="running_mean must be a NumPy array .* got list"):
        F.batch_norm(x, [0.0, 0, 0], rv, training=True)
    with pytest.raises(TypeError, match="running_var must be a writable float array.*int64"):
        F.batch_norm(x, rm, np.ones(3, np.int64), training=True)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        F.batch_norm(x, rm, ro, training=True)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)
    with pytest.raises(TypeError, match="complex"):
        F.batch_norm(x.astype(np.complex64), rm, rv)
    with pytest.raises(ValueError, match=r"grad_output shape \(4, 2\) does not match input shape \(4, 3\)"):
        F.batch_norm_backward(np.ones((4, 2)), x, None, rm, rv, True)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_backward_gradcheck(shape, training, affine):
    x, rm, rv, w, b = _bn_data(shape, seed=3)
    if not affine:
        w = b = None
    dy = rng(4).standard_normal(shape)
    stats = (None, None) if training else (rm, rv)
    _, sm, si = batch_norm_forward(x, *stats, w, b, training=training)
    dx, dw, db = F.batch_norm_backward(dy, x, w, sm, si, training)
    check_fresh(dx, dy, x, dtype=np.float64)
    gradcheck(lambda v: F.batch_norm(v, *stats, w, b, training), x, dy, dx, rtol=1e-5, atol=1e-7)
    if affine:
        gradcheck(lambda v: F.batch_norm(x, *stats, v, b, training), w, dy, dw)
        gradcheck(lambda v: F.batch_norm(x, *stats, w, v, training), b, dy, db)
    else:
        assert dw is None
        np.testing.assert_allclose(db, dy.sum(axis=(0,) + tuple(range(2, dy.ndim))), rtol=1e-12)
    # flags: unneeded gradients are None, the others unchanged
    for flags in [(True, False, False), (False, True, False), (False, False, True), (False, False, False)]:
        got = F.batch_norm_backward(dy, x, w, sm, si, training, needs_input_grad=flags)
        for want, full, value in zip(flags, (dx, dw, db), got):
            if want and full is not None:
                np.testing.assert_allclose(value, full, rtol=1e-12, atol=1e-14)
            else:
                assert value is None


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_float32_and_layouts(training):
    x, rm, rv, w, b = _bn_data((4, 3, 2, 3), np.float32, seed=5)
    dy = rng(6).standard_normal(x.shape).astype(np.float32)
    stats = (None, None) if training else (rm, rv)
    _, sm, si = batch_norm_forward(x, *stats, w, b, training=training)
    assert sm.dtype == np.float32 and si.dtype == np.float32
    exp = F.batch_norm_backward(
        dy.astype(np.float64),
        x.astype(np.float64),
        w.astype(np.float64),
        sm.astype(np.float64),
        si.astype(np.float64),
        training,
    )
    for (_, dyv), (_, xv) in zip(layouts(dy), layouts(x)):
        got = F.batch_norm_backward(dyv, xv, w, sm, si, training)
        for g, e in zip(got, exp):
            assert g.dtype == np.float32 and g.flags.c_contiguous
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("shapes", [((1, 3, 1), (3, 1)), ((3, 1, 1, 1), (1, 1, 3))])
def test_batch_norm_tensor_params_of_other_shapes(shapes):
    # weight and bias may have any shape with C elements (as the array path accepts);
    # through autograd their gradients come back in that shape, equal to the (C,) case's
    import fastconv

    x, _, _, w, b = _bn_data((4, 3, 2, 3), np.float64, seed=7)
    dy = rng(8).standard_normal(x.shape)

    def grads(wshape, bshape):
        xt = fastconv.Tensor(x, requires_grad=True)
        wt = fastconv.Tensor(w.reshape(wshape), requires_grad=True)
        bt = fastconv.Tensor(b.reshape(bshape), requires_grad=True)
        y = F.batch_norm(xt, None, None, wt, bt, training=True)
        (y * fastconv.Tensor(dy)).sum().backward()
        return xt.grad, wt.grad, bt.grad

    flat = grads((3,), (3,))
    other = grads(*shapes)
    assert other[1].shape == shapes[0] and other[2].shape == shapes[1]
    for g, e in zip(other, flat):
        np.testing.assert_array_equal(np.asarray(g).ravel(), np.asarray(e).ravel())
    # and against the array path's backward
    _, sm, si = batch_norm_forward(x, None, None, w, b, training=True)
    exp = F.batch_norm_backward(dy, x, w, sm, si, True)
    for g, e in zip(other, exp):
        np.testing.assert_allclose(np.asarray(g).ravel(), e.ravel(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# PyTorch parity (skipped when torch is absent; nothing above imports it)


def _t(a, requires_grad=False):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity_activations(dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = (rng(0).standard_normal((4, 5, 3)) * 3).astype(dtype)
    x.flat[:10] = [0.0, math.nan, math.inf, -math.inf, -0.0, math.nan, math.inf, -math.inf, -0.0, -1.0]
    x.flat[20:23] = -2.0
    dy = rng(1).standard_normal(x.shape).astype(dtype)
    dy.flat[5:11] = [math.nan, math.inf, -math.inf, math.nan, math.inf, 0.0]  # where x = nan, inf, -inf, -0, ...
    dy.flat[20:23] = [math.nan, math.inf, -math.inf]
    cases = [
        (F.relu, tf.relu, lambda g, xx, y: F.relu_backward(g, xx)),
        (F.relu, tf.relu, lambda g, xx, y: F.relu_backward(g, y)),
        (F.sigmoid, torch.sigmoid, lambda g, xx, y: F.sigmoid_backward(g, y)),
        (F.tanh, torch.tanh, lambda g, xx, y: F.tanh_backward(g, y)),
    ]
    for slope in (0.2, 0.0, 1.0, 2.5, -0.5):
        cases.append(
            (
                lambda v, s=slope: F.leaky_relu(v, s),
                lambda v, s=slope: tf.leaky_relu(v, s),
                lambda g, xx, y, s=slope: F.leaky_relu_backward(g, xx, s),
            )
        )
    for dim in (0, 1, -1):
        cases.append(
            (
                lambda v, d=dim: F.softmax(v, d),
                lambda v, d=dim: tf.softmax(v, d),
                lambda g, xx, y, d=dim: F.softmax_backward(g, y, d),
            )
        )
        cases.append(
            (
                lambda v, d=dim: F.log_softmax(v, d),
                lambda v, d=dim: tf.log_softmax(v, d),
                lambda g, xx, y, d=dim: F.log_softmax_backward(g, y, d),
            )
        )
    rt = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for ours, theirs, back in cases:
        xt = _t(x, True)
        yt = theirs(xt)
        yt.backward(_t(dy))
        y = ours(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), **rt)
        np.testing.assert_allclose(back(dy, x, y), xt.grad.numpy(), **rt)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity_cross_entropy(reduction, ls, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rt = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    cases = []
    for lshape, tshape in CE_CASES:
        z, t = _ce_data(lshape, tshape, seed=13)
        cases.append((z.astype(dtype), t, -100))
    z, t = _ce_data((6, 4), (6,), seed=14, ignore_index=2)
    cases.append((z.astype(dtype), t, 2))
    cases.append((z.astype(dtype), np.full(6, -100), -100))  # all ignored
    cases.append((np.zeros((0, 4), dtype), np.zeros(0, np.int64), -100))  # empty batch
    for lshape in [(5, 4), (2, 3, 4), (5,)]:  # probability targets
        cases.append((rng(15).standard_normal(lshape).astype(dtype), rng(16).random(lshape).astype(dtype), -100))
    for z, t, ii in cases:
        zt = _t(z, True)
        yt = tf.cross_entropy(zt, _t(t), reduction=reduction, ignore_index=ii, label_smoothing=ls)
        dy = rng(17).standard_normal(tuple(yt.shape)).astype(dtype)
        yt.backward(_t(dy))
        y = F.cross_entropy(z, t, reduction, ii, ls)
        assert y.shape == tuple(yt.shape)
        np.testing.assert_allclose(y, yt.detach().numpy(), **rt)
        g = F.cross_entropy_backward(dy, z, t, reduction, ii, ls)
        np.testing.assert_allclose(g, zt.grad.numpy(), **rt)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", MSE_SHAPES)
def test_torch_parity_mse(reduction, shapes):
    torch = pytest.importorskip("torch")
    a = rng(20).standard_normal(shapes[0])
    b = rng(21).standard_normal(shapes[1])
    at, bt = _t(a, True), _t(b, True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when the shapes differ
        yt = torch.nn.functional.mse_loss(at, bt, reduction=reduction)
    dy = rng(22).standard_normal(tuple(yt.shape))
    yt.backward(_t(dy))
    np.testing.assert_allclose(F.mse_loss(a, b, reduction), yt.detach().numpy(), rtol=1e-12)
    ga, gb = F.mse_loss_backward(dy, a, b, reduction)
    np.testing.assert_allclose(ga, at.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_torch_parity_flatten_dropout():
    torch = pytest.importorskip("torch")
    x = rng(0).standard_normal((2, 3, 4, 5))
    for s, e in [(1, -1), (0, -1), (1, 2), (-1, -1)]:
        assert F.flatten(x, s, e).shape == tuple(torch.flatten(_t(x), s, e).shape)
    # dropout: torch's own mask, read back from its output, gives the same values and gradient
    xt = _t(x, True)
    yt = torch.nn.functional.dropout(xt, 0.3)
    dy = rng(1).standard_normal(x.shape)
    yt.backward(_t(dy))
    mask = yt.detach().numpy() != 0
    np.testing.assert_allclose(yt.detach().numpy(), np.where(mask, x / 0.7, 0), rtol=1e-14)
    np.testing.assert_allclose(F.dropout_backward(dy, mask, 0.3), xt.grad.numpy(), rtol=1e-14)
    xn = np.array([1.0, math.nan, math.inf])
    np.testing.assert_array_equal(F.dropout(xn, 1.0), torch.nn.functional.dropout(_t(xn), 1.0).numpy())


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity_batch_norm(shape, training, dtype):
    torch = pytest.importorskip("torch")
    x, rm, rv, w, b = _bn_data(shape, dtype, seed=30)
    dy = rng(31).standard_normal(shape).astype(dtype)
    rt = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    for affine in (True, False):
        xt = _t(x, True)
        wt = _t(w, True) if affine else None
        bt = _t(b, True) if affine else None
        rmt, rvt = _t(rm), _t(rv)
        yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.2, eps=1e-4)
        yt.backward(_t(dy))
        rm2, rv2 = rm.copy(), rv.copy()
        wa, ba = (w, b) if affine else (None, None)
        y, sm, si = batch_norm_forward(x, rm2, rv2, wa, ba, training=training, momentum=0.2, eps=1e-4)
        np.testing.assert_allclose(y, yt.detach().numpy(), **rt)
        np.testing.assert_allclose(rm2, rmt.numpy(), **rt)
        np.testing.assert_allclose(rv2, rvt.numpy(), **rt)
        dx, dw, db = F.batch_norm_backward(dy, x, wa, sm, si, training)
        np.testing.assert_allclose(dx, xt.grad.numpy(), **rt)
        if affine:
            np.testing.assert_allclose(dw, wt.grad.numpy(), **rt)
            np.testing.assert_allclose(db, bt.grad.numpy(), **rt)
