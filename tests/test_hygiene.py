"""Resource hygiene, NaN/Inf propagation, determinism and concurrency.

- Hygiene: 10,000 calls of each op (forward, backward, the out= and error
  paths) leave the resident set size flat (after a warm-up), the number of
  Python objects the collector tracks flat, no reference added to the
  arguments, and threading.active_count() unchanged; likewise Tensor autograd
  forward + backward loops (whose graphs must be freed without the cycle
  collector).
- NaN / Inf propagate as in PyTorch: conv2d (each algorithm), linear and the
  poolings, forward and backward, compared with PyTorch (tests that
  importorskip it) and with the IEEE rules as the float64 references compute
  them (run always). Max pooling: NaN wins, and its index is reported.
- Determinism: forward and backward are bitwise identical for 1, 2, 3 and 4
  threads and across repeated runs, for each conv algorithm (depthwise, 1x1,
  strided im2col GEMM, stride-1 direct 3x3, forced im2col, large), linear
  (GEMV and GEMM) and pooling.
- Concurrency: 8 Python threads sharing one model (LeNet-5, a small CIFAR VGG
  with batch norm, eval mode, under no_grad) give the serial results, also
  while another thread keeps changing the thread count; a thread count set
  from one Python thread governs kernels started from another.

tests/test_threads.py covers concurrent functional calls, GIL release and the
main-thread/other-thread setting; tests/test_fork.py covers fork. Neither is
repeated here.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _core
from conftest import threads_started_by_a_conv
from reference import conv2d_grads_ref, conv2d_ref, linear_grads_ref, linear_ref
from ref_pool import (
    adaptive_avg_pool2d_backward_ref,
    adaptive_avg_pool2d_ref,
    adaptive_max_pool2d_ref,
    avg_pool2d_backward_ref,
    avg_pool2d_ref,
    max_pool2d_backward_ref,
    max_pool2d_ref,
)

LINUX_PROC = os.path.exists("/proc/self/statm")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@pytest.fixture
def one_thread():
    """Hygiene loops run on one thread: what they measure does not depend on it, and it keeps them fast."""
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    try:
        yield
    finally:
        fastconv.set_num_threads(before)


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


# ---------------------------------------------------------------------------
# resource hygiene

CALLS = 10_000
WARMUP = 1_000
# Under AddressSanitizer freed blocks sit in a quarantine (up to 256 MiB), so RSS growth is not a
# leak signal there; the release-build pass checks it. Object and thread counts are checked on both.
SANITIZED = bool(fastconv.build_info()["sanitizers"])
RSS_SLACK = 2 * 2**20  # a leaked result of >= 1 KiB per call would add >= 10 MiB
OBJ_SLACK = 25


def _hygiene_ops():
    """name -> (zero-argument call, arrays whose reference counts must not move)."""
    rng = np.random.default_rng(11)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, w, b = f32(2, 4, 8, 8), f32(8, 4, 3, 3), f32(8)
    xd, wd = f32(2, 8, 8, 8), f32(8, 1, 3, 3)
    xs = np.asfortranarray(x)  # the general path (a copy inside)
    y = F.conv2d(x, w, b, padding=1)
    yd = F.conv2d(xd, wd, padding=1, groups=8)
    out = np.empty_like(y)
    lx, lw, lb = f32(16, 64), f32(32, 64), f32(32)
    ly = F.linear(lx, lw, lb)
    lout = np.empty_like(ly)
    px = f32(2, 4, 16, 16)
    py, pind = F.max_pool2d(px, 2, return_indices=True)
    ay = F.avg_pool2d(px, 3, 2, 1)
    aay = F.adaptive_avg_pool2d(px, (5, 3))
    amy, amind = F.adaptive_max_pool2d(px, (5, 3), return_indices=True)
    big = np.broadcast_to(np.float32(1), (2**20, 4, 2**10, 2**10))
    ops = {
        "conv2d": (lambda: F.conv2d(x, w, b, padding=1), (x, w, b)),
        "conv2d_general_path": (lambda: F.conv2d(xs, w, b, padding="same"), (xs, w, b)),
        "conv2d_strided": (lambda: F.conv2d(x, w, b, stride=2, padding=1), (x, w, b)),
        "conv2d_depthwise": (lambda: F.conv2d(xd, wd, padding=1, groups=8), (xd, wd)),
        "conv2d_out": (lambda: F.conv2d(x, w, b, padding=1, out=out), (x, w, b, out)),
        "conv2d_backward": (lambda: F.conv2d_backward(y, x, w, padding=1), (y, x, w)),
        "conv2d_backward_depthwise": (lambda: F.conv2d_backward(yd, xd, wd, padding=1, groups=8), (yd, xd, wd)),
        "linear": (lambda: F.linear(lx, lw, lb), (lx, lw, lb)),
        "linear_out": (lambda: F.linear(lx, lw, lb, out=lout), (lx, lw, lb, lout)),
        "linear_backward": (lambda: F.linear_backward(ly, lx, lw), (ly, lx, lw)),
        "max_pool2d": (lambda: F.max_pool2d(px, 2), (px,)),
        "max_pool2d_indices": (lambda: F.max_pool2d(px, 2, return_indices=True), (px,)),
        "max_pool2d_backward": (lambda: F.max_pool2d_backward(py, pind, px.shape), (py, pind)),
        "avg_pool2d": (lambda: F.avg_pool2d(px, 3, 2, 1), (px,)),
        "avg_pool2d_backward": (lambda: F.avg_pool2d_backward(ay, px.shape, 3, 2, 1), (ay,)),
        "adaptive_avg_pool2d": (lambda: F.adaptive_avg_pool2d(px, (5, 3)), (px,)),
        "adaptive_avg_pool2d_backward": (lambda: F.adaptive_avg_pool2d_backward(aay, px.shape), (aay,)),
        "adaptive_max_pool2d": (lambda: F.adaptive_max_pool2d(px, (5, 3), return_indices=True), (px,)),
        "adaptive_max_pool2d_backward": (lambda: F.adaptive_max_pool2d_backward(amy, amind, px.shape), (amy, amind)),
        "max_unpool2d": (lambda: F.max_unpool2d(py, pind, 2), (py, pind)),
        "max_unpool2d_backward": (lambda: F.max_unpool2d_backward(px, pind), (px, pind)),
    }

    def raising(call, exc):
        def run():
            try:
                call()
            except exc:
                return
            raise AssertionError("expected an error")

        return run

    wbad = f32(8, 3, 3, 3)
    ops.update({
        # the error paths: C++ exceptions translated to Python, from the fast entry point and the general one
        "conv2d_error_fast_path": (raising(lambda: F.conv2d(x, wbad), ValueError), (x, wbad)),
        "conv2d_error_general_path": (raising(lambda: F.conv2d(xs, w, padding=-1), ValueError), (xs, w)),
        "conv2d_memory_error": (raising(lambda: F.conv2d(x, w, padding=2**40), MemoryError), (x, w)),
        "conv2d_backward_error": (raising(lambda: F.conv2d_backward(x, x, w), ValueError), (x, w)),
        "linear_error": (raising(lambda: F.linear(lx, lb), ValueError), (lx, lb)),
        "max_pool2d_error": (raising(lambda: F.max_pool2d(px, 2, padding=3), ValueError), (px,)),
        "max_unpool2d_error": (raising(lambda: F.max_unpool2d(py, pind + 10**6, 2), ValueError), (py, pind)),
        "adaptive_memory_error": (raising(lambda: F.adaptive_avg_pool2d(px, (2**40, 2**40)), MemoryError), (px,)),
        "broadcast_view_memory_error": (raising(lambda: F.max_pool2d(big, 2), MemoryError), (big,)),
    })
    return ops


_OPS = None


def _ops():
    global _OPS
    if _OPS is None:
        _OPS = _hygiene_ops()
    return _OPS


def _measure(call, arrays, calls=CALLS, warmup=WARMUP):
    for _ in range(warmup):
        call()
    gc.collect()
    r0, n0, t0 = rss(), len(gc.get_objects()), threading.active_count()
    refs0 = [sys.getrefcount(a) for a in arrays]
    for _ in range(calls):
        call()
    gc.collect()
    r1, n1, t1 = rss(), len(gc.get_objects()), threading.active_count()
    refs1 = [sys.getrefcount(a) for a in arrays]
    return dict(rss=r1 - r0, objects=n1 - n0, threads=(t0, t1), refs=(refs0, refs1))


def _measure_all():
    """Every op's _measure, on one thread (run in a fresh interpreter, below)."""
    fastconv.set_num_threads(1)
    ops = _ops()
    # every op once first: lazy imports and caches of the interpreter itself (an editable
    # install's import hook drops some of its sets early on) must not count against the first op
    for call, _ in ops.values():
        for _ in range(10):
            call()
    out = {name: _measure(call, arrays) for name, (call, arrays) in ops.items()}
    for name, (call, n) in _autograd_loops().items():
        # a first round lets the allocator's heap settle; a leak keeps growing, so the second is judged
        _measure(call, (), calls=n, warmup=200)
        out["autograd:" + name] = _measure(call, (), calls=n, warmup=0)
    return out


