"""Python threads: concurrent kernels give the serial results, the GIL is released, the thread setting is global."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from conftest import threads_started_by_a_conv


def _conv_jobs(rng):
    """(name, zero-argument callable) pairs; each returns a tuple of arrays."""
    jobs = []
    configs = [
        dict(x=(4, 16, 16, 16), w=(24, 16, 3, 3), o=dict(padding=1)),
        dict(x=(3, 8, 20, 18), w=(16, 4, 3, 3), o=dict(groups=2, stride=2, padding="valid")),
        dict(x=(2, 32, 24, 24), w=(32, 1, 3, 3), o=dict(groups=32, padding=1)),
        dict(x=(9, 6, 12, 12), w=(10, 6, 5, 5), o=dict(padding="same", dilation=(1, 2))),
        dict(x=(1, 64, 14, 14), w=(40, 64, 1, 1), o={}),
        # scratch of over 1 MB (padded copies, packed panels): blocks from the
        # shared scratch cache, handed between threads
        dict(x=(8, 32, 40, 40), w=(48, 32, 3, 3), o=dict(padding=1)),
        dict(x=(6, 24, 36, 36), w=(32, 24, 3, 3), o=dict(stride=2, padding=1)),
    ]
    for i, c in enumerate(configs):
        dtype = np.float32 if i % 2 == 0 else np.float64
        x = rng.standard_normal(c["x"]).astype(dtype)
        w = rng.standard_normal(c["w"]).astype(dtype)
        b = rng.standard_normal(c["w"][0]).astype(dtype)
        y = F.conv2d(x, w, b, **c["o"])
        dy = rng.standard_normal(y.shape).astype(dtype)

        def job(x=x, w=w, b=b, dy=dy, o=c["o"]):
            return (F.conv2d(x, w, b, **o),) + tuple(F.conv2d_backward(dy, x, w, **o))

        jobs.append((f"conv{i}", job))
    for i, (lead, IN, OUT) in enumerate([((1,), 2048, 300), ((32,), 500, 70), ((4, 5), 9216, 10)]):
        dtype = np.float32 if i % 2 == 0 else np.float64
        x = rng.standard_normal(lead + (IN,)).astype(dtype)
        w = rng.standard_normal((OUT, IN)).astype(dtype)
        b = rng.standard_normal(OUT).astype(dtype)
        dy = rng.standard_normal(lead + (OUT,)).astype(dtype)

        def job(x=x, w=w, b=b, dy=dy):
            return (F.linear(x, w, b),) + tuple(F.linear_backward(dy, x, w))

        jobs.append((f"linear{i}", job))
    return jobs


@pytest.mark.parametrize("nthreads", [4, 8])
def test_concurrent_calls_match_a_serial_run(nthreads, rng):
    jobs = _conv_jobs(rng)
    serial = {name: job() for name, job in jobs}
    barrier = threading.Barrier(nthreads)
    reps = 3

    def run(k):
        barrier.wait()  # everyone starts together
        out = []
        for r in range(reps):
            name, job = jobs[(k + r) % len(jobs)]
            out.append((name, job()))
        return out

    with ThreadPoolExecutor(nthreads) as ex:
        results = [f.result(timeout=300) for f in [ex.submit(run, k) for k in range(nthreads)]]
    checked = 0
    for out in results:
        for name, got in out:
            for a, b in zip(got, serial[name]):
                assert a.dtype == b.dtype and a.shape == b.shape
                assert np.array_equal(a, b), f"{name}: a concurrent run differs from the serial one"
                checked += 1
    assert checked == nthreads * reps * 4


def test_errors_in_one_thread_do_not_disturb_others(rng):
    jobs = _conv_jobs(rng)[:3]
    serial = [job() for _, job in jobs]
    bad_x = np.zeros((1, 3, 8, 8), np.float32)
    bad_w = np.zeros((4, 2, 3, 3), np.float32)

    def bad():
        for _ in range(20):
            with pytest.raises(ValueError, match="input channels per group"):
                F.conv2d(bad_x, bad_w)
        return True

    with ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(job) for _, job in jobs] + [ex.submit(bad)]
        outs = [f.result(timeout=300) for f in futs]
    for got, want in zip(outs[:3], serial):
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
    assert outs[3] is True


# ---------------------------------------------------------------------------
# the GIL is released inside the kernels
#
# Deterministic, not timed: with a huge switch interval CPython never forces a
# thread to hand over the GIL, so the main thread can run Python code while the
# worker is still between `started += 1` and `finished += 1` only if the worker
# released the GIL itself -- and the only thing it runs there is the fastconv
# call on inputs that need no conversion (no NumPy copy that might release it).
# If the kernel kept the GIL, the main thread would first run after the worker
# had finished all its calls and the assertion below fails (it cannot hang: the
# worker does at most MAX_CALLS calls). The worker repeats the call until the
# main thread has run, so a slow scheduler only makes the test take longer.

MAX_CALLS = 50


def _gil_ops():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 32, 32, 32)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1)
    xd = rng.standard_normal((4, 64, 32, 32)).astype(np.float32)
    wd = rng.standard_normal((64, 1, 3, 3)).astype(np.float32)
    yd = F.conv2d(xd, wd, padding=1, groups=64)
    lx = rng.standard_normal((256, 2048)).astype(np.float32)
    lw = rng.standard_normal((1024, 2048)).astype(np.float32)
    gx = rng.standard_normal((1, 4096)).astype(np.float32)
    gw = rng.standard_normal((4096, 4096)).astype(np.float32)
    ly = F.linear(lx, lw)
    return {
        "conv2d": lambda: F.conv2d(x, w, padding=1),
        "conv2d_backward": lambda: F.conv2d_backward(y, x, w, padding=1),
        "conv2d_depthwise": lambda: F.conv2d(xd, wd, padding=1, groups=64),
        "conv2d_depthwise_backward": lambda: F.conv2d_backward(yd, xd, wd, padding=1, groups=64),
        "linear": lambda: F.linear(lx, lw),
        "linear_gemv": lambda: F.linear(gx, gw),
        "linear_backward": lambda: F.linear_backward(ly, lx, lw),
    }


_GIL_OPS = None


def _probe_gil(call):
    """Run call() repeatedly in a worker; return what the main thread saw when it first got to run.

    (started, finished): the worker's counters at that moment; after: the same a
    20000-iteration Python loop later; counter: that loop's count.
    """
    state = {"started": 0, "finished": 0, "stop": False}

    def worker():
        for _ in range(MAX_CALLS):
            if state["stop"]:
                break
            state["started"] += 1
            call()
            state["finished"] += 1

    old = sys.getswitchinterval()
    t = threading.Thread(target=worker)
    sys.setswitchinterval(1000.0)
    try:
        t.start()  # returns once the worker has let go of the GIL (or has finished)
        started, finished = state["started"], state["finished"]
        counter = 0
        for _ in range(20000):  # Python code running while the worker is inside the call
            counter += 1
        after = (state["started"], state["finished"])
        state["stop"] = True
    finally:
        sys.setswitchinterval(old)
        t.join()
    return (started, finished), after, counter


def test_gil_probe_tells_holding_from_releasing_calls():
    # the probe itself: a C call that keeps the GIL (sorting floats) is caught,
    # one that releases it (sleep) is not
    data = list(np.random.default_rng(0).random(50_000))
    (started, finished), _, _ = _probe_gil(lambda: sorted(data))
    assert (started, finished) == (MAX_CALLS, MAX_CALLS)
    (started, finished), after, counter = _probe_gil(lambda: time.sleep(0.005))
    assert started == finished + 1 and after == (started, finished) and counter == 20000


@pytest.mark.parametrize(
    "op",
    ["conv2d", "conv2d_backward", "conv2d_depthwise", "conv2d_depthwise_backward", "linear", "linear_gemv",
     "linear_backward"],
)
def test_gil_is_released_during_kernels(op):
    global _GIL_OPS
    if _GIL_OPS is None:
        _GIL_OPS = _gil_ops()
    (started, finished), after, counter = _probe_gil(_GIL_OPS[op])
    assert (started, finished) != (MAX_CALLS, MAX_CALLS), f"{op} kept the GIL for its whole run"
    assert started == finished + 1, (started, finished)
    assert counter == 20000
    assert after == (started, finished)  # the worker could not take the GIL back meanwhile


# ---------------------------------------------------------------------------
# the thread-count setting is process-wide


def test_set_num_threads_is_seen_from_other_threads(restore_runtime):
    seen = {}

    def reader(key):
        seen[key] = fastconv.get_num_threads()

    for n in (1, 3, 2):
        fastconv.set_num_threads(n)
        t = threading.Thread(target=reader, args=(n,))
        t.start()
        t.join()
        assert seen[n] == n

    def setter():
        fastconv.set_num_threads(1)

    t = threading.Thread(target=setter)
    t.start()
    t.join()
    assert fastconv.get_num_threads() == 1
    assert fastconv.build_info()["threads"] == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc to list threads")
@pytest.mark.parametrize("n", [1, 3])
def test_thread_setting_governs_kernels_started_in_other_threads(n):
    # The main thread sets n; a fresh Python thread then runs a large conv. Its
    # OpenMP team is created on first use, so the OS threads that appear during
    # that call are the team's helpers: none for n == 1, at least n-1 for n > 1.
    # (In a fresh process: see conftest.threads_started_by_a_conv.)
    if not fastconv.build_info()["openmp"]:
        pytest.skip("built without OpenMP: kernels run serially")
    out = threads_started_by_a_conv(n, "main")
    assert out["seen"] == n and out["same"], out
    if n == 1:
        assert out["new"] == [], out["new"]
    else:
        assert len(out["new"]) >= n - 1, out["new"]
