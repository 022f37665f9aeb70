"""batch_norm on NumPy arrays, with its gradient.

x (N, C, *s) with n = N * prod(s) values per channel c (index i over them):

    training:  mean[c] = sum_i x[i, c] / n,   var[c] = sum_i (x[i, c] - mean[c])**2 / n   (biased)
               running_mean <- (1 - momentum) * running_mean + momentum * mean
               running_var  <- (1 - momentum) * running_var  + momentum * var * n / (n - 1)   (unbiased)
    eval:      mean = running_mean, var = running_var
    invstd[c] = 1 / sqrt(var[c] + eps)
    y[i, c]   = (x[i, c] - mean[c]) * invstd[c] * weight[c] + bias[c]
              = x[i, c] * alpha[c] + beta[c],  alpha = weight * invstd,  beta = bias - mean * alpha

Gradients, with xhat = (x - mean) * invstd and sums over i:

    dbias[c]   = sum dy[i, c]
    dweight[c] = sum dy[i, c] * xhat[i, c]
    eval:      dx = dy * alpha
    training:  dx = alpha * (dy - dbias / n - xhat * dweight / n)     (mean and var depend on x)

Per-channel statistics are accumulated in float64.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ._args import common_float_dtype, contiguous, shape_str, to_array, grad_flags
from ._elementwise import _as_real, _quiet, _result
from ._typing import GradFlags, TensorLike


def _channel_param(v: Any, name: str, C: int, op: str) -> Optional[np.ndarray]:
    if v is None:
        return None
    a = to_array(v, name, op)
    if a.size != C:
        raise ValueError(f"{op}: {name} should contain {C} elements (one per channel), got shape {shape_str(a.shape)}")
    return a


def _check_updatable(obj: Any, arr: np.ndarray, name: str, op: str) -> None:
    """Running statistics updated in training must be the caller's own float array (or a Tensor's)."""
    if not (arr is obj or hasattr(obj, "_fastconv_data")):
        raise TypeError(
            f"{op}: {name} must be a NumPy array (or Tensor) to be updated in place in training, "
            f"got {type(obj).__name__}"
        )
    if arr.dtype.kind != "f" or not arr.flags.writeable:
        raise TypeError(
            f"{op}: {name} must be a writable float array to be updated in place in training, "
            f"got dtype {arr.dtype}{'' if arr.flags.writeable else ' (read-only)'}"
        )


def _bshape(x: np.ndarray) -> tuple:
    """Shape that broadcasts a per-channel (C,) vector against x (N, C, *s)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _reduce_axes(x: np.ndarray) -> tuple:
    return (0,) + tuple(range(2, x.ndim))


def _check_input(x: np.ndarray, op: str) -> None:
    if x.ndim < 2:
        raise ValueError(
            f"{op}: input must have shape (N, C), (N, C, L) or (N, C, H, W), got shape {shape_str(x.shape)}"
        )


