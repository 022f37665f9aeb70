"""The functional API (``fastconv.functional``, also ``fastconv.nn.functional``).

Semantics follow ``torch.nn.functional``. NumPy arrays in, NumPy arrays out;
if any input is a :class:`fastconv.Tensor`, the result is a Tensor and, when
grad mode is on and an input requires grad, the op is recorded for
``backward()``. The ``*_backward`` functions give each op's gradients
directly from the C++ kernels (what the autograd layer calls).

Layout: images are NCHW, ``(N, C, H, W)`` (an unbatched ``(C, H, W)`` works
too); conv weights are ``(out_channels, in_channels / groups, kH, kW)``;
linear inputs are ``(*, in_features)``. float32 is the fast path, float64 is
kept; integer, bool and float16 inputs compute in float32.

>>> import fastconv.functional as F
>>> x = np.ones((1, 1, 4, 4), np.float32)
>>> F.max_pool2d(F.relu(x), 2).shape
(1, 1, 2, 2)
>>> type(F.relu(fastconv.tensor(x)))
<class 'fastconv.tensor.Tensor'>
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Literal, Optional, TypeVar, Union, cast, overload

import numpy as np
from numpy.typing import ArrayLike

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
from ._typing import IntPair, OutputSize, Padding, Shape, TensorLike
from .tensor import Tensor

_F = TypeVar("_F", bound=Callable[..., Any])



def _no_out(out: Optional[np.ndarray], op: str) -> None:
    if out is not None:
        raise TypeError(f"{op}: out= is for NumPy inputs; Tensor results are recorded for autograd")


def _tensors(*args: Any) -> bool:
    for a in args:
        if isinstance(a, Tensor):
            return True
    return False


def _untracked(*args: Any) -> Optional[list[Any]]:
    """The arrays behind ``args`` when nothing will be recorded for autograd (grad mode
    off, or no Tensor among them requires grad), else None: inference on Tensors then
    takes the same C++ fast path as NumPy input."""
    if _autograd._state.enabled:
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                return None
    return [a.data if isinstance(a, Tensor) else a for a in args]


def _wrap(y: np.ndarray) -> Tensor:
    return Tensor._from_op(y, None, 0)


# --------------------------------------------------------------------------------------------
# conv2d / linear


@overload
def conv2d(
    input: Tensor,
    weight: TensorLike,
    bias: Optional[TensorLike] = ...,
    stride: IntPair = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    groups: int = ...,
    out: None = ...,
) -> Tensor: ...


@overload
def conv2d(
    input: ArrayLike,
    weight: Tensor,
    bias: Optional[TensorLike] = ...,
    stride: IntPair = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    groups: int = ...,
    out: None = ...,
) -> Tensor: ...


@overload
def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Tensor,
    stride: IntPair = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    groups: int = ...,
    out: None = ...,
) -> Tensor: ...


@overload
def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = ...,
    stride: IntPair = ...,
    padding: Padding = ...,
    dilation: IntPair = ...,
    groups: int = ...,
    out: Optional[np.ndarray] = ...,
) -> np.ndarray: ...


def conv2d(
    input: TensorLike,
    weight: TensorLike,
    bias: Optional[TensorLike] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    out: Optional[np.ndarray] = None,
) -> Union[Tensor, np.ndarray]:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (OC, C/groups, kH, kW); bias (OC,).
    ``padding``: int, pair, ``'valid'`` or ``'same'`` (stride 1; an even
    effective kernel puts the extra row/column at the bottom/right).
    Output (N, OC, OH, OW), OH = floor((H + pad_top + pad_bottom - dilation*(kH-1) - 1) / stride) + 1.
    ``out``: an existing C-contiguous array of that shape and dtype to write into
    (NumPy inputs only), so repeated inference reuses its buffers.

    >>> x = np.ones((1, 1, 4, 4), np.float32)
    >>> w = np.ones((2, 1, 3, 3), np.float32)
    >>> F.conv2d(x, w).shape
    (1, 2, 2, 2)
    >>> F.conv2d(x, w, padding=1)[0, 0].tolist()
    [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    >>> F.conv2d(x, w, stride=2, padding="valid").shape, F.conv2d(x, w, padding="same").shape
    ((1, 2, 1, 1), (1, 2, 4, 4))
    >>> F.conv2d(fastconv.tensor(x), w).shape  # a Tensor in: a Tensor out
    (1, 2, 2, 2)
    """
    if out is None:
        y = _core.conv2d_fast(input, weight, bias, stride, padding, dilation, groups)
    else:
        y = _core.conv2d_fast_out(input, weight, bias, stride, padding, dilation, groups, out)
    if y is not None:
        return y
    if _tensors(input, weight, bias):
        _no_out(out, "conv2d")
        raw = _untracked(input, weight, bias)
        if raw is not None:
            x, w, b = raw
            y = _core.conv2d_fast(x, w, b, stride, padding, dilation, groups)
            if y is not None:
                return _wrap(y)
        return _fn.Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups, out)


