"""Independent float64 references for the non-conv functional ops.

Written plainly (Python loops over elements / rows / channels and the math
module) so they share no code or trick with fastconv's vectorised versions.
Only for small arrays.
"""

from __future__ import annotations

import math

import numpy as np


def _map(fn, x):
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        out[i] = fn(float(x[i]))
    return out


def _relu1(v):
    if math.isnan(v):
        return v
    return v if v > 0 else 0.0


def relu(x):
    return _map(_relu1, x)


def leaky_relu(x, slope=0.01):
    return _map(lambda v: v if v > 0 else v * slope, x)


def _sigmoid1(v):
    if math.isnan(v):
        return v
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid(x):
    return _map(_sigmoid1, x)


def tanh(x):
    return _map(math.tanh, x)


def _rows(x, dim):
    """Yield (index tuple of the row, row values) for every 1-D row along ``dim``."""
    x = np.asarray(x, dtype=np.float64)
    moved = np.moveaxis(x, dim, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        yield idx, [float(v) for v in moved[idx]]


def _row_apply(fn, x, dim):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        return np.asarray(fn([float(x)])[0])
    out = np.empty(np.moveaxis(x, dim, -1).shape)
    for idx, row in _rows(x, dim):
        out[idx] = fn(row)
    return np.moveaxis(out, -1, dim)


def _softmax_row(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _log_softmax_row(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def softmax(x, dim):
    return _row_apply(_softmax_row, x, dim)


def log_softmax(x, dim):
    return _row_apply(_log_softmax_row, x, dim)


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Class-index or probability targets; logits (C,), (N, C) or (N, C, d...)."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target)
    probs = t.dtype.kind == "f"
    if z.ndim == 1:
        z = z[None]
        t = t[None] if probs else t.reshape(1)
        unbatched = True
    else:
        unbatched = False
    C = z.shape[1]
    zl = np.moveaxis(z, 1, -1)  # (N, d..., C)
    tl = np.moveaxis(t, 1, -1) if probs else t
    eps = label_smoothing
    losses = np.zeros(zl.shape[:-1])
    count = 0
    for idx in np.ndindex(zl.shape[:-1]):
        lp = _log_softmax_row([float(v) for v in zl[idx]])
        if probs:
            q = [float(v) * (1 - eps) + eps / C for v in tl[idx]]
            losses[idx] = -sum(qc * lc for qc, lc in zip(q, lp))
            count += 1
            continue
        k = int(tl[idx])
        if k == ignore_index:
            losses[idx] = 0.0
            continue
        count += 1
        nll = -lp[k]
        smooth = -sum(lp)
        losses[idx] = (1 - eps) * nll + eps / C * smooth
    if reduction == "none":
        return losses[0] if unbatched else losses
    total = float(sum(losses.ravel().tolist()))
    if reduction == "sum":
        return np.asarray(total)
    return np.asarray(total / count if count else math.nan)


def mse_loss(a, b, reduction="mean"):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.empty(a.shape)
    for i in np.ndindex(a.shape):
        d = float(a[i]) - float(b[i])
        out[i] = d * d
    if reduction == "none":
        return out
    total = sum(out.ravel().tolist())
    if reduction == "sum":
        return np.asarray(total)
    return np.asarray(total / out.size if out.size else math.nan)


def flatten(x, start_dim=1, end_dim=-1):
    x = np.asarray(x)
    nd = max(x.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    shape = list(x.shape) or [1]
    merged = 1
    for k in range(s, e + 1):
        merged *= shape[k]
    new = shape[:s] + [merged] + shape[e + 1 :]
    return np.array(x.ravel().tolist(), dtype=x.dtype).reshape(new)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Returns (y, new_running_mean, new_running_var); does not modify its arguments."""
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[1]
    rm = None if running_mean is None else np.asarray(running_mean, dtype=np.float64).copy()
    rv = None if running_var is None else np.asarray(running_var, dtype=np.float64).copy()
    y = np.empty(x.shape)
    for c in range(C):
        vals = [float(v) for v in x[:, c].ravel()]
        n = len(vals)
        if training:
            mean = sum(vals) / n
            var = sum((v - mean) ** 2 for v in vals) / n
            if rm is not None:
                rm[c] = (1 - momentum) * rm[c] + momentum * mean
                rv[c] = (1 - momentum) * rv[c] + momentum * var * n / (n - 1)
        else:
            mean, var = float(rm[c]), float(rv[c])
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        sd = math.sqrt(var + eps)
        sub = x[:, c]
        ys = np.empty(sub.shape)
        for i in np.ndindex(sub.shape):
            ys[i] = (float(sub[i]) - mean) / sd * w + b
        y[:, c] = ys
    return y, rm, rv


def numeric_grad(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        fp = float(f(x))
        x[i] = orig - eps
        fm = float(f(x))
        x[i] = orig
        g[i] = (fp - fm) / (2 * eps)
    return g
