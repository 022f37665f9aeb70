"""Activations, softmax, flatten and dropout on NumPy arrays, with their gradients.

Semantics follow ``torch.nn.functional``. Every forward takes anything
``np.asarray`` accepts (or a fastconv Tensor's data) and applies the dtype
policy of ``_args``: float32/float64 are kept, ints/bool/float16 compute in
float32, complex is a TypeError. Computing ops return fresh C-contiguous
arrays; ``flatten`` and identity dropout may return views, as in PyTorch.

Every ``*_backward`` returns fresh arrays the caller owns (the autograd layer
may accumulate into them in place). NaN and Inf propagate as in PyTorch,
including in the gradients (e.g. ``relu_backward`` passes the gradient through
at a NaN input, because PyTorch masks with ``x <= 0``).

Also home of the module-level random generator used by ``dropout``
(``manual_seed`` / ``default_generator``).
"""

from __future__ import annotations

import functools
import math
import numbers
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar

import numpy as np

from . import _core
from ._typing import Shape, TensorLike
from ._args import as_int, common_float_dtype, contiguous, float_dtype, shape_arg, shape_str, to_array

# --------------------------------------------------------------------------------------------
# shared helpers (also used by _losses and _norm)


def _float_input(x: Any, name: str, op: str) -> np.ndarray:
    """``x`` as a C-contiguous float array of the dtype the policy gives it."""
    a = to_array(x, name, op)
    return contiguous(a, float_dtype(a, name, op))


def _is_py_scalar(v: Any) -> bool:
    """A Python int/float (not a NumPy scalar): weak for the dtype, as in PyTorch and NumPy 2."""
    return isinstance(v, (int, float)) and not isinstance(v, np.generic)


def _common_dtype(op: str, named: Sequence[tuple[str, Any, np.ndarray]]) -> np.dtype:
    """Common float dtype of (name, original, array) triples; Python scalars only count when alone."""
    for name, _, a in named:
        float_dtype(a, name, op)  # TypeError for complex / non-numeric, whatever the others are
    strong = [(n, a) for n, v, a in named if a is not None and not _is_py_scalar(v)]
    use = strong if strong else [(n, a) for n, _, a in named if a is not None]
    return common_float_dtype([a for _, a in use], [n for n, _ in use], op)


def _float_inputs(op: str, **arrays: Any) -> tuple[np.dtype, list[np.ndarray]]:
    """Several arrays converted to their common float dtype: (dtype, [arrays...])."""
    named = [(n, v, to_array(v, n, op)) for n, v in arrays.items()]
    dt = _common_dtype(op, named)
    return dt, [contiguous(a, dt) for _, _, a in named]


_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet(fn: _F) -> _F:
    """Run ``fn`` with NumPy's floating-point warnings off: NaN/Inf results are intended, as in PyTorch."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _result(a: Any, dtype: Any) -> np.ndarray:
    """A C-contiguous ndarray of ``dtype`` (ufuncs on 0-d arrays give NumPy scalars)."""
    a = np.asarray(a, dtype=dtype)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, op: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{op}: {name_a} shape {shape_str(a.shape)} does not match {name_b} shape {shape_str(b.shape)}"
        )


def _norm_dim(dim: Any, ndim: int, op: str, name: str = "dim") -> int:
    """``dim`` wrapped into [0, max(ndim, 1)); a 0-d array accepts -1 and 0, as in PyTorch."""
    if dim is None:
        raise TypeError(
            f"{op}: {name} must be given as an int (PyTorch's deprecated implicit choice of dim is not supported)"
        )
    d = as_int(dim, name, op)
    n = max(ndim, 1)
    if not -n <= d < n:
        raise ValueError(f"{op}: {name}={d} is out of range for a {ndim}-D input (expected {-n} <= {name} <= {n - 1})")
    return d % n


def _as_real(v: Any, name: str, op: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(v).__name__} {v!r}")
    return float(v)


# Elementwise selection. np.where's inner loop branches per element, which a random sign pattern
# (a ReLU's) makes several times slower than a streaming op; building the result from bit masks
# is branch-free and exact, since it only moves bits. Arrays here are C-contiguous.
_UINT = {4: np.uint32, 8: np.uint64}


def _zero_where(cond: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``np.where(cond, 0, a)`` as a fresh array (0 also where ``a`` is NaN/Inf)."""
    u = _UINT[a.dtype.itemsize]
    m = np.asarray(cond).view(np.uint8).astype(u)
    m -= u(1)  # cond -> 0, else all ones
    np.bitwise_and(a.view(u), m, out=m)
    return m.view(a.dtype)


