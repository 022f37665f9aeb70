"""Independent float64 NumPy references for conv2d and linear, and gradient checking.

Nothing here imports fastconv: every function works on float64 copies of its
inputs and is written from the definitions, not from the kernels' algorithms.

conv2d      y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]
            (g = o // OCg), computed with np.pad + sliding_window_view + einsum.
conv2d grads
            dw  by einsum of the same windows with dy,
            dx  by scattering dy through each kernel tap (explicit loops over
                (i, j), a strided slice-add into the padded input, then crop),
            db  by summing dy.
linear      y = x @ w.T + b over the last axis; grads by einsum.

numeric_grad / check_vjp: central differences in float64. A backward pass is
checked as the gradient of L(inputs) = sum(f(inputs) * dy).

assert_close compares elementwise against an error scale: pass the same
reference evaluated on absolute values (conv2d_ref(|x|, |w|, |b|) bounds every
term of every sum), so the tolerance follows floating-point summation error
instead of one global magnitude.

The references for pooling and elementwise ops live beside this file
(ref_pool.py, ref_elementwise.py) and are re-exported at the end when present.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "as_pair",
    "conv2d_pads",
    "conv2d_out_size",
    "conv2d_ref",
    "conv2d_ref_loops",
    "conv2d_grads_ref",
    "conv2d_scales",
    "linear_ref",
    "linear_grads_ref",
    "linear_scales",
    "numeric_grad",
    "check_vjp",
    "assert_close",
    "RTOL",
    "LAYOUTS",
    "as_layout",
]

# Tolerances relative to the sum of |terms| of each output element (see assert_close).
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}


# ---------------------------------------------------------------------------
# option handling (written from API.md, not shared with fastconv._args)


def as_pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        assert len(v) == 2, v
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv2d_pads(padding, kernel, dilation=1):
    """(top, bottom, left, right) for an int, a pair, 'valid' or 'same'.

    'same' pads a total of dilation*(k-1) per axis; when that is odd the extra
    row / column goes to the bottom / right (PyTorch's convention).
    """
    kh, kw = as_pair(kernel)
    dh, dw = as_pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        assert padding == "same", padding
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = as_pair(padding)
    return ph, ph, pw, pw


def conv2d_out_size(H, W, kernel, stride=1, padding=0, dilation=1):
    kh, kw = as_pair(kernel)
    sh, sw = as_pair(stride)
    dh, dw = as_pair(dilation)
    pt, pb, pl, pr = conv2d_pads(padding, (kh, kw), (dh, dw))
    OH = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return OH, OW


def _f64(a):
    return None if a is None else np.array(a, dtype=np.float64)


# ---------------------------------------------------------------------------
# conv2d


def _windows(x, kh, kw, stride, pads, dilation):
    """Input windows (N, C, OH, OW, KH, KW) of the zero-padded x (a view of the padded copy)."""
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))  # (N, C, Hp-eh+1, Wp-ew+1, eh, ew)
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def _conv_setup(x, w, stride, padding, dilation, groups):
    x, w = _f64(x), _f64(w)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    G = int(groups)
    assert C == Cg * G and OC % G == 0, (x.shape, w.shape, groups)
    stride, dilation = as_pair(stride), as_pair(dilation)
    pads = conv2d_pads(padding, (KH, KW), dilation)
    return x, w, unbatched, (N, C, H, W, OC, Cg, KH, KW, G), stride, pads, dilation


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """float64 conv2d (cross-correlation) of x (N, C, H, W) or (C, H, W) with w (OC, C/groups, KH, KW)."""
    x, w, unbatched, dims, stride, pads, dilation = _conv_setup(x, w, stride, padding, dilation, groups)
    N, C, H, W, OC, Cg, KH, KW, G = dims
    win = _windows(x, KH, KW, stride, pads, dilation)
    OH, OW = win.shape[2:4]
    win = win.reshape(N, G, Cg, OH, OW, KH, KW)
    wg = w.reshape(G, OC // G, Cg, KH, KW)
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(N, OC, OH, OW)
    if b is not None:
        y = y + _f64(b)[None, :, None, None]
    return y[0] if unbatched else y


def conv2d_ref_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition as plain loops over output pixels, for tiny shapes (checks conv2d_ref itself)."""
    x, w, unbatched, dims, stride, pads, dilation = _conv_setup(x, w, stride, padding, dilation, groups)
    N, C, H, W, OC, Cg, KH, KW, G = dims
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = pads
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    OCg = OC // G
    y = np.zeros((N, OC, OH, OW))
    for n in range(N):
        for o in range(OC):
            g = o // OCg
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0 if b is None else float(b[o])
                    for c in range(Cg):
                        for i in range(KH):
                            ih = oh * sh + i * dh - pt
                            if not 0 <= ih < H:
                                continue
                            for j in range(KW):
                                iw = ow * sw + j * dw - pl
                                if 0 <= iw < W:
                                    s += w[o, c, i, j] * x[n, g * Cg + c, ih, iw]
                    y[n, o, oh, ow] = s
    return y[0] if unbatched else y


def conv2d_grads_ref(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db) of conv2d for the output gradient dy (float64)."""
    x, w, unbatched, dims, stride, pads, dilation = _conv_setup(x, w, stride, padding, dilation, groups)
    N, C, H, W, OC, Cg, KH, KW, G = dims
    dy = _f64(dy)
    if unbatched:
        dy = dy[None]
    sh, sw = stride
    dh, dw_ = dilation
    pt, pb, pl, pr = pads
    OCg = OC // G
    win = _windows(x, KH, KW, stride, pads, dilation)
    OH, OW = win.shape[2:4]
    assert dy.shape == (N, OC, OH, OW), (dy.shape, (N, OC, OH, OW))
    dyg = dy.reshape(N, G, OCg, OH, OW)

    dw = np.einsum("ngchwij,ngohw->gocij", win.reshape(N, G, Cg, OH, OW, KH, KW), dyg, optimize=True).reshape(OC, Cg, KH, KW)
    db = dy.sum(axis=(0, 2, 3))

    # dx: each tap (i, j) sends w[:, :, i, j]^T dy back to the input pixels it read
    wg = w.reshape(G, OCg, Cg, KH, KW)
    dxp = np.zeros((N, G, Cg, H + pt + pb, W + pl + pr))
    for i in range(KH):
        r0 = i * dh
        for j in range(KW):
            c0 = j * dw_
            contrib = np.einsum("ngohw,goc->ngchw", dyg, wg[:, :, :, i, j], optimize=True)
            dxp[:, :, :, r0 : r0 + sh * (OH - 1) + 1 : sh, c0 : c0 + sw * (OW - 1) + 1 : sw] += contrib
    dx = dxp[:, :, :, pt : pt + H, pl : pl + W].reshape(N, C, H, W)
    if unbatched:
        dx = dx[0]
    return dx, dw, db


def conv2d_scales(x, w, b=None, dy=None, **opts):
    """Error scales (sum of |terms|) for conv2d's output and, given dy, its three gradients."""
    ax, aw = np.abs(_f64(x)), np.abs(_f64(w))
    ab = None if b is None else np.abs(_f64(b))
    y = conv2d_ref(ax, aw, ab, **opts)
    if dy is None:
        return y
    return (y,) + conv2d_grads_ref(np.abs(_f64(dy)), ax, aw, **opts)


# ---------------------------------------------------------------------------
# linear


def linear_ref(x, w, b=None):
    """float64 x @ w.T + b over the last axis; x has any leading dims (or is 1-D)."""
    x, w = _f64(x), _f64(w)
    y = np.einsum("...i,oi->...o", x, w)
    if b is not None:
        y = y + _f64(b)
    return y


def linear_grads_ref(dy, x, w):
    x, w, dy = _f64(x), _f64(w), _f64(dy)
    dx = np.einsum("...o,oi->...i", dy, w)
    OUT, IN = w.shape
    rows = int(np.prod(x.shape[:-1]))  # reshape(-1, 0) is ambiguous: give the row count
    dy2, x2 = dy.reshape(rows, OUT), x.reshape(rows, IN)
    dw = np.einsum("bo,bi->oi", dy2, x2)
    db = dy2.sum(axis=0)
    return dx, dw, db


def linear_scales(x, w, b=None, dy=None):
    ax, aw = np.abs(_f64(x)), np.abs(_f64(w))
    ab = None if b is None else np.abs(_f64(b))
    y = linear_ref(ax, aw, ab)
    if dy is None:
        return y
    return (y,) + linear_grads_ref(np.abs(_f64(dy)), ax, aw)


# ---------------------------------------------------------------------------
# gradient checking


def numeric_grad(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function f at x (float64, same shape as x)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        fp = float(f(x))
        flat[k] = old - eps
        fm = float(f(x))
        flat[k] = old
        gflat[k] = (fp - fm) / (2 * eps)
    return g


def check_vjp(f, inputs, dy, grads, eps=1e-6, rtol=1e-6, atol=1e-7):
    """Check grads[i] == d/d inputs[i] of sum(f(*inputs) * dy) by central differences.

    f maps float64 arrays to an array of dy's shape; grads[i] may be None (not checked).
    """
    inputs = [None if a is None else np.array(a, dtype=np.float64) for a in inputs]
    dy = np.asarray(dy, dtype=np.float64)
    checked = 0
    for i, gi in enumerate(grads):
        if gi is None:
            continue

        def loss(a, i=i):
            args = list(inputs)
            args[i] = a
            return np.sum(np.asarray(f(*args), dtype=np.float64) * dy)

        num = numeric_grad(loss, inputs[i], eps)
        gi = np.asarray(gi)
        assert gi.shape == num.shape, (i, gi.shape, num.shape)
        np.testing.assert_allclose(gi, num, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
        checked += 1
    assert checked, "check_vjp: no gradient to check"


def assert_close(actual, expected, scale=None, rtol=None, err_msg=""):
    """|actual - expected| <= rtol * scale elementwise (scale: sum of |terms|; default |expected|).

    rtol defaults to RTOL[actual.dtype]. NaN positions must match exactly. An
    element whose scale is 0 must match exactly (all of its terms are zero).
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{err_msg} shape {actual.shape} != expected {expected.shape}"
    if rtol is None:
        rtol = RTOL[np.dtype(actual.dtype)]
    scale = np.abs(expected) if scale is None else np.asarray(scale, dtype=np.float64)
    a = actual.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{err_msg} NaN positions differ: {np.argwhere(nan_a != nan_e)[:5]}"
    ok = ~nan_e
    err = np.abs(a[ok] - expected[ok])
    bound = rtol * scale[ok] + np.finfo(np.float64).tiny
    bad = err > bound
    if bad.any():
        idx = np.argwhere(~nan_e)[np.flatnonzero(bad)[:5]]
        worst = float(np.max(err / bound))
        raise AssertionError(
            f"{err_msg} {int(bad.sum())}/{err.size} elements off (worst {worst:.3g}x the tolerance rtol={rtol:g}); "
            f"first at {idx.tolist()}: actual {a[tuple(idx[0])]!r} expected {expected[tuple(idx[0])]!r} "
            f"scale {scale[tuple(idx[0])]!r}"
        )


# ---------------------------------------------------------------------------
# memory layouts: the same values in differently laid-out arrays

LAYOUTS = ("contiguous", "fortran", "transposed", "channels_last", "reversed", "sliced", "unaligned", "bigendian")


def as_layout(a, kind):
    """An array equal to ``a`` (same dtype kind, same values) whose memory layout is ``kind``.

    contiguous     a fresh C-contiguous copy
    fortran        column-major
    transposed     a view with the last two axes swapped in memory
    channels_last  a view whose axis 1 is innermost in memory (NHWC storage of an NCHW array)
    reversed       a negatively strided view (``x[:, :, ::-1]`` on the second-last axis)
    sliced         every second element of a wider array (``x[..., ::2]``)
    unaligned      a view on a buffer at a 1-byte offset (not aligned for its dtype)
    bigendian      byte-swapped dtype (``>f4`` / ``>f8``)
    """
    a = np.asarray(a)
    if kind == "contiguous":
        out = np.array(a, order="C", copy=True)
    elif kind == "fortran":
        out = np.asfortranarray(a)
    elif kind == "transposed":
        if a.ndim < 2:
            return as_layout(a, "reversed")
        out = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    elif kind == "channels_last":
        if a.ndim < 2:
            return as_layout(a, "sliced")
        out = np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    elif kind == "reversed":
        ax = -2 if a.ndim >= 2 else -1
        out = np.flip(np.ascontiguousarray(np.flip(a, ax)), ax)
    elif kind == "sliced":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        out = wide[..., ::2]
    elif kind == "unaligned":
        buf = np.zeros(a.nbytes + a.dtype.itemsize, dtype=np.uint8)
        out = buf[1 : 1 + a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
    elif kind == "bigendian":
        out = a.astype(a.dtype.newbyteorder(">"))
    else:
        raise ValueError(kind)
    assert np.array_equal(out, a) and out.shape == a.shape
    return out


# ---------------------------------------------------------------------------
# the other ops' references, when they have been merged beside this file

for _name in ("ref_pool", "ref_elementwise"):
    try:
        _mod = __import__(_name)
    except ModuleNotFoundError as _exc:  # not merged yet; any other import error propagates
        if _exc.name != _name:
            raise
    else:
        _names = getattr(_mod, "__all__", None)
        if _names is None:  # public functions and constants, not the modules it imported
            _names = [k for k, v in vars(_mod).items() if not k.startswith("_") and not isinstance(v, type(np))]
        globals().update({k: getattr(_mod, k) for k in _names})
        __all__ += [k for k in _names if k not in __all__]
