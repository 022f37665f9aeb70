"""Activations, softmax, losses, dropout, batch norm, flatten on NumPy arrays.

These are memory-bound: NumPy does them at memory speed, so they stay in
Python. Each op has gradient functions beside it, taking what its forward
saved; the autograd layer calls them.
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

from ._args import as_int, common_float_dtype, contiguous, float_dtype, shape_str, to_array

_REDUCTIONS = ("none", "mean", "sum")


def _float_input(x, name, op):
    a = to_array(x, name, op)
    return contiguous(a, float_dtype(a, name, op))


def _fresh(a):
    """Computing ops return fresh C-contiguous arrays."""
    return np.ascontiguousarray(a)


def _dim(dim, ndim, op):
    if dim is None:
        raise TypeError(f"{op}: dim must be given explicitly (an int), got None")
    d = as_int(dim, "dim", op)
    nd = max(ndim, 1)
    if not -nd <= d < nd:
        raise ValueError(f"{op}: dim {d} is out of range for an input with {ndim} dimensions")
    return d % nd


def _reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


# --- activations ---------------------------------------------------------------


def relu(input):
    """max(x, 0) elementwise; NaN stays NaN (as PyTorch)."""
    x = _float_input(input, "input", "relu")
    return np.maximum(x, x.dtype.type(0))  # np.maximum propagates NaN


def relu_backward(grad_output, input):
    """dx = dy where x > 0, else 0."""
    x = _float_input(input, "input", "relu_backward")
    dy = _float_input(grad_output, "grad_output", "relu_backward")
    return _fresh(np.where(x > 0, dy, np.zeros((), dy.dtype)).astype(dy.dtype, copy=False))


def leaky_relu(input, negative_slope=0.01):
    """x if x >= 0 else negative_slope * x."""
    x = _float_input(input, "input", "leaky_relu")
    if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
        raise TypeError(f"leaky_relu: negative_slope must be a real number, got {negative_slope!r}")
    s = x.dtype.type(negative_slope)
    return _fresh(np.where(x >= 0, x, x * s))


def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    x = _float_input(input, "input", "leaky_relu_backward")
    dy = _float_input(grad_output, "grad_output", "leaky_relu_backward")
    s = dy.dtype.type(negative_slope)
    return _fresh(np.where(x > 0, dy, dy * s))


def sigmoid(input):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    x = _float_input(input, "input", "sigmoid")
    out = np.empty_like(x)
    pos = x >= 0
    with np.errstate(over="ignore"):
        out[pos] = 1 / (1 + np.exp(-x[pos]))
        ex = np.exp(x[~pos])
        out[~pos] = ex / (1 + ex)
    return out


def sigmoid_backward(grad_output, output):
    y = _float_input(output, "output", "sigmoid_backward")
    dy = _float_input(grad_output, "grad_output", "sigmoid_backward")
    return _fresh(dy * y * (1 - y))


def tanh(input):
    x = _float_input(input, "input", "tanh")
    return np.tanh(x)


def tanh_backward(grad_output, output):
    y = _float_input(output, "output", "tanh_backward")
    dy = _float_input(grad_output, "grad_output", "tanh_backward")
    return _fresh(dy * (1 - y * y))


def softmax(input, dim):
    """exp(x - max) / sum(exp(x - max)) along ``dim``."""
    x = _float_input(input, "input", "softmax")
    d = _dim(dim, x.ndim, "softmax")
    if x.ndim == 0:
        return np.ones_like(x)
    m = np.max(x, axis=d, keepdims=True) if x.shape[d] else 0
    with np.errstate(invalid="ignore"):
        e = np.exp(x - m)
        return _fresh(e / np.sum(e, axis=d, keepdims=True))


def softmax_backward(grad_output, output, dim):
    """dx = y * (dy - sum(dy * y, dim))."""
    y = _float_input(output, "output", "softmax_backward")
    dy = _float_input(grad_output, "grad_output", "softmax_backward")
    d = _dim(dim, y.ndim, "softmax_backward")
    if y.ndim == 0:
        return np.zeros_like(dy)
    return _fresh(y * (dy - np.sum(dy * y, axis=d, keepdims=True)))


def log_softmax(input, dim):
    """x - max - log(sum(exp(x - max))) along ``dim``."""
    x = _float_input(input, "input", "log_softmax")
    d = _dim(dim, x.ndim, "log_softmax")
    if x.ndim == 0:
        return np.zeros_like(x)
    if x.shape[d] == 0:
        return x.copy()
    m = np.max(x, axis=d, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = x - m
        return _fresh(z - np.log(np.sum(np.exp(z), axis=d, keepdims=True)))


def log_softmax_backward(grad_output, output, dim):
    """dx = dy - exp(y) * sum(dy, dim)."""
    y = _float_input(output, "output", "log_softmax_backward")
    dy = _float_input(grad_output, "grad_output", "log_softmax_backward")
    d = _dim(dim, y.ndim, "log_softmax_backward")
    if y.ndim == 0:
        return np.zeros_like(dy)
    return _fresh(dy - np.exp(y) * np.sum(dy, axis=d, keepdims=True))


# --- losses --------------------------------------------------------------------


def _ce_prepare(logits, target, op):
    x = _float_input(logits, "input", op)
    t = to_array(target, "target", op)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (C,) or (N, C, ...), got a scalar")
    class_axis = 0 if x.ndim == 1 else 1
    C = x.shape[class_axis]
    if t.dtype.kind == "f" and t.shape == x.shape:
        return x, t.astype(x.dtype, copy=False), class_axis, True
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "b":
            raise TypeError(f"{op}: target must hold integer class indices, got bool")
        raise TypeError(
            f"{op}: target must hold integer class indices (or class probabilities of the input's shape "
            f"{shape_str(x.shape)}), got dtype {t.dtype} with shape {shape_str(t.shape)}"
        )
    want = x.shape[:class_axis] + x.shape[class_axis + 1 :]
    if t.shape != want:
        raise ValueError(
            f"{op}: target shape {shape_str(t.shape)} does not match input shape {shape_str(x.shape)} "
            f"(expected {shape_str(want)})"
        )
    return x, t.astype(np.int64, copy=False), class_axis, False


def _check_targets(t, C, ignore_index, op):
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if np.any(bad):
        v = int(t[bad].flat[0])
        raise ValueError(f"{op}: target {v} is out of bounds for {C} classes (valid: 0..{C - 1} or ignore_index={ignore_index})")


def cross_entropy(input, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Cross entropy of logits ``input`` against class indices (or probabilities).

    input (N, C) / (N, C, d1, ...) / (C,); target (N,) / (N, d1, ...) / () of
    integer classes, or float probabilities of the input's shape. Label
    smoothing and ignore_index as ``torch.nn.functional.cross_entropy``.
    """
    y, _ = cross_entropy_forward(input, target, reduction, ignore_index, label_smoothing)
    return y


