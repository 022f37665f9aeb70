"""``fastconv bench``: time small-CNN layers and whole models against peers.

Peers: the NumPy baseline (``fastconv._baseline``: im2col + matmul, pooling
over strided slices) always; PyTorch and onnxruntime (forward only) when
they are importable. Every case's peers are timed in interleaved rounds:
each round gives each peer a block of repeated samples (warm-up first), with
a pause between blocks so one library's idle OpenMP threads do not spin on
the cores while another is timed; each time is the median of its samples
over all rounds. Outputs are cross-checked
before anything is timed: a case whose results disagree is reported as
such.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable, Optional

import numpy as np

from . import _baseline as base
from . import functional as F
from ._runtime import build_info, get_num_threads, set_num_threads

# ---------------------------------------------------------------------------
# the cases (../shared/BENCHMARKS.md), NCHW float32


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    kind: str  # conv | maxpool | avgpool | adaptavg | linear | model
    shape: tuple  # input shape
    opts: dict
    quick: bool = False  # part of the default (quick) run
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        s = "x".join(map(str, self.shape))
        o = self.opts
        if self.kind == "conv":
            extra = f" k{o['k']}" + (f" s{o['s']}" if o.get("s", 1) != 1 else "") + (f" p{o['p']}" if o.get("p") else "")
            extra += f" g{o['groups']}" if o.get("groups", 1) != 1 else ""
            return f"{s} -> {o['oc']}{extra}"
        if self.kind in ("maxpool", "avgpool"):
            return f"{self.kind} {s} k{o['k']} s{o.get('s', o['k'])}"
        if self.kind == "adaptavg":
            return f"adaptive avg {s} -> {o['out']}"
        if self.kind == "linear":
            return f"linear {s} -> {o['out']}"
        return s

    def flops(self) -> float:
        """Multiply-adds x 2 of the forward pass (0 for pooling)."""
        o = self.opts
        if self.kind == "conv":
            n, c, h, w = self.shape
            k, s, p, g = o["k"], o.get("s", 1), o.get("p", 0), o.get("groups", 1)
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            return 2.0 * n * o["oc"] * oh * ow * (c // g) * k * k
        if self.kind == "linear":
            b, i = self.shape
            return 2.0 * b * i * o["out"]
        if self.kind == "model":
            return o.get("flops", 0.0)
        return 0.0


def _conv(name, n, c, h, oc, k, s=1, p=0, groups=1, quick=False):
    return Case(name, "conv", (n, c, h, h), dict(oc=oc, k=k, s=s, p=p, groups=groups), quick)


CASES = [
    _conv("lenet_c1_b1", 1, 1, 32, 6, 5, quick=True),
    _conv("lenet_c1_b64", 64, 1, 32, 6, 5, quick=True),
    _conv("lenet_c2_b1", 1, 6, 14, 16, 5),
    _conv("lenet_c2_b64", 64, 6, 14, 16, 5, quick=True),
    Case("lenet_pool1_b64", "maxpool", (64, 6, 28, 28), dict(k=2, s=2), True),
    Case("lenet_fc1_b64", "linear", (64, 400), dict(out=120), True),
    _conv("cifar_c3_64_b32", 32, 3, 32, 64, 3, p=1, quick=True),
    _conv("cifar_c64_64_b1", 1, 64, 32, 64, 3, p=1, quick=True),
    _conv("cifar_c64_64_b32", 32, 64, 32, 64, 3, p=1, quick=True),
    _conv("cifar_c128_128_b32", 32, 128, 16, 128, 3, p=1, quick=True),
    _conv("cifar_c256_256_b1", 1, 256, 8, 256, 3, p=1),
    _conv("cifar_c256_256_b32", 32, 256, 8, 256, 3, p=1, quick=True),
    _conv("alex_c1_k11s4_b1", 1, 3, 224, 64, 11, s=4, p=2),
    _conv("alex_c2_k5_b1", 1, 64, 27, 192, 5, p=2),
    Case("alex_maxpool3s2_b1", "maxpool", (1, 64, 55, 55), dict(k=3, s=2)),
    Case("alex_fc_b1", "linear", (1, 9216), dict(out=4096)),
    Case("alex_fc_b64", "linear", (64, 9216), dict(out=4096)),
    _conv("pw_1x1_256_64_b8", 8, 256, 28, 64, 1),
    _conv("dw_3x3_c64_b8", 8, 64, 56, 64, 3, p=1, groups=64),
    _conv("strided_64_128_s2_b8", 8, 64, 32, 128, 3, s=2, p=1),
    Case("avgpool2s2_b32", "avgpool", (32, 64, 32, 32), dict(k=2, s=2)),
    Case("adaptavg1_b32", "adaptavg", (32, 256, 8, 8), dict(out=1)),
    Case("lenet5_b1", "model", (1, 1, 32, 32), dict(model="lenet5"), True, "LeNet-5 batch 1"),
    Case("lenet5_b64", "model", (64, 1, 32, 32), dict(model="lenet5"), True, "LeNet-5 batch 64"),
    Case("cifar_vgg_b1", "model", (1, 3, 32, 32), dict(model="cifar_vgg"), True, "CIFAR VGG batch 1"),
    Case("cifar_vgg_b32", "model", (32, 3, 32, 32), dict(model="cifar_vgg"), True, "CIFAR VGG batch 32"),
]


# ---------------------------------------------------------------------------
# timing


def _inner(fn: Callable[[], object]) -> int:
    """Warm ``fn`` up; calls per sample so one sample lasts >= ~2 ms."""
    t0 = time.perf_counter()
    fn()
    fn()
    once = max((time.perf_counter() - t0) / 2, 1e-7)
    return max(1, int(2e-3 / once))


def _samples(fn, inner: int, min_time: float, min_samples: int) -> list:
    samples = []
    start = time.perf_counter()
    while len(samples) < min_samples or (time.perf_counter() - start < min_time and len(samples) < 1000):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return samples


def measure_rounds(entries, min_time: float, rounds: int = 3, settle: Optional[dict] = None) -> dict:
    """Median seconds per call of each ``(key, fn, context)`` entry, timed in
    ``rounds`` interleaved rounds: each round gives every entry a block of
    ``min_time / rounds`` seconds (warm-up first, a pause between blocks, the
    order rotated from round to round). These VMs' speed drifts over seconds,
    so a peer timed in one block of its own can catch a slow spell the others
    missed; spreading every peer's samples over the same span makes the
    ratios between them steadier. ``context`` (or None) is a context-manager
    factory entered around each of that entry's blocks (e.g. a BLAS thread
    limit). ``settle`` maps keys to a longer pause after their blocks: OpenBLAS's
    worker threads spin for ~0.1 s after a multithreaded call, and a 2-thread
    OpenMP team timed meanwhile lost up to 10x (a worker waiting for a core)."""
    import contextlib

    rounds = max(1, int(rounds))
    inner = {}
    samples: dict = {key: [] for key, _, _ in entries}
    per_block = max(2, math.ceil(5 / rounds))
    for r in range(rounds):
        order = entries[r % len(entries):] + entries[: r % len(entries)] if entries else []
        for key, fn, ctx in order:
            with ctx() if ctx else contextlib.nullcontext():
                if key not in inner:
                    inner[key] = _inner(fn)
                else:
                    fn()  # warm again after the other peers ran
                samples[key] += _samples(fn, inner[key], min_time / rounds, per_block)
            _pause((settle or {}).get(key, 0.0))
    return {key: statistics.median(v) for key, v in samples.items()}


def _rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
    return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


AGREE_TOL = 1e-4  # max |difference| relative to max |reference|, float32


# ---------------------------------------------------------------------------
# peers


class _Torch:
    """PyTorch peer (optional)."""

    def __init__(self):
        import torch  # noqa: F401  (ImportError when it is not installed)

        self.torch = torch
        self.version = torch.__version__

    def set_threads(self, n):
        self.torch.set_num_threads(n)

    def t(self, a, grad=False):
        return self.torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(grad)

    def forward(self, case, arrays, model=None):
        torch, tf = self.torch, self.torch.nn.functional
        o = case.opts
        if case.kind == "model":
            tm = _torch_model(torch, o["model"], model)
            x = self.t(arrays[0])

            def run():
                with torch.no_grad():
                    return tm(x)

            return run, lambda r: r.numpy()
        x = self.t(arrays[0])
        rest = [self.t(a) for a in arrays[1:]]

        def run():
            with torch.no_grad():
                return _torch_op(tf, case, x, *rest)

        return run, lambda r: r.numpy()

    def forward_backward(self, case, arrays):
        torch, tf = self.torch, self.torch.nn.functional
        x, w, b = (self.t(a, True) for a in arrays)
        dy = None

        def run():
            nonlocal dy
            for p in (x, w, b):
                p.grad = None
            y = _torch_op(tf, case, x, w, b)
            if dy is None:
                dy = torch.from_numpy(_grad_like(y.detach().numpy()))
            y.backward(dy)
            return x.grad, w.grad, b.grad

        return run


class _Ort:
    """onnxruntime peer (optional; forward only): each case as a one-node (or, for models,
    a whole) ONNX graph with the weights as initializers."""

    def __init__(self):
        import onnx  # noqa: F401  (ImportError when not installed)
        import onnxruntime

        self.ort = onnxruntime
        self.version = onnxruntime.__version__

    def forward(self, case, arrays, nt, model=None):
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        o = case.opts
        x = arrays[0]
        nodes, inits = [], []
        counter = [0]

        def name(prefix):
            counter[0] += 1
            return f"{prefix}{counter[0]}"

        def const(a):
            n = name("w")
            inits.append(numpy_helper.from_array(np.ascontiguousarray(a), n))
            return n

        def conv(src, w, b, stride=1, padding=0, groups=1):
            out = name("t")
            k = w.shape[2]
            nodes.append(helper.make_node("Conv", [src, const(w), const(b)], [out], kernel_shape=[k, k],
                                          strides=[stride, stride], pads=[padding] * 4, group=groups))
            return out

        def op(kind, src, **attrs):
            out = name("t")
            nodes.append(helper.make_node(kind, [src], [out], **attrs))
            return out

        def gemm(src, w, b):
            out = name("t")
            nodes.append(helper.make_node("Gemm", [src, const(w), const(b)], [out], transB=1))
            return out

        cur = "x"
        if case.kind == "conv":
            cur = conv(cur, arrays[1], arrays[2], o.get("s", 1), o.get("p", 0), o.get("groups", 1))
        elif case.kind == "maxpool":
            s = o.get("s", o["k"])
            cur = op("MaxPool", cur, kernel_shape=[o["k"]] * 2, strides=[s, s])
        elif case.kind == "avgpool":
            s = o.get("s", o["k"])
            cur = op("AveragePool", cur, kernel_shape=[o["k"]] * 2, strides=[s, s])
        elif case.kind == "adaptavg":
            if o["out"] != 1:
                raise ValueError("only global average pooling has an ONNX operator")
            cur = op("GlobalAveragePool", cur)
        elif case.kind == "linear":
            cur = gemm(cur, arrays[1], arrays[2])
        else:
            for kind, kw in _numpy_model(o["model"], model):
                if kind == "conv":
                    cur = conv(cur, kw["w"], kw["b"], 1, kw.get("padding", 0))
                elif kind == "relu":
                    cur = op("Relu", cur)
                elif kind == "maxpool":
                    k = kw["kernel_size"]
                    cur = op("MaxPool", cur, kernel_shape=[k, k], strides=[k, k])
                elif kind == "flatten":
                    cur = op("Flatten", cur, axis=1)
                elif kind == "linear":
                    cur = gemm(cur, kw["w"], kw["b"])
        graph = helper.make_graph(
            nodes, case.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info(cur, TensorProto.FLOAT, None)],
            initializer=inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = nt
        so.inter_op_num_threads = 1
        sess = self.ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        feed = {"x": x}
        return lambda: sess.run(None, feed)[0]


def _torch_op(tf, case, x, *rest):
    o = case.opts
    if case.kind == "conv":
        return tf.conv2d(x, rest[0], rest[1], stride=o.get("s", 1), padding=o.get("p", 0), groups=o.get("groups", 1))
    if case.kind == "maxpool":
        return tf.max_pool2d(x, o["k"], o.get("s"))
    if case.kind == "avgpool":
        return tf.avg_pool2d(x, o["k"], o.get("s"))
    if case.kind == "adaptavg":
        return tf.adaptive_avg_pool2d(x, o["out"])
    if case.kind == "linear":
        return tf.linear(x, rest[0], rest[1])
    raise ValueError(case.kind)


def _torch_model(torch, name, model):
    """The same network in PyTorch, weights copied from the fastconv model."""
    nn = torch.nn
    if name == "lenet5":

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
                )
                self.classifier = nn.Sequential(
                    nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
                )

            def forward(self, x):
                return self.classifier(self.features(x))

    elif name == "cifar_vgg":

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                layers, c = [], 3
                for v in (64, 64, "M", 128, 128, "M", 256, "M"):
                    if v == "M":
                        layers.append(nn.MaxPool2d(2))
                    else:
                        layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
                        c = v
                self.features = nn.Sequential(*layers)
                self.classifier = nn.Linear(256 * 16, 10)

            def forward(self, x):
                return self.classifier(self.features(x).flatten(1))

    else:  # pragma: no cover
        raise ValueError(name)
    net = Net().eval()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return net


def _numpy_model(name, model):
    """The same network as NumPy baseline layers."""
    sd = {k: np.asarray(v) for k, v in model.state_dict().items()}
    if name == "lenet5":
        conv = lambda i: ("conv", dict(w=sd[f"features.{i}.weight"], b=sd[f"features.{i}.bias"]))  # noqa: E731
        lin = lambda i: ("linear", dict(w=sd[f"classifier.{i}.weight"], b=sd[f"classifier.{i}.bias"]))  # noqa: E731
        pool = ("maxpool", dict(kernel_size=2))
        return [conv(0), ("relu", {}), pool, conv(3), ("relu", {}), pool, ("flatten", {}),
                lin(1), ("relu", {}), lin(3), ("relu", {}), lin(5)]
    layers, i = [], 0
    for v in (64, 64, "M", 128, 128, "M", 256, "M"):
        if v == "M":
            layers.append(("maxpool", dict(kernel_size=2)))
            i += 1
        else:
            layers += [("conv", dict(w=sd[f"features.{i}.weight"], b=sd[f"features.{i}.bias"], padding=1)), ("relu", {})]
            i += 2
    return layers + [("flatten", {}), ("linear", dict(w=sd["classifier.weight"], b=sd["classifier.bias"]))]


def _grad_like(y):
    return np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)


# ---------------------------------------------------------------------------
# fastconv and NumPy callables for a case


def _arrays(case, rng):
    o = case.opts
    x = rng.standard_normal(case.shape).astype(np.float32)
    if case.kind == "conv":
        c = case.shape[1]
        fan_in = (c // o.get("groups", 1)) * o["k"] ** 2
        w = (rng.standard_normal((o["oc"], c // o.get("groups", 1), o["k"], o["k"])) / math.sqrt(fan_in)).astype(np.float32)
        b = rng.standard_normal(o["oc"]).astype(np.float32)
        return [x, w, b]
    if case.kind == "linear":
        w = (rng.standard_normal((o["out"], case.shape[1])) / math.sqrt(case.shape[1])).astype(np.float32)
        b = rng.standard_normal(o["out"]).astype(np.float32)
        return [x, w, b]
    return [x]


def _fastconv_fn(case, arrays, model=None):
    o = case.opts
    x = arrays[0]
    if case.kind == "conv":
        w, b = arrays[1:]
        return lambda: F.conv2d(x, w, b, stride=o.get("s", 1), padding=o.get("p", 0), groups=o.get("groups", 1))
    if case.kind == "maxpool":
        return lambda: F.max_pool2d(x, o["k"], o.get("s"))
    if case.kind == "avgpool":
        return lambda: F.avg_pool2d(x, o["k"], o.get("s"))
    if case.kind == "adaptavg":
        return lambda: F.adaptive_avg_pool2d(x, o["out"])
    if case.kind == "linear":
        w, b = arrays[1:]
        return lambda: F.linear(x, w, b)
    if case.kind == "model":
        import copy

        from .autograd import no_grad

        m = copy.deepcopy(model).prepack()  # inference as documented: conv weights packed once (a copy:
        # the peers read the original's weights, which prepack makes read-only)

        def run():
            with no_grad():
                return m(x)

        return run
    raise ValueError(case.kind)


def _fastconv_fwd_bwd(case, arrays):
    o = case.opts
    x, w, b = arrays
    kw = dict(stride=o.get("s", 1), padding=o.get("p", 0), groups=o.get("groups", 1))
    dy = _grad_like(F.conv2d(x, w, b, **kw))
    return lambda: (F.conv2d(x, w, b, **kw), F.conv2d_backward(dy, x, w, **kw))


def _numpy_fn(case, arrays, model=None):
    o = case.opts
    x = arrays[0]
    if case.kind == "conv":
        w, b = arrays[1:]
        return lambda: base.conv2d(x, w, b, stride=o.get("s", 1), padding=o.get("p", 0), groups=o.get("groups", 1))
    if case.kind == "maxpool":
        return lambda: base.max_pool2d(x, o["k"], o.get("s"))
    if case.kind == "avgpool":
        return lambda: base.avg_pool2d(x, o["k"], o.get("s"))
    if case.kind == "adaptavg":
        return lambda: base.adaptive_avg_pool2d(x, o["out"])
    if case.kind == "linear":
        w, b = arrays[1:]
        return lambda: base.linear(x, w, b)
    layers = _numpy_model(o["model"], model)
    return lambda: base.run_sequential(layers, x)


def _model_flops(name, shape):
    from .models import get_model
    from .summary import summary

    return 2.0 * shape[0] * summary(get_model(name), (1,) + tuple(shape[1:])).total_macs  # summary counts per sample


# ---------------------------------------------------------------------------
# running


@dataclasses.dataclass
class Result:
    case: str
    description: str
    threads: int
    gflop: float
    fastconv_ms: float
    numpy_ms: Optional[float] = None
    torch_ms: Optional[float] = None
    ort_ms: Optional[float] = None
    fastconv_fwdbwd_ms: Optional[float] = None
    torch_fwdbwd_ms: Optional[float] = None
    max_rel_diff_numpy: Optional[float] = None
    max_rel_diff_torch: Optional[float] = None
    max_rel_diff_ort: Optional[float] = None
    pct_peak: Optional[float] = None
    agree: bool = True

    @property
    def gflops(self):
        return self.gflop / (self.fastconv_ms * 1e-3) if self.gflop else None


def _pause(seconds: float = 0.0):
    # let idle OpenMP / BLAS threads of the previous peer stop spinning
    time.sleep(max(0.03, seconds))


# after a multithreaded OpenBLAS call its workers spin for about 2^28 cycles
# (~0.1 s) before they sleep; measured on the 2-thread VM, AlexNet conv2 on 2
# threads took 15.8 ms a call instead of 1.6 for up to 50 ms after one
BLAS_SETTLE_S = 0.2


def run(cases, threads, min_time=0.2, use_torch=True, backward=True, progress=None, use_ort=True, rounds=3):
    """Benchmark ``cases`` at each thread count; returns (results, environment dict).

    Each case's libraries are timed in ``rounds`` interleaved rounds of
    ``min_time / rounds`` seconds each (see ``measure_rounds``)."""
    from .models import get_model

    torch_peer = None
    torch_error = None
    if use_torch:
        try:
            torch_peer = _Torch()
        except Exception as e:  # ImportError, or a broken install
            torch_error = f"{type(e).__name__}: {e}"
    ort_peer = None
    if use_ort:
        try:
            ort_peer = _Ort()
        except Exception:
            ort_peer = None
    from . import _core

    peak1 = _core.fma_peak(0.3)  # float FMA GFLOP/s of one core on the active path
    blas = _blas_limiter()
    old_threads = get_num_threads()
    results = []
    total = len(cases) * len(threads)
    step = 0
    try:
        for nt in threads:
            set_num_threads(nt)
            if torch_peer:
                torch_peer.set_threads(nt)
            for case in cases:
                step += 1
                if progress:
                    progress(step, total, case, nt)
                rng = np.random.default_rng(0)
                arrays = _arrays(case, rng)
                model = None
                gflop = case.flops() / 1e9
                if case.kind == "model":
                    model = get_model(case.opts["model"]).eval()
                    gflop = _model_flops(case.opts["model"], case.shape) / 1e9
                fc = _fastconv_fn(case, arrays, model)
                npf = _numpy_fn(case, arrays, model)
                with blas(nt):  # the baseline's own thread count, then let its threads park
                    ref = np.asarray(npf())
                settle = {"numpy": BLAS_SETTLE_S} if nt > 1 else {}
                mine = fc()
                mine = np.asarray(mine.numpy() if hasattr(mine, "numpy") else mine)
                r = Result(case.name, case.describe(), nt, gflop, 0.0)
                r.max_rel_diff_numpy = _rel_err(mine, ref)
                r.agree = r.max_rel_diff_numpy <= AGREE_TOL
                entries = [("fastconv", fc, None), ("numpy", npf, lambda: blas(nt))]
                if torch_peer:
                    tf, conv = torch_peer.forward(case, arrays, model)
                    r.max_rel_diff_torch = _rel_err(mine, conv(tf()))
                    r.agree = r.agree and r.max_rel_diff_torch <= AGREE_TOL
                    entries.append(("torch", tf, None))
                of = None
                if ort_peer:
                    try:
                        of = ort_peer.forward(case, arrays, nt, model)
                    except ValueError:
                        of = None
                    if of is not None:
                        r.max_rel_diff_ort = _rel_err(mine, of())
                        r.agree = r.agree and r.max_rel_diff_ort <= AGREE_TOL
                        entries.append(("ort", of, None))
                if backward and case.kind == "conv":
                    entries.append(("fastconv_fwdbwd", _fastconv_fwd_bwd(case, arrays), None))
                    if torch_peer:
                        entries.append(("torch_fwdbwd", torch_peer.forward_backward(case, arrays), None))
                _pause(settle.get("numpy", 0.0))
                times = measure_rounds(entries, min_time, rounds, settle)
                del entries, of
                for key, sec in times.items():
                    setattr(r, key + "_ms", sec * 1e3)
                if r.gflop:
                    r.pct_peak = 100.0 * r.gflops / (peak1 * nt)
                results.append(r)
    finally:
        set_num_threads(old_threads)
    env = environment()
    env["torch"] = torch_peer.version if torch_peer else None
    env["onnxruntime"] = ort_peer.version if ort_peer else None
    env["fma_peak_gflops_per_core"] = round(peak1, 1)
    if torch_error:
        env["torch_error"] = torch_error
    env["numpy_threads"] = blas.describe
    env["min_time_per_measurement_s"] = min_time
    env["rounds"] = rounds
    return results, env


class _blas_limiter:
    """Limit NumPy's BLAS threads to the benchmark's thread count when threadpoolctl is installed."""

    def __init__(self):
        try:
            import threadpoolctl

            self._ctl = threadpoolctl
            self.describe = "limited to the thread count by threadpoolctl"
        except ImportError:
            self._ctl = None
            self.describe = "BLAS default (install threadpoolctl to limit it to the thread count)"

    def __call__(self, n):
        if self._ctl is None:
            import contextlib

            return contextlib.nullcontext()
        return self._ctl.threadpool_limits(limits=n, user_api="blas")


def environment() -> dict:
    info = build_info()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastconv": info.get("version"),
        "simd": info.get("simd"),
        "compiler": info.get("compiler"),
        "openmp": info.get("openmp"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------
# reporting


def _fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _fmt_x(a, b):
    if a is None or b is None or a <= 0:
        return "-"
    return f"{b / a:.2f}x"


def table(results, markdown=False) -> str:
    has_torch = any(r.torch_ms is not None for r in results)
    has_ort = any(r.ort_ms is not None for r in results)
    has_bwd = any(r.fastconv_fwdbwd_ms is not None for r in results)
    head = ["case", "shape", "thr", "fastconv ms", "GFLOP/s", "% peak", "numpy ms", "vs numpy"]
    if has_torch:
        head += ["torch ms", "vs torch"]
    if has_ort:
        head += ["ort ms", "vs ort"]
    if has_bwd:
        head += ["fwd+bwd ms"]
        if has_torch:
            head += ["torch fwd+bwd ms", "vs torch"]
    head += ["agree"]
    rows = []
    for r in results:
        row = [r.case, r.description, str(r.threads), _fmt_ms(r.fastconv_ms),
               f"{r.gflops:.1f}" if r.gflops else "-", f"{r.pct_peak:.0f}" if r.pct_peak else "-",
               _fmt_ms(r.numpy_ms), _fmt_x(r.fastconv_ms, r.numpy_ms)]
        if has_torch:
            row += [_fmt_ms(r.torch_ms), _fmt_x(r.fastconv_ms, r.torch_ms)]
        if has_ort:
            row += [_fmt_ms(r.ort_ms), _fmt_x(r.fastconv_ms, r.ort_ms)]
        if has_bwd:
            row += [_fmt_ms(r.fastconv_fwdbwd_ms)]
            if has_torch:
                row += [_fmt_ms(r.torch_fwdbwd_ms), _fmt_x(r.fastconv_fwdbwd_ms, r.torch_fwdbwd_ms)]
        diffs = [d for d in (r.max_rel_diff_numpy, r.max_rel_diff_torch, r.max_rel_diff_ort) if d is not None]
        row += [("yes" if r.agree else "NO") + f" ({max(diffs):.0e})"]
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows])


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary_lines(results):
    out = []
    for nt in sorted({r.threads for r in results}):
        rs = [r for r in results if r.threads == nt]
        parts = []
        g = geomean([r.numpy_ms / r.fastconv_ms for r in rs if r.numpy_ms])
        if g:
            parts.append(f"{g:.2f}x vs NumPy")
        g = geomean([r.torch_ms / r.fastconv_ms for r in rs if r.torch_ms])
        if g:
            parts.append(f"{g:.2f}x vs PyTorch (forward)")
        g = geomean([r.ort_ms / r.fastconv_ms for r in rs if r.ort_ms])
        if g:
            parts.append(f"{g:.2f}x vs onnxruntime (forward)")
        g = geomean([r.torch_fwdbwd_ms / r.fastconv_fwdbwd_ms for r in rs if r.torch_fwdbwd_ms and r.fastconv_fwdbwd_ms])
        if g:
            parts.append(f"{g:.2f}x vs PyTorch (conv forward+backward)")
        if parts:
            out.append(f"geometric-mean speed-up, {nt} thread{'s' if nt > 1 else ''}: " + ", ".join(parts))
    bad = [f"{r.case} ({r.threads}T)" for r in results if not r.agree]
    out.append("outputs agree on every case" if not bad else "OUTPUTS DISAGREE: " + ", ".join(bad))
    return out


def to_json(results, env) -> str:
    return json.dumps(
        {"environment": env, "results": [dict(dataclasses.asdict(r), gflops=r.gflops) for r in results]}, indent=1
    )


def print_progress(step, total, case, nt, stream=None):
    stream = stream or sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    msg = f"[{step:>2}/{total}] {nt} thread{'s' if nt > 1 else ' '} {case.name:<22} {case.describe()}"
    if tty:
        stream.write("\r" + msg.ljust(78)[:78] + ("\n" if step == total else ""))
    else:
        stream.write(msg + "\n")
    stream.flush()
