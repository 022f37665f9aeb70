"""The NumPy baseline that ``fastconv bench`` measures against.

What a careful NumPy user would write without fastconv: conv2d as im2col
(``sliding_window_view`` plus one copy) followed by one ``matmul`` per
group, pooling as max/sum over strided slices, linear as ``x @ w.T + b``.
It uses whatever BLAS NumPy was built with (OpenBLAS for the PyPI wheels).
These functions are a benchmark peer, not part of the API; they handle the
forward pass of the options the benchmark cases use.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, b=None, stride=1, padding=0, groups=1):
    """(N, C, H, W) x (OC, C/groups, kh, kw) -> (N, OC, OH, OW) by im2col + matmul."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, _, _ = x.shape
    oc, cg, kh, kw = w.shape
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # N, C, OH, OW, kh, kw
    oh, ow = win.shape[2], win.shape[3]
    ocg = oc // groups
    if groups == 1:
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)  # the one copy
        y = cols @ w.reshape(oc, -1).T  # (N*OH*OW, OC)
        y = y.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)
    elif cg == 1 and ocg == 1:
        # depthwise: a multiply-add per tap over the whole batch (no GEMM to speak of)
        y = np.zeros((n, oc, oh, ow), x.dtype)
        for i in range(kh):
            for j in range(kw):
                y += win[:, :, :, :, i, j] * w[None, :, 0, i, j, None, None]
    else:
        cols = win.reshape(n, groups, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
        cols = cols.reshape(groups, n * oh * ow, cg * kh * kw)
        y = cols @ w.reshape(groups, ocg, cg * kh * kw).transpose(0, 2, 1)  # (G, N*OH*OW, OCg)
        y = y.reshape(groups, n, oh, ow, ocg).transpose(1, 0, 4, 2, 3).reshape(n, oc, oh, ow)
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y)


def _pool_slices(x, k, s, p, fill):
    kh, kw = _pair(k)
    sh, sw = _pair(s if s is not None else k)
    ph, pw = _pair(p)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    h, w = x.shape[2], x.shape[3]
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]


def max_pool2d(x, kernel_size, stride=None, padding=0):
    out = None
    for sl in _pool_slices(x, kernel_size, stride, padding, -np.inf):
        out = sl.copy() if out is None else np.maximum(out, sl, out=out)
    return out


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """count_include_pad=True, as PyTorch's default."""
    out = None
    for sl in _pool_slices(x, kernel_size, stride, padding, 0):
        out = sl.astype(x.dtype, copy=True) if out is None else np.add(out, sl, out=out)
    kh, kw = _pair(kernel_size)
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


def adaptive_avg_pool2d(x, output_size):
    oh, ow = _pair(output_size)
    h, w = x.shape[2], x.shape[3]
    if h % oh == 0 and w % ow == 0:
        return x.reshape(x.shape[0], x.shape[1], oh, h // oh, ow, w // ow).mean(axis=(3, 5), dtype=x.dtype)
    out = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    for i in range(oh):
        h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def relu(x):
    return np.maximum(x, 0)


def run_sequential(layers, x):
    """Run a list of (kind, params) layers: the NumPy version of a model."""
    for kind, kw in layers:
        if kind == "conv":
            x = conv2d(x, **kw)
        elif kind == "relu":
            x = relu(x)
        elif kind == "maxpool":
            x = max_pool2d(x, **kw)
        elif kind == "avgpool":
            x = avg_pool2d(x, **kw)
        elif kind == "adaptive_avg":
            x = adaptive_avg_pool2d(x, **kw)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "linear":
            x = linear(x, **kw)
        else:  # pragma: no cover - the bench builds these lists itself
            raise ValueError(f"unknown layer kind {kind!r}")
    return x
