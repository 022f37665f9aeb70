"""Pooling on NumPy arrays: argument handling around the C++ kernels."""

from __future__ import annotations

from typing import Any, Optional, Union, cast

import numpy as np

from . import _core
from ._typing import IntPair, OutputSize, Shape, TensorLike
from ._args import as_int, check_out, check_result, contiguous, float_dtype, nonneg_pair, positive_pair, shape_str, to_array


def _input(op: str, input: Any, copy: bool = True) -> tuple[np.ndarray, bool]:
    """The input as a 4-D array (unbatched 3-D inputs get a batch of 1) and whether it was 3-D.
    With ``copy=False`` it is not yet made contiguous (see :func:`_materialize`), so a
    caller can check the result's size before paying for a copy of a huge view."""
    x = to_array(input, "input", op)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {shape_str(x.shape)}")
    if copy:
        x = _materialize(x, op)
    unbatched = x.ndim == 3
    return (x[None] if unbatched else x), unbatched


def _materialize(x: np.ndarray, op: str) -> np.ndarray:
    return contiguous(x, float_dtype(x, "input", op))


def _stride(stride: Any, kernel: tuple[int, int], op: str) -> tuple[int, int]:
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel
    return positive_pair(stride, "stride", op)


def _indices(indices: Any, op: str, shape: Optional[Shape] = None) -> np.ndarray:
    ind = to_array(indices, "indices", op)
    if ind.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer array, got dtype {ind.dtype}")
    ind = contiguous(ind, np.dtype(np.int64))
    if shape is not None and ind.shape != tuple(shape):
        raise ValueError(f"{op}: indices shape {shape_str(ind.shape)} must equal {shape_str(shape)}")
    return ind


def _unbatch(a: np.ndarray, unbatched: bool) -> np.ndarray:
    return a[0] if unbatched else a


