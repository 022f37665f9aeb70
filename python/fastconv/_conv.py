"""conv2d and linear on NumPy arrays: argument handling around the C++ kernels."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from ._typing import GradFlags, IntPair, Padding, TensorLike
from ._args import (
    check_result,
    grad_flags,
    as_int,
    check_out,
    common_float_dtype,
    contiguous,
    nonneg_pair,
    positive_pair,
    shape_str,
    to_array,
)


def conv2d_options(
    weight_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any, groups: Any, op: str = "conv2d"
) -> tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int], int]:
    """Normalise conv options to ((sh, sw), (top, bottom, left, right), (dh, dw), groups).

    ``padding`` is an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only;
    for an even effective kernel the extra row/column goes bottom/right, as
    in PyTorch).
    """
    sh, sw = positive_pair(stride, "stride", op)
    dh, dw = positive_pair(dilation, "dilation", op)
    g = as_int(groups, "groups", op)
    if g < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {g}")
    if isinstance(padding, str):
        if padding == "valid":
            pads: tuple[int, int, int, int] = (0, 0, 0, 0)
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions (stride={(sh, sw)})"
                )
            kh, kw = int(weight_shape[-2]), int(weight_shape[-1])
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(
                f"{op}: padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}"
            )
    else:
        ph, pw = nonneg_pair(padding, "padding", op)
        pads = (ph, ph, pw, pw)
    return (sh, sw), pads, (dh, dw), g


def _conv_arrays(
    op: str, input: Any, weight: Any, bias: Any
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], np.dtype]:
    x = to_array(input, "input", op)
    w = to_array(weight, "weight", op)
    b = None if bias is None else to_array(bias, "bias", op)
    dt = common_float_dtype((x, w, b), ("input", "weight", "bias"), op)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {shape_str(x.shape)}"
        )
    if w.ndim != 4:
        raise ValueError(
            f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {shape_str(w.shape)}"
        )
    if b is not None and b.ndim != 1:
        raise ValueError(f"{op}: bias must be 1-D (out_channels,), got shape {shape_str(b.shape)}")
    return x, w, b, dt


def _flags(needs_input_grad: Any, op: str) -> tuple[bool, ...]:
    """needs_input_grad as three bools (input, weight, bias)."""
    return grad_flags(needs_input_grad, 3, op)


def _conv_check(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dil: tuple[int, int],
    groups: int,
) -> tuple[int, int, int, int]:
    """Shape validation in C++ on the shapes alone: runs before any argument is copied,
    so a shape error is reported even when an argument is a huge broadcast view."""
    xs = x.shape if x.ndim == 4 else (1,) + x.shape
    return _core.conv2d_check(xs, w.shape, -1 if b is None else b.shape[0], stride, pads, dil, groups)


def _conv_check_result(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    dt: np.dtype,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dil: tuple[int, int],
    groups: int,
    op: str,
) -> None:
    check_result(_conv_check(x, w, b, stride, pads, dil, groups), dt, op)


def conv2d(
    input: TensorLike,
    weight: TensorLike,
    bias: Optional[TensorLike] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (OC, C/groups, kH, kW); bias (OC,)
    -> (N, OC, OH, OW) with OH = floor((H + pad_top + pad_bottom - dilation*(kH-1) - 1) / stride) + 1.

    >>> import numpy as np, fastconv.functional as F
    >>> F.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)).shape
    (1, 2, 2, 2)

    ``out``: an existing C-contiguous array of the result's shape and dtype to
    write into (repeated inference without fresh allocations).
    """
    if out is None:
        y = _core.conv2d_fast(input, weight, bias, stride, padding, dilation, groups)
        if y is not None:
            return y
    op = "conv2d"
    x, w, b, dt = _conv_arrays(op, input, weight, bias)
    s, pads, dil, g = conv2d_options(w.shape, stride, padding, dilation, groups, op)
    _conv_check_result(x, w, b, dt, s, pads, dil, g, op)
    out = check_out(out, (x, w, b), op)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
        if out is not None:
            out = out[None]
    y = _core.conv2d_forward(
        contiguous(x, dt), contiguous(w, dt), None if b is None else contiguous(b, dt), s, pads, dil, g, out
    )
    return y[0] if unbatched else y