@overload
def linear(input: Tensor, weight: TensorLike, bias: Optional[TensorLike] = ..., out: None = ...) -> Tensor: ...


@overload
def linear(input: ArrayLike, weight: Tensor, bias: Optional[TensorLike] = ..., out: None = ...) -> Tensor: ...


@overload
def linear(input: ArrayLike, weight: ArrayLike, bias: Tensor, out: None = ...) -> Tensor: ...


@overload
def linear(
    input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = ..., out: Optional[np.ndarray] = ...
) -> np.ndarray: ...


def linear(
    input: TensorLike, weight: TensorLike, bias: Optional[TensorLike] = None, out: Optional[np.ndarray] = None
) -> Union[Tensor, np.ndarray]:
    """``input @ weight.T + bias``, as ``torch.nn.functional.linear``.

    input (*, in_features), any number of leading dims; weight (out_features,
    in_features); bias (out_features,) -> (*, out_features). ``out`` as in
    :func:`conv2d`.

    >>> x = np.array([[1.0, 2.0, 3.0]], np.float32)
    >>> w = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], np.float32)
    >>> F.linear(x, w, np.array([0.5, 0.0], np.float32)).tolist()
    [[1.5, 6.0]]
    """
    y = _core.linear_fast(input, weight, bias) if out is None else _core.linear_fast_out(input, weight, bias, out)
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


# --------------------------------------------------------------------------------------------
# pooling


@overload
def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
    out: None = ...,
) -> Tensor: ...


@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
    out: Optional[np.ndarray] = ...,
) -> np.ndarray: ...


@overload
def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
    out: None = ...,
) -> tuple[Tensor, Tensor]: ...


@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
    out: Optional[np.ndarray] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def max_pool2d(
    input: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    dilation: IntPair = ...,
    ceil_mode: bool = ...,
    return_indices: bool = ...,
    out: Optional[np.ndarray] = ...,
) -> Any: ...


def max_pool2d(
    input: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    out: Optional[np.ndarray] = None,
) -> Union[Tensor, np.ndarray, tuple[Tensor, Tensor], tuple[np.ndarray, np.ndarray]]:
    """2-D max pooling; with ``return_indices`` also the int64 argmax (h*W + w per plane).

    input (N, C, H, W) or (C, H, W) -> (N, C, OH, OW); stride defaults to
    kernel_size; padding at most half the kernel; ``ceil_mode`` as PyTorch (the
    last window must start inside the input or the left padding). NaN
    propagates. Returns the pooled array, or ``(pooled, indices)``.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> F.max_pool2d(x, 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> idx.tolist(), idx.dtype
    ([[[[5, 7], [13, 15]]]], dtype('int64'))
    >>> F.max_pool2d(x, 3, stride=2, ceil_mode=True).shape
    (1, 1, 2, 2)
    """
    if not return_indices:
        if out is None:
            y = _core.max_pool2d_fast(input, kernel_size, stride, padding, dilation, ceil_mode)
        else:
            y = _core.max_pool2d_fast_out(input, kernel_size, stride, padding, dilation, ceil_mode, out)
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
            return (_wrap(r[0]), _wrap(r[1])) if return_indices else _wrap(cast(np.ndarray, r))
        y, ind = _fn.MaxPool2d.apply(input, kernel_size, stride, padding, dilation, ceil_mode)
        return (y, ind) if return_indices else y
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out)


