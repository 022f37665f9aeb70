"""The functional API (``fastconv.functional``, also ``fastconv.nn.functional``).

Semantics follow ``torch.nn.functional``. NumPy arrays in, NumPy arrays out;
if any input is a :class:`fastconv.Tensor`, the result is a Tensor and, when
grad mode is on and an input requires grad, the op is recorded for
``backward()``. The ``*_backward`` functions give each op's gradients
directly from the C++ kernels (what the autograd layer calls).
"""

from __future__ import annotations

import functools

from . import autograd as _autograd
from . import _core, _conv, _elementwise as _E, _functions as _fn, _losses as _L, _norm as _N, _pool
from ._conv import conv2d_backward, linear_backward
from ._elementwise import (
    dropout_backward,
    flatten_backward,
    leaky_relu_backward,
    log_softmax_backward,
    relu_backward,
    sigmoid_backward,
    softmax_backward,
    tanh_backward,
)
from ._losses import cross_entropy_backward, mse_loss_backward
from ._norm import batch_norm_backward, batch_norm_forward
from ._pool import (
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d_backward,
    avg_pool2d_backward,
    max_pool2d_backward,
    max_unpool2d_backward,
)
from .tensor import Tensor


def _no_out(out, op):
    if out is not None:
        raise TypeError(f"{op}: out= is for NumPy inputs; Tensor results are recorded for autograd")


def _tensors(*args):
    for a in args:
        if isinstance(a, Tensor):
            return True
    return False


def _untracked(*args):
    """The arrays behind ``args`` when nothing will be recorded for autograd (grad mode
    off, or no Tensor among them requires grad), else None: inference on Tensors then
    takes the same C++ fast path as NumPy input."""
    if _autograd._state.enabled:
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                return None
    return [a.data if isinstance(a, Tensor) else a for a in args]


def _wrap(y):
    return Tensor._from_op(y, None, 0)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, out=None):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (OC, C/groups, kH, kW); bias (OC,).
    ``padding``: int, pair, ``'valid'`` or ``'same'`` (stride 1; an even
    effective kernel puts the extra row/column at the bottom/right).
    Output (N, OC, OH, OW), OH = floor((H + pad_top + pad_bottom - dilation*(kH-1) - 1) / stride) + 1.
    ``out``: an existing C-contiguous array of that shape and dtype to write into
    (NumPy inputs only), so repeated inference reuses its buffers.

    >>> import numpy as np, fastconv.functional as F
    >>> F.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)).shape
    (1, 2, 2, 2)
    """
    if out is None:
        y = _core.conv2d_fast(input, weight, bias, stride, padding, dilation, groups)
        if y is not None:
            return y
    if _tensors(input, weight, bias):
        _no_out(out, "conv2d")
        raw = _untracked(input, weight, bias)
        if raw is not None:
            y = _core.conv2d_fast(*raw, stride, padding, dilation, groups)
            if y is not None:
                return _wrap(y)
        return _fn.Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups, out)


def linear(input, weight, bias=None, out=None):
    """``input @ weight.T + bias``: input (*, in), weight (out, in), bias (out,) -> (*, out); ``out`` as conv2d."""
    if out is None:
        y = _core.linear_fast(input, weight, bias)
        if y is not None:
            return y
    if _tensors(input, weight, bias):
        _no_out(out, "linear")
        raw = _untracked(input, weight, bias)
        if raw is not None:
            y = _core.linear_fast(*raw)
            if y is not None:
                return _wrap(y)
        return _fn.Linear.apply(input, weight, bias)
    return _conv.linear(input, weight, bias, out)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, out=None):
    """2-D max pooling; with ``return_indices`` also the int64 argmax (h*W + w per plane).

    input (N, C, H, W) or (C, H, W); stride defaults to kernel_size; padding at
    most half the kernel; ``ceil_mode`` as PyTorch (the last window must start
    inside the input or the left padding). NaN propagates.
    """
    if out is None and not return_indices:
        y = _core.max_pool2d_fast(input, kernel_size, stride, padding, dilation, ceil_mode)
        if y is not None:
            return y
    if _tensors(input):
        _no_out(out, "max_pool2d")
        raw = _untracked(input)
        if raw is not None:
            if not return_indices:
                y = _core.max_pool2d_fast(raw[0], kernel_size, stride, padding, dilation, ceil_mode)
                if y is not None:
                    return _wrap(y)
            r = _pool.max_pool2d(raw[0], kernel_size, stride, padding, dilation, ceil_mode, return_indices)
            return (_wrap(r[0]), _wrap(r[1])) if return_indices else _wrap(r)
        y, ind = _fn.MaxPool2d.apply(input, kernel_size, stride, padding, dilation, ceil_mode)
        return (y, ind) if return_indices else y
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out)


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None, out=None
):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``."""
    if _tensors(input):
        _no_out(out, "avg_pool2d")
        raw = _untracked(input)
        if raw is not None:
            return _wrap(_pool.avg_pool2d(raw[0], kernel_size, stride, padding, ceil_mode, count_include_pad,
                                          divisor_override))
        return _fn.AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _pool.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out)