@_quiet
def batch_norm_forward(
    input: TensorLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[TensorLike] = None,
    bias: Optional[TensorLike] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch_norm`` that also returns what its backward needs: ``(y, saved_mean, saved_invstd)``.

    y has x's shape; ``saved_mean`` and ``saved_invstd`` are (C,) in y's dtype: the
    batch statistics in training, the running ones in eval. See ``batch_norm``.

    >>> y, mean, invstd = F.batch_norm_forward(np.array([[1.0], [3.0]]), None, None, training=True)
    >>> y.round(3).tolist(), mean.tolist(), invstd.round(3).tolist()
    ([[-1.0], [1.0]], [2.0], [1.0])
    """
    op = "batch_norm"
    x = to_array(input, "input", op)
    training = bool(training)
    m = _as_real(momentum, "momentum", op)
    eps = _as_real(eps, "eps", op)
    _check_input(x, op)
    C = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must either both be None or neither be None")
    if running_mean is None and not training:
        raise ValueError(f"{op}: running_mean and running_var must be given in evaluation mode (training=False)")
    # both None or both arrays (checked above), and arrays whenever not training
    rm: Any = _channel_param(running_mean, "running_mean", C, op)
    rv: Any = _channel_param(running_var, "running_var", C, op)
    w = _channel_param(weight, "weight", C, op)
    b = _channel_param(bias, "bias", C, op)
    dt = common_float_dtype((x, w, b, rm, rv), ("input", "weight", "bias", "running_mean", "running_var"), op)
    update = training and rm is not None
    if update:
        _check_updatable(running_mean, rm, "running_mean", op)
        _check_updatable(running_var, rv, "running_var", op)
    n = math.prod(x.shape[:1] + x.shape[2:])  # values per channel
    if training and n == 1:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input shape {shape_str(x.shape)}"
        )
    x = contiguous(x, dt)
    axes = _reduce_axes(x)
    if training:
        if n == 0:
            mean = np.zeros(C)
            var = np.zeros(C)
        else:
            mean = np.mean(x, axis=axes, dtype=np.float64)
            xc = x - mean.astype(dt).reshape(_bshape(x))
            var = np.mean(np.square(xc, out=xc), axis=axes, dtype=np.float64)
            del xc
            if update:
                rm[...] = ((1.0 - m) * rm.astype(np.float64).reshape(-1) + m * mean).reshape(rm.shape)
                unbiased = var * (n / (n - 1))
                rv[...] = ((1.0 - m) * rv.astype(np.float64).reshape(-1) + m * unbiased).reshape(rv.shape)
    else:
        mean = rm.astype(np.float64).reshape(-1)
        var = rv.astype(np.float64).reshape(-1)
    invstd = 1.0 / np.sqrt(var + eps)  # var + eps <= 0 gives inf/nan, as PyTorch
    alpha = invstd if w is None else invstd * w.astype(np.float64).reshape(-1)
    beta = -mean * alpha
    if b is not None:
        beta = beta + b.astype(np.float64).reshape(-1)
    bs = _bshape(x)
    y = np.multiply(x, alpha.astype(dt).reshape(bs))
    y += beta.astype(dt).reshape(bs)
    return _result(y, dt), mean.astype(dt), invstd.astype(dt)


def batch_norm(
    input: TensorLike,
    running_mean: Optional[TensorLike],
    running_var: Optional[TensorLike],
    weight: Optional[TensorLike] = None,
    bias: Optional[TensorLike] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    """Batch normalisation over (N, *spatial) per channel, as ``torch.nn.functional.batch_norm``.

    input (N, C), (N, C, L), (N, C, H, W), ... -> same shape. running_mean,
    running_var, weight, bias: (C,) or None. In training the batch statistics are
    used (biased variance) and, if given, running_mean/running_var are updated IN
    PLACE (they must be writable float arrays) with momentum and the unbiased
    variance; a training batch with a single value per channel is a ValueError.
    In eval (training=False) the running statistics are used and must be given.
    """
    return batch_norm_forward(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


@_quiet
def batch_norm_backward(
    grad_output: TensorLike,
    input: TensorLike,
    weight: Optional[TensorLike],
    saved_mean: TensorLike,
    saved_invstd: TensorLike,
    training: bool,
    needs_input_grad: GradFlags = (True, True, True),
) -> tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients of ``batch_norm`` w.r.t. (input, weight, bias): ``(dx, dweight, dbias)``.

    grad_output and input (N, C, *s); weight (C,) or None; saved_mean and
    saved_invstd (C,) as returned by ``batch_norm_forward``. ``training`` selects
    the full batch-statistics gradient (True) or the affine one (False). dweight
    is None when weight is None; any entry whose ``needs_input_grad`` flag is false
    is None and not computed.

    >>> x = np.array([[0.0], [1.0], [2.0]])  # (N=3, C=1)
    >>> y, mean, invstd = F.batch_norm_forward(x, None, None, np.ones(1), training=True)
    >>> dx, dw, db = F.batch_norm_backward(np.array([[1.0], [0.0], [0.0]]), x, np.ones(1), mean, invstd, True)
    >>> dx.round(3).tolist(), dw.round(3).tolist(), db.tolist()
    ([[0.204], [-0.408], [0.204]], [-1.225], [1.0])
    """
    op = "batch_norm_backward"
    need_dx, need_dw, need_db = grad_flags(needs_input_grad, 3, "batch_norm_backward")
    dy = to_array(grad_output, "grad_output", op)
    x = to_array(input, "input", op)
    _check_input(x, op)
    if dy.shape != x.shape:
        raise ValueError(
            f"{op}: grad_output shape {shape_str(dy.shape)} does not match input shape {shape_str(x.shape)}"
        )
    C = x.shape[1]
    w = _channel_param(weight, "weight", C, op)
    mean = _channel_param(saved_mean, "saved_mean", C, op)
    invstd = _channel_param(saved_invstd, "saved_invstd", C, op)
    if mean is None or invstd is None:
        raise ValueError(f"{op}: saved_mean and saved_invstd are required")
    dt = common_float_dtype(
        (dy, x, w, mean, invstd), ("grad_output", "input", "weight", "saved_mean", "saved_invstd"), op
    )
    need_dw = need_dw and w is not None
    if not (need_dx or need_dw or need_db):
        return None, None, None
    dy = contiguous(dy, dt)
    x = contiguous(x, dt)
    bs = _bshape(x)
    axes = _reduce_axes(x)
    n = math.prod(x.shape[:1] + x.shape[2:])
    mean64 = mean.astype(np.float64).reshape(-1)
    invstd64 = invstd.astype(np.float64).reshape(-1)
    alpha = invstd64 if w is None else invstd64 * w.astype(np.float64).reshape(-1)
    if not training and not need_dw:
        # eval, no weight gradient: x is not needed beyond its shape
        sum_dy = np.sum(dy, axis=axes, dtype=np.float64) if need_db else None
        dx = _result(dy * alpha.astype(dt).reshape(bs), dt) if need_dx else None
        return dx, None, None if sum_dy is None else sum_dy.astype(dt)
    sum_dy = np.sum(dy, axis=axes, dtype=np.float64)
    xhat = x - mean64.astype(dt).reshape(bs)
    xhat *= invstd64.astype(dt).reshape(bs)
    sum_dy_xhat = np.sum(dy * xhat, axis=axes, dtype=np.float64)  # dweight, and the variance term of dx
    dx = None
    if need_dx:
        if training and n > 0:
            # dx = alpha * (dy - sum_dy / n - xhat * sum_dy_xhat / n), reusing xhat's buffer
            xhat *= (sum_dy_xhat / n).astype(dt).reshape(bs)
            np.subtract(dy, xhat, out=xhat)
            xhat -= (sum_dy / n).astype(dt).reshape(bs)
            xhat *= alpha.astype(dt).reshape(bs)
            dx = _result(xhat, dt)
        else:
            dx = _result(dy * alpha.astype(dt).reshape(bs), dt)
    dw = sum_dy_xhat.astype(dt) if need_dw else None
    db = sum_dy.astype(dt) if need_db else None
    return dx, dw, db