@overload
def avg_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    ceil_mode: bool = ...,
    count_include_pad: bool = ...,
    divisor_override: Optional[int] = ...,
    out: None = ...,
) -> Tensor: ...


@overload
def avg_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    ceil_mode: bool = ...,
    count_include_pad: bool = ...,
    divisor_override: Optional[int] = ...,
    out: Optional[np.ndarray] = ...,
) -> np.ndarray: ...


def avg_pool2d(
    input: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    out: Optional[np.ndarray] = None,
) -> Union[Tensor, np.ndarray]:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    input (N, C, H, W) or (C, H, W) -> (N, C, OH, OW); stride defaults to
    kernel_size. ``count_include_pad``: padded zeros count in the divisor;
    ``divisor_override``: divide by this instead.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> F.avg_pool2d(x, 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    >>> F.avg_pool2d(x, 2, padding=1, count_include_pad=False)[0, 0, 0].tolist()
    [0.0, 1.5, 3.0]
    """
    if _tensors(input):
        _no_out(out, "avg_pool2d")
        raw = _untracked(input)
        if raw is not None:
            return _wrap(_pool.avg_pool2d(raw[0], kernel_size, stride, padding, ceil_mode, count_include_pad,
                                          divisor_override))
        return _fn.AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _pool.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out)


@overload
def adaptive_avg_pool2d(input: Tensor, output_size: OutputSize, out: None = ...) -> Tensor: ...


@overload
def adaptive_avg_pool2d(input: ArrayLike, output_size: OutputSize, out: Optional[np.ndarray] = ...) -> np.ndarray: ...


def adaptive_avg_pool2d(
    input: TensorLike, output_size: OutputSize, out: Optional[np.ndarray] = None
) -> Union[Tensor, np.ndarray]:
    """Average pooling to ``output_size`` (int, pair, or pair with None = keep).

    input (N, C, H, W) or (C, H, W) -> (N, C, *output_size). Bin i of n over a
    size-H axis spans ``[floor(i*H/n), ceil((i+1)*H/n))``, as PyTorch.
    ``output_size=1`` is global average pooling.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> F.adaptive_avg_pool2d(x, 1).tolist()
    [[[[7.5]]]]
    >>> F.adaptive_avg_pool2d(x, (2, None)).shape
    (1, 1, 2, 4)
    """
    if _tensors(input):
        _no_out(out, "adaptive_avg_pool2d")
        return _fn.AdaptiveAvgPool2d.apply(input, output_size)
    return _pool.adaptive_avg_pool2d(input, output_size, out)


@overload
def adaptive_max_pool2d(input: Tensor, output_size: OutputSize, return_indices: Literal[False] = ...) -> Tensor: ...


@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: OutputSize, return_indices: Literal[False] = ...
) -> np.ndarray: ...


@overload
def adaptive_max_pool2d(
    input: Tensor, output_size: OutputSize, return_indices: Literal[True]
) -> tuple[Tensor, Tensor]: ...


@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: OutputSize, return_indices: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def adaptive_max_pool2d(input: TensorLike, output_size: OutputSize, return_indices: bool = ...) -> Any: ...


def adaptive_max_pool2d(
    input: TensorLike, output_size: OutputSize, return_indices: bool = False
) -> Union[Tensor, np.ndarray, tuple[Tensor, Tensor], tuple[np.ndarray, np.ndarray]]:
    """Max pooling to ``output_size``; indices as :func:`max_pool2d`.

    input (N, C, H, W) or (C, H, W) -> (N, C, *output_size), bins as in
    :func:`adaptive_avg_pool2d`; with ``return_indices`` also the int64 argmax.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = F.adaptive_max_pool2d(x, 2, return_indices=True)
    >>> y.tolist(), idx.tolist()
    ([[[[5.0, 7.0], [13.0, 15.0]]]], [[[[5, 7], [13, 15]]]])
    """
    if _tensors(input):
        y, ind = _fn.AdaptiveMaxPool2d.apply(input, output_size)
        return (y, ind) if return_indices else y
    return _pool.adaptive_max_pool2d(input, output_size, return_indices)


@overload
def max_unpool2d(
    input: Tensor,
    indices: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    output_size: Optional[Shape] = ...,
) -> Tensor: ...


@overload
def max_unpool2d(
    input: ArrayLike,
    indices: Tensor,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    output_size: Optional[Shape] = ...,
) -> Tensor: ...


@overload
def max_unpool2d(
    input: ArrayLike,
    indices: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = ...,
    padding: IntPair = ...,
    output_size: Optional[Shape] = ...,
) -> np.ndarray: ...


def max_unpool2d(
    input: TensorLike,
    indices: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    output_size: Optional[Shape] = None,
) -> Union[Tensor, np.ndarray]:
    """Place ``input`` at ``indices`` of a zero output (partial inverse of max_pool2d).

    input and indices (N, C, H, W) or (C, H, W), indices as returned by
    :func:`max_pool2d`; output (N, C, OH, OW) with OH = (H - 1)*stride - 2*padding
    + kH unless ``output_size`` ((OH, OW), or a full shape) says otherwise.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_unpool2d(y, idx, 2)[0, 0].tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 7.0], [0.0, 0.0, 0.0, 0.0], [0.0, 13.0, 0.0, 15.0]]
    """
    if _tensors(input, indices):
        return _fn.MaxUnpool2d.apply(input, indices, kernel_size, stride, padding, output_size)
    return _pool.max_unpool2d(input, indices, kernel_size, stride, padding, output_size)


# --------------------------------------------------------------------------------------------
# activations


@overload
def relu(input: Tensor) -> Tensor: ...


@overload
def relu(input: ArrayLike) -> np.ndarray: ...


def relu(input: TensorLike) -> Union[Tensor, np.ndarray]:
    """``max(x, 0)`` elementwise; NaN stays NaN. Any shape -> the same shape.

    >>> F.relu(np.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    if _tensors(input):
        raw = _untracked(input)
        if raw is not None:
            return _wrap(_E.relu(raw[0]))
        return _fn.ReLU.apply(input)
    return _E.relu(input)


@overload
def leaky_relu(input: Tensor, negative_slope: float = ...) -> Tensor: ...


@overload
def leaky_relu(input: ArrayLike, negative_slope: float = ...) -> np.ndarray: ...


def leaky_relu(input: TensorLike, negative_slope: float = 0.01) -> Union[Tensor, np.ndarray]:
    """``x if x > 0 else negative_slope * x`` elementwise. Any shape -> the same shape.

    >>> F.leaky_relu(np.array([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    if _tensors(input):
        return _fn.LeakyReLU.apply(input, negative_slope)
    return _E.leaky_relu(input, negative_slope)


@overload
def sigmoid(input: Tensor) -> Tensor: ...


@overload
def sigmoid(input: ArrayLike) -> np.ndarray: ...


def sigmoid(input: TensorLike) -> Union[Tensor, np.ndarray]:
    """``1 / (1 + exp(-x))`` elementwise. Any shape -> the same shape.

    >>> F.sigmoid(np.array([0.0])).tolist()
    [0.5]
    """
    if _tensors(input):
        return _fn.Sigmoid.apply(input)
    return _E.sigmoid(input)


@overload
def tanh(input: Tensor) -> Tensor: ...


@overload
def tanh(input: ArrayLike) -> np.ndarray: ...


def tanh(input: TensorLike) -> Union[Tensor, np.ndarray]:
    """Elementwise hyperbolic tangent. Any shape -> the same shape.

    >>> F.tanh(np.array([0.0])).tolist()
    [0.0]
    """
    if _tensors(input):
        return _fn.Tanh.apply(input)
    return _E.tanh(input)


@overload
def softmax(input: Tensor, dim: int) -> Tensor: ...


@overload
def softmax(input: ArrayLike, dim: int) -> np.ndarray: ...


def softmax(input: TensorLike, dim: int) -> Union[Tensor, np.ndarray]:
    """Numerically stable softmax along ``dim`` (required). Any shape -> the same shape.

    Logits (N, C): ``dim=1`` gives class probabilities per row.

    >>> F.softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]), dim=1).round(4).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    if _tensors(input):
        return _fn.Softmax.apply(input, dim)
    return _E.softmax(input, dim)