_ALL = None


def _measured(name):
    """The measurements of a fresh interpreter that ran only these loops: what
    other tests leave behind in this process (a Dask client's event loop, the
    allocator's raised mmap threshold after large frees) must not count as
    growth here."""
    global _ALL
    if _ALL is None:
        import json
        import subprocess

        here = os.path.dirname(os.path.abspath(__file__))
        code = (
            "import json, sys\n"
            f"sys.path.insert(0, {here!r})\n"
            "import test_hygiene as h\n"
            "print(json.dumps(h._measure_all()))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stderr[-4000:]
        _ALL = json.loads(out.stdout.strip().splitlines()[-1])
    return _ALL[name]


@pytest.mark.skipif(not LINUX_PROC, reason="reads the RSS from /proc/self/statm")
@pytest.mark.parametrize("name", list(_hygiene_ops()))
def test_repeated_calls_leave_memory_objects_and_threads_flat(name):
    m = _measured(name)
    if not SANITIZED:  # ASan keeps freed memory in quarantine: RSS says nothing there
        assert m["rss"] <= RSS_SLACK, f"{name}: RSS grew by {m['rss'] / 2**20:.1f} MiB over {CALLS} calls"
    assert abs(m["objects"]) <= OBJ_SLACK, f"{name}: {m['objects']} more gc-tracked objects after {CALLS} calls"
    assert m["threads"][0] == m["threads"][1], f"{name}: threading.active_count() {m['threads']}"
    assert m["refs"][0] == m["refs"][1], f"{name}: argument reference counts changed {m['refs']}"


def _autograd_loops():
    rng = np.random.default_rng(5)
    f32 = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)  # noqa: E731
    T = lambda a: fastconv.Tensor(a, requires_grad=True)  # noqa: E731
    x, w, b = T(f32(2, 3, 8, 8)), T(f32(4, 3, 3, 3)), T(f32(4))
    lw, lb = T(f32(5, 4 * 4 * 4)), T(f32(5))
    target = np.array([1, 3])
    params = (x, w, b, lw, lb)

    def zero():
        for p in params:
            p.grad = None

    def net():
        zero()
        h = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
        loss = F.cross_entropy(F.linear(F.flatten(h), lw, lb), target)
        loss.backward()

    def pools():
        zero()
        h = F.avg_pool2d(F.conv2d(x, w, stride=1, padding="same"), 2)
        h2, ind = F.adaptive_max_pool2d(h, 3, return_indices=True)
        u = F.max_unpool2d(h2, ind, 2, stride=1, output_size=(4, 4))
        (F.adaptive_avg_pool2d(u, 1).sum() + (h * h).mean()).backward()

    model = fastconv.models.LeNet5()
    opt = fastconv.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    xb, tb = f32(2, 1, 32, 32), np.array([0, 7])

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(xb), tb).backward()
        opt.step()

    def inference():
        with fastconv.no_grad():
            model(xb)

    return {"conv_relu_pool_linear_ce": (net, 10_000), "avg_adaptive_pools": (pools, 5_000),
            "lenet5_sgd_step": (train_step, 1_000), "lenet5_no_grad": (inference, 2_000)}