def _choose(cond: np.ndarray, a: float, b: float, dtype: np.dtype) -> np.ndarray:
    """``np.where(cond, a, b)`` for two scalars, as a fresh ``dtype`` array."""
    u = _UINT[dtype.itemsize]
    bits_a, bits_b = (np.array([v], dtype).view(u)[0] for v in (a, b))
    m = np.asarray(cond).view(np.uint8).astype(u)
    m *= u(bits_a ^ bits_b)  # cond -> bits_a ^ bits_b, else 0
    m ^= bits_b
    return m.view(dtype)


# --------------------------------------------------------------------------------------------
# relu / leaky_relu


def relu(input: TensorLike) -> np.ndarray:
    """``max(x, 0)`` elementwise; NaN stays NaN. Any shape -> same shape."""
    y = _core.relu_fast(input)  # exact contiguous float arrays: the C++ kernel
    if y is not None:
        return y
    return _relu(input)


@_quiet
def _relu(input: TensorLike) -> np.ndarray:
    x = _float_input(input, "input", "relu")
    y = _core.relu_fast(x) if x.ndim else None
    if y is not None:
        return y
    return _result(np.where(x < 0, x.dtype.type(0), x), x.dtype)  # as PyTorch: NaN and -0.0 are kept


@_quiet
def relu_backward(grad_output: TensorLike, input_or_output: TensorLike) -> np.ndarray:
    """Gradient of ``relu``: ``grad_output`` where ``not (x <= 0)``, else 0.

    ``input_or_output`` may be relu's input or its output (the mask is the same);
    both arrays have the same shape, which is the result's shape.

    >>> F.relu_backward(np.array([5.0, 5.0]), np.array([-1.0, 2.0])).tolist()
    [0.0, 5.0]
    """
    op = "relu_backward"
    dt, (dy, x) = _float_inputs(op, grad_output=grad_output, input=input_or_output)
    _same_shape(dy, x, "grad_output", "input", op)
    return _result(_zero_where(x <= 0, dy), dt)


@_quiet
def leaky_relu(input: TensorLike, negative_slope: float = 0.01) -> np.ndarray:
    """``x if x > 0 else negative_slope * x`` elementwise. Any shape -> same shape."""
    op = "leaky_relu"
    slope = _as_real(negative_slope, "negative_slope", op)
    x = _float_input(input, "input", op)
    if 0.0 < slope <= 1.0:
        # then max(x, slope*x) picks x exactly when x > 0 (NaN propagates; +inf*slope stays inf)
        y = np.multiply(x, x.dtype.type(slope), out=np.empty(x.shape, x.dtype))
        return _result(np.maximum(x, y, out=y), x.dtype)
    f = _choose(x > 0, 1.0, slope, x.dtype)  # x * (1 or slope): exactly PyTorch's products
    return _result(np.multiply(x, f, out=f), x.dtype)


@_quiet
def leaky_relu_backward(grad_output: TensorLike, input: TensorLike, negative_slope: float = 0.01) -> np.ndarray:
    """Gradient of ``leaky_relu``: ``grad_output`` where ``input > 0``, else ``negative_slope * grad_output``.

    Needs leaky_relu's *input* (its output has the wrong sign for a negative slope).

    >>> F.leaky_relu_backward(np.array([1.0, 1.0]), np.array([-1.0, 2.0]), 0.5).tolist()
    [0.5, 1.0]
    """
    op = "leaky_relu_backward"
    slope = _as_real(negative_slope, "negative_slope", op)
    dt, (dy, x) = _float_inputs(op, grad_output=grad_output, input=input)
    _same_shape(dy, x, "grad_output", "input", op)
    f = _choose(x > 0, 1.0, slope, dt)
    return _result(np.multiply(dy, f, out=f), dt)


