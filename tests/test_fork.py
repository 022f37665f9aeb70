"""fork() after fastconv has run its thread team: the child must not hang (GNU OpenMP cannot
re-create the team in a child, so fastconv runs serially there) and computes the same numbers."""

import multiprocessing as mp
import os
import sys

import numpy as np
import pytest

import fastconv
import fastconv.functional as F

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork()")


def _child(q, x, w):
    y = F.conv2d(x, w, None, 1, 1)
    dx, dw, _ = F.conv2d_backward(np.ones_like(y), x, w, 1, 1)
    q.put((y, dx, dw, fastconv.build_info()["forked_serial"], fastconv.get_num_threads()))


def test_forked_child_runs_and_matches_parent():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    fastconv.set_num_threads(2)
    y = F.conv2d(x, w, None, 1, 1)  # starts the parent's OpenMP team
    dx, dw, _ = F.conv2d_backward(np.ones_like(y), x, w, 1, 1)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, x, w))
    p.start()
    try:  # read before join: the child cannot exit until its queued arrays are drained
        cy, cdx, cdw, serial, threads = q.get(timeout=60)
    except Exception:
        p.kill()
        pytest.fail("the forked child hung in fastconv")
    p.join(10)
    assert p.exitcode == 0
    if fastconv.build_info()["openmp"]:
        # GNU OpenMP cannot run a team in the child: kernels there stay on one thread
        assert serial and threads == 1
    else:  # a serial build has no team to lose
        assert not serial
    # results do not depend on the thread count: bitwise equal to the parent's 2-thread run
    assert np.array_equal(cy, y) and np.array_equal(cdx, dx) and np.array_equal(cdw, dw)
    assert not fastconv.build_info()["forked_serial"]