@overload
def log_softmax(input: Tensor, dim: int) -> Tensor: ...


@overload
def log_softmax(input: ArrayLike, dim: int) -> np.ndarray: ...


def log_softmax(input: TensorLike, dim: int) -> Union[Tensor, np.ndarray]:
    """Numerically stable log-softmax along ``dim``: ``x - logsumexp(x, dim)``. Same shape.

    >>> np.exp(F.log_softmax(np.array([[0.0, 0.0]]), dim=1)).tolist()
    [[0.5, 0.5]]
    """
    if _tensors(input):
        return _fn.LogSoftmax.apply(input, dim)
    return _E.log_softmax(input, dim)


# --------------------------------------------------------------------------------------------
# losses


@overload
def cross_entropy(
    input: Tensor,
    target: TensorLike,
    reduction: str = ...,
    ignore_index: int = ...,
    label_smoothing: float = ...,
) -> Tensor: ...


@overload
def cross_entropy(
    input: ArrayLike,
    target: Tensor,
    reduction: str = ...,
    ignore_index: int = ...,
    label_smoothing: float = ...,
) -> Tensor: ...


@overload
def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    reduction: str = ...,
    ignore_index: int = ...,
    label_smoothing: float = ...,
) -> np.ndarray: ...


def cross_entropy(
    input: TensorLike,
    target: TensorLike,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Union[Tensor, np.ndarray]:
    """Cross entropy of logits (N, C, ...) against integer classes (N, ...) or probabilities.

    input: logits (N, C), (N, C, d1, ...) or unbatched (C,); target: integer
    class indices (N,) / (N, d1, ...) or float probabilities of the input's
    shape. ``reduction``: ``'mean'`` (over non-ignored targets; nan if there
    are none, as PyTorch), ``'sum'`` (0-d results) or ``'none'`` (per sample).
    A class outside [0, C) other than ``ignore_index`` is a ValueError.

    >>> logits = np.zeros((2, 2))
    >>> float(F.cross_entropy(logits, np.array([0, 1])))  # log(2)
    0.6931...
    >>> F.cross_entropy(logits, np.array([0, -100]), reduction="none").round(4).tolist()
    [0.6931, 0.0]
    """
    if _tensors(input, target):
        return _fn.CrossEntropy.apply(input, target, reduction, ignore_index, label_smoothing)
    return _L.cross_entropy(input, target, reduction, ignore_index, label_smoothing)


@overload
def mse_loss(input: Tensor, target: TensorLike, reduction: str = ...) -> Tensor: ...


@overload
def mse_loss(input: ArrayLike, target: Tensor, reduction: str = ...) -> Tensor: ...


@overload
def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = ...) -> np.ndarray: ...