# --------------------------------------------------------------------------------------------
# sigmoid / tanh


@_quiet
def sigmoid(input: TensorLike) -> np.ndarray:
    """``1 / (1 + exp(-x))`` elementwise. Any shape -> same shape.

    For very negative x, exp(-x) overflows to inf and the result is 0 (the true
    value is below the smallest normal number anyway), as in PyTorch.
    """
    x = _float_input(input, "input", "sigmoid")
    y = np.negative(x, out=np.empty(x.shape, x.dtype))
    np.exp(y, out=y)
    y += 1
    return _result(np.reciprocal(y, out=y), x.dtype)


@_quiet
def sigmoid_backward(grad_output: TensorLike, output: TensorLike) -> np.ndarray:
    """Gradient of ``sigmoid`` from its output ``y``: ``grad_output * y * (1 - y)``. Same shapes.

    >>> F.sigmoid_backward(np.array([1.0]), np.array([0.5])).tolist()
    [0.25]
    """
    op = "sigmoid_backward"
    dt, (dy, y) = _float_inputs(op, grad_output=grad_output, output=output)
    _same_shape(dy, y, "grad_output", "output", op)
    return _result(dy * (y * (1 - y)), dt)


@_quiet
def tanh(input: TensorLike) -> np.ndarray:
    """Elementwise hyperbolic tangent. Any shape -> same shape."""
    x = _float_input(input, "input", "tanh")
    return _result(np.tanh(x), x.dtype)


@_quiet
def tanh_backward(grad_output: TensorLike, output: TensorLike) -> np.ndarray:
    """Gradient of ``tanh`` from its output ``y``: ``grad_output * (1 - y**2)``. Same shapes.

    >>> F.tanh_backward(np.array([1.0]), np.array([0.5])).tolist()
    [0.75]
    """
    op = "tanh_backward"
    dt, (dy, y) = _float_inputs(op, grad_output=grad_output, output=output)
    _same_shape(dy, y, "grad_output", "output", op)
    return _result(dy * (1 - y * y), dt)


# --------------------------------------------------------------------------------------------
# softmax / log_softmax
#
# Both subtract the maximum along ``dim`` first, so exp never overflows. A row
# holding +inf, or only -inf, becomes NaN (inf - inf), as in PyTorch; NaN
# anywhere in a row makes the whole row NaN.


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """``x - max(x, axis)`` (fresh array)."""
    return np.subtract(x, np.max(x, axis=axis, keepdims=True))  # inf - inf -> nan, as PyTorch


def _log_softmax_nd(x: np.ndarray, axis: int) -> np.ndarray:
    """log_softmax of a non-empty array with ndim >= 1 (fresh, C-contiguous, x.dtype)."""
    z = _shifted(x, axis)
    s = np.sum(np.exp(z), axis=axis, keepdims=True, dtype=np.float64)
    z -= np.log(s).astype(x.dtype)
    return z


def _softmax_nd(x: np.ndarray, axis: int) -> np.ndarray:
    z = _shifted(x, axis)
    np.exp(z, out=z)
    s = np.sum(z, axis=axis, keepdims=True, dtype=np.float64)
    z /= s.astype(x.dtype)
    return z


def _along_dim(fn: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray, dim: Any, op: str) -> np.ndarray:
    axis = _norm_dim(dim, x.ndim, op)
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    if x.ndim == 0:
        return fn(x.reshape(1), 0).reshape(())
    return fn(x, axis)


@_quiet
def softmax(input: TensorLike, dim: int) -> np.ndarray:
    """``exp(x) / sum(exp(x), dim)``, numerically stable. Any shape -> same shape.

    ``dim`` is required (an int, negative counts from the end); ``None`` is a TypeError.
    """
    x = _float_input(input, "input", "softmax")
    return _along_dim(_softmax_nd, x, dim, "softmax")


@_quiet
def log_softmax(input: TensorLike, dim: int) -> np.ndarray:
    """``x - logsumexp(x, dim)``, numerically stable. Any shape -> same shape."""
    x = _float_input(input, "input", "log_softmax")
    return _along_dim(_log_softmax_nd, x, dim, "log_softmax")


