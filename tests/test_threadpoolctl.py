"""fastconv's thread pool is visible to threadpoolctl and limited by it, as NumPy's BLAS is."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def threads():
    before = fastconv.get_num_threads()
    yield
    fastconv.set_num_threads(before)


def _ours(info):
    return [i for i in info if i["internal_api"] == "fastconv"]


def test_listed_in_threadpool_info(threads):
    fastconv.set_num_threads(3)
    mine = _ours(threadpoolctl.threadpool_info())
    assert len(mine) == 1, threadpoolctl.threadpool_info()
    entry = mine[0]
    assert entry["user_api"] == "openmp"
    assert entry["num_threads"] == 3
    assert entry["version"] == fastconv.__version__
    assert os.path.realpath(entry["filepath"]) == os.path.realpath(fastconv._core.__file__)


@pytest.mark.parametrize(
    "kwargs",
    [dict(limits=1), dict(limits=1, user_api="openmp"), dict(limits={"openmp": 1})],
    ids=["all", "user_api", "dict"],
)
def test_threadpool_limits_limits_and_restores(threads, kwargs):
    fastconv.set_num_threads(3)
    with threadpoolctl.threadpool_limits(**kwargs):
        assert fastconv.get_num_threads() == 1
        x = np.random.default_rng(0).standard_normal((2, 4, 9, 9)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((5, 4, 3, 3)).astype(np.float32)
        inside = fastconv.functional.conv2d(x, w, padding=1)
    assert fastconv.get_num_threads() == 3
    # results do not depend on the thread count (fastconv is deterministic across thread counts)
    np.testing.assert_array_equal(inside, fastconv.functional.conv2d(x, w, padding=1))


def test_blas_limit_leaves_fastconv_alone(threads):
    fastconv.set_num_threads(2)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert fastconv.get_num_threads() == 2


def test_select_by_internal_api(threads):
    fastconv.set_num_threads(2)
    controller = threadpoolctl.ThreadpoolController().select(internal_api="fastconv")
    assert len(controller.lib_controllers) == 1
    with controller.limit(limits=1):
        assert fastconv.get_num_threads() == 1
    assert fastconv.get_num_threads() == 2


def test_as_decorator(threads):
    fastconv.set_num_threads(2)

    @threadpoolctl.threadpool_limits.wrap(limits=1)
    def inner():
        return fastconv.get_num_threads()

    assert inner() == 1
    assert fastconv.get_num_threads() == 2


@pytest.mark.parametrize("order", ["threadpoolctl first", "fastconv first"])
def test_import_order(order):
    imports = "import threadpoolctl, fastconv" if order == "threadpoolctl first" else "import fastconv, threadpoolctl"
    code = (
        f"{imports}\n"
        "info = [i for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'fastconv']\n"
        "assert len(info) == 1, info\n"
        "with threadpoolctl.threadpool_limits(limits=1):\n"
        "    assert fastconv.get_num_threads() == 1\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