@pytest.mark.skipif(not LINUX_PROC, reason="reads the RSS from /proc/self/statm")
@pytest.mark.parametrize("name", ["conv_relu_pool_linear_ce", "avg_adaptive_pools", "lenet5_sgd_step", "lenet5_no_grad"])
def test_autograd_loops_leave_memory_objects_and_threads_flat(name, one_thread):
    call, n = _autograd_loops()[name]
    # measured in a fresh interpreter (see _measured): in this process, what earlier tests left in the
    # allocator (a Dask cluster's traffic) grew RSS by 3.6 MiB over these loops once in CI
    m = _measured("autograd:" + name)
    if not SANITIZED:  # ASan keeps freed memory in quarantine: RSS says nothing there
        assert m["rss"] <= RSS_SLACK, f"{name}: RSS grew by {m['rss'] / 2**20:.1f} MiB over {n} iterations"
    assert abs(m["objects"]) <= OBJ_SLACK, f"{name}: {m['objects']} more gc-tracked objects after {n} iterations"
    assert m["threads"][0] == m["threads"][1]
    # the graph of each iteration is freed by reference counting alone (no cycles left for the collector)
    gc.collect()
    gc.disable()
    try:
        n0 = len(gc.get_objects())
        for _ in range(50):
            call()
        grew = len(gc.get_objects()) - n0
    finally:
        gc.enable()
    assert grew <= OBJ_SLACK, f"{name}: {grew} objects kept alive by reference cycles after 50 iterations"