def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Union[Tensor, np.ndarray]:
    """Mean squared error with ``'none'`` / ``'mean'`` / ``'sum'`` reduction.

    input and target broadcast; ``'none'`` keeps the broadcast shape, the others
    give a 0-d result.

    >>> F.mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0])).tolist()
    2.0
    >>> F.mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0]), reduction="none").tolist()
    [0.0, 4.0]
    """
    if _tensors(input, target):
        return _fn.MSELoss.apply(input, target, reduction)
    return _L.mse_loss(input, target, reduction)


# --------------------------------------------------------------------------------------------
# shapes, dropout, normalisation


@overload
def flatten(input: Tensor, start_dim: int = ..., end_dim: int = ...) -> Tensor: ...


@overload
def flatten(input: ArrayLike, start_dim: int = ..., end_dim: int = ...) -> np.ndarray: ...


def flatten(input: TensorLike, start_dim: int = 1, end_dim: int = -1) -> Union[Tensor, np.ndarray]:
    """Merge dims ``start_dim..end_dim`` (a view when possible, as PyTorch).

    (N, C, H, W) -> (N, C*H*W) by default (``start_dim=1``, like ``nn.Flatten``).

    >>> F.flatten(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    >>> F.flatten(np.zeros((2, 3, 4, 4)), 0, 1).shape
    (6, 4, 4)
    """
    if _tensors(input):
        t = cast(Tensor, input)
        _E._flatten_dims(t.data.ndim, start_dim, end_dim, "flatten")  # errors naming the argument
        return t.flatten(start_dim, end_dim)
    return _E.flatten(input, start_dim, end_dim)


