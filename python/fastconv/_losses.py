"""cross_entropy and mse_loss on NumPy arrays, with their gradients.

cross_entropy, for logits z (N, C, d1, ...) and class targets t (N, d1, ...)
(index i runs over the N*d1*... samples, c over classes):

    lp[i, c]  = z[i, c] - logsumexp_c z[i, :]
    nll[i]    = -lp[i, t[i]]                          (0 where t[i] == ignore_index)
    smooth[i] = -sum_c lp[i, c]                       (0 where t[i] == ignore_index)
    loss[i]   = (1 - ls) * nll[i] + ls / C * smooth[i]
    'mean'    = sum_i loss[i] / #{i : t[i] != ignore_index}   (NaN when that count is 0)

which is PyTorch's formula for label smoothing ``ls`` (it equals the cross
entropy against q = (1 - ls) * onehot(t) + ls / C). With probability targets
(float, same shape as z), loss[i] = -sum_c q[i, c] lp[i, c] with
q = (1 - ls) * target + ls / C, and 'mean' divides by the number of samples.

The gradient w.r.t. z of a sample's loss is ``softmax(z)[i] * sum_c q[i, c] - q[i]``
times that sample's weight (the upstream gradient, divided by the count for
'mean', 0 for an ignored target).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from ._args import as_int, contiguous, float_dtype, shape_str, to_array, grad_flags
from ._elementwise import _as_real, _common_dtype, _float_inputs, _log_softmax_nd, _quiet, _result, _softmax_nd
from ._typing import GradFlags, TensorLike

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction: Any, op: str) -> str:
    if not isinstance(reduction, str):
        raise TypeError(f"{op}: reduction must be a str ('none', 'mean' or 'sum'), got {type(reduction).__name__}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction={reduction!r} is not valid; expected 'none', 'mean' or 'sum'")
    return reduction


class _CEArgs:
    """Validated cross_entropy arguments, batched: x (N, C, *d) float; target (N, *d) int64 or probs like x."""

    __slots__ = ("x", "target", "valid", "probs", "unbatched", "C", "ls", "dtype")

    x: np.ndarray
    target: np.ndarray
    valid: Any  # bool (samples,): target != ignore_index; None for probability targets
    probs: bool
    unbatched: bool
    C: int
    ls: float
    dtype: np.dtype


def _ce_args(
    op: str,
    input: Any,
    target: Any,
    ignore_index: Any,
    label_smoothing: Any,
    extra: Sequence[tuple[str, Any, np.ndarray]] = (),
) -> _CEArgs:
    """Check and normalise cross_entropy's arguments; ``extra`` (name, original, array) triples join the dtype."""
    r = _CEArgs()
    x = to_array(input, "input", op)
    t = to_array(target, "target", op)
    ignore_index = as_int(ignore_index, "ignore_index", op)
    ls = _as_real(label_smoothing, "label_smoothing", op)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {ls}")
    float_dtype(x, "input", op)  # TypeError for complex / non-numeric input first
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have shape (C,), (N, C) or (N, C, d1, ...), got a 0-d array")
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    if C == 0:
        raise ValueError(f"{op}: input has no classes (C = 0), shape {shape_str(x.shape)}")
    kind = t.dtype.kind
    if kind == "c":
        raise TypeError(f"{op}: target is complex ({t.dtype}); expected integer class indices or float probabilities")
    r.probs = kind == "f"
    if r.probs:
        if t.shape != x.shape:
            raise TypeError(
                f"{op}: target has float dtype {t.dtype} and shape {shape_str(t.shape)}: class-index targets "
                f"must be integer arrays; probability targets must have the input's shape {shape_str(x.shape)}"
            )
        if ignore_index != -100:
            raise ValueError(f"{op}: ignore_index={ignore_index} is not supported with probability (float) targets")
        r.dtype = _common_dtype(op, [("input", input, x), ("target", target, t)] + list(extra))
        r.target = contiguous(t, r.dtype)
        r.valid = None
    else:
        if kind not in "iu":
            raise TypeError(
                f"{op}: target must be an integer array of class indices (or float probabilities with the "
                f"input's shape), got dtype {t.dtype}"
            )
        if x.ndim == 1:
            if t.shape not in ((), (1,)):
                raise ValueError(
                    f"{op}: for an unbatched input of shape {shape_str(x.shape)}, target must be a single class "
                    f"index, got shape {shape_str(t.shape)}"
                )
            expected = t.shape
        else:
            expected = (x.shape[0],) + x.shape[2:]
        if t.shape != expected:
            raise ValueError(
                f"{op}: target shape {shape_str(t.shape)} does not match input shape {shape_str(x.shape)}; "
                f"expected target shape {shape_str(expected)}"
            )
        if t.dtype == np.uint64 and t.size and int(t.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"{op}: target value {int(t.max())} is out of range for {C} classes "
                f"(expected 0 <= target < {C}, or ignore_index={ignore_index})"
            )
        t = t.astype(np.int64)
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= C))
        if bad.any():
            v = int(t[bad].flat[0])
            raise ValueError(
                f"{op}: target value {v} is out of range for {C} classes "
                f"(expected 0 <= target < {C}, or ignore_index={ignore_index})"
            )
        r.dtype = _common_dtype(op, [("input", input, x)] + list(extra))
        r.target = t.reshape(-1) if x.ndim == 1 else t
        r.valid = valid.reshape(-1) if x.ndim == 1 else valid
    r.unbatched = x.ndim == 1
    x = contiguous(x, r.dtype)
    if r.unbatched:
        x = x[None]
        if r.probs:
            r.target = r.target[None]
    r.x = x
    r.C = C
    r.ls = ls
    return r