# ---------------------------------------------------------------------------
# NaN / Inf propagation

NAN_CONV = {
    # name: (x shape, w shape, options) -- each picks a different kernel
    "direct3x3": ((2, 4, 9, 10), (6, 4, 3, 3), dict(padding=1)),
    "pointwise": ((2, 8, 6, 7), (5, 8, 1, 1), {}),
    "strided_im2col": ((2, 4, 11, 9), (6, 4, 3, 3), dict(stride=2, padding=1)),
    "dilated": ((1, 4, 12, 12), (6, 4, 3, 3), dict(dilation=2, padding=2)),
    "grouped": ((2, 6, 8, 8), (6, 2, 3, 3), dict(groups=3, padding=1)),
    "depthwise": ((2, 8, 9, 9), (8, 1, 3, 3), dict(groups=8, padding=1)),
    "depthwise_strided": ((2, 8, 9, 9), (16, 1, 3, 3), dict(groups=8, stride=2)),
    "wide": ((2, 24, 10, 10), (40, 24, 3, 3), dict(padding=1)),
    # weight gradient on the gather kernel (32 output channels, >= 256 positions per image)
    "gather_dw": ((2, 4, 18, 18), (32, 4, 3, 3), dict(padding=1)),
}


def _sprinkle(a, rng, frac=0.04, values=(np.nan, np.inf, -np.inf)):
    a = a.copy()
    flat = a.reshape(-1)
    k = max(1, int(a.size * frac))
    flat[rng.choice(a.size, size=min(k, a.size), replace=False)] = rng.choice(np.array(values, a.dtype), k)
    return a