def conv2d_backward(
    grad_output: TensorLike,
    input: TensorLike,
    weight: TensorLike,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    needs_input_grad: GradFlags = (True, True, True),
) -> tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients of ``conv2d`` w.r.t. (input, weight, bias) given ``grad_output``.

    Returns a triple; entries whose flag in ``needs_input_grad`` is false are
    ``None`` and are not computed. Accepts unbatched (3-D) input and grad_output.
    grad_output has the forward output's shape (N, OC, OH, OW); the gradients
    have the shapes of input, weight and (OC,).

    >>> x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)
    >>> dy = np.ones((1, 2, 2, 2), np.float32)
    >>> dx, dw, db = F.conv2d_backward(dy, x, w)
    >>> dx.shape, dw.shape, db.tolist()
    ((1, 1, 4, 4), (2, 1, 3, 3), [4.0, 4.0])
    >>> F.conv2d_backward(dy, x, w, needs_input_grad=(True, False, False))[1] is None
    True
    """
    op = "conv2d_backward"
    x, w, _, dt = _conv_arrays(op, input, weight, None)
    dy = to_array(grad_output, "grad_output", op)
    dt = common_float_dtype((x, w, dy), ("input", "weight", "grad_output"), op)
    s, pads, dil, g = conv2d_options(w.shape, stride, padding, dilation, groups, op)
    unbatched = x.ndim == 3
    if unbatched:
        if dy.ndim != 3:
            raise ValueError(
                f"{op}: grad_output must be 3-D for an unbatched input, got shape {shape_str(dy.shape)}"
            )
        x, dy = x[None], dy[None]
    need_dx, need_dw, need_db = _flags(needs_input_grad, op)
    want = _conv_check(x, w, None, s, pads, dil, g)
    if dy.shape != tuple(want):
        got, exp = (dy.shape[1:], want[1:]) if unbatched else (dy.shape, want)
        raise ValueError(
            f"{op}: grad_output has shape {shape_str(got)}, expected {shape_str(exp)} (the forward output's shape)"
        )
    dx, dw, db = _core.conv2d_backward(
        contiguous(dy, dt), contiguous(x, dt), contiguous(w, dt), s, pads, dil, g, need_dx, need_dw, need_db
    )
    if unbatched and dx is not None:
        dx = dx[0]
    return dx, dw, db


def _linear_arrays(
    op: str, input: Any, weight: Any, bias: Any
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], np.dtype]:
    x = to_array(input, "input", op)
    w = to_array(weight, "weight", op)
    b = None if bias is None else to_array(bias, "bias", op)
    dt = common_float_dtype((x, w, b), ("input", "weight", "bias"), op)
    if x.ndim < 1:
        raise ValueError(f"{op}: input must have at least 1 dimension, got a scalar")
    if w.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {shape_str(w.shape)}")
    if b is not None and b.ndim != 1:
        raise ValueError(f"{op}: bias must be 1-D (out_features,), got shape {shape_str(b.shape)}")
    return x, w, b, dt


def linear(
    input: TensorLike, weight: TensorLike, bias: Optional[TensorLike] = None, out: Optional[np.ndarray] = None
) -> np.ndarray:
    """``input @ weight.T + bias`` over the last dimension, as ``torch.nn.functional.linear``.

    input (*, in_features); weight (out_features, in_features); bias (out_features,)
    -> (*, out_features).

    >>> F.linear(np.ones((2, 5, 3)), np.ones((4, 3))).shape
    (2, 5, 4)
    """
    if out is None:
        y = _core.linear_fast(input, weight, bias)
        if y is not None:
            return y
    x, w, b, dt = _linear_arrays("linear", input, weight, bias)
    check_result(_core.linear_check(x.shape, w.shape, -1 if b is None else b.shape[0]), dt, "linear")
    out = check_out(out, (x, w, b), "linear")
    return _core.linear_forward(contiguous(x, dt), contiguous(w, dt), None if b is None else contiguous(b, dt), out)


def linear_backward(
    grad_output: TensorLike, input: TensorLike, weight: TensorLike, needs_input_grad: GradFlags = (True, True, True)
) -> tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients of ``linear`` w.r.t. (input, weight, bias); unneeded ones are ``None``.

    grad_output (*, out_features) -> dx (*, in_features), dw (out_features,
    in_features), db (out_features,).

    >>> dx, dw, db = F.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)))
    >>> dx.tolist(), dw.shape, db.tolist()
    ([[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], (4, 3), [2.0, 2.0, 2.0, 2.0])
    """
    op = "linear_backward"
    x, w, _, _ = _linear_arrays(op, input, weight, None)
    dy = to_array(grad_output, "grad_output", op)
    dt = common_float_dtype((x, w, dy), ("input", "weight", "grad_output"), op)
    need_dx, need_dw, need_db = _flags(needs_input_grad, op)
    want = tuple(_core.linear_check(x.shape, w.shape, -1))
    if dy.shape != want:
        raise ValueError(f"{op}: grad_output has shape {shape_str(dy.shape)}, expected {shape_str(want)}")
    dx, dw, db = _core.linear_backward(
        contiguous(dy, dt), contiguous(x, dt), contiguous(w, dt), need_dx, need_dw, need_db
    )
    return dx, dw, db