def _smoothed_probs(a: _CEArgs) -> np.ndarray:
    """q = (1 - ls) * target + ls / C for probability targets."""
    if a.ls == 0.0:
        return a.target
    return a.target * a.dtype.type(1.0 - a.ls) + a.dtype.type(a.ls / a.C)


@_quiet
def cross_entropy(
    input: TensorLike,
    target: TensorLike,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> np.ndarray:
    """Cross entropy between ``softmax(input, 1)`` and ``target``, as ``torch.nn.functional.cross_entropy``.

    input: logits (N, C), (N, C, d1, ...) or unbatched (C,).
    target: integer class indices (N,), (N, d1, ...) or a scalar for unbatched input
    (any integer dtype; values in [0, C) or ``ignore_index``, else ValueError), or float
    class probabilities of the input's shape (then ``ignore_index`` must stay -100).
    reduction: 'none' -> per-sample losses (the class-index target's shape), 'mean'
    (over non-ignored targets; NaN if there are none) or 'sum' -> a 0-d array.
    label_smoothing in [0, 1]: PyTorch's formula (see the module docstring).
    """
    op = "cross_entropy"
    reduction = _reduction(reduction, op)
    a = _ce_args(op, input, target, ignore_index, label_smoothing)
    dt, x, C, ls = a.dtype, a.x, a.C, a.ls
    lp = _log_softmax_nd(x, 1)
    if a.probs:
        q = _smoothed_probs(a)
        loss = -np.sum(q * lp, axis=1, dtype=np.float64)
        count = loss.size
    else:
        idx = np.where(a.valid, a.target, 0)[:, None]
        nll = np.where(a.valid, -np.take_along_axis(lp, idx, axis=1)[:, 0], dt.type(0))
        if ls > 0.0:
            smooth = np.where(a.valid, -np.sum(lp, axis=1, dtype=np.float64), 0.0)
            loss = (1.0 - ls) * nll.astype(np.float64) + (ls / C) * smooth
        else:
            loss = nll
        count = int(np.count_nonzero(a.valid))
    if reduction == "none":
        return _result(loss[0] if a.unbatched else loss, dt)
    total = float(np.sum(loss, dtype=np.float64))
    if reduction == "sum":
        return _result(total, dt)
    return _result(total / count if count else math.nan, dt)


@_quiet
def cross_entropy_backward(
    grad_output: TensorLike,
    input: TensorLike,
    target: TensorLike,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> np.ndarray:
    """Gradient of ``cross_entropy`` w.r.t. ``input`` (the logits); same shape as ``input``.

    ``grad_output`` is a scalar for 'mean'/'sum' and has the per-sample loss shape
    for 'none'. Ignored targets get a zero gradient (also when every target is
    ignored, as in PyTorch).

    >>> F.cross_entropy_backward(np.array(1.0), np.zeros((1, 2)), np.array([0])).tolist()  # softmax - onehot
    [[-0.5, 0.5]]
    """
    op = "cross_entropy_backward"
    reduction = _reduction(reduction, op)
    g_raw = to_array(grad_output, "grad_output", op)
    a = _ce_args(op, input, target, ignore_index, label_smoothing, extra=(("grad_output", grad_output, g_raw),))
    dt, x, C, ls = a.dtype, a.x, a.C, a.ls
    loss_shape = x.shape[:1] + x.shape[2:]
    g = contiguous(g_raw, dt)
    if reduction == "none":
        want = () if a.unbatched else loss_shape
        if g.shape != want:
            raise ValueError(
                f"{op}: grad_output shape {shape_str(g.shape)} does not match the loss shape {shape_str(want)} "
                f"(reduction='none')"
            )
        w = g.reshape(loss_shape)
    else:
        if g.size != 1:
            raise ValueError(
                f"{op}: grad_output must be a scalar for reduction={reduction!r}, got shape {shape_str(g.shape)}"
            )
        w = np.full(loss_shape, g.reshape(()), dtype=dt)
    grad = _softmax_nd(x, 1)
    if a.probs:
        q = _smoothed_probs(a)
        if reduction == "mean" and w.size:
            w = w / dt.type(w.size)
        grad *= np.sum(q, axis=1, keepdims=True, dtype=np.float64).astype(dt)
        grad -= q
    else:
        count = int(np.count_nonzero(a.valid))
        if reduction == "mean" and count:
            w = w / dt.type(count)
        w = np.where(a.valid, w, dt.type(0))
        idx = np.where(a.valid, a.target, 0)[:, None]
        if ls > 0.0:
            grad -= dt.type(ls / C)
        picked = np.take_along_axis(grad, idx, axis=1)
        np.put_along_axis(grad, idx, picked - dt.type(1.0 - ls), axis=1)
    grad *= w[:, None]
    return _result(grad[0] if a.unbatched else grad, dt)


# --------------------------------------------------------------------------------------------
# mse_loss


def _broadcast_shape(a: np.ndarray, b: np.ndarray, op: str) -> tuple:
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: input shape {shape_str(a.shape)} and target shape {shape_str(b.shape)} do not broadcast"
        ) from None


def _sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back down to ``shape`` (fresh, C-contiguous)."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    if axes:
        g = np.asarray(np.sum(g, axis=axes, dtype=np.float64), dtype=g.dtype).reshape(shape)
    return g


@_quiet
def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> np.ndarray:
    """Mean squared error ``(input - target)**2``, as ``torch.nn.functional.mse_loss``.

    input and target broadcast against each other (PyTorch warns when the shapes
    differ; fastconv just broadcasts). reduction: 'none' -> the broadcast shape,
    'mean' (NaN for empty inputs) or 'sum' -> a 0-d array.
    """
    op = "mse_loss"
    reduction = _reduction(reduction, op)
    dt, (a, b) = _float_inputs(op, input=input, target=target)
    shape = _broadcast_shape(a, b, op)
    d = np.subtract(a, b, out=np.empty(shape, dt))
    np.multiply(d, d, out=d)
    if reduction == "none":
        return d
    total = float(np.sum(d, dtype=np.float64))
    if reduction == "sum":
        return _result(total, dt)
    return _result(total / d.size if d.size else math.nan, dt)


@_quiet
def mse_loss_backward(
    grad_output: TensorLike,
    input: TensorLike,
    target: TensorLike,
    reduction: str = "mean",
    needs_input_grad: GradFlags = (True, True),
) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients of ``mse_loss`` w.r.t. (input, target): ``±2 (input - target) * g`` (/ numel for 'mean').

    ``grad_output`` is a scalar for 'mean'/'sum', else of the broadcast shape.
    Each gradient is summed back to its argument's own shape; an entry whose
    ``needs_input_grad`` flag is false is ``None``.

    >>> da, db = F.mse_loss_backward(np.array(1.0), np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    >>> da.tolist(), db.tolist()
    ([0.0, -2.0], [-0.0, 2.0])
    """
    op = "mse_loss_backward"
    reduction = _reduction(reduction, op)
    need_a, need_b = grad_flags(needs_input_grad, 2, "mse_loss_backward")
    dt, (g, a, b) = _float_inputs(op, grad_output=grad_output, input=input, target=target)
    shape = _broadcast_shape(a, b, op)
    if reduction == "none":
        if g.shape != shape:
            raise ValueError(
                f"{op}: grad_output shape {shape_str(g.shape)} does not match the loss shape {shape_str(shape)} "
                f"(reduction='none')"
            )
        scale = g * dt.type(2)
    else:
        if g.size != 1:
            raise ValueError(
                f"{op}: grad_output must be a scalar for reduction={reduction!r}, got shape {shape_str(g.shape)}"
            )
        n = math.prod(shape)
        s = float(g.reshape(())) * 2.0
        scale = dt.type(s / n if reduction == "mean" and n else s)
    if not (need_a or need_b):
        return None, None
    d = np.subtract(a, b, out=np.empty(shape, dt))
    d *= scale
    ga = _result(_sum_to(d, a.shape), dt) if need_a else None
    gb = None
    if need_b:
        gb = _sum_to(d, b.shape)
        if gb is ga:  # both are d itself: no broadcasting happened
            gb = _result(np.negative(gb), dt)
        else:
            np.negative(gb, out=gb)
    return ga, gb