def _flag(v: Any, name: str, op: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return bool(v)


def _ceil(v: Any, op: str) -> bool:
    return _flag(v, "ceil_mode", op)


def _input_shape(input_shape: Any, op: str) -> tuple[int, ...]:
    """The 3-D (C, H, W) or 4-D (N, C, H, W) shape of the input a backward pass produces."""
    try:
        entries = tuple(input_shape)
    except TypeError:
        raise TypeError(
            f"{op}: input_shape must be a sequence of 3 (C, H, W) or 4 (N, C, H, W) ints, got {input_shape!r}"
        ) from None
    if len(entries) not in (3, 4):
        raise ValueError(f"{op}: input_shape must have 3 (C, H, W) or 4 (N, C, H, W) entries, got {input_shape!r}")
    return tuple(as_int(v, "input_shape", op) for v in entries)


def _check_grad_result(grad_output: Any, shape: Shape, op: str) -> None:
    """The input gradient (of ``shape``) must be able to exist before grad_output is copied."""
    dy = to_array(grad_output, "grad_output", op)
    check_result(shape, float_dtype(dy, "grad_output", op), op, "input gradient")


def _grad_output(grad_output: Any, shape: Shape, op: str) -> np.ndarray:
    """grad_output as a float array of the same rank as ``shape`` (the input's)."""
    dy = to_array(grad_output, "grad_output", op)
    dt = float_dtype(dy, "grad_output", op)
    if dy.ndim != len(shape):
        raise ValueError(
            f"{op}: grad_output has shape {shape_str(dy.shape)}, expected a {len(shape)}-D array "
            f"for input_shape {shape_str(shape)}"
        )
    return contiguous(dy, dt)


def max_pool2d(
    input: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    out: Optional[np.ndarray] = None,
) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    input (N, C, H, W) or (C, H, W) -> (N, C, OH, OW); with ``return_indices``
    also the int64 argmax of each window as ``h * W + w`` within its plane.
    """
    if out is None and not return_indices:
        y = _core.max_pool2d_fast(input, kernel_size, stride, padding, dilation, ceil_mode)
        if y is not None:
            return y
    op = "max_pool2d"
    x, unbatched = _input(op, input)
    k = positive_pair(kernel_size, "kernel_size", op)
    s = _stride(stride, k, op)
    p = nonneg_pair(padding, "padding", op)
    d = positive_pair(dilation, "dilation", op)
    out = _batched_out(check_out(out, (x,), op), unbatched, op)
    y, ind = _core.max_pool2d_forward(x, k, s, p, d, _ceil(ceil_mode, op), bool(return_indices), out)
    if return_indices:
        return _unbatch(y, unbatched), _unbatch(cast(np.ndarray, ind), unbatched)  # asked for: not None
    return _unbatch(y, unbatched)


def _batched_out(out: Optional[np.ndarray], unbatched: bool, op: str) -> Optional[np.ndarray]:
    if out is not None and unbatched:
        if out.ndim != 3:
            raise ValueError(f"{op}: out has shape {shape_str(out.shape)}, expected a 3-D array for a 3-D input")
        return out[None]
    return out


def max_pool2d_backward(grad_output: TensorLike, indices: TensorLike, input_shape: Shape) -> np.ndarray:
    """Gradient of any max pooling: ``grad_output`` scattered into the argmax
    positions ``indices`` of an input of ``input_shape`` (4-D or 3-D).

    grad_output and indices (N, C, OH, OW) -> (N, C, H, W) = ``input_shape``.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_pool2d_backward(np.ones_like(y), idx, x.shape)[0, 0].tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    """
    op = "max_pool2d_backward"
    shape = _input_shape(input_shape, op)
    _check_grad_result(grad_output, shape, op)
    dy = _grad_output(grad_output, shape, op)
    ind = _indices(indices, op, dy.shape)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy, ind = (1,) + shape, dy[None], ind[None]
    return _unbatch(_core.max_pool_backward(dy, ind, list(shape)), unbatched)


def avg_pool2d(
    input: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``."""
    op = "avg_pool2d"
    x, unbatched = _input(op, input)
    k, s, p, div = _avg_options(op, kernel_size, stride, padding, divisor_override)
    out = _batched_out(check_out(out, (x,), op), unbatched, op)
    cip = _flag(count_include_pad, "count_include_pad", op)
    y = _core.avg_pool2d_forward(x, k, s, p, _ceil(ceil_mode, op), cip, div, out)
    return _unbatch(y, unbatched)


def _avg_options(
    op: str, kernel_size: Any, stride: Any, padding: Any, divisor_override: Any
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int]:
    k = positive_pair(kernel_size, "kernel_size", op)
    s = _stride(stride, k, op)
    p = nonneg_pair(padding, "padding", op)
    div = 0
    if divisor_override is not None:
        div = as_int(divisor_override, "divisor_override", op)
        if div <= 0:
            raise ValueError(f"{op}: divisor_override must be a positive integer, got {divisor_override}")
    return k, s, p, div


def avg_pool2d_backward(
    grad_output: TensorLike,
    input_shape: Shape,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> np.ndarray:
    """Input gradient of :func:`avg_pool2d` for an input of ``input_shape``.

    grad_output (N, C, OH, OW) -> (N, C, H, W); the options are the forward's.

    >>> F.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2)[0, 0].tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    op = "avg_pool2d_backward"
    shape = _input_shape(input_shape, op)
    _check_grad_result(grad_output, shape, op)
    dy = _grad_output(grad_output, shape, op)
    k, s, p, div = _avg_options(op, kernel_size, stride, padding, divisor_override)
    cip = _flag(count_include_pad, "count_include_pad", op)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy = (1,) + shape, dy[None]
    dx = _core.avg_pool2d_backward(dy, list(shape), k, s, p, _ceil(ceil_mode, op), cip, div)
    return _unbatch(dx, unbatched)


def _output_size(output_size: Any, x: np.ndarray, op: str) -> tuple[int, int]:
    """int, pair, or pair with None (keep that input size)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        vals = [x.shape[2 + i] if v is None else as_int(v, "output_size", op) for i, v in enumerate(output_size)]
    elif output_size is None:
        vals = [x.shape[2], x.shape[3]]
    else:
        v = as_int(output_size, "output_size", op)
        vals = [v, v]
    if vals[0] < 1 or vals[1] < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return vals[0], vals[1]


def adaptive_avg_pool2d(input: TensorLike, output_size: OutputSize, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Average over the windows that cut the input into ``output_size`` bins."""
    op = "adaptive_avg_pool2d"
    x, unbatched = _input(op, input, copy=False)
    size = _output_size(output_size, x, op)
    check_result(x.shape[:2] + size, float_dtype(x, "input", op), op)
    x = _materialize(x, op)
    out = _batched_out(check_out(out, (x,), op), unbatched, op)
    return _unbatch(_core.adaptive_avg_pool2d_forward(x, size, out), unbatched)


def adaptive_avg_pool2d_backward(grad_output: TensorLike, input_shape: Shape) -> np.ndarray:
    """Input gradient of :func:`adaptive_avg_pool2d` for an input of ``input_shape`` (4-D or 3-D).

    >>> F.adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))[0, 0].tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    op = "adaptive_avg_pool2d_backward"
    shape = _input_shape(input_shape, op)
    _check_grad_result(grad_output, shape, op)
    dy = _grad_output(grad_output, shape, op)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy = (1,) + shape, dy[None]
    return _unbatch(_core.adaptive_avg_pool2d_backward(dy, list(shape)), unbatched)


def adaptive_max_pool2d(
    input: TensorLike, output_size: OutputSize, return_indices: bool = False
) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Max over the adaptive bins; indices as in :func:`max_pool2d`."""
    op = "adaptive_max_pool2d"
    x, unbatched = _input(op, input, copy=False)
    size = _output_size(output_size, x, op)
    check_result(x.shape[:2] + size, np.int64, op, "indices")  # the larger of the two results
    x = _materialize(x, op)
    y, ind = _core.adaptive_max_pool2d_forward(x, size)
    if return_indices:
        return _unbatch(y, unbatched), _unbatch(ind, unbatched)
    return _unbatch(y, unbatched)


adaptive_max_pool2d_backward = max_pool2d_backward


def _unpool_size(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_size: Any,
    op: str,
) -> tuple[int, int]:
    default = [(x.shape[2 + d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(2)]
    if output_size is None:
        size = default
    else:
        try:
            entries = list(output_size)
        except TypeError:
            raise TypeError(
                f"{op}: output_size must be a sequence of 2 (H, W) or 4 (N, C, H, W) ints, got {output_size!r}"
            ) from None
        size = [as_int(v, "output_size", op) for v in entries]
        if len(size) in (3, 4):
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"{op}: output_size must have 2 (H, W) or 4 (N, C, H, W) entries, got {output_size!r}")
        for d in range(2):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < size[d] < hi:
                raise ValueError(
                    f"{op}: invalid output_size {tuple(output_size)} (dim {d} must be between {lo} and {hi}, exclusive)"
                )
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{op}: output size {tuple(size)} must be positive")
    if size[0] > 2**62 or size[1] > 2**62:  # (H - 1) * stride + ... past int64: no such array can exist
        raise MemoryError(f"{op}: output size {tuple(size)} is too large to allocate")
    return size[0], size[1]


def max_unpool2d(
    input: TensorLike,
    indices: TensorLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    output_size: Optional[Shape] = None,
) -> np.ndarray:
    """Partial inverse of :func:`max_pool2d`: values placed at ``indices``, zeros elsewhere."""
    op = "max_unpool2d"
    x, unbatched = _input(op, input, copy=False)
    k = positive_pair(kernel_size, "kernel_size", op)
    s = _stride(stride, k, op)
    p = nonneg_pair(padding, "padding", op)
    size = _unpool_size(x, k, s, p, output_size, op)
    check_result(x.shape[:2] + tuple(size), float_dtype(x, "input", op), op)  # before any copy
    x = _materialize(x, op)
    ind = _indices(indices, op)
    if ind.shape != (x.shape[1:] if unbatched else x.shape):
        raise ValueError(
            f"{op}: indices shape {shape_str(ind.shape)} must equal input shape "
            f"{shape_str(x.shape[1:] if unbatched else x.shape)}"
        )
    if unbatched:
        ind = ind[None]
    return _unbatch(_core.max_unpool2d_forward(x, ind, size), unbatched)


def max_unpool2d_backward(grad_output: TensorLike, indices: TensorLike) -> np.ndarray:
    """Input gradient of :func:`max_unpool2d`: ``grad_output`` gathered at ``indices``.

    grad_output (N, C, OH, OW), indices (N, C, H, W) -> (N, C, H, W).

    >>> dy = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> F.max_unpool2d_backward(dy, np.array([[[[5, 7], [13, 15]]]])).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    op = "max_unpool2d_backward"
    dy = to_array(grad_output, "grad_output", op)
    dy = contiguous(dy, float_dtype(dy, "grad_output", op))
    ind = _indices(indices, op)
    if dy.ndim not in (3, 4) or ind.ndim != dy.ndim:
        raise ValueError(
            f"{op}: grad_output {shape_str(dy.shape)} and indices {shape_str(ind.shape)} must both be 3-D "
            "(C, H, W) or both 4-D (N, C, H, W)"
        )
    unbatched = dy.ndim == 3
    if unbatched:
        dy, ind = dy[None], ind[None]
    return _unbatch(_core.max_unpool2d_backward(dy, ind), unbatched)


__all__ = [
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
]