def _ls_check(label_smoothing, op):
    if not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool):
        raise TypeError(f"{op}: label_smoothing must be a float, got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    return float(label_smoothing)


def cross_entropy_forward(input, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """(loss, saved) where saved feeds :func:`cross_entropy_backward`."""
    op = "cross_entropy"
    reduction = _reduction(reduction, op)
    ls = _ls_check(label_smoothing, op)
    ignore_index = as_int(ignore_index, "ignore_index", op)
    x, t, ca, probs = _ce_prepare(input, target, op)
    C = x.shape[ca]
    logp = log_softmax(x, ca)
    if probs:
        tt = t * (1 - ls) + ls / C if ls else t
        per = -np.sum(tt * logp, axis=ca)
        n = x.dtype.type(per.size)
        if reduction == "none":
            loss = per
        elif reduction == "sum":
            loss = np.sum(per)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                loss = np.sum(per) / n
        return np.asarray(loss, dtype=x.dtype), (logp, t, ca, True, reduction, ignore_index, ls, n)
    _check_targets(t, C, ignore_index, op)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe, ca), axis=ca).squeeze(ca)
    nll = -picked
    if ls:
        smooth = -np.sum(logp, axis=ca) / C
        per = (1 - ls) * nll + ls * smooth
    else:
        per = nll
    per = np.where(valid, per, 0).astype(x.dtype)
    if reduction == "none":
        loss = per
        denom = None
    elif reduction == "sum":
        loss = np.sum(per)
        denom = None
    else:
        denom = x.dtype.type(np.count_nonzero(valid))
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = np.sum(per) / denom
    return np.asarray(loss, dtype=x.dtype), (logp, t, ca, False, reduction, ignore_index, ls, denom)