@overload
def dropout(
    input: Tensor,
    p: float = ...,
    training: bool = ...,
    *,
    generator: Optional[np.random.Generator] = ...,
    rng: Optional[np.random.Generator] = ...,
) -> Tensor: ...


@overload
def dropout(
    input: ArrayLike,
    p: float = ...,
    training: bool = ...,
    *,
    generator: Optional[np.random.Generator] = ...,
    rng: Optional[np.random.Generator] = ...,
) -> np.ndarray: ...


def dropout(
    input: TensorLike,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: Optional[np.random.Generator] = None,
    rng: Optional[np.random.Generator] = None,
) -> Union[Tensor, np.ndarray]:
    """Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity when not training.

    Any shape -> the same shape. ``generator`` (alias ``rng``): a
    ``numpy.random.Generator``; by default fastconv's, seeded by
    :func:`fastconv.manual_seed`.

    >>> y = F.dropout(np.ones(1000, np.float32), p=0.5, generator=np.random.default_rng(0))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> F.dropout(np.ones(3), training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    if _tensors(input):
        _E._dropout_p(p, "dropout")
        if not training:
            return cast(Tensor, input)
        return _fn.Dropout.apply(input, p, generator if generator is not None else rng)
    return _E.dropout(input, p, training, generator=generator, rng=rng)


@overload
def batch_norm(
    input: Tensor,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[TensorLike] = ...,
    bias: Optional[TensorLike] = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
) -> Tensor: ...


@overload
def batch_norm(
    input: ArrayLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Tensor,
    bias: Optional[TensorLike] = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
) -> Tensor: ...


@overload
def batch_norm(
    input: ArrayLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[ArrayLike],
    bias: Tensor,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
) -> Tensor: ...


@overload
def batch_norm(
    input: ArrayLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[ArrayLike] = ...,
    bias: Optional[ArrayLike] = ...,
    training: bool = ...,
    momentum: float = ...,
    eps: float = ...,
) -> np.ndarray: ...


def batch_norm(
    input: TensorLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[TensorLike] = None,
    bias: Optional[TensorLike] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Union[Tensor, np.ndarray]:
    """Batch normalisation per channel; updates the running statistics in place when training.

    input (N, C), (N, C, L) or (N, C, H, W) -> the same shape; running_mean,
    running_var, weight, bias: (C,) or None. In eval (``training=False``) the
    running statistics normalise; in training the batch's do, and the running
    ones (writable float arrays) move by ``momentum`` (unbiased variance).

    >>> x = np.array([[1.0], [3.0]])  # (N=2, C=1)
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> F.batch_norm(x, rm, rv, training=True).round(3).tolist()
    [[-1.0], [1.0]]
    >>> rm.round(3).tolist(), rv.round(3).tolist()
    ([0.2], [1.1])
    """
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


def _name_memory_errors(fn: _F, op: str) -> _F:
    """MemoryErrors raised by NumPy inside an op (copying a huge strided view, allocating
    a result) carry NumPy's message; prefix the op's name so the user knows which call
    failed, as for fastconv's own size checks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemoryError as e:
            msg = str(e)
            if msg.startswith(op):
                raise
            raise MemoryError(f"{op}: {msg}") from None

    return wrapper  # type: ignore[return-value]


for _op in __all__:
    globals()[_op] = _name_memory_errors(globals()[_op], _op)
del _op