def _same_specials(actual, expected, what):
    """NaN and +-Inf exactly where expected has them; finite values close."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    for test, label in ((np.isnan, "NaN"), (np.isposinf, "+Inf"), (np.isneginf, "-Inf")):
        a, e = test(actual), test(expected)
        assert np.array_equal(a, e), f"{what}: {label} at {np.argwhere(a != e)[:5].tolist()} differs"
    fin = np.isfinite(expected)
    np.testing.assert_allclose(actual[fin], expected[fin], rtol=2e-4, atol=2e-4, err_msg=what)


def _conv_case(name, dtype, where, seed=0):
    """x, w, b, dy, options with NaN/+-Inf in `where` ('x', 'w', 'both' = x and w, or 'dy').

    Only combinations whose result PyTorch defines independently of its backend: a term
    0 * Inf that comes from zero padding (explicit padding of x, or the implicit zeros around
    dy in the data gradient) is NaN in backends that multiply the padding (PyTorch's im2col
    path, fastconv's direct and depthwise kernels) and absent in those that skip it (oneDNN,
    the float64 reference's scatter). So specials in w come without padding, and the
    gradients that would read such a term are not compared: dx when w holds specials, dw
    when dy does and there is padding. Everything else is exact IEEE arithmetic.
    """
    rng = np.random.default_rng([seed, sorted(NAN_CONV).index(name), ["x", "w", "both", "dy"].index(where)])
    xs, ws, o = NAN_CONV[name]
    if where in ("w", "both"):
        o = {k: v for k, v in o.items() if k != "padding"}
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    if where in ("x", "both"):
        x = _sprinkle(x, rng)
    if where in ("w", "both"):
        w = _sprinkle(w, rng, frac=0.05)
    with np.errstate(all="ignore"):
        dy = rng.standard_normal(conv2d_ref(x, w, b, **o).shape).astype(dtype)
    if where == "dy":
        dy = _sprinkle(dy, rng, frac=0.03)
    checked = {"dx": where not in ("w", "both"), "dw": where != "dy" or not o.get("padding"), "db": True}
    return x, w, b, dy, o, checked


def _conv_nan_params(with_algorithm):
    params = []
    for name in sorted(NAN_CONV):
        for where in ("x", "w", "both", "dy"):
            for alg in (("auto", "im2col", "winograd") if with_algorithm else ("auto",)):
                args = (name, where, alg) if with_algorithm else (name, where)
                params.append(pytest.param(*args, id="-".join(args)))
    return params


def test_conv2d_weight_gradient_ignores_inf_the_tap_never_reads():
    """Regression: the stride-1 direct weight-gradient path reduced along the padded row pitch and
    turned an Inf in the input into NaN for taps that never read it (0 * Inf in the junk lanes)."""
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 3] = np.inf  # read by tap (0, 2) only
    dw = F.conv2d_backward(np.ones((1, 1, 2, 2), np.float32), x, np.ones((1, 1, 3, 3), np.float32))[1]
    np.testing.assert_array_equal(dw[0, 0], [[4, 4, np.inf], [4, 4, 4], [4, 4, 4]])
    x[0, 0, 0, 3] = np.nan
    dw = F.conv2d_backward(np.ones((1, 1, 2, 2), np.float32), x, np.ones((1, 1, 3, 3), np.float32))[1]
    np.testing.assert_array_equal(dw[0, 0], [[4, 4, np.nan], [4, 4, 4], [4, 4, 4]])


@pytest.mark.parametrize("name,where,algorithm", _conv_nan_params(True))
def test_conv2d_nan_inf_rules(name, where, algorithm):
    """NaN/Inf in input, weights or output gradient: the IEEE results of the float64 reference."""
    for dtype in (np.float32, np.float64):
        x, w, b, dy, o, checked = _conv_case(name, dtype, where)
        _core.set_conv_algorithm(algorithm)
        try:
            y = F.conv2d(x, w, b, **o)
            grads = F.conv2d_backward(dy, x, w, **o)
        finally:
            _core.set_conv_algorithm("auto")
        with np.errstate(all="ignore"):
            ref = conv2d_ref(x, w, b, **o)
            refs = conv2d_grads_ref(dy, x, w, **o)
        _same_specials(y, ref, f"{name} forward")
        for g, r, label in zip(grads, refs, ("dx", "dw", "db")):
            if checked[label]:
                _same_specials(g, r, f"{name} {label}")


def test_conv2d_nan_inf_cases_reach_the_outputs():
    """The cases above do exercise propagation (not all-finite, not all-NaN results)."""
    x, w, b, dy, o, _ = _conv_case("direct3x3", np.float32, "x")
    y = F.conv2d(x, w, b, **o)
    assert np.isnan(y).any() and np.isinf(y).any() and np.isfinite(y).any()
    x, w, b, dy, o, _ = _conv_case("depthwise", np.float32, "dy")
    dx = F.conv2d_backward(dy, x, w, **o)[0]
    assert np.isnan(dx).any() and np.isinf(dx).any() and np.isfinite(dx).any()


@pytest.mark.parametrize("name,where", _conv_nan_params(False))
def test_conv2d_nan_inf_match_torch(name, where):
    torch = pytest.importorskip("torch")
    for dtype in (np.float32, np.float64):
        x, w, b, dy, o, checked = _conv_case(name, dtype, where)
        y = F.conv2d(x, w, b, **o)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb, **o)
        ty.backward(torch.tensor(dy))
        _same_specials(y, ty.detach().numpy(), f"{name} forward vs torch")
        for g, t, label in zip(F.conv2d_backward(dy, x, w, **o), (tx, tw, tb), ("dx", "dw", "db")):
            if checked[label]:
                _same_specials(g, t.grad.numpy(), f"{name} {label} vs torch")


def _linear_case(kind, dtype, where, seed=0):
    rng = np.random.default_rng([seed, ["gemv", "gemm"].index(kind)])
    B = 1 if kind == "gemv" else 9
    x = rng.standard_normal((B, 300)).astype(dtype)
    w = rng.standard_normal((70, 300)).astype(dtype)
    b = rng.standard_normal(70).astype(dtype)
    if where in ("x", "both"):
        x = _sprinkle(x, rng, frac=0.004)
    if where in ("w", "both"):
        w = _sprinkle(w, rng, frac=0.0005)
    dy = _sprinkle(rng.standard_normal((B, 70)).astype(dtype), rng, frac=0.01)
    return x, w, b, dy


@pytest.mark.parametrize("where", ["x", "w", "both"])
@pytest.mark.parametrize("kind", ["gemv", "gemm"])
def test_linear_nan_inf_rules(kind, where):
    for dtype in (np.float32, np.float64):
        x, w, b, dy = _linear_case(kind, dtype, where)
        with np.errstate(all="ignore"):
            ref, refs = linear_ref(x, w, b), linear_grads_ref(dy, x, w)
        y = F.linear(x, w, b)
        grads = F.linear_backward(dy, x, w)
        _same_specials(y, ref, f"linear {kind} forward")
        assert not np.isfinite(y).all()  # the case reaches the output
        for g, r, label in zip(grads, refs, ("dx", "dw", "db")):
            _same_specials(g, r, f"linear {kind} {label}")


@pytest.mark.parametrize("where", ["x", "w", "both"])
@pytest.mark.parametrize("kind", ["gemv", "gemm"])
def test_linear_nan_inf_match_torch(kind, where):
    torch = pytest.importorskip("torch")
    for dtype in (np.float32, np.float64):
        x, w, b, dy = _linear_case(kind, dtype, where)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.linear(tx, tw, tb)
        ty.backward(torch.tensor(dy))
        _same_specials(F.linear(x, w, b), ty.detach().numpy(), "linear vs torch")
        for g, t, label in zip(F.linear_backward(dy, x, w), (tx, tw, tb), ("dx", "dw", "db")):
            _same_specials(g, t.grad.numpy(), f"linear {label} vs torch")


POOL_NAN = {
    "max_k2": ("max", dict(kernel_size=2)),
    "max_k3s2p1_ceil": ("max", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "max_dilated": ("max", dict(kernel_size=(2, 3), stride=1, dilation=2)),
    "avg_k3s2p1": ("avg", dict(kernel_size=3, stride=2, padding=1)),
    "avg_no_pad_count": ("avg", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False, ceil_mode=True)),
    "adaptive_avg_5x3": ("adaptive_avg", dict(output_size=(5, 3))),
    "adaptive_max_5x3": ("adaptive_max", dict(output_size=(5, 3))),
    "adaptive_max_up": ("adaptive_max", dict(output_size=(11, 13))),
}


def _pool_x(name, dtype):
    rng = np.random.default_rng(sorted(POOL_NAN).index(name))
    x = rng.integers(-3, 4, size=(2, 3, 9, 10)).astype(dtype)  # ties, too
    return _sprinkle(x, rng, frac=0.06), rng


def _fc_pool(kind, x, o):
    if kind == "max":
        return F.max_pool2d(x, return_indices=True, **o)
    if kind == "adaptive_max":
        return F.adaptive_max_pool2d(x, o["output_size"], return_indices=True)
    if kind == "avg":
        return F.avg_pool2d(x, **o), None
    return F.adaptive_avg_pool2d(x, o["output_size"]), None


@pytest.mark.parametrize("name", sorted(POOL_NAN))
def test_pooling_nan_inf_rules(name):
    """Max pooling: NaN wins its window (the last NaN, index included); averages propagate NaN/Inf."""
    kind, o = POOL_NAN[name]
    for dtype in (np.float32, np.float64):
        x, rng = _pool_x(name, dtype)
        y, ind = _fc_pool(kind, x, o)
        with np.errstate(all="ignore"):
            if kind == "max":
                ry, rind = max_pool2d_ref(x, **o)
            elif kind == "adaptive_max":
                ry, rind = adaptive_max_pool2d_ref(x, o["output_size"])
            elif kind == "avg":
                ry, rind = avg_pool2d_ref(x, **o), None
            else:
                ry, rind = adaptive_avg_pool2d_ref(x, o["output_size"]), None
        _same_specials(y, ry, f"{name} forward")
        assert np.isnan(y).any() and np.isinf(y).any()
        dy = _sprinkle(rng.standard_normal(y.shape).astype(dtype), rng, frac=0.05)
        with np.errstate(all="ignore"):
            if ind is not None:
                np.testing.assert_array_equal(ind, rind)
                dx = F.max_pool2d_backward(dy, ind, x.shape)
                rdx = max_pool2d_backward_ref(dy, rind, x.shape)
            elif kind == "avg":
                dx = F.avg_pool2d_backward(dy, x.shape, **o)
                rdx = avg_pool2d_backward_ref(dy, x.shape, **o)
            else:
                dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
                rdx = adaptive_avg_pool2d_backward_ref(dy, x.shape)
        _same_specials(dx, rdx, f"{name} backward")


@pytest.mark.parametrize("name", sorted(POOL_NAN))
def test_pooling_nan_inf_match_torch(name):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    kind, o = POOL_NAN[name]
    for dtype in (np.float32, np.float64):
        x, rng = _pool_x(name, dtype)
        y, ind = _fc_pool(kind, x, o)
        tx = torch.tensor(x, requires_grad=True)
        if kind == "max":
            ty, tind = TF.max_pool2d(tx, return_indices=True, **o)
        elif kind == "adaptive_max":
            ty, tind = TF.adaptive_max_pool2d(tx, o["output_size"], return_indices=True)
        elif kind == "avg":
            ty, tind = TF.avg_pool2d(tx, **o), None
        else:
            ty, tind = TF.adaptive_avg_pool2d(tx, o["output_size"]), None
        _same_specials(y, ty.detach().numpy(), f"{name} vs torch")
        if ind is not None:
            np.testing.assert_array_equal(ind, tind.numpy(), err_msg=f"{name} indices vs torch")
        dy = _sprinkle(rng.standard_normal(y.shape).astype(dtype), rng, frac=0.05)
        ty.backward(torch.tensor(dy))
        if kind in ("max", "adaptive_max"):
            dx = F.max_pool2d_backward(dy, ind, x.shape)
        elif kind == "avg":
            dx = F.avg_pool2d_backward(dy, x.shape, **o)
        else:
            dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
        _same_specials(dx, tx.grad.numpy(), f"{name} backward vs torch")


# ---------------------------------------------------------------------------
# determinism: every thread count, every run


def _det_cases():
    rng = np.random.default_rng(2024)
    f = lambda shape, dt=np.float32: rng.standard_normal(shape).astype(dt)  # noqa: E731
    cases = {}
    conv = {
        "depthwise": ((4, 32, 28, 28), (32, 1, 3, 3), dict(groups=32, padding=1), "auto"),
        "depthwise_strided_x2": ((4, 16, 27, 27), (32, 1, 5, 5), dict(groups=16, stride=2, padding=2), "auto"),
        "pointwise": ((4, 64, 14, 14), (48, 64, 1, 1), {}, "auto"),
        "strided": ((4, 32, 28, 28), (48, 32, 3, 3), dict(stride=2, padding=1), "auto"),
        "stride1_3x3": ((4, 32, 28, 28), (32, 32, 3, 3), dict(padding=1), "auto"),
        "stride1_3x3_im2col": ((4, 32, 28, 28), (32, 32, 3, 3), dict(padding=1), "im2col"),
        "stride1_3x3_winograd": ((5, 20, 17, 15), (28, 20, 3, 3), dict(padding=1), "winograd"),
        "grouped_dilated": ((4, 24, 20, 20), (36, 8, 3, 3), dict(groups=3, dilation=2, padding="same"), "auto"),
        "large": ((8, 64, 32, 32), (64, 64, 3, 3), dict(padding=1), "auto"),
        "large_float64": ((4, 32, 24, 24), (64, 32, 5, 5), dict(padding=2), "auto"),
    }
    for name, (xs, ws, o, alg) in conv.items():
        dt = np.float64 if name.endswith("float64") else np.float32
        x, w, b = f(xs, dt), f(ws, dt), f(ws[0], dt)
        dy = f(F.conv2d(x, w, b, **o).shape, dt)

        def run(x=x, w=w, b=b, dy=dy, o=o, alg=alg):
            _core.set_conv_algorithm(alg)
            try:
                return (F.conv2d(x, w, b, **o),) + tuple(F.conv2d_backward(dy, x, w, **o))
            finally:
                _core.set_conv_algorithm("auto")

        cases[f"conv2d_{name}"] = run
    for name, (B, IN, OUT, dt) in {"gemv": (1, 4096, 1000, np.float32), "gemm": (256, 1024, 512, np.float32),
                                   "gemm_float64": (64, 777, 300, np.float64)}.items():
        x, w, b, dy = f((B, IN), dt), f((OUT, IN), dt), f(OUT, dt), f((B, OUT), dt)
        cases[f"linear_{name}"] = lambda x=x, w=w, b=b, dy=dy: (F.linear(x, w, b),) + tuple(F.linear_backward(dy, x, w))
    px = f((8, 64, 32, 32))
    py, pind = F.max_pool2d(px, 3, 2, 1, return_indices=True)
    pdy = f(py.shape)
    ady = f(F.avg_pool2d(px, 3, 2, 1).shape)
    aady = f((8, 64, 5, 7))
    cases["max_pool2d"] = lambda: (*F.max_pool2d(px, 3, 2, 1, return_indices=True),
                                   F.max_pool2d_backward(pdy, pind, px.shape))
    cases["avg_pool2d"] = lambda: (F.avg_pool2d(px, 3, 2, 1), F.avg_pool2d_backward(ady, px.shape, 3, 2, 1))
    cases["adaptive_pools"] = lambda: (F.adaptive_avg_pool2d(px, (5, 7)), *F.adaptive_max_pool2d(px, (5, 7), True),
                                       F.adaptive_avg_pool2d_backward(aady, px.shape))
    cases["max_unpool2d"] = lambda: (F.max_unpool2d(py, pind, 3, 2, 1, output_size=px.shape[-2:]),
                                     F.max_unpool2d_backward(px, pind))
    return cases


@pytest.mark.parametrize("name", list(_det_cases()))
def test_bitwise_identical_across_thread_counts_and_runs(name, restore_runtime):
    run = _det_cases()[name]
    results = {}
    for n in (1, 2, 3, 4, 1, 4):  # repeated runs too
        fastconv.set_num_threads(n)
        results.setdefault(n, []).append(run())
    base = results[1][0]
    assert all(isinstance(a, np.ndarray) and a.size for a in base)
    for n, runs in results.items():
        for k, res in enumerate(runs):
            for i, (a, b) in enumerate(zip(res, base)):
                assert a.dtype == b.dtype and a.shape == b.shape
                assert np.array_equal(a, b), f"{name}: output {i} with {n} threads (run {k}) differs from 1 thread"


# ---------------------------------------------------------------------------
# concurrency: one model, many Python threads


def _model(name):
    fastconv.manual_seed(123)
    if name == "lenet5":
        m, shape = fastconv.models.LeNet5(), (1, 32, 32)
    else:
        m, shape = fastconv.models.CifarVGG(batch_norm=True), (3, 32, 32)
        rng = np.random.default_rng(9)  # non-trivial running statistics for eval mode
        for mod in m.modules():
            if isinstance(mod, fastconv.nn.BatchNorm2d):
                mod.running_mean[...] = rng.standard_normal(mod.running_mean.shape) * 0.1
                mod.running_var[...] = rng.uniform(0.5, 2.0, mod.running_var.shape)
    m.eval()
    return m, shape


def _infer(model, x):
    with fastconv.no_grad():
        y = model(x)
    return np.array(y.data if isinstance(y, fastconv.Tensor) else y)


@pytest.mark.parametrize("name,batch,reps", [("lenet5", 16, 6), ("cifar_vgg", 2, 2)])
def test_threads_sharing_one_model_match_a_serial_run(name, batch, reps, restore_runtime):
    model, shape = _model(name)
    nthreads = 8
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((batch,) + shape).astype(np.float32) for _ in range(nthreads)]
    serial = [_infer(model, x) for x in inputs]
    assert all(np.isfinite(s).all() for s in serial) and not np.array_equal(serial[0], serial[1])
    barrier = threading.Barrier(nthreads)

    def work(k):
        barrier.wait()
        assert fastconv.is_grad_enabled()  # grad mode is per thread: the others' no_grad does not leak here
        return [_infer(model, inputs[(k + r) % nthreads]) for r in range(reps)], fastconv.is_grad_enabled()

    with ThreadPoolExecutor(nthreads) as ex:
        outs = [f.result(timeout=600) for f in [ex.submit(work, k) for k in range(nthreads)]]
    for k, (res, grad_mode) in enumerate(outs):
        assert grad_mode
        for r, y in enumerate(res):
            assert np.array_equal(y, serial[(k + r) % nthreads]), f"{name}: thread {k} run {r} differs from serial"
    assert fastconv.is_grad_enabled()


def test_thread_count_changed_from_another_thread_during_inference(restore_runtime):
    """Inference in 8 threads while a 9th keeps calling set_num_threads: same bits as serial, and
    afterwards every thread reads the last setting."""
    model, shape = _model("lenet5")
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((8,) + shape).astype(np.float32) for _ in range(8)]
    fastconv.set_num_threads(1)
    serial = [_infer(model, x) for x in inputs]
    stop = threading.Event()

    def toggler():
        n = 0
        while not stop.is_set():
            fastconv.set_num_threads(1 + n % 4)
            n += 1
        fastconv.set_num_threads(3)
        return n

    def work(k):
        return [_infer(model, inputs[(k + r) % 8]) for r in range(5)]

    with ThreadPoolExecutor(9) as ex:
        t = ex.submit(toggler)
        outs = [f.result(timeout=600) for f in [ex.submit(work, k) for k in range(8)]]
        stop.set()
        toggles = t.result(timeout=60)
        seen = [f.result(timeout=60) for f in [ex.submit(fastconv.get_num_threads) for _ in range(8)]]
    assert toggles > 0
    for k, res in enumerate(outs):
        for r, y in enumerate(res):
            assert np.array_equal(y, serial[(k + r) % 8])
    assert seen == [3] * 8 and fastconv.get_num_threads() == 3


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc to list threads")
@pytest.mark.parametrize("n", [1, 3])
def test_setting_from_one_thread_governs_kernels_started_in_a_third(n):
    """Thread A sets the count; thread B (fresh: its OpenMP team does not exist yet) runs a large conv.
    The OS threads that appear during B's call are its team's helpers: none for 1, >= n-1 otherwise.
    (In a fresh process: see conftest.threads_started_by_a_conv.)"""
    if not fastconv.build_info()["openmp"]:
        pytest.skip("built without OpenMP: kernels run serially")
    out = threads_started_by_a_conv(n, "other")
    assert out["seen"] == n, out
    if n == 1:
        assert out["new"] == [], out["new"]
    else:
        assert len(out["new"]) >= n - 1, out["new"]
    assert out["same"], "B's result differs from the main thread's"
