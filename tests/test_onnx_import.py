"""fastconv.onnx.load: ONNX models run as fastconv modules.

(a) one-node (and small) models built with onnx.helper for every supported operator and
    attribute variant, compared with onnxruntime when it is installed and, where it is easy,
    with float64 NumPy references written here from the ONNX definitions (independently of
    fastconv.onnx; conv goes through tests/reference.py);
(b) models exported from PyTorch (LeNet-5, a small VGG with BatchNorm and x.view(x.size(0), -1),
    a residual block, an Inception-style block) at opsets 11 and 17, with and without a dynamic
    batch axis, against PyTorch and onnxruntime;
(c) one UnsupportedOperatorError listing every unsupported operator;
(d) gradients through an imported model against PyTorch's and against central differences;
(e) state_dict round trips and parameter counts; plus input binding, errors, modes, hooks.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastconv  # noqa: E402
import fastconv.onnx as fo  # noqa: E402
from reference import conv2d_ref, numeric_grad  # noqa: E402

try:  # the reference runtime (the test extra installs it); without it, the NumPy references and PyTorch remain
    import onnxruntime as _ort
except ImportError:  # pragma: no cover - the test extra installs it
    _ort = None

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


# ----------------------------------------------------------------------------------------------
# building and running models


def vi(name, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def make(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset <= 18 else 10  # what onnxruntime reads
    return m


def one_node(op, x_shape, attrs=None, inits=(), extra_inputs=(), opset=17, n_out=1):
    """A model of a single ``op`` node on input 'x' (plus initializers / constant inputs)."""
    names = ["x", *extra_inputs]
    outs = ["y"] + [f"y{i}" for i in range(1, n_out)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    return make([node], [vi("x", list(x_shape))], [vi(o, None) for o in outs], inits, opset)


def run(model, *args, **kwargs):
    m = fo.load(model)
    out = m(*args, **kwargs)
    return [o.numpy() for o in out] if isinstance(out, tuple) else out.numpy()


def run_ort(model, feeds):
    so = _ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = _ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(model, feeds, ref=None, rtol=1e-5, atol=1e-5, ort=True):
    """fastconv's outputs against the NumPy reference (if given) and onnxruntime (if installed and ``ort``)."""
    got = fo.load(model)(**feeds)
    got = [o.numpy() for o in got] if isinstance(got, tuple) else [got.numpy()]
    if ref is not None:
        refs = ref if isinstance(ref, (list, tuple)) else [ref]
        for g, r in zip(got, refs):
            assert g.shape == np.shape(r), (g.shape, np.shape(r))
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg="vs NumPy reference")
    if _ort is not None and ort:
        for g, w in zip(got, run_ort(model, feeds)):
            assert g.shape == w.shape, (g.shape, w.shape)
            assert g.dtype == w.dtype or g.dtype.kind == w.dtype.kind == "f", (g.dtype, w.dtype)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg="vs onnxruntime")
    return got


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# float64 references written from the ONNX definitions


def same_pads(n, k, s, d, upper):
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def onnx_pads(attrs, H, W, k):
    """(top, bottom, left, right) as the ONNX spec defines them."""
    s = attrs.get("strides", [1, 1])
    d = attrs.get("dilations", [1, 1])
    ap = attrs.get("auto_pad", "NOTSET")
    if ap == "VALID":
        return (0, 0, 0, 0)
    if ap.startswith("SAME"):
        up = ap == "SAME_UPPER"
        return same_pads(H, k[0], s[0], d[0], up) + same_pads(W, k[1], s[1], d[1], up)
    p = attrs.get("pads", [0, 0, 0, 0])
    return (p[0], p[2], p[1], p[3])


def conv_ref(x, w, b, attrs):
    t, bo, l, r = onnx_pads(attrs, x.shape[2], x.shape[3], w.shape[2:])
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, bo), (l, r)))
    return conv2d_ref(xp, w, b, attrs.get("strides", [1, 1]), 0, attrs.get("dilations", [1, 1]),
                      attrs.get("group", 1))


