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
