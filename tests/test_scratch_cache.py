"""Large results come from the scratch cache and go back to it when freed."""

import gc
import pickle

import numpy as np
import pytest

import fastconv.functional as F
from fastconv import _core

MIN = _core.scratch_cache_info()[2]
pytestmark = pytest.mark.skipif(MIN == 0, reason="no scratch cache in this build (AddressSanitizer)")


def _addr(a):
    return a.__array_interface__["data"][0]


def test_large_result_is_a_cache_block_given_back_on_free():
    _core.scratch_cache_clear()
    x = np.random.default_rng(0).standard_normal((4, 8, 64, 64)).astype(np.float32)  # 512 KB
    y = F.relu(x)
    assert y.nbytes >= MIN
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.aligned and _addr(y) % 64 == 0
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert _core.scratch_cache_info()[0] == 0
    a = _addr(y)
    del y
    gc.collect()
    blocks, nbytes, _ = _core.scratch_cache_info()
    assert blocks == 1 and nbytes >= x.nbytes
    y2 = F.relu(x)  # the same block again: no fresh pages
    assert _addr(y2) == a
    assert _core.scratch_cache_info()[0] == 0
    np.testing.assert_array_equal(y2, np.maximum(x, 0))


def test_live_results_never_share_a_block():
    _core.scratch_cache_clear()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 4, 128, 128)).astype(np.float32) for _ in range(20)]  # 20 results, 512 KB each
    ys = [F.relu(x) for x in xs]
    starts = sorted(_addr(y) for y in ys)
    assert all(b - a >= ys[0].nbytes for a, b in zip(starts, starts[1:]))
    for x, y in zip(xs, ys):
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    del ys
    gc.collect()
    blocks, nbytes, _ = _core.scratch_cache_info()
    assert 1 <= blocks <= 16 and nbytes <= 128 << 20  # the cache's bounds; the rest freed
    _core.scratch_cache_clear()
    assert _core.scratch_cache_info()[:2] == (0, 0)


def test_results_outlive_a_cleared_cache_and_pickle():
    x = np.ones((1, 16, 64, 64), np.float32)
    w = np.ones((16, 16, 3, 3), np.float32)
    y = F.conv2d(x, w, padding=1)
    _core.scratch_cache_clear()
    z = pickle.loads(pickle.dumps(y))
    assert np.array_equal(z, y) and y[0, 0, 1, 1] == 144.0
    y[...] = 0  # writeable, ours
    assert not y.any()


def test_small_results_are_plain_numpy_arrays():
    y = F.relu(np.ones((4, 4), np.float32))
    assert y.base is None and y.flags.owndata
