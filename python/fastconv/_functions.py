"""Autograd Functions for the functional ops: forward on arrays, backward
through the ops' gradient functions (the C++ backward kernels for conv,
linear and pooling). Gradients nobody needs are not computed."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _conv, _elementwise as E, _losses as L, _norm as N, _pool
from .autograd import Context, Function


class Conv2d(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: Any) -> Any:
        ctx.opts = (stride, padding, dilation, groups)
        ctx.has_bias = b is not None
        y = _conv.conv2d(x, w, b, stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        nb = nb and ctx.has_bias
        if not (nx or nw or nb):
            return None, None, None
        stride, padding, dilation, groups = ctx.opts
        dx, dw, db = _conv.conv2d_backward(dy, x, w, stride, padding, dilation, groups, needs_input_grad=(nx, nw, nb))
        return dx, dw, db


class Linear(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any) -> Any:
        ctx.has_bias = b is not None
        ctx.save_for_backward(x, w)
        return _conv.linear(x, w, b)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        x, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        nb = nb and ctx.has_bias
        if not (nx or nw or nb):
            return None, None, None
        return _conv.linear_backward(dy, x, w, needs_input_grad=(nx, nw, nb))


class MaxPool2d(Function):
    non_differentiable_outputs = (1,)

    @staticmethod
    def forward(
        ctx: Context, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any
    ) -> Any:
        y, ind = _pool.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        ctx.shape = np.shape(x)
        ctx.save_for_backward(ind)
        return y, ind

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray, _dind: np.ndarray) -> Any:
        return _pool.max_pool2d_backward(dy, ctx.saved_tensors[0], ctx.shape)


class AdaptiveMaxPool2d(Function):
    non_differentiable_outputs = (1,)

    @staticmethod
    def forward(ctx: Context, x: Any, output_size: Any) -> Any:
        y, ind = _pool.adaptive_max_pool2d(x, output_size, return_indices=True)
        ctx.shape = np.shape(x)
        ctx.save_for_backward(ind)
        return y, ind

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray, _dind: np.ndarray) -> Any:
        return _pool.adaptive_max_pool2d_backward(dy, ctx.saved_tensors[0], ctx.shape)


class AvgPool2d(Function):
    @staticmethod
    def forward(
        ctx: Context,
        x: Any,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        ceil_mode: Any,
        count_include_pad: Any,
        divisor_override: Any,
    ) -> Any:
        ctx.shape = np.shape(x)
        ctx.opts = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return _pool.avg_pool2d(x, *ctx.opts)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return _pool.avg_pool2d_backward(dy, ctx.shape, *ctx.opts)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, output_size: Any) -> Any:
        ctx.shape = np.shape(x)
        return _pool.adaptive_avg_pool2d(x, output_size)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return _pool.adaptive_avg_pool2d_backward(dy, ctx.shape)


class MaxUnpool2d(Function):
    @staticmethod
    def forward(
        ctx: Context, x: Any, indices: Any, kernel_size: Any, stride: Any, padding: Any, output_size: Any
    ) -> Any:
        ind = _pool._indices(indices, "max_unpool2d")  # converted with errors naming the argument
        ctx.save_for_backward(ind)
        return _pool.max_unpool2d(x, ind, kernel_size, stride, padding, output_size)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return _pool.max_unpool2d_backward(dy, ctx.saved_tensors[0]), None


class ReLU(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = E.relu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.relu_backward(dy, ctx.saved_tensors[0])


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, negative_slope: Any) -> Any:
        ctx.slope = negative_slope
        x = np.asarray(x)
        ctx.save_for_backward(x)
        return E.leaky_relu(x, negative_slope)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.leaky_relu_backward(dy, ctx.saved_tensors[0], ctx.slope)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = E.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.sigmoid_backward(dy, ctx.saved_tensors[0])


class Tanh(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = E.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.tanh_backward(dy, ctx.saved_tensors[0])


class Softmax(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: Any) -> Any:
        y = E.softmax(x, dim)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.softmax_backward(dy, ctx.saved_tensors[0], ctx.dim)


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: Any) -> Any:
        y = E.log_softmax(x, dim)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.log_softmax_backward(dy, ctx.saved_tensors[0], ctx.dim)


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx: Context, logits: Any, target: Any, reduction: Any, ignore_index: Any, label_smoothing: Any) -> Any:
        ctx.opts = (reduction, ignore_index, label_smoothing)
        ctx.save_for_backward(logits, target)
        return L.cross_entropy(logits, target, reduction, ignore_index, label_smoothing)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        # targets (class indices or probabilities) get no gradient
        logits, target = ctx.saved_tensors
        return L.cross_entropy_backward(dy, logits, target, *ctx.opts), None


class MSELoss(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any, reduction: Any) -> Any:
        ctx.reduction = reduction
        ctx.save_for_backward(a, b)
        return L.mse_loss(a, b, reduction)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        a, b = ctx.saved_tensors
        return L.mse_loss_backward(dy, a, b, ctx.reduction, needs_input_grad=tuple(ctx.needs_input_grad[:2]))


class Dropout(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, p: Any, generator: Any) -> Any:
        y, mask = E._dropout_with_mask(x, p, True, generator=generator)
        ctx.mask, ctx.p = mask, p
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        return E.dropout_backward(dy, ctx.mask, ctx.p)


class BatchNorm(Function):
    @staticmethod
    def forward(
        ctx: Context,
        x: Any,
        weight: Any,
        bias: Any,
        running_mean: Any,
        running_var: Any,
        training: Any,
        momentum: Any,
        eps: Any,
    ) -> Any:
        y, mean, invstd = N.batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps)
        ctx.training = training
        ctx.has = (weight is not None, bias is not None)
        # weight and bias may have any shape with C elements (as in the NumPy
        # path); their gradients come back in that shape
        ctx.shapes = (np.shape(weight) if weight is not None else None, np.shape(bias) if bias is not None else None)
        ctx.save_for_backward(x, weight, mean, invstd)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        x, w, mean, invstd = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        dx, dw, db = N.batch_norm_backward(
            dy, x, w, mean, invstd, ctx.training, needs_input_grad=(nx, nw and ctx.has[0], nb and ctx.has[1])
        )
        if dw is not None:
            dw = dw.reshape(ctx.shapes[0])
        if db is not None:
            db = db.reshape(ctx.shapes[1])
        return dx, dw, db


class Pad(Function):
    """Non-zero padding modes of nn.Conv2d: reflect, replicate, circular (H and W)."""

    @staticmethod
    def forward(ctx: Context, x: Any, pads: Any, mode: Any) -> Any:
        x = np.asarray(x)
        idx = [_pad_index(x.shape[-2], pads[0], pads[1], mode), _pad_index(x.shape[-1], pads[2], pads[3], mode)]
        ctx.shape, ctx.idx = x.shape, idx
        return np.ascontiguousarray(x[..., idx[0][:, None], idx[1][None, :]])

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> Any:
        out = np.zeros(ctx.shape, dy.dtype)
        hi, wi = ctx.idx
        # scatter-add rows then columns (indices repeat at the reflected borders)
        tmp = np.zeros(ctx.shape[:-1] + (dy.shape[-1],), dy.dtype)
        rows: Any = (..., hi, slice(None))  # (NumPy's stubs do not list Ellipsis indices for ufunc.at)
        cols: Any = (..., wi)
        np.add.at(tmp, rows, dy)
        np.add.at(out, cols, tmp)
        return out


def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    i = np.arange(-before, n + after)
    if mode == "reflect":
        if before >= n or after >= n:
            raise ValueError(
                f"padding_mode='reflect': padding ({before}, {after}) must be smaller than the input size {n}"
            )
        i = np.abs(i)
        i = np.where(i >= n, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    elif mode == "circular":
        if before > n or after > n:
            raise ValueError(
                f"padding_mode='circular': padding ({before}, {after}) must not exceed the input size {n}"
            )
        i = np.mod(i, n)
    else:
        raise ValueError(f"unknown padding_mode {mode!r}")
    return i