def pool_ref(x, attrs, mode):
    """Explicit windows: only in-bounds taps count; the average divides by the window clipped to the
    padded extent (count_include_pad=1) or by the number of real taps; with ceil_mode the last
    window must start inside the input or the leading padding."""
    x = x.astype(np.float64)
    N, C, H, W = x.shape
    k = attrs["kernel_shape"]
    s = attrs.get("strides", [1, 1])
    d = attrs.get("dilations", [1, 1])
    ceil = bool(attrs.get("ceil_mode", 0))
    cip = bool(attrs.get("count_include_pad", 0))
    if attrs.get("auto_pad", "NOTSET").startswith("SAME"):
        ceil = False  # output size is ceil(n / stride) by construction
    t, b, l, r = onnx_pads(attrs, H, W, k)

    def size(n, kk, ss, dd, p0, p1):
        num = n + p0 + p1 - ((kk - 1) * dd + 1)
        o = (-(-num // ss) if ceil else num // ss) + 1
        if ceil and (o - 1) * ss >= n + p0:
            o -= 1
        return o

    OH, OW = size(H, k[0], s[0], d[0], t, b), size(W, k[1], s[1], d[1], l, r)
    y = np.empty((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - t, ow * s[1] - l
            hs = [h for h in (h0 + i * d[0] for i in range(k[0])) if 0 <= h < H]
            ws = [w for w in (w0 + j * d[1] for j in range(k[1])) if 0 <= w < W]
            win = x[:, :, hs][:, :, :, ws]
            if mode == "max":
                y[:, :, oh, ow] = win.max(axis=(2, 3))
            else:
                div = len(hs) * len(ws)
                if cip:
                    div = (min(h0 + k[0], H + b) - h0) * (min(w0 + k[1], W + r) - w0)
                y[:, :, oh, ow] = win.sum(axis=(2, 3)) / div
    return y


def softmax_ref(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_legacy_ref(x, axis):
    s = x.shape
    a = axis % x.ndim
    return softmax_ref(x.reshape(int(np.prod(s[:a])), -1), 1).reshape(s)


# ----------------------------------------------------------------------------------------------
# (a) operators


CONV_CASES = {
    "plain": ((2, 3, 7, 8), (4, 3, 3, 3), {}),
    "pads_sym": ((2, 3, 7, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    "pads_asym": ((2, 3, 7, 8), (4, 3, 3, 3), {"pads": [0, 1, 2, 1]}),
    "pads_asym_stride2": ((1, 2, 9, 9), (3, 2, 3, 3), {"pads": [1, 0, 0, 1], "strides": [2, 2]}),
    "pads_rect": ((1, 3, 8, 10), (2, 3, 2, 5), {"strides": [1, 2], "pads": [1, 2, 0, 2]}),
    "same_upper_even_kernel": ((2, 3, 7, 8), (4, 3, 4, 4), {"auto_pad": "SAME_UPPER"}),
    "same_lower_stride2": ((2, 3, 8, 7), (4, 3, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    "same_upper_dilated": ((1, 2, 7, 7), (2, 2, 2, 3), {"auto_pad": "SAME_UPPER", "dilations": [3, 2]}),
    "valid": ((2, 3, 7, 8), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    "notset_explicit": ((2, 3, 7, 8), (4, 3, 3, 3), {"auto_pad": "NOTSET", "pads": [2, 2, 2, 2]}),
    "dilations": ((1, 3, 9, 9), (4, 3, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    "group2": ((1, 4, 6, 6), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "depthwise": ((2, 4, 6, 6), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "kernel_shape_attr": ((2, 3, 5, 5), (4, 3, 3, 3), {"kernel_shape": [3, 3], "strides": [2, 2]}),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("weights", ["initializer", "input"])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv(case, weights, bias, rng):
    xs, ws, attrs = CONV_CASES[case]
    x, w, b = randn(rng, *xs), randn(rng, *ws), randn(rng, ws[0])
    names = ["x", "w"] + (["b"] if bias else [])
    node = helper.make_node("Conv", names, ["y"], **attrs)
    if weights == "initializer":
        inits = [init("w", w)] + ([init("b", b)] if bias else [])
        model = make([node], [vi("x", list(xs))], [vi("y", None)], inits)
        feeds = {"x": x}
    else:
        ins = [vi("x", list(xs)), vi("w", list(ws))] + ([vi("b", [ws[0]])] if bias else [])
        model = make([node], ins, [vi("y", None)])
        feeds = {"x": x, "w": w, **({"b": b} if bias else {})}
    # onnxruntime rejects dilations with auto_pad SAME_*; the ONNX spec defines it (the NumPy reference)
    check(model, feeds, conv_ref(x, w, b if bias else None, attrs), ort=case != "same_upper_dilated")


def test_conv_becomes_a_conv2d_layer_with_onnx_padding():
    w = np.ones((2, 1, 3, 3), np.float32)
    m = fo.load(one_node("Conv", (1, 1, 5, 5), {"pads": [0, 1, 1, 0]}, [init("w", w)], ["w"]))
    (layer,) = [c for c in m.modules() if isinstance(c, fastconv.nn.Conv2d)]
    assert layer.weight.shape == (2, 1, 3, 3) and layer.bias is None
    assert "pads=(0, 1, 1, 0)" in repr(m)
    m = fo.load(one_node("Conv", (1, 1, 5, 5), {"pads": [1, 1, 1, 1]}, [init("w", w)], ["w"]))
    (layer,) = [c for c in m.modules() if isinstance(c, fastconv.nn.Conv2d)]
    assert layer.padding == (1, 1) and layer.onnx_padding is None


POOL_CASES = {
    "plain": {"kernel_shape": [2, 2], "strides": [2, 2]},
    "default_stride": {"kernel_shape": [3, 2]},
    "pads_sym": {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    "pads_asym": {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 0]},
    "pads_large": {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2]},
    "ceil": {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    "ceil_pads_sym": {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    "ceil_pads_asym": {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1},
    "ceil_pads_asym2": {"kernel_shape": [2, 2], "strides": [3, 3], "pads": [0, 1, 1, 0], "ceil_mode": 1},
    "same_upper": {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    "same_lower": {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"},
    "same_upper_symmetric": {"kernel_shape": [3, 3], "strides": [1, 1], "auto_pad": "SAME_UPPER"},
    "valid": {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"},
}


@pytest.mark.parametrize("case", list(POOL_CASES) + ["dilations", "dilations_ceil"])
def test_max_pool(case, rng):
    attrs = dict(POOL_CASES.get(case, {}))
    if case.startswith("dilations"):
        attrs = {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1], "strides": [1, 2]}
        if case == "dilations_ceil":
            attrs.update(ceil_mode=1, strides=[2, 2], pads=[0, 1, 1, 0])
    x = randn(rng, 2, 3, 8, 7)
    check(one_node("MaxPool", x.shape, attrs), {"x": x}, pool_ref(x, attrs, "max"), rtol=0, atol=0)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_average_pool(case, count_include_pad, rng):
    attrs = dict(POOL_CASES[case], count_include_pad=count_include_pad)
    x = randn(rng, 2, 3, 8, 7)
    check(one_node("AveragePool", x.shape, attrs), {"x": x}, pool_ref(x, attrs, "avg"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [7, 9])
def test_pools_before_opset_10(opset, rng):
    x = randn(rng, 1, 2, 6, 6)
    for op, mode in (("MaxPool", "max"), ("AveragePool", "avg")):
        attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0]}
        check(one_node(op, x.shape, attrs, opset=opset), {"x": x}, pool_ref(x, attrs, mode), atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (2, 3, 6), (1, 2, 2, 3, 2)])
def test_global_pools(shape, rng):
    x = randn(rng, *shape)
    ax = tuple(range(2, len(shape)))
    check(one_node("GlobalAveragePool", shape), {"x": x}, x.astype(np.float64).mean(ax, keepdims=True))
    check(one_node("GlobalMaxPool", shape), {"x": x}, x.max(ax, keepdims=True), rtol=0, atol=0)


GEMM_CASES = {
    "linear": (0, 1, 1.0, 1.0, "N"),
    "linear_no_bias": (0, 1, 1.0, 1.0, None),
    "transB0": (0, 0, 1.0, 1.0, "N"),
    "transA_alpha_beta_full_C": (1, 0, 0.5, 2.0, "MN"),
    "both_trans_row_C": (1, 1, 1.0, 1.0, "1N"),
    "scalar_C_beta": (0, 1, 1.0, 0.5, "scalar"),
    "alpha_column_C": (0, 1, 2.0, 1.0, "M1"),
}


@pytest.mark.parametrize("b_as", ["initializer", "input"])
@pytest.mark.parametrize("case", list(GEMM_CASES))
def test_gemm(case, b_as, rng):
    ta, tb, alpha, beta, c_kind = GEMM_CASES[case]
    M, K, N = 3, 5, 4
    a = randn(rng, *((K, M) if ta else (M, K)))
    b = randn(rng, *((N, K) if tb else (K, N)))
    c_shapes = {"N": (N,), "MN": (M, N), "1N": (1, N), "scalar": (), "M1": (M, 1)}
    c = None if c_kind is None else np.asarray(randn(rng, *c_shapes[c_kind]))
    attrs = {"transA": ta, "transB": tb, "alpha": alpha, "beta": beta}
    names = ["x", "B"] + (["C"] if c is not None else [])
    node = helper.make_node("Gemm", names, ["y"], **attrs)
    inits = [init("C", c)] if c is not None else []
    ins = [vi("x", list(a.shape))]
    feeds = {"x": a}
    if b_as == "initializer":
        inits.append(init("B", b))
    else:
        ins.append(vi("B", list(b.shape)))
        feeds["B"] = b
    ref = alpha * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b)) + (0 if c is None else beta * c)
    model = make([node], ins, [vi("y", None)], inits)
    (y,) = check(model, feeds, ref)
    assert y.dtype == np.float32
    layers = list(fo.load(model).children())
    assert bool(layers) == (case in ("linear", "linear_no_bias") and b_as == "initializer")
    if layers:
        assert isinstance(layers[0], fastconv.nn.Linear)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (4, 3))])
def test_matmul(shapes, rng):
    a, b = randn(rng, *shapes[0]), randn(rng, *shapes[1])
    node = helper.make_node("MatMul", ["x", "W"], ["y"])
    check(make([node], [vi("x", list(a.shape))], [vi("y", None)], [init("W", b)]), {"x": a},
          a.astype(np.float64) @ b)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", [((2, 3, 4, 5), (3, 1, 1)), ((2, 3, 4, 5), (5,)), ((3, 1, 5), (2, 1, 4, 1)),
                                    ((2, 3), ())])
@pytest.mark.parametrize("second", ["initializer", "input"])
def test_binary_broadcasting(op, shapes, second, rng):
    a = randn(rng, *shapes[0])
    b = np.asarray(rng.uniform(0.5, 2, shapes[1]) * rng.choice([-1, 1], shapes[1]), np.float32)
    node = helper.make_node(op, ["x", "b"], ["y"])
    fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
    if second == "initializer":
        model = make([node], [vi("x", list(a.shape))], [vi("y", None)], [init("b", b)])
        feeds = {"x": a}
    else:
        model = make([node], [vi("x", list(a.shape)), vi("b", list(b.shape))], [vi("y", None)])
        feeds = {"x": a, "b": b}
    check(model, feeds, fn(a.astype(np.float64), b))


@pytest.mark.parametrize("op,ref", [
    ("Relu", lambda x: np.maximum(x, 0)),
    ("Sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("Tanh", np.tanh),
    ("LeakyRelu", lambda x: np.where(x > 0, x, 0.01 * x)),
])
def test_activations(op, ref, rng):
    x = randn(rng, 2, 3, 4, 5)
    check(one_node(op, x.shape), {"x": x}, ref(x.astype(np.float64)), rtol=2e-6, atol=1e-7)


def test_leaky_relu_alpha(rng):
    x = randn(rng, 2, 7)
    check(one_node("LeakyRelu", x.shape, {"alpha": 0.2}), {"x": x}, np.where(x > 0, x, 0.2 * x.astype(np.float64)))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis,shape", [
    (11, None, (3, 4)), (11, None, (2, 3, 4, 5)), (11, 2, (2, 3, 4, 5)), (11, -1, (2, 3, 4)), (11, 0, (2, 3)),
    (13, None, (2, 3, 4, 5)), (13, 1, (2, 3, 4, 5)), (13, -3, (2, 3, 4, 5)), (9, 1, (2, 3, 4)),
])
def test_softmax_rules(op, opset, axis, shape, rng):
    x = randn(rng, *shape) * 3
    attrs = {} if axis is None else {"axis": axis}
    if opset < 13:
        ref = softmax_legacy_ref(x, 1 if axis is None else axis)
    else:
        ref = softmax_ref(x, -1 if axis is None else axis)
    if op == "LogSoftmax":
        ref = np.log(ref)
    check(one_node(op, shape, attrs, opset=opset), {"x": x}, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, 4, -1, -3])
def test_flatten(axis, rng):
    x = randn(rng, 2, 3, 4, 5)
    a = axis if axis >= 0 else axis + 4
    ref = x.reshape(int(np.prod(x.shape[:a])), -1)
    check(one_node("Flatten", x.shape, {"axis": axis}, opset=13), {"x": x}, ref, rtol=0, atol=0)


def test_flatten_default_axis_and_old_opset(rng):
    x = randn(rng, 2, 3, 4)
    check(one_node("Flatten", x.shape, opset=9), {"x": x}, x.reshape(2, 12), rtol=0, atol=0)


@pytest.mark.parametrize("shape_value,allowzero,in_shape,want", [
    ([0, -1], 0, (2, 3, 4), (2, 12)),
    ([-1, 0, 2], 0, (2, 3, 4), (4, 3, 2)),
    ([0, 0, 0], 0, (2, 3, 4), (2, 3, 4)),
    ([4, 6], 0, (2, 3, 4), (4, 6)),
    ([3, 0], 1, (0, 3), (3, 0)),
    ([6, 4], 1, (2, 3, 4), (6, 4)),
])
def test_reshape(shape_value, allowzero, in_shape, want, rng):
    x = randn(rng, *in_shape)
    attrs = {"allowzero": allowzero} if allowzero else {}
    m = one_node("Reshape", in_shape, attrs, [init("s", np.array(shape_value, np.int64))], ["s"], opset=14)
    (y,) = check(m, {"x": x})
    assert y.shape == want
    np.testing.assert_array_equal(y.reshape(-1), x.reshape(-1))


def test_reshape_shape_as_graph_input(rng):
    x = randn(rng, 2, 3, 4)
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    m = make([node], [vi("x", [2, 3, 4]), vi("s", [2], I64)], [vi("y", None)], opset=13)
    y = run(m, x, np.array([0, -1]))
    assert y.shape == (2, 12)
    with pytest.raises(ValueError, match="Reshape"):
        run(m, x, np.array([5, -1]))


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat(axis, rng):
    a, b, c = randn(rng, 2, 3, 4), randn(rng, 2, 3, 4), randn(rng, 2, 3, 4)
    node = helper.make_node("Concat", ["x", "b", "c"], ["y"], axis=axis)
    m = make([node], [vi("x", [2, 3, 4]), vi("b", [2, 3, 4])], [vi("y", None)], [init("c", c)])
    check(m, {"x": a, "b": b}, np.concatenate([a, b, c], axis), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_batch_normalization(shape, rng):
    C = shape[1]
    x = randn(rng, *shape)
    s, b, mean = randn(rng, C), randn(rng, C), randn(rng, C)
    var = rng.uniform(0.5, 2, C).astype(np.float32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    m = make([node], [vi("x", list(shape))], [vi("y", None)],
             [init("s", s), init("b", b), init("m", mean), init("v", var)], opset=15)
    bs = (1, C) + (1,) * (len(shape) - 2)
    ref = (x - mean.reshape(bs)) / np.sqrt(var.astype(np.float64).reshape(bs) + 1e-3) * s.reshape(bs) + b.reshape(bs)
    check(m, {"x": x}, ref, atol=1e-5)
    mod = fo.load(m)
    (bn,) = [c for c in mod.modules() if isinstance(c, fastconv.nn.BatchNorm2d)]
    assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.1)
    np.testing.assert_array_equal(bn.running_var, var)
    (name,) = [n for n, c in mod.named_modules() if c is bn]
    assert list(mod.state_dict()) == [f"{name}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                               "num_batches_tracked")]
    assert mod.initializer_names == {f"{name}.weight": "s", f"{name}.bias": "b"}


def test_batch_normalization_with_computed_scale(rng):
    # scale from a Constant node (not an initializer): the functional path
    x = randn(rng, 2, 3, 4, 4)
    s, b, mean, var = randn(rng, 3), randn(rng, 3), randn(rng, 3), rng.uniform(0.5, 2, 3).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(s)),
             helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])]
    m = make(nodes, [vi("x", [2, 3, 4, 4])], [vi("y", None)], [init("b", b), init("m", mean), init("v", var)])
    bs = (1, 3, 1, 1)
    ref = (x - mean.reshape(bs)) / np.sqrt(var.astype(np.float64).reshape(bs) + 1e-5) * s.reshape(bs) + b.reshape(bs)
    check(m, {"x": x}, ref, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 10, 12, 13])
@pytest.mark.parametrize("mask", [False, True])
def test_dropout_is_identity_in_inference(opset, mask, rng):
    x = randn(rng, 2, 3, 4)
    ins, inits, attrs = ["x"], [], {}
    if opset >= 12:
        ins.append("r")
        inits.append(init("r", np.array(0.3, np.float32)))
    else:
        attrs["ratio"] = 0.3
    outs = ["y", "mask"] if mask else ["y"]
    node = helper.make_node("Dropout", ins, outs, **attrs)
    mask_type = TensorProto.BOOL if opset >= 10 else F32  # before opset 10 the mask has the input's type
    m = make([node], [vi("x", [2, 3, 4])], [vi("y", None)] + [vi("mask", None, mask_type)] * mask, inits,
             opset=opset)
    refs = [x, np.ones(x.shape, bool if opset >= 10 else np.float32)] if mask else x
    # onnxruntime's Dropout-10 kernel returns an all-False mask in inference; from opset 12 it returns
    # all True, as the ONNX reference implementation does for every version (and fastconv here)
    check(m, {"x": x}, refs, rtol=0, atol=0, ort=not (mask and opset < 12))
    mod = fo.load(m)
    (drop,) = [c for c in mod.modules() if isinstance(c, fastconv.nn.Dropout)]
    assert drop.p == pytest.approx(0.3)
    mod.train()
    fastconv.manual_seed(0)
    out = mod(x)
    y = (out[0] if mask else out).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    assert 0 < kept.mean() < 1
    if mask:
        np.testing.assert_array_equal(out[1].numpy(), kept)
        assert out[1].dtype == (bool if opset >= 10 else np.float32)


@pytest.mark.parametrize("attr,value,want", [
    ("value", numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3)),
     np.arange(6, dtype=np.float32).reshape(2, 3)),
    ("value_float", 2.5, np.float32(2.5)),
    ("value_floats", [1.0, 2.0, 3.0], np.array([1, 2, 3], np.float32)),
    ("value_int", 7, np.int64(7)),
    ("value_ints", [1, 2, 3], np.array([1, 2, 3], np.int64)),
])
def test_constant(attr, value, want):
    nodes = [helper.make_node("Constant", [], ["c"], **{attr: value}), helper.make_node("Identity", ["c"], ["y"])]
    m = make(nodes, [vi("x", [1])], [vi("y", None, I64 if np.asarray(want).dtype == np.int64 else F32)], opset=13)
    x = np.zeros(1, np.float32)
    (y,) = check(m, {"x": x}, np.asarray(want), rtol=0, atol=0)
    assert y.dtype == np.asarray(want).dtype


def test_identity_and_constant_arithmetic_fold(rng):
    # Identity chains alias; Constant-only arithmetic folds at load time
    x = randn(rng, 2, 3)
    nodes = [
        helper.make_node("Constant", [], ["two"], value_float=2.0),
        helper.make_node("Constant", [], ["three"], value_float=3.0),
        helper.make_node("Mul", ["two", "three"], ["six"]),
        helper.make_node("Identity", ["x"], ["x1"]),
        helper.make_node("Identity", ["x1"], ["x2"]),
        helper.make_node("Add", ["x2", "six"], ["y"]),
    ]
    m = make(nodes, [vi("x", [2, 3])], [vi("y", None)])
    check(m, {"x": x}, x + 6.0)
    mod = fo.load(m)
    assert len(mod._plan_full[0]) == 1  # only the Add runs


def flatten_chain(opset, dynamic):
    """What PyTorch writes for x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["shp"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
    ]
    if opset >= 13:
        nodes += [helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64))),
                  helper.make_node("Unsqueeze", ["n", "ax"], ["n1"])]
    else:
        nodes += [helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0])]
    nodes += [
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "m1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"]),
    ]
    return make(nodes, [vi("x", ["N" if dynamic else 2, 3, 4, 5])], [vi("y", None)], opset=opset)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("opset", [11, 13])
def test_shape_chain_view_flatten(opset, dynamic, rng):
    m = flatten_chain(opset, dynamic)
    mod = fo.load(m)
    for n in ([1, 3, 2] if dynamic else [2, 2]):
        x = randn(rng, n, 3, 4, 5)
        (y,) = check(m, {"x": x}, np.maximum(x, 0).reshape(n, -1), rtol=0, atol=0)
        np.testing.assert_array_equal(mod(x).numpy(), y)
    # the chain is evaluated once per input shape, then served from the cache
    assert len(mod._shape_cache) == (3 if dynamic else 1)
    assert len(mod._plan_hit[0]) == 2  # Relu and Reshape


def test_shape_chain_with_squeeze_cast_slice_and_arithmetic(rng):
    # y = reshape(x, [N * C, H * W // 2, 2]) computed from Shape with Slice/Squeeze/Cast/Mul/Div
    c = lambda name, v: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.int64)))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        c("st", [0]), c("en", [2]), c("st2", [2]), c("en2", [4]), c("ax0", [0]), c("two", 2),
        helper.make_node("Slice", ["s", "st", "en"], ["nc"]),
        helper.make_node("Slice", ["s", "st2", "en2"], ["hw"]),
        helper.make_node("Gather", ["nc", "ax0"], ["n1"], axis=0),
        c("one", [1]),
        helper.make_node("Gather", ["nc", "one"], ["c1"], axis=0),
        helper.make_node("Mul", ["n1", "c1"], ["ncprod"]),
        helper.make_node("Gather", ["hw", "ax0"], ["h1"], axis=0),
        helper.make_node("Gather", ["hw", "one"], ["w1"], axis=0),
        helper.make_node("Mul", ["h1", "w1"], ["hwprod"]),
        helper.make_node("Div", ["hwprod", "two"], ["half"]),
        helper.make_node("Cast", ["half"], ["halff"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["halff"], ["half2"], to=TensorProto.INT64),
        helper.make_node("Squeeze", ["half2", "ax0"], ["half3"]),
        helper.make_node("Unsqueeze", ["half3", "ax0"], ["half4"]),
        c("twov", [2]),
        helper.make_node("Concat", ["ncprod", "half4", "twov"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    m = make(nodes, [vi("x", ["N", 3, 4, 6])], [vi("y", None)], opset=13)
    for n in (1, 2):
        x = randn(rng, n, 3, 4, 6)
        check(m, {"x": x}, x.reshape(n * 3, 12, 2), rtol=0, atol=0)


@pytest.mark.parametrize("opset", [9, 13])
def test_slice_variants(opset, rng):
    x = randn(rng, 4, 5, 6)
    cases = [
        ([1, 0], [3, 100], [0, 2], None, x[1:3, :, 0:]),
        ([-2], [2**62], [1], None, x[:, -2:]),
    ]
    if opset >= 10:
        cases += [
            ([1, 0], [3, 100], [0, 2], [1, 2], x[1:3, :, 0::2]),
            ([-1], [-2**62], [1], [-1], x[:, ::-1]),
            ([4, -1], [0, 1], [1, 2], [-2, -1], x[:, 4:0:-2, :1:-1]),
        ]
    for starts, ends, axes, steps, want in cases:
        if opset >= 10:
            inits = [init("st", np.array(starts)), init("en", np.array(ends)), init("ax", np.array(axes))]
            names = ["st", "en", "ax"]
            if steps is not None:
                inits.append(init("sp", np.array(steps)))
                names.append("sp")
            m = one_node("Slice", x.shape, {}, inits, names, opset=opset)
        else:
            m = one_node("Slice", x.shape, {"starts": starts, "ends": ends, "axes": axes}, opset=opset)
        check(m, {"x": x}, want, rtol=0, atol=0)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(opset, rng):
    x = randn(rng, 1, 3, 1, 4)
    if opset >= 13:
        inits = [init("a", np.array([0, -2], np.int64))]
        sq = one_node("Squeeze", x.shape, {}, inits, ["a"], opset=opset)
        inits = [init("a", np.array([0, 3, -1], np.int64))]
        un = one_node("Unsqueeze", x.shape, {}, inits, ["a"], opset=opset)
    else:
        sq = one_node("Squeeze", x.shape, {"axes": [0, -2]}, opset=opset)
        un = one_node("Unsqueeze", x.shape, {"axes": [0, 3, -1]}, opset=opset)
    check(sq, {"x": x}, x.reshape(3, 4), rtol=0, atol=0)
    check(un, {"x": x}, x.reshape(1, 1, 3, 1, 1, 4, 1), rtol=0, atol=0)
    check(one_node("Squeeze", x.shape, opset=opset), {"x": x}, x.reshape(3, 4), rtol=0, atol=0)


def test_shape_start_end_and_constant_of_shape(rng):
    x = randn(rng, 2, 3, 4)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=1, end=3),
        helper.make_node("ConstantOfShape", ["s"], ["z"], value=numpy_helper.from_array(np.array([1.5], np.float32))),
        helper.make_node("Shape", ["x"], ["s2"], start=-1),
    ]
    m = make(nodes, [vi("x", ["N", 3, 4])], [vi("z", None), vi("s2", None, I64)], opset=15)
    check(m, {"x": x}, [np.full((3, 4), 1.5, np.float32), np.array([4])], rtol=0, atol=0)


def test_gather_on_data_and_transpose_reduce_mean_pad(rng):
    x = randn(rng, 2, 3, 4, 5)
    check(one_node("Gather", x.shape, {"axis": 1}, [init("i", np.array([[2, 0], [1, -1]], np.int64))], ["i"]),
          {"x": x}, np.take(x, [[2, 0], [1, 2]], axis=1), rtol=0, atol=0)
    check(one_node("Gather", x.shape, {"axis": -1}, [init("i", np.array(3, np.int64))], ["i"]),
          {"x": x}, x[..., 3], rtol=0, atol=0)
    check(one_node("Transpose", x.shape, {"perm": [0, 2, 3, 1]}), {"x": x}, x.transpose(0, 2, 3, 1), rtol=0, atol=0)
    check(one_node("Transpose", x.shape), {"x": x}, x.T, rtol=0, atol=0)
    check(one_node("ReduceMean", x.shape, {"axes": [2, 3], "keepdims": 0}, opset=13), {"x": x},
          x.astype(np.float64).mean((2, 3)))
    check(one_node("ReduceMean", x.shape, {}, [init("a", np.array([-1], np.int64))], ["a"], opset=18), {"x": x},
          x.astype(np.float64).mean(-1, keepdims=True))
    pads = np.array([0, 1, 2, 0, 0, 0, 1, -2], np.int64)
    want = np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 0)), constant_values=0.5)[:, :, :, :3]
    check(one_node("Pad", x.shape, {}, [init("p", pads), init("v", np.array(0.5, np.float32))], ["p", "v"],
                   opset=13), {"x": x}, want, rtol=0, atol=0)
    check(one_node("Pad", x.shape, {"pads": [0, 0, 1, 1, 0, 0, 1, 1]}, opset=9), {"x": x},
          np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), rtol=0, atol=0)


def test_int64_division_truncates_like_onnxruntime():
    a = np.array([7, -7, 6, -6], np.int64)
    node = helper.make_node("Div", ["x", "d"], ["y"])
    m = make([node], [vi("x", [4], I64)], [vi("y", None, I64)], [init("d", np.array([2, 2, -4, 4], np.int64))])
    (y,) = check(m, {"x": a}, np.array([3, -3, -1, -1]), rtol=0, atol=0)
    assert y.dtype == np.int64


def test_latest_opset_from_make_model_default(rng):
    # onnx.helper.make_model without opset_imports writes the newest opset this onnx knows
    x = randn(rng, 1, 2, 6, 6)
    w = randn(rng, 3, 2, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Softmax", ["f"], ["y"])]
    g = helper.make_graph(nodes, "g", [vi("x", [1, 2, 6, 6])], [vi("y", None)], [init("w", w)])
    m = helper.make_model(g)
    assert fo.MIN_OPSET <= m.opset_import[0].version <= fo.MAX_OPSET
    ref = softmax_ref(pool_ref(np.maximum(conv_ref(x, w, None, {"pads": [1, 1, 1, 1]}), 0),
                               {"kernel_shape": [2, 2], "strides": [2, 2]}, "max").reshape(1, -1), -1)
    np.testing.assert_allclose(run(m, x), ref, rtol=1e-5, atol=1e-7)


def test_small_graph_against_numpy_and_ort(rng):
    # a residual Inception-ish graph: Conv (asymmetric pads) | AveragePool (SAME_UPPER) -> Concat -> Add
    x = randn(rng, 2, 3, 7, 7)
    w = randn(rng, 3, 3, 2, 2)
    b = randn(rng, 3)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 0, 1, 1]),
        helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Concat", ["c", "a"], ["cat"], axis=1),
        helper.make_node("Concat", ["x", "x"], ["xx"], axis=1),
        helper.make_node("Add", ["cat", "xx"], ["s"]),
        helper.make_node("GlobalAveragePool", ["s"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ]
    m = make(nodes, [vi("x", ["N", 3, 7, 7])], [vi("y", None)], [init("w", w), init("b", b)])
    c = conv_ref(x, w, b, {"pads": [0, 0, 1, 1]})
    a = pool_ref(x, {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, "avg")
    s = np.concatenate([c, a], 1) + np.concatenate([x, x], 1)
    check(m, {"x": x}, s.mean((2, 3)))


# ----------------------------------------------------------------------------------------------
# (b) models exported from PyTorch


def _torch():
    return pytest.importorskip("torch")


def torch_models():
    torch = _torch()
    nn = torch.nn

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                                            nn.ReLU(), nn.Linear(84, 10))

        def forward(self, x):
            return torch.log_softmax(self.classifier(self.features(x)), dim=1)

    class SmallVGG(nn.Module):
        def __init__(self, p=0.3):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            )
            self.drop = nn.Dropout(p)
            self.fc = nn.Linear(16 * 3 * 3, 10)

        def forward(self, x):
            x = self.features(x)
            x = x.view(x.size(0), -1)
            return torch.softmax(self.fc(self.drop(x)), dim=1)

    class ResBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)) + x)
            return self.fc(torch.flatten(self.pool(out), 1))

    class Inception(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = nn.Conv2d(3, 4, 1)
            self.b2 = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1))
            self.b3 = nn.Sequential(nn.Conv2d(3, 2, 1), nn.LeakyReLU(0.1), nn.Conv2d(2, 4, 5, padding=2))
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(3, 4, 1), nn.Sigmoid())
            self.avg = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)

        def forward(self, x):
            y = torch.cat([self.b1(x), self.b2(x), self.b3(x), torch.tanh(self.b4(x))], 1)
            y = self.avg(y)
            return torch.softmax(y, dim=1), torch.log_softmax(y.mean((2, 3)), 1)

    return {
        "lenet5": (LeNet5, (2, 1, 32, 32)),
        "vgg_bn_view": (SmallVGG, (2, 3, 12, 12)),
        "vgg_bn_nodrop": (lambda: SmallVGG(0.0), (2, 3, 12, 12)),
        "resblock": (ResBlock, (2, 4, 6, 6)),
        "inception": (Inception, (2, 3, 9, 9)),
    }


def build_torch(name, seed=0):
    torch = _torch()
    cls, shape = torch_models()[name]
    torch.manual_seed(seed)
    model = cls()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.5)
    return model.eval(), shape


_EXPORTS = {}


def export(name, opset, dynamic, preserve=False):
    """(torch model, onnx bytes); the legacy TorchScript exporter works offline (the dynamo one needs onnxscript)."""
    key = (name, opset, dynamic, preserve)
    if key not in _EXPORTS:
        torch = _torch()
        model, shape = build_torch(name)
        x = torch.zeros(shape)
        n_out = 2 if name == "inception" else 1
        outs = ["y", "y2"][:n_out]
        kw = {}
        if dynamic:
            kw["dynamic_axes"] = {k: {0: "batch"} for k in ["x"] + outs}
        if preserve:
            kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        f = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), f, opset_version=opset, dynamo=False, input_names=["x"],
                                  output_names=outs, **kw)
        except (TypeError, ImportError, ModuleNotFoundError) as exc:  # pragma: no cover - exporter unavailable
            pytest.skip(f"torch.onnx.export(dynamo=False) is not usable here: {exc}")
        _EXPORTS[key] = (model, f.getvalue())
    return _EXPORTS[key]


def torch_out(model, x):
    torch = _torch()
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    return [o.numpy() for o in out] if isinstance(out, tuple) else [out.numpy()]


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("name", ["lenet5", "vgg_bn_view", "resblock", "inception"])
def test_pytorch_export(name, opset, dynamic, rng):
    model, data = export(name, opset, dynamic)
    mod = fo.load(data)
    shape = torch_models()[name][1]
    for n in ([1, 3] if dynamic else [shape[0]]):
        x = randn(rng, n, *shape[1:])
        got = mod(x)
        got = [g.numpy() for g in got] if isinstance(got, tuple) else [got.numpy()]
        want = torch_out(model, x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg="vs PyTorch")
        if _ort is not None:
            for g, w in zip(got, run_ort(onnx.load_from_string(data), {"x": x})):
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg="vs onnxruntime")
        # the same through Tensors and the recording path
        t = mod(fastconv.tensor(x))
        t = t[0] if isinstance(t, tuple) else t
        np.testing.assert_allclose(t.numpy(), got[0], rtol=1e-6, atol=1e-7)
    if not dynamic:
        with pytest.raises(ValueError, match="fixed batch size"):
            mod(randn(rng, shape[0] + 1, *shape[1:]))


def test_pytorch_lenet_is_layers_with_pytorch_names():
    model, data = export("lenet5", 17, True)
    mod = fo.load(data)
    keys = list(mod.state_dict())
    assert keys == list(model.state_dict())
    text = repr(mod)
    for line in ("(0): Conv2d(1, 6, kernel_size=(5, 5)", "(2): MaxPool2d(", "(5): Linear(in_features=84"):
        assert line in text, text
    s = fastconv.summary(mod, (1, 1, 32, 32))
    assert s.total_params == sum(p.numel() for p in model.parameters())
    ref = fastconv.summary(fastconv.models.LeNet5(), (1, 1, 32, 32))
    assert s.total_macs == ref.total_macs
    assert [r.output_shape for r in s.rows if r.type in ("Conv2d", "Linear")] == \
        [r.output_shape for r in ref.rows if r.type in ("Conv2d", "Linear")]


# ----------------------------------------------------------------------------------------------
# (c) unsupported operators: one error that lists them all


def test_unsupported_operators_are_listed_in_one_error():
    nodes = [
        helper.make_node("Resize", ["x"], ["r1"], name="up1"),
        helper.make_node("Relu", ["r1"], ["r2"]),
        helper.make_node("Resize", ["r2"], ["r3"], name="up2"),
        helper.make_node("FusedConv", ["r3"], ["r4"], name="fc", domain="com.microsoft"),
        helper.make_node("MaxPool", ["r4"], ["r5", "idx"], name="pool_idx", kernel_shape=[2, 2]),
        helper.make_node("AveragePool", ["r5"], ["r6"], name="avg_dil", kernel_shape=[2, 2], dilations=[2, 2]),
        helper.make_node("Conv", ["r6", "w3d"], ["r7"], name="conv3d"),
        helper.make_node("Einsum", ["r7"], ["y"], equation="ii", name="ein"),
    ]
    g = helper.make_graph(nodes, "g", [vi("x", [1, 1, 4, 4, 4])], [vi("y", None)],
                          [init("w3d", np.zeros((1, 1, 1, 1, 1), np.float32))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(fo.UnsupportedOperatorError) as info:
        fo.load(m)
    err = info.value
    assert isinstance(err, ValueError)
    msg = str(err)
    assert err.op_types == ["AveragePool", "Conv", "Einsum", "MaxPool", "Resize", "com.microsoft::FusedConv"]
    for part in ("Resize: 2 nodes ('up1', 'up2')", "com.microsoft::FusedConv: 1 node ('fc')",
                 "default ONNX domain", "'pool_idx'", "Indices output", "'avg_dil'", "dilations",
                 "'conv3d'", "3-D convolution", "Einsum: 1 node ('ein')", "supported operators: Add,"):
        assert part in msg, msg
    assert "Relu" not in err.op_types


@pytest.mark.parametrize("opset", [6, 99])
def test_opset_out_of_range(opset):
    m = one_node("Relu", (2,), opset=opset)
    with pytest.raises(ValueError, match=f"opset {opset}.*{fo.MIN_OPSET} to {fo.MAX_OPSET}"):
        fo.load(m)


def test_malformed_graph_is_a_value_error():
    nodes = [helper.make_node("Relu", ["missing"], ["y"])]
    with pytest.raises(ValueError, match="'missing' is not defined"):
        fo.load(make(nodes, [vi("x", [2])], [vi("y", None)]))
    with pytest.raises(TypeError, match="expected a path"):
        fo.load(3.5)


# ----------------------------------------------------------------------------------------------
# (d) gradients


def _torch_grads(model, x, dy, train=False):
    torch = _torch()
    model.train(train)
    model.zero_grad()
    xt = torch.from_numpy(x).requires_grad_(True)
    out = model(xt)
    out = out[0] if isinstance(out, tuple) else out
    (out * torch.from_numpy(dy)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), {k: p.grad.numpy() for k, p in model.named_parameters()}


def _fc_grads(mod, x, dy, train=False):
    mod.train(train)
    mod.zero_grad()
    xt = fastconv.tensor(x, requires_grad=True)
    out = mod(xt)
    out = out[0] if isinstance(out, tuple) else out
    (out * fastconv.tensor(dy)).sum().backward()
    return out.numpy(), xt.grad, {k: p.grad for k, p in mod.named_parameters()}


@pytest.mark.parametrize("name,train", [("lenet5", False), ("resblock", False), ("resblock", True),
                                        ("inception", False), ("vgg_bn_nodrop", True)])
def test_gradients_match_pytorch(name, train, rng):
    model, data = export(name, 13, True, preserve=True)
    mod = fo.load(data)
    shape = torch_models()[name][1]
    x = randn(rng, 3, *shape[1:])
    dy = randn(rng, *torch_out(model.eval(), x)[0].shape)
    want_out, want_dx, want = _torch_grads(model, x, dy, train)
    got_out, got_dx, got = _fc_grads(mod, x, dy, train)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-4, atol=1e-5)
    assert sorted(got) == sorted(want)  # the same parameter names as PyTorch
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4, err_msg=k)
    if train:  # running statistics updated as PyTorch updates them (ONNX momentum 0.9 -> PyTorch 0.1)
        sd = mod.state_dict()
        for k, v in model.state_dict().items():
            np.testing.assert_allclose(sd[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    model.eval()


def test_gradients_by_central_differences_float64(rng):
    # explicit-pad conv, count_include_pad=0 average pool over asymmetric pads, SAME max pool,
    # a generic Gemm (transA, alpha), Concat, legacy Softmax: every gradient path fastconv.onnx adds
    w = randn(rng, 2, 2, 2, 3) * 0.5
    b = randn(rng, 2)
    W = randn(rng, 2 * 2 * 3 * 2, 3) * 0.3  # (K, N), used as B with transB=0
    C = randn(rng, 3)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 0, 0, 2], strides=[1, 1]),
        helper.make_node("AveragePool", ["c"], ["a"], kernel_shape=[2, 2], pads=[0, 1, 1, 0], count_include_pad=0),
        helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Concat", ["m", "m"], ["cat"], axis=1),
        helper.make_node("Flatten", ["cat"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "C"], ["g"], alpha=0.5),
        helper.make_node("Softmax", ["g"], ["y"]),
    ]
    m = make(nodes, [vi("x", ["N", 2, 5, 4])], [vi("y", None)], [init("w", w), init("b", b), init("W", W),
                                                                   init("C", C)], opset=11)
    mod = fo.load(m).double()
    x = rng.standard_normal((2, 2, 5, 4))
    out = mod(x).numpy()
    assert out.dtype == np.float64
    dy = rng.standard_normal(out.shape)
    _, dx, grads = _fc_grads(mod, x, dy)
    mod.eval()

    def loss_of(p):
        def f(v):
            old = p.data.copy()
            p.data[...] = v
            try:
                return float((mod(x).numpy() * dy).sum())
            finally:
                p.data[...] = old
        return f

    for name, p in mod.named_parameters():
        np.testing.assert_allclose(grads[name], numeric_grad(loss_of(p), p.data), rtol=1e-5, atol=1e-8, err_msg=name)
    num_dx = numeric_grad(lambda v: float((mod(v).numpy() * dy).sum()), x)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-5, atol=1e-8)


def test_fine_tuning_steps_change_the_output(rng):
    model, data = export("lenet5", 17, True)
    mod = fo.load(data)
    x = randn(rng, 4, 1, 32, 32)
    target = np.array([1, 2, 3, 4])
    opt = fastconv.optim.SGD(mod.parameters(), lr=0.1)
    before = mod(x).numpy()
    mod.train()
    losses = []
    for _ in range(3):
        loss = fastconv.functional.cross_entropy(mod(fastconv.tensor(x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    mod.eval()
    assert losses[-1] < losses[0]
    assert not np.allclose(mod(x).numpy(), before)


# ----------------------------------------------------------------------------------------------
# (e) state_dict


def test_state_dict_round_trip_and_parameter_counts(tmp_path, rng):
    model, data = export("vgg_bn_view", 17, True, preserve=True)
    mod = fo.load(data)
    sd_torch = model.state_dict()
    assert sorted(mod.state_dict()) == sorted(sd_torch)
    assert mod.num_parameters() == sum(p.numel() for p in model.parameters())
    assert len(list(mod.parameters())) == len(list(model.parameters()))
    assert mod.initializer_names["features.0.weight"] == "features.0.weight"
    x = randn(rng, 2, 3, 12, 12)
    y0 = mod(x).numpy()

    other = fo.load(data)
    for p in other.parameters():
        p.data[...] = 0
    assert not np.allclose(other(x).numpy(), y0)
    path = tmp_path / "vgg.npz"
    fastconv.save(mod.state_dict(), str(path))
    other.load_state_dict(fastconv.load(str(path)))
    np.testing.assert_array_equal(other(x).numpy(), y0)
    other.load_state_dict({k: v for k, v in sd_torch.items()})  # straight from PyTorch
    np.testing.assert_allclose(other(x).numpy(), y0, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="missing keys: fc.bias"):
        other.load_state_dict({k: v for k, v in sd_torch.items() if k != "fc.bias"})


def test_fused_export_names_and_mapping():
    model, data = export("vgg_bn_view", 11, True)  # eval export: BatchNorm folded into the convs
    mod = fo.load(data)
    keys = list(mod.state_dict())
    assert keys[:2] == ["features.0.weight", "features.0.bias"]  # named after the node's PyTorch scope
    assert mod.initializer_names["features.0.weight"].startswith("onnx::")
    onnx_model = onnx.load_from_string(data)
    sizes = {t.name: int(np.prod(t.dims)) for t in onnx_model.graph.initializer}
    assert mod.num_parameters() == sum(sizes[n] for n in mod.initializer_names.values())


# ----------------------------------------------------------------------------------------------
# loading, calling, errors, modes


def two_io_model():
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["a", "b"], ["p"])]
    return make(nodes, [vi("a", ["N", 3]), vi("b", [1, 3])], [vi("s", None), vi("p", None)])


def test_load_sources(tmp_path, rng):
    m = two_io_model()
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    a, b = randn(rng, 2, 3), randn(rng, 1, 3)
    with open(path, "rb") as fh:
        sources = [m, m.SerializeToString(), bytearray(m.SerializeToString()), str(path), path, fh]
        for src in sources:
            s, p = fo.load(src)(a, b)
            np.testing.assert_array_equal(s.numpy(), a + b)
            np.testing.assert_array_equal(p.numpy(), a * b)


def test_inputs_by_position_and_keyword(rng):
    mod = fo.load(two_io_model())
    assert mod.input_names == ["a", "b"] and mod.output_names == ["s", "p"]
    a, b = randn(rng, 4, 3), randn(rng, 1, 3)
    for out in (mod(a, b), mod(a, b=b), mod(b=b, a=a), mod(a.tolist(), b)):
        np.testing.assert_allclose(out[0].numpy(), a + b)
    with pytest.raises(TypeError, match=r"missing input \['b'\]"):
        mod(a)
    with pytest.raises(TypeError, match="unexpected input 'c'"):
        mod(a, b, c=a)
    with pytest.raises(TypeError, match="two values for input 'a'"):
        mod(a, b, a=a)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        mod(a, b, a)


@pytest.mark.parametrize("bad,match", [
    ((2, 3, 4), r"input 'x' has shape \(2, 3, 4\), expected \(N, 3, 8, 8\)"),
    ((2, 4, 8, 8), r"input 'x' has shape \(2, 4, 8, 8\), expected \(N, 3, 8, 8\)"),
    ((1, 3, 8, 9), r"expected \(N, 3, 8, 8\)"),
])
def test_bad_input_shape_names_the_input(bad, match):
    w = np.ones((2, 3, 3, 3), np.float32)
    mod = fo.load(one_node("Conv", ("N", 3, 8, 8), {}, [init("w", w)], ["w"]))
    with pytest.raises(ValueError, match=match):
        mod(np.zeros(bad, np.float32))
    with pytest.raises(TypeError, match="complex"):
        mod(np.zeros((1, 3, 8, 8), np.complex64))


def test_runtime_errors_name_the_node():
    # shapes fine at the input, wrong inside: the error says which node failed
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")]
    m = make(nodes, [vi("x", ["N", 6])], [vi("y", None)], [init("s", np.array([4, -1], np.int64))])
    with pytest.raises(ValueError, match=r"ONNX node 'bad_reshape' \(Reshape\): Reshape: cannot reshape"):
        fo.load(m)(np.zeros((3, 6), np.float32))


def test_integer_inputs_follow_the_dtype_policy():
    mod = fo.load(one_node("Relu", (2, 3)))
    y = mod(np.array([[1, -2, 3], [-4, 5, -6]]))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [[1, 0, 3], [0, 5, 0]])


def test_fast_path_records_nothing_and_tensor_path_records(rng):
    model, data = export("lenet5", 17, True)
    mod = fo.load(data)
    assert not mod.training
    x = randn(rng, 2, 1, 32, 32)
    y = mod(x)
    assert isinstance(y, fastconv.Tensor) and not y.requires_grad and y.grad_fn is None
    y = mod(fastconv.tensor(x))
    assert y.requires_grad  # the parameters require grad
    with fastconv.no_grad():
        assert not mod(fastconv.tensor(x)).requires_grad
    mod.train()
    y = mod(x)  # training mode: NumPy input records too (for the parameters)
    assert y.requires_grad
    y.sum().backward()
    assert all(p.grad is not None for p in mod.parameters())


def test_deepcopy_runs_its_own_layers(rng):
    import copy

    model, data = export("resblock", 17, True)
    mod = fo.load(data)
    x = randn(rng, 2, 4, 6, 6)
    y = mod(x).numpy()
    twin = copy.deepcopy(mod)
    for p in mod.parameters():
        p.data[...] = 0
    np.testing.assert_array_equal(twin(x).numpy(), y)
    np.testing.assert_array_equal(twin(fastconv.tensor(x)).numpy(), y)
    assert not np.array_equal(mod(x).numpy(), y)


def test_hooks_replacement_and_dtype(rng):
    model, data = export("lenet5", 17, False)
    mod = fo.load(data)
    x = randn(rng, 2, 1, 32, 32)
    seen = []
    h = mod.features[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    y = mod(x).numpy()
    assert seen == [(2, 6, 28, 28)]
    h.remove()
    # replace the classifier head, as when fine-tuning on new classes
    old = mod.classifier[5]
    mod.classifier[5] = fastconv.nn.Linear(84, 3)
    assert mod(x).shape == (2, 3) and mod(fastconv.tensor(x)).shape == (2, 3)
    with pytest.raises(KeyError, match="no child '9'"):
        mod.classifier[9] = old
    mod.classifier[5] = old
    np.testing.assert_array_equal(mod(x).numpy(), y)
    # float64: parameters and float constants follow module.double()
    y64 = mod.double()(x.astype(np.float64)).numpy()
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, y, rtol=1e-4, atol=1e-5)
    assert mod.float()(x).dtype == np.float32


def test_batchnorm_train_mode_uses_batch_statistics(rng):
    x = randn(rng, 4, 2, 3, 3)
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], momentum=0.8)
    m = make([node], [vi("x", [4, 2, 3, 3])], [vi("y", None)],
             [init("s", ones), init("b", zeros), init("m", zeros + 5), init("v", ones * 9)])
    mod = fo.load(m)
    np.testing.assert_allclose(mod(x).numpy(), (x - 5) / np.sqrt(9 + 1e-5), rtol=1e-5)
    mod.train()
    y = mod(x).numpy()
    np.testing.assert_allclose(y.mean((0, 2, 3)), 0, atol=1e-5)
    bn = [c for c in mod.modules() if isinstance(c, fastconv.nn.BatchNorm2d)][0]
    np.testing.assert_allclose(bn.running_mean, 0.8 * 5 + 0.2 * x.mean((0, 2, 3)), rtol=1e-5)


def test_import_without_the_onnx_package():
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import fastconv.onnx as fo\n"
        "assert fo.SUPPORTED_OPS and issubclass(fo.UnsupportedOperatorError, ValueError)\n"
        "try:\n"
        "    fo.load(b'')\n"
        "except ImportError as e:\n"
        "    assert \"pip install 'fastconv[onnx]'\" in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