def adaptive_avg_pool2d(input, output_size, out=None):
    """Average pooling to ``output_size`` (int, pair, or pair with None = keep)."""
    if _tensors(input):
        _no_out(out, "adaptive_avg_pool2d")
        return _fn.AdaptiveAvgPool2d.apply(input, output_size)
    return _pool.adaptive_avg_pool2d(input, output_size, out)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to ``output_size``; indices as :func:`max_pool2d`."""
    if _tensors(input):
        y, ind = _fn.AdaptiveMaxPool2d.apply(input, output_size)
        return (y, ind) if return_indices else y
    return _pool.adaptive_max_pool2d(input, output_size, return_indices)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Place ``input`` at ``indices`` of a zero output (partial inverse of max_pool2d)."""
    if _tensors(input, indices):
        return _fn.MaxUnpool2d.apply(input, indices, kernel_size, stride, padding, output_size)
    return _pool.max_unpool2d(input, indices, kernel_size, stride, padding, output_size)


def relu(input):
    """max(x, 0)."""
    if _tensors(input):
        raw = _untracked(input)
        if raw is not None:
            return _wrap(_E.relu(raw[0]))
        return _fn.ReLU.apply(input)
    return _E.relu(input)


def leaky_relu(input, negative_slope=0.01):
    """x if x >= 0 else negative_slope * x."""
    if _tensors(input):
        return _fn.LeakyReLU.apply(input, negative_slope)
    return _E.leaky_relu(input, negative_slope)


def sigmoid(input):
    if _tensors(input):
        return _fn.Sigmoid.apply(input)
    return _E.sigmoid(input)


def tanh(input):
    if _tensors(input):
        return _fn.Tanh.apply(input)
    return _E.tanh(input)


def softmax(input, dim):
    """Numerically stable softmax along ``dim``."""
    if _tensors(input):
        return _fn.Softmax.apply(input, dim)
    return _E.softmax(input, dim)


def log_softmax(input, dim):
    """Numerically stable log-softmax along ``dim``."""
    if _tensors(input):
        return _fn.LogSoftmax.apply(input, dim)
    return _E.log_softmax(input, dim)


def cross_entropy(input, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross entropy of logits (N, C, ...) against integer classes (N, ...) or probabilities.

    A class outside [0, C) other than ``ignore_index`` is a ValueError; the
    mean is over non-ignored targets (nan if there are none, as PyTorch).
    """
    if _tensors(input, target):
        return _fn.CrossEntropy.apply(input, target, reduction, ignore_index, label_smoothing)
    return _L.cross_entropy(input, target, reduction, ignore_index, label_smoothing)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error with 'none' / 'mean' / 'sum' reduction."""
    if _tensors(input, target):
        return _fn.MSELoss.apply(input, target, reduction)
    return _L.mse_loss(input, target, reduction)


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` (a view when possible, as PyTorch)."""
    if _tensors(input):
        _E._flatten_dims(input.data.ndim, start_dim, end_dim, "flatten")  # errors naming the argument
        return input.flatten(start_dim, end_dim)
    return _E.flatten(input, start_dim, end_dim)


def dropout(input, p=0.5, training=True, *, generator=None, rng=None):
    """Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity when not training.

    ``generator`` (alias ``rng``): a ``numpy.random.Generator``; by default
    fastconv's, seeded by :func:`fastconv.manual_seed`.
    """
    if _tensors(input):
        _E._dropout_p(p, "dropout")
        if not training:
            return input
        return _fn.Dropout.apply(input, p, generator if generator is not None else rng)
    return _E.dropout(input, p, training, generator=generator, rng=rng)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation per channel; updates the running statistics in place when training."""
    if _tensors(input, weight, bias):
        rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
        rv = running_var.data if isinstance(running_var, Tensor) else running_var
        return _fn.BatchNorm.apply(input, weight, bias, rm, rv, training, momentum, eps)
    return _N.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


__all__ = [
    "conv2d",
    "conv2d_backward",
    "linear",
    "linear_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "log_softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "mse_loss",
    "mse_loss_backward",
    "flatten",
    "flatten_backward",
    "dropout",
    "dropout_backward",
    "batch_norm",
    "batch_norm_forward",
    "batch_norm_backward",
]


def _name_memory_errors(fn, op):
    """MemoryErrors raised by NumPy inside an op (copying a huge strided view, allocating
    a result) carry NumPy's message; prefix the op's name so the user knows which call
    failed, as for fastconv's own size checks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MemoryError as e:
            msg = str(e)
            if msg.startswith(op):
                raise
            raise MemoryError(f"{op}: {msg}") from None

    return wrapper


for _op in __all__:
    globals()[_op] = _name_memory_errors(globals()[_op], _op)
del _op
