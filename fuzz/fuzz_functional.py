#!/usr/bin/env python3
"""Coverage-guided fuzzing of the public functional API (fastconv.functional) with atheris.

Each input is decoded into one call (sometimes a short chain: forward, then the
matching backward, unpooling, or an autograd backward) of an op of
fastconv.functional: shapes, option values, dtypes and memory layouts come
from the fuzz bytes. Most decoded calls are valid or nearly so (shapes made
consistent from the decoded sizes), so the kernels themselves run; a decoded
"perturbation" then replaces arguments with out-of-range ints, extreme sizes,
bools, floats, strings, None, wrong ranks, complex/object arrays, broadcast
views... The only acceptable outcomes are a result or ValueError / TypeError /
MemoryError; any other exception is reported as a crash (and a segfault or a
sanitizer report ends the run anyway).

    python fuzz/fuzz_functional.py -max_total_time=60
    python fuzz/fuzz_functional.py -max_total_time=600 -timeout=30 fuzz/corpus   # keep a corpus

Outside AddressSanitizer the process limits its address space to 4 GiB (and
libFuzzer's RSS limit to match), so a decoded call that would legitimately
need more memory fails with MemoryError instead of being allocated; under ASan
see fuzz/README.md.
"""

from __future__ import annotations

import os
import sys

import atheris

import numpy as np

import fastconv
import fastconv.functional as F
from fastconv import _core

# Python-level coverage of fastconv (and of NumPy's Python code it calls). instrument_imports()
# misses an editable install (its modules come through a custom loader), so instrument the code
# already loaded. The C++ core is not coverage-instrumented: crashes there show as signals, or
# as sanitizer reports with the FASTCONV_SANITIZE build (fuzz/README.md).
atheris.instrument_all()

ALLOWED = (ValueError, TypeError, MemoryError)

# sizes whose results overflow int64 or need far more than any machine has (never a few GiB:
# those would be allocated and filled for real)
EXTREME = [2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64, 10**30,
           -1, -2, -(2**31), -(2**63), -(2**70)]
GARBAGE = [None, True, False, 1.5, float("nan"), "2", "same", b"1", (), (1,), (1, 2, 3), [1, [2]], (1, None),
           {"a": 1}, 1j, np.float64(2.0), np.int64(2), np.uint8(3), np.array([2, 2]), object()]
DTYPES = [np.float32] * 8 + [np.float64] * 5 + [np.float16, np.int8, np.int64, np.uint8, np.bool_, np.complex64,
                                                   np.dtype(">f4"), np.dtype(">f8"), object]
OPS = ["conv2d", "conv2d_backward", "linear", "linear_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
       "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
       "adaptive_max_pool2d_backward", "max_unpool2d", "max_unpool2d_backward", "relu", "leaky_relu", "softmax",
       "log_softmax", "cross_entropy", "mse_loss", "batch_norm", "flatten", "dropout"]