@_quiet
def softmax_backward(grad_output: TensorLike, output: TensorLike, dim: int) -> np.ndarray:
    """Gradient of ``softmax`` from its output ``y``: ``y * (g - sum(g * y, dim))``. Same shapes.

    >>> F.softmax_backward(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]), dim=1).tolist()
    [[0.25, -0.25]]
    """
    op = "softmax_backward"
    dt, (dy, y) = _float_inputs(op, grad_output=grad_output, output=output)
    _same_shape(dy, y, "grad_output", "output", op)
    axis = _norm_dim(dim, y.ndim, op)
    if y.ndim == 0:
        return _result(dy * (1 - y), dt)  # single element: y*(g - g*y)
    s = np.sum(dy * y, axis=axis, keepdims=True, dtype=np.float64).astype(dt)
    return _result((dy - s) * y, dt)


@_quiet
def log_softmax_backward(grad_output: TensorLike, output: TensorLike, dim: int) -> np.ndarray:
    """Gradient of ``log_softmax`` from its output ``y``: ``g - exp(y) * sum(g, dim)``. Same shapes.

    >>> F.log_softmax_backward(np.array([[1.0, 0.0]]), np.log([[0.5, 0.5]]), dim=1).tolist()
    [[0.5, -0.5]]
    """
    op = "log_softmax_backward"
    dt, (dy, y) = _float_inputs(op, grad_output=grad_output, output=output)
    _same_shape(dy, y, "grad_output", "output", op)
    axis = _norm_dim(dim, y.ndim, op)
    if y.ndim == 0:
        return _result(dy - np.exp(y) * dy, dt)
    s = np.sum(dy, axis=axis, keepdims=True, dtype=np.float64).astype(dt)
    return _result(dy - np.exp(y) * s, dt)


# --------------------------------------------------------------------------------------------
# flatten


def _flatten_dims(ndim: int, start_dim: Any, end_dim: Any, op: str) -> tuple[int, int]:
    s = _norm_dim(start_dim, ndim, op, "start_dim")
    e = _norm_dim(end_dim, ndim, op, "end_dim")
    if s > e:
        raise ValueError(f"{op}: start_dim={start_dim} comes after end_dim={end_dim} for a {ndim}-D input")
    return s, e