def cross_entropy_backward(grad_output, saved):
    """Gradient w.r.t. the logits from what :func:`cross_entropy_forward` saved."""
    logp, t, ca, probs, reduction, ignore_index, ls, denom = saved
    g = np.asarray(to_array(grad_output, "grad_output", "cross_entropy_backward"), dtype=logp.dtype)
    C = logp.shape[ca]
    p = np.exp(logp)
    if probs:
        tt = t * (1 - ls) + ls / C if ls else t
        # d/dx of -sum(tt * logp) = p * sum(tt) - tt
        grad = p * np.sum(tt, axis=ca, keepdims=True) - tt
        if reduction == "none":
            scale = np.expand_dims(g, ca)
        elif reduction == "sum":
            scale = g
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = g / denom
        return _fresh((grad * scale).astype(logp.dtype))
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    onehot = np.zeros_like(logp)
    np.put_along_axis(onehot, np.expand_dims(safe, ca), 1, axis=ca)
    target_dist = (1 - ls) * onehot + ls / C if ls else onehot
    grad = p - target_dist
    grad = grad * np.expand_dims(valid, ca)
    if reduction == "none":
        grad = grad * np.expand_dims(g, ca)
    elif reduction == "sum":
        grad = grad * g
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            grad = grad * (g / denom)
    return _fresh(grad.astype(logp.dtype))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ((input - target)**2, reduced); shapes broadcast."""
    op = "mse_loss"
    reduction = _reduction(reduction, op)
    a, b, dt = _pair_inputs(input, target, op)
    d = a - b
    sq = d * d
    if reduction == "none":
        return _fresh(sq)
    if reduction == "sum":
        return np.asarray(np.sum(sq), dtype=dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sum(sq) / dt.type(sq.size), dtype=dt)


def _pair_inputs(input, target, op):
    a = to_array(input, "input", op)
    b = to_array(target, "target", op)
    dt = common_float_dtype((a, b), ("input", "target"), op)
    a, b = contiguous(a, dt), contiguous(b, dt)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: input shape {shape_str(a.shape)} and target shape {shape_str(b.shape)} do not broadcast"
        ) from None
    return a, b, dt


def mse_loss_backward(grad_output, input, target, reduction="mean"):
    """(d input, d target) of :func:`mse_loss`, each in its own shape."""
    from .autograd import _sum_to_shape

    op = "mse_loss_backward"
    reduction = _reduction(reduction, op)
    a, b, dt = _pair_inputs(input, target, op)
    g = np.asarray(to_array(grad_output, "grad_output", op), dtype=dt)
    d = a - b
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            g = g / dt.type(d.size)
    ga = 2 * d * g
    return _fresh(_sum_to_shape(ga, a.shape)), _fresh(_sum_to_shape(-ga, b.shape))


# --- shape / regularisation ---------------------------------------------------------


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dims start_dim..end_dim (may return a view, as PyTorch)."""
    x = to_array(input, "input", "flatten")
    nd = max(x.ndim, 1)
    s = as_int(start_dim, "start_dim", "flatten")
    e = as_int(end_dim, "end_dim", "flatten")
    if not (-nd <= s < nd and -nd <= e < nd):
        raise ValueError(f"flatten: dims ({start_dim}, {end_dim}) out of range for shape {shape_str(x.shape)}")
    s, e = s % nd, e % nd
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    if x.ndim == 0:
        return x.reshape(1)
    shp = x.shape
    return x.reshape(shp[:s] + (int(np.prod(shp[s : e + 1], dtype=np.int64)),) + shp[e + 1 :])


class _Rng(threading.local):
    def __init__(self):
        self.gen = np.random.default_rng()


_rng = _Rng()
_seed_lock = threading.Lock()
_global_seed = [None]


def manual_seed(seed: int) -> None:
    """Seed fastconv's random generator (dropout masks, parameter initialisation)."""
    s = as_int(seed, "seed", "manual_seed")
    with _seed_lock:
        _global_seed[0] = s
    _rng.gen = np.random.default_rng(s)


def default_generator() -> np.random.Generator:
    return _rng.gen


def _dropout_p(p, op):
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"{op}: p must be a float, got {p!r}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout_forward(input, p=0.5, training=True, generator=None):
    """(y, mask): y = x * mask with mask in {0, 1/(1-p)}; mask is None when nothing is dropped."""
    op = "dropout"
    p = _dropout_p(p, op)
    x = _float_input(input, "input", op)
    if not training or p == 0.0:
        return x, None
    if p == 1.0:
        return np.zeros_like(x), np.zeros_like(x)
    gen = generator if generator is not None else _rng.gen
    keep = gen.random(x.shape) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return _fresh(x * mask), mask


def dropout(input, p=0.5, training=True, generator=None):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    if not training:
        _dropout_p(p, "dropout")
        return input if isinstance(input, np.ndarray) else to_array(input, "input", "dropout")
    return dropout_forward(input, p, training, generator)[0]