class Decoder:
    def __init__(self, data: bytes):
        self.f = atheris.FuzzedDataProvider(data)

    def int(self, lo, hi):
        return self.f.ConsumeIntInRange(lo, hi)

    def chance(self, k):
        """True with probability about k/256 (and always False once the input is used up)."""
        return self.f.remaining_bytes() > 0 and self.f.ConsumeIntInRange(0, 255) < k

    def pick(self, seq):
        return seq[self.f.ConsumeIntInRange(0, len(seq) - 1)]

    # --- options ---------------------------------------------------------
    def option(self, lo, hi):
        """An int option: usually in [lo, hi]; sometimes extreme or not an int at all."""
        r = self.int(0, 255)
        if r < 200:
            return self.int(lo, hi)
        if r < 225:
            return self.pick(EXTREME)
        return self.pick(GARBAGE)

    def pair(self, lo, hi):
        r = self.int(0, 3)
        if r == 0:
            return self.option(lo, hi)
        if r == 1:
            return (self.option(lo, hi), self.option(lo, hi))
        if r == 2:
            return [self.int(lo, hi), self.int(lo, hi)]
        return self.int(lo, hi)

    def flag(self):
        return self.pick([False, True, False, True, None, 1, "yes"]) if self.chance(24) else bool(self.int(0, 1))

    # --- arrays ------------------------------------------------------------
    def values(self, shape, dtype=np.float32):
        """An array of `shape` (any layout), values from a seeded generator; NaN/Inf sometimes."""
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(self.int(0, 2**32 - 1))
        n = int(np.prod(shape)) if shape else 1
        if dtype == object:
            a = np.empty(shape, object)
            a[...] = 1.0
            return a
        if dtype.kind in "fc":
            a = rng.standard_normal(n)
            if n and self.chance(40):
                a[rng.integers(0, n, max(1, n // 8))] = rng.choice([np.nan, np.inf, -np.inf], max(1, n // 8))
            if self.chance(30):
                a = np.round(a)  # ties and exact sums
        else:
            a = rng.integers(0, 3, n)
        return self.layout(a.astype(dtype).reshape(shape))

    def layout(self, a):
        r = self.int(0, 15) if self.f.remaining_bytes() else 0
        if a.ndim == 0 or a.size == 0 or r < 9:
            return a
        if r == 9:
            return np.asfortranarray(a)
        if r == 10:  # negative strides
            return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
        if r == 11:  # every other element of a wider buffer
            wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
            wide[..., ::2] = a
            return wide[..., ::2]
        if r == 12 and a.dtype.itemsize > 1:  # unaligned
            buf = np.zeros(a.nbytes + 1, np.uint8)
            out = buf[1:].view(a.dtype).reshape(a.shape)
            out[...] = a
            return out
        if r == 13:  # broadcast view: stride 0 along the first axis
            return np.broadcast_to(a[:1], a.shape)
        if r == 14:
            a = a.copy()
            a.flags.writeable = False
            return a
        return a.astype(a.dtype.newbyteorder(">")) if a.dtype.kind in "fiu" else a

    def dtype(self):
        return self.pick(DTYPES)

    def perturb_array(self, a):
        """A bad replacement for an array argument."""
        r = self.int(0, 9)
        if r == 0:
            return self.pick(GARBAGE)
        if r == 1:  # wrong rank
            return self.values(tuple(self.int(1, 3) for _ in range(self.pick([0, 1, 2, 5, 6]))))
        if r == 2:  # one dimension changed
            shape = list(np.shape(a)) or [1]
            shape[self.int(0, len(shape) - 1)] += self.pick([-1, 1, 2])
            return self.values(tuple(max(0, s) for s in shape))
        if r == 3:  # a broadcast view of 2**36 .. 2**46 elements (hundreds of GiB if copied)
            shape = [1] * max(1, np.ndim(a))
            for _ in range(self.int(36, 46)):
                shape[self.int(0, len(shape) - 1)] *= 2
            return np.broadcast_to(np.float32(1), tuple(shape))
        if r == 4:
            return np.asarray(a).astype(np.complex64) if np.size(a) else np.zeros(np.shape(a), np.complex64)
        if r == 5:
            return [[1.0, 2.0], [3.0]]
        if r == 6:  # empty along one axis
            shape = list(np.shape(a)) or [1]
            shape[self.int(0, len(shape) - 1)] = 0
            return np.zeros(shape, np.float32)
        if r == 7:
            return np.asarray(a).tolist() if np.size(a) < 100 else a
        if r == 8:
            return fastconv.Tensor(np.asarray(a, np.float32)) if np.asarray(a).dtype.kind in "fiub" else a
        return np.full(np.shape(a), "x")


# --- op builders: (args dict, names of array arguments) -----------------------


def build(d: Decoder, op: str):
    dt = d.dtype()
    if op in ("conv2d", "conv2d_backward"):
        G, Cg, OCg = d.int(1, 3), d.int(1, 4), d.int(1, 4)
        if d.chance(60):  # depthwise
            Cg = 1
        KH, KW = d.int(1, 5), d.int(1, 5)
        N, H, W = d.int(0, 3), d.int(1, 10), d.int(1, 10)
        args = dict(input=d.values((N, G * Cg, H, W) if d.int(0, 5) else (G * Cg, H, W), dt),
                    weight=d.values((G * OCg, Cg, KH, KW), dt if d.int(0, 7) else d.dtype()),
                    stride=d.pair(1, 3),
                    padding=d.pick(["same", "valid", d.pair(0, 3), d.pair(0, 3), d.pair(0, 3)]),
                    dilation=d.pair(1, 3), groups=d.option(G, G) if d.int(0, 7) else d.option(0, 6))
        if op == "conv2d_backward":
            try:
                shape = F.conv2d(np.zeros(np.shape(args["input"]), np.float32),
                                 np.zeros(np.shape(args["weight"]), np.float32), None, args["stride"],
                                 args["padding"], args["dilation"], args["groups"]).shape
            except Exception:
                shape = np.shape(args["input"])
            args = dict(grad_output=d.values(shape, dt), **args,
                        needs_input_grad=tuple(bool(d.int(0, 1)) for _ in range(3)))
        elif d.int(0, 1):
            args["bias"] = d.values((G * OCg,), dt)
        return args, ("input", "weight", "bias", "grad_output")
    if op in ("linear", "linear_backward"):
        lead = tuple(d.int(0, 4) for _ in range(d.int(0, 3)))
        IN, OUT = d.pick([d.int(0, 8), d.int(1, 300)]), d.pick([d.int(0, 8), d.int(1, 80)])
        args = dict(input=d.values(lead + (IN,), dt), weight=d.values((OUT, IN), dt))
        if op == "linear_backward":
            args = dict(grad_output=d.values(lead + (OUT,), dt), **args,
                        needs_input_grad=tuple(bool(d.int(0, 1)) for _ in range(3)))
        elif d.int(0, 1):
            args["bias"] = d.values((OUT,), dt)
        return args, ("input", "weight", "bias", "grad_output")
    # pooling: an input of 1..4 ranks' worth of small sizes
    N, C, H, W = d.int(0, 3), d.int(1, 4), d.int(1, 12), d.int(1, 12)
    shape = (N, C, H, W) if d.int(0, 5) else (C, H, W)
    x = d.values(shape, dt)
    k = d.pair(1, 4)
    if op in ("max_pool2d", "avg_pool2d"):
        args = dict(input=x, kernel_size=k, stride=d.pick([None, d.pair(1, 3), d.pair(1, 3)]), padding=d.pair(0, 2),
                    ceil_mode=d.flag())
        if op == "max_pool2d":
            args.update(dilation=d.pair(1, 3), return_indices=d.flag())
        else:
            args.update(count_include_pad=d.flag(), divisor_override=d.pick([None, None, d.option(1, 9)]))
        return args, ("input",)
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        size = d.pick([d.option(1, 14), (d.option(1, 14), d.option(1, 14)), (None, d.option(1, 14)), None])
        args = dict(input=x, output_size=size)
        if op == "adaptive_max_pool2d":
            args["return_indices"] = d.flag()
        return args, ("input",)
    # ops that need a pooling result first: computed from valid options
    kk = (d.int(1, 4), d.int(1, 4))
    kk = (min(kk[0], H), min(kk[1], W))
    y, ind = F.max_pool2d(np.asarray(x, np.float32) if np.asarray(x).dtype.kind in "fiub" else np.zeros(shape),
                          kk, return_indices=True)
    if op in ("max_pool2d_backward", "adaptive_max_pool2d_backward"):
        if op == "adaptive_max_pool2d_backward":
            y, ind = F.adaptive_max_pool2d(np.zeros(shape, np.float32) + d.values(shape, np.float32), (d.int(1, 6), d.int(1, 6)), True)
        if d.chance(50):  # indices anywhere, also outside the plane
            ind = np.asarray(np.random.default_rng(d.int(0, 999)).integers(-3, H * W + 3, ind.shape), np.int64)
        return dict(grad_output=d.values(y.shape, dt), indices=d.layout(ind), input_shape=shape), ("grad_output", "indices")
    if op == "avg_pool2d_backward":
        s = d.pick([None, d.pair(1, 3)])
        try:
            oshape = F.avg_pool2d(np.zeros(shape, np.float32), kk, s).shape
        except Exception:
            oshape = y.shape
        return dict(grad_output=d.values(oshape, dt), input_shape=shape, kernel_size=kk, stride=s,
                    padding=d.pair(0, 1), ceil_mode=d.flag(), count_include_pad=d.flag()), ("grad_output",)
    if op == "adaptive_avg_pool2d_backward":
        return dict(grad_output=d.values(shape[:-2] + (d.int(1, 14), d.int(1, 14)), dt), input_shape=shape), ("grad_output",)
    if op == "max_unpool2d":
        if d.chance(40):
            ind = np.asarray(np.random.default_rng(d.int(0, 999)).integers(-2, H * W + 2, ind.shape), np.int64)
        return dict(input=d.values(y.shape, dt), indices=d.layout(ind), kernel_size=kk,
                    stride=d.pick([None, d.pair(1, 4)]), padding=d.pair(0, 1),
                    output_size=d.pick([None, None, shape[-2:], shape, (d.option(1, 20), d.option(1, 20))])), ("input", "indices")
    if op == "max_unpool2d_backward":
        if d.chance(40):
            ind = np.asarray(np.random.default_rng(d.int(0, 999)).integers(-2, H * W + 2, ind.shape), np.int64)
        return dict(grad_output=d.values(shape, dt), indices=d.layout(ind)), ("grad_output", "indices")
    # elementwise, losses, norm (Python/NumPy implementations; fuzzed for their argument handling)
    if op in ("relu",):
        return dict(input=x), ("input",)
    if op == "leaky_relu":
        return dict(input=x, negative_slope=d.pick([0.01, 0.2, -1.0, float("nan"), "a", None])), ("input",)
    if op in ("softmax", "log_softmax"):
        return dict(input=x, dim=d.option(-4, 4)), ("input",)
    if op == "flatten":
        return dict(input=x, start_dim=d.option(-4, 4), end_dim=d.option(-4, 4)), ("input",)
    if op == "dropout":
        return dict(input=x, p=d.pick([0.0, 0.5, 1.0, -0.1, 2.0, float("nan"), "a"]), training=d.flag()), ("input",)
    if op == "cross_entropy":
        logits = d.values((max(N, 1), C), dt)
        target = np.asarray(np.random.default_rng(d.int(0, 999)).integers(-1 if d.chance(40) else 0, C + d.int(0, 1), max(N, 1)))
        return dict(input=logits, target=target, reduction=d.pick(["mean", "sum", "none", "avg"]),
                    label_smoothing=d.pick([0.0, 0.1, 1.5])), ("input", "target")
    if op == "mse_loss":
        return dict(input=x, target=d.values(shape, dt), reduction=d.pick(["mean", "sum", "none", "avg"])), ("input", "target")
    if op == "batch_norm":
        return dict(input=x, running_mean=np.zeros(C, np.float32), running_var=np.ones(C, np.float32),
                    weight=d.values((C,), dt), bias=d.values((C,), dt), training=d.flag(),
                    momentum=d.pick([0.1, 0.0, 1.0]), eps=d.pick([1e-5, 0.0, -1.0])), ("input", "weight", "bias")
    raise AssertionError(op)


def chain(op, args, result):
    """After a successful forward call, its backward (the shapes now agree)."""
    if op == "conv2d" and isinstance(result, np.ndarray):
        F.conv2d_backward(np.ones_like(result), args["input"], args["weight"], args["stride"], args["padding"],
                          args["dilation"], args["groups"])
    elif op == "linear" and isinstance(result, np.ndarray):
        F.linear_backward(np.ones_like(result), args["input"], args["weight"])
    elif op in ("max_pool2d", "adaptive_max_pool2d") and isinstance(result, tuple):
        y, ind = result
        F.max_pool2d_backward(np.ones_like(y), ind, np.shape(args["input"]))
        if op == "max_pool2d":
            F.max_unpool2d(y, ind, args["kernel_size"], args["stride"], args["padding"],
                           output_size=np.shape(args["input"])[-2:])
    elif op == "avg_pool2d" and isinstance(result, np.ndarray):
        a = {k: v for k, v in args.items() if k not in ("input", "out")}
        F.avg_pool2d_backward(np.ones_like(result), np.shape(args["input"]), **a)


def runtime(d: Decoder):
    r = d.int(0, 31) if d.f.remaining_bytes() else 0
    if r == 0:
        fastconv.set_num_threads(d.int(1, 4))
    elif r == 1:
        _core.set_isa(d.pick(list(_core.available_isas())))
    elif r == 2:
        _core.set_conv_algorithm(d.pick(["auto", "im2col", "winograd"]))


VERBOSE = bool(os.environ.get("FUZZ_VERBOSE"))  # print each decoded call (to read a crash input)


def _short(v):
    if isinstance(v, np.ndarray):
        return f"<array {v.shape} {v.dtype} strides={v.strides}>"
    r = repr(v)
    return r if len(r) < 80 else r[:80] + "..."


def TestOneInput(data: bytes):
    d = Decoder(data)
    runtime(d)
    op = d.pick(OPS)
    try:  # decoding the call; its own errors (an odd decoded shape for a helper call) are not findings
        args, arrays = build(d, op)
        for _ in range(d.int(0, 2) if d.chance(120) else 0):  # perturbations
            name = d.pick(sorted(args))
            if name in arrays:
                args[name] = d.perturb_array(args[name])
            else:
                args[name] = d.pick([d.pick(EXTREME), d.pick(GARBAGE), d.option(-3, 5)])
        tensor_mode = d.chance(40)
        if tensor_mode:  # the autograd path
            for name in arrays:
                v = args.get(name)
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim and v.size < 2**20:
                    args[name] = fastconv.Tensor(np.array(v), requires_grad=bool(d.int(0, 1)))
    except Exception:
        return
    if VERBOSE:
        print(f"{op}(" + ", ".join(f"{k}={_short(v)}" for k, v in args.items()) + f") tensor_mode={tensor_mode}",
              flush=True)
    try:
        with np.errstate(all="ignore"):
            result = getattr(F, op)(**args)
            if tensor_mode:
                out = result[0] if isinstance(result, tuple) else result
                if isinstance(out, fastconv.Tensor) and out.requires_grad:
                    out.sum().backward()
            elif d.chance(160):
                chain(op, args, result)
    except ALLOWED:
        pass


def main():
    asan = "asan" in os.environ.get("LD_PRELOAD", "") or fastconv.build_info().get("sanitizers")
    argv = list(sys.argv)
    if not asan:  # a call that would really need GiBs fails with MemoryError instead of being allocated
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, hard))
        if not any(a.startswith("-rss_limit_mb=") for a in argv):
            argv.append("-rss_limit_mb=4096")
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