def flatten(input: TensorLike, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge dims ``start_dim..end_dim`` into one, as ``torch.flatten`` (default start_dim=1, like nn.Flatten).

    (N, C, H, W) -> (N, C*H*W) by default. A 0-d input gives shape (1,). Returns
    a view when the memory layout allows it (like PyTorch), else a copy. Integer
    and bool inputs become float32 per the dtype policy; float inputs keep their dtype.
    """
    op = "flatten"
    a = to_array(input, "input", op)
    dt = float_dtype(a, "input", op)
    if a.dtype != dt:
        a = a.astype(dt)
    s, e = _flatten_dims(a.ndim, start_dim, end_dim, op)
    if a.ndim == 0:
        return a.reshape(1)
    shape = a.shape[:s] + (math.prod(a.shape[s : e + 1]),) + a.shape[e + 1 :]
    return a.reshape(shape)


def flatten_backward(grad_output: TensorLike, input_shape: Shape) -> np.ndarray:
    """Gradient of ``flatten``: ``grad_output`` reshaped to ``input_shape`` (a fresh C-contiguous copy).

    >>> F.flatten_backward(np.zeros((2, 48)), (2, 3, 4, 4)).shape
    (2, 3, 4, 4)
    """
    op = "flatten_backward"
    dy = _float_input(grad_output, "grad_output", op)
    shape = shape_arg(input_shape, "input_shape", op)
    if math.prod(shape) != dy.size:
        raise ValueError(
            f"{op}: grad_output shape {shape_str(dy.shape)} has {dy.size} elements, "
            f"input_shape {shape_str(shape)} has {math.prod(shape)}"
        )
    return np.array(dy.reshape(shape), order="C", copy=True)


# --------------------------------------------------------------------------------------------
# random generator and dropout

_rng_lock = threading.Lock()
_default_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed fastconv's default random generator (used by ``dropout``); returns it.

    Like ``torch.manual_seed``: any int is accepted (negative seeds are taken
    modulo 2**64). Layers draw their initial weights from it too.

    >>> _ = fastconv.manual_seed(0)
    >>> a = nn.Linear(2, 2).weight.data.copy()
    >>> _ = fastconv.manual_seed(0)
    >>> bool((nn.Linear(2, 2).weight.data == a).all())
    True
    """
    global _default_rng
    s = as_int(seed, "seed", "manual_seed") % (1 << 64)
    with _rng_lock:
        _default_rng = np.random.default_rng(s)
        return _default_rng


def default_generator() -> np.random.Generator:
    """The generator ``dropout`` draws from when none is passed (replaced by ``manual_seed``)."""
    return _default_rng


def _pick_generator(generator: Any, rng: Any, op: str) -> np.random.Generator:
    if generator is not None and rng is not None:
        raise TypeError(f"{op}: pass either generator= or rng=, not both")
    g = generator if generator is not None else rng
    if g is None:
        return _default_rng
    if not isinstance(g, np.random.Generator):
        raise TypeError(f"{op}: generator must be a numpy.random.Generator, got {type(g).__name__}")
    return g


def _dropout_p(p: Any, op: str) -> float:
    p = _as_real(p, "p", op)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1, got {p}")
    return p


def _dropout_scale(p: float) -> float:
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


@_quiet
def _dropout_with_mask(
    input: TensorLike,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: Optional[np.random.Generator] = None,
    rng: Optional[np.random.Generator] = None,
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``dropout`` that also returns what its backward needs: ``(y, mask)``.

    ``mask`` is a bool array of the input's shape (True = kept), or ``None`` when
    dropout is the identity (``training=False`` or ``p == 0``); in that case ``y``
    may be the input itself (``training=False``) or a fresh copy (``p == 0``).
    """
    op = "dropout"
    p = _dropout_p(p, op)
    g = _pick_generator(generator, rng, op)
    a = to_array(input, "input", op)
    dt = float_dtype(a, "input", op)
    if not training:
        return (a if a.dtype == dt else a.astype(dt)), None
    x = contiguous(a, dt)
    if p == 0.0:
        return np.array(x, order="C", copy=True), None
    mask = np.asarray(g.random(x.shape) >= p)  # kept with probability 1 - p
    # x * (mask * scale), as PyTorch: a dropped NaN/Inf still gives NaN, p=1 gives x * 0.
    noise = mask.astype(dt)
    noise *= dt.type(_dropout_scale(p))
    np.multiply(x, noise, out=noise)
    return noise, mask


def dropout(
    input: TensorLike,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: Optional[np.random.Generator] = None,
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """Inverted dropout, as ``torch.nn.functional.dropout``.

    In training each element is zeroed with probability ``p`` and the kept ones
    are scaled by ``1/(1-p)``; ``p=1`` gives zeros (times the input, so NaN stays
    NaN). ``training=False`` returns the input unchanged (the same array if it
    already has a float dtype). ``generator`` (alias ``rng``) is a
    ``numpy.random.Generator``; by default the module generator, seeded by
    ``manual_seed``. Any shape -> same shape.
    """
    return _dropout_with_mask(input, p, training, generator=generator, rng=rng)[0]


@_quiet
def dropout_backward(grad_output: TensorLike, mask: Optional[np.ndarray], p: float) -> np.ndarray:
    """Gradient of ``dropout`` given the forward's ``mask`` (from ``_dropout_with_mask``) and ``p``.

    ``grad_output * mask / (1 - p)`` (0 for ``p == 1``); ``mask=None`` (identity
    dropout) returns a copy of ``grad_output``. Same shapes.

    >>> F.dropout_backward(np.ones(3), np.array([True, False, True]), 0.5).tolist()
    [2.0, 0.0, 2.0]
    """
    op = "dropout_backward"
    p = _dropout_p(p, op)
    dy = _float_input(grad_output, "grad_output", op)
    if mask is None:
        return np.array(dy, order="C", copy=True)
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be a bool array, got dtype {m.dtype}")
    _same_shape(dy, m, "grad_output", "mask", op)
    noise = m.astype(dy.dtype)
    noise *= dy.dtype.type(_dropout_scale(p))
    np.multiply(dy, noise, out=noise)
    return noise
