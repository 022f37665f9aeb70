"""Shared fixtures: every kernel path this CPU runs, thread counts, and the report header.

tests/ has no __init__.py: test modules import the references as plain
modules (``import reference``). pytest's default import mode already puts
tests/ on sys.path; the insert below keeps that true under
``--import-mode=importlib`` and for tools that import the test files directly.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import fastconv  # noqa: E402
from fastconv import _core  # noqa: E402

ISAS = list(_core.available_isas())
DEFAULT_ISA = _core.active_isa()
DEFAULT_THREADS = fastconv.get_num_threads()


def pytest_report_header(config):
    info = fastconv.build_info()
    keys = ("version", "compiler", "openmp", "simd", "threads", "sgemm_kernel", "dgemm_kernel", "debug", "sanitizers")
    desc = ", ".join(f"{k}={info[k]}" for k in keys if k in info)
    return [
        f"fastconv build_info: {desc}",
        f"fastconv ISA paths covered (the `isa` fixture): {', '.join(ISAS)} (default {DEFAULT_ISA})",
        f"numpy {np.__version__}",
    ]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test on each kernel path this build and CPU support; restores the default path."""
    _core.set_isa(request.param)
    try:
        assert fastconv.build_info()["simd"] == request.param
        yield request.param
    finally:
        _core.set_isa(DEFAULT_ISA)


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def num_threads(request):
    """Run the test with fastconv set to 1 and to 2 threads; restores the previous setting."""
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        fastconv.set_num_threads(before)


@pytest.fixture
def restore_runtime():
    """For tests that change the thread count or ISA themselves."""
    threads, isa = fastconv.get_num_threads(), _core.active_isa()
    try:
        yield
    finally:
        fastconv.set_num_threads(threads)
        _core.set_isa(isa)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id, so every test is reproducible on its own."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


# The OS threads that appear while a fresh Python thread runs a large conv, with
# fastconv's thread count set to n beforehand -- by the main thread ("main"), or
# by a second thread ("other") -- measured in a fresh process: threads left
# running by earlier tests (a dask cluster's, an executor's) start and stop on
# their own schedule, and one starting during the call would be counted.
_THREAD_PROBE = r"""
import json, os, sys, threading
import numpy as np
import fastconv
import fastconv.functional as F

n, setter = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(3)
x = rng.standard_normal((4, 32, 32, 32)).astype(np.float32)
w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
if setter == "main":
    fastconv.set_num_threads(n)
else:
    fastconv.set_num_threads(2 if n != 2 else 1)
    a = threading.Thread(target=fastconv.set_num_threads, args=(n,))
    a.start()
    a.join()
out = {}

def b():
    out["seen"] = fastconv.get_num_threads()
    before = set(os.listdir("/proc/self/task"))
    out["y"] = F.conv2d(x, w, padding=1)
    out["new"] = sorted(set(os.listdir("/proc/self/task")) - before)

t = threading.Thread(target=b)
t.start()
t.join()
same = bool(np.array_equal(out["y"], F.conv2d(x, w, padding=1)))
print(json.dumps({"seen": out["seen"], "new": out["new"], "same": same}))
"""


def threads_started_by_a_conv(n: int, setter: str) -> dict:
    """Run _THREAD_PROBE in a fresh interpreter; returns {"seen", "new", "same"}."""
    import json
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _THREAD_PROBE, str(n), setter], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
