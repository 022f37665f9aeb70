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