def dropout_backward(grad_output, mask):
    dy = _float_input(grad_output, "grad_output", "dropout_backward")
    return dy.copy() if mask is None else _fresh(dy * mask)


def _bn_shapes(x, op):
    if x.ndim < 2:
        raise ValueError(f"{op}: expected input of at least 2 dimensions (N, C, ...), got shape {shape_str(x.shape)}")
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return axes, bshape


def batch_norm_forward(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    """(y, saved_mean, saved_invstd) of batch norm; updates running stats in place when training."""
    op = "batch_norm"
    x = _float_input(input, "input", op)
    axes, bshape = _bn_shapes(x, op)
    C = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if v is not None and np.shape(to_array(v, name, op)) != (C,):
            raise ValueError(
                f"{op}: {name} must have shape ({C},) for input of shape {shape_str(x.shape)}, "
                f"got {shape_str(np.shape(to_array(v, name, op)))}"
            )
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool):
        raise TypeError(f"{op}: eps must be a float, got {eps!r}")
    dt = x.dtype
    if training:
        count = x.size // C if C else 0
        if count <= 1:
            raise ValueError(
                f"{op}: expected more than 1 value per channel when training, got input shape {shape_str(x.shape)}"
            )
        mean = np.mean(x, axis=axes, dtype=np.float64)
        var = np.var(x, axis=axes, dtype=np.float64)
        if running_mean is not None or running_var is not None:
            if momentum is None:
                raise ValueError(f"{op}: momentum=None (cumulative average) is not supported")
            m = float(momentum)
            for name, buf, val in (
                ("running_mean", running_mean, mean),
                ("running_var", running_var, var * count / (count - 1)),
            ):
                if buf is None:
                    continue
                arr = buf if isinstance(buf, np.ndarray) else getattr(buf, "data", None)  # ndarray or Tensor
                if not isinstance(arr, np.ndarray) or not arr.flags.writeable:
                    raise TypeError(f"{op}: {name} must be a writable ndarray to be updated in place")
                arr *= 1 - m
                arr += (m * val).astype(arr.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required when training=False")
        mean = np.asarray(to_array(running_mean, "running_mean", op), dtype=np.float64)
        var = np.asarray(to_array(running_var, "running_var", op), dtype=np.float64)
    invstd = 1.0 / np.sqrt(var + float(eps))
    scale = invstd if weight is None else invstd * np.asarray(to_array(weight, "weight", op), dtype=np.float64)
    shift = -mean * scale
    if bias is not None:
        shift = shift + np.asarray(to_array(bias, "bias", op), dtype=np.float64)
    y = x * scale.astype(dt).reshape(bshape) + shift.astype(dt).reshape(bshape)
    return _fresh(y.astype(dt, copy=False)), mean.astype(dt), invstd.astype(dt)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over (N, *spatial) per channel, as ``torch.nn.functional.batch_norm``."""
    return batch_norm_forward(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


def batch_norm_backward(grad_output, input, weight, saved_mean, saved_invstd, training, needs_input_grad=(True, True, True)):
    """(dx, dweight, dbias) of batch norm from what the forward saved."""
    op = "batch_norm_backward"
    x = _float_input(input, "input", op)
    dy = np.asarray(to_array(grad_output, "grad_output", op), dtype=x.dtype)
    axes, bshape = _bn_shapes(x, op)
    mean = np.asarray(saved_mean, np.float64).reshape(bshape)
    invstd = np.asarray(saved_invstd, np.float64).reshape(bshape)
    w = np.ones(x.shape[1]) if weight is None else np.asarray(to_array(weight, "weight", op), np.float64)
    xhat = (x - mean) * invstd
    need_dx, need_dw, need_db = needs_input_grad
    dbias = np.sum(dy, axis=axes, dtype=np.float64) if (need_db or (need_dx and training)) else None
    dweight = np.sum(dy * xhat, axis=axes, dtype=np.float64) if (need_dw or (need_dx and training)) else None
    dx = None
    if need_dx:
        if training:
            count = x.size // x.shape[1]
            dx = (w.reshape(bshape) * invstd / count) * (
                count * dy - dbias.reshape(bshape) - xhat * dweight.reshape(bshape)
            )
        else:
            dx = dy * (w.reshape(bshape) * invstd)
        dx = _fresh(dx.astype(x.dtype))
    return (
        dx,
        dweight.astype(x.dtype) if need_dw and dweight is not None else None,
        dbias.astype(x.dtype) if need_db and dbias is not None else None,
    )
