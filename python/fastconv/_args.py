"""Argument normalisation and the dtype policy shared by every functional op.

Dtype policy (API.md): float32 and float64 are kept; integer, bool and
float16 inputs become float32; complex is a TypeError. When the inputs of
one op mix float32 and float64, the op runs in float64.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any, Iterable, Optional

import numpy as np

from ._typing import Shape

_INT_LIMIT = 2**62  # anything larger cannot be a real size or option


_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def to_array(x: Any, name: str, op: str) -> np.ndarray:
    """``x`` as an ndarray (Tensors give their data), dtype not yet settled."""
    if type(x) is np.ndarray:
        return x
    data = getattr(x, "_fastconv_data", None)
    if data is not None:
        x = data()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{op}: {name} could not be converted to an array: {exc}") from None


def float_dtype(a: np.ndarray, name: str, op: str) -> np.dtype:
    """The float dtype ``a`` computes in, per the policy above."""
    dt = a.dtype
    if dt is _F32 or dt is _F64:
        return dt
    kind = dt.kind
    if kind == "f":
        if a.dtype.itemsize == 8:
            return np.dtype(np.float64)
        if a.dtype.itemsize > 8:  # long double: nearest supported precision
            return np.dtype(np.float64)
        return np.dtype(np.float32)
    if kind in "iub":
        return np.dtype(np.float32)
    if kind == "c":
        raise TypeError(f"{op}: {name} is complex ({a.dtype}); fastconv supports real float32/float64 data")
    raise TypeError(f"{op}: {name} has unsupported dtype {a.dtype}; expected a real numeric array")


def common_float_dtype(arrays: Iterable[Optional[np.ndarray]], names: Iterable[str], op: str) -> np.dtype:
    """float64 if any of ``arrays`` (None entries skipped) computes in float64, else float32."""
    dt: np.dtype = _F32
    for a, n in zip(arrays, names):
        if a is not None and float_dtype(a, n, op) is _F64:
            dt = _F64
    return dt


def contiguous(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C-contiguous, aligned, native-endian ``dtype`` (a copy only if needed)."""
    flags = a.flags
    if a.dtype == dtype and flags.c_contiguous and flags.aligned:
        return a
    return np.array(a, dtype=dtype, order="C", copy=True)


def as_int(v: Any, name: str, op: str) -> int:
    """``v`` as a Python int (anything with ``__index__``; bool is a TypeError)."""
    if type(v) is int and -_INT_LIMIT <= v <= _INT_LIMIT:
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got bool {v!r}")
    if isinstance(v, numbers.Integral) or hasattr(v, "__index__"):
        try:
            i = operator.index(v)
        except TypeError:
            pass
        else:
            if abs(i) > _INT_LIMIT:
                raise ValueError(f"{op}: {name}={i} is out of range")
            return i
    raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__} {v!r}")


def as_pair(v: Any, name: str, op: str) -> tuple[int, int]:
    """int -> (v, v); a sequence of two ints -> tuple."""
    if type(v) is int and -_INT_LIMIT <= v <= _INT_LIMIT:
        return v, v
    if isinstance(v, (tuple, list, np.ndarray)):
        seq = list(np.asarray(v).ravel()) if isinstance(v, np.ndarray) else list(v)
        if len(seq) == 1:
            seq = seq * 2
        if len(seq) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return as_int(seq[0], name, op), as_int(seq[1], name, op)
    i = as_int(v, name, op)
    return i, i


def positive_pair(v: Any, name: str, op: str) -> tuple[int, int]:
    p = as_pair(v, name, op)
    if p[0] < 1 or p[1] < 1:
        raise ValueError(f"{op}: {name} must be positive, got {v!r}")
    return p


def nonneg_pair(v: Any, name: str, op: str) -> tuple[int, int]:
    p = as_pair(v, name, op)
    if p[0] < 0 or p[1] < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {v!r}")
    return p


def shape_str(shape: Iterable[Any]) -> str:
    """``(2, 3)``-style text of a shape (NumPy ints printed as plain ints)."""
    return str(tuple(int(s) for s in shape))


def check_out(out: Any, inputs: Iterable[Optional[np.ndarray]], op: str) -> Optional[np.ndarray]:
    """``out=`` must be an ndarray that does not overlap any input."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy.ndarray, got {type(out).__name__}")
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"{op}: out must not overlap an input")
    return out


def grad_flags(needs_input_grad: Any, n: int, op: str) -> tuple[bool, ...]:
    """``needs_input_grad`` as ``n`` bools, with errors naming the argument."""
    try:
        flags = tuple(bool(v) for v in needs_input_grad)
    except TypeError:
        raise TypeError(
            f"{op}: needs_input_grad must be a sequence of {n} bools, got {type(needs_input_grad).__name__}"
        ) from None
    if len(flags) != n:
        raise ValueError(f"{op}: needs_input_grad must have {n} entries, got {len(flags)}")
    return flags


def shape_arg(shape: Any, name: str, op: str) -> tuple[int, ...]:
    """A shape argument (sequence of non-negative ints), with errors naming it."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {type(shape).__name__} {shape!r}")
    out = tuple(as_int(s, name, op) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"{op}: {name} must not have negative entries, got {out}")
    return out


def check_result(shape: Shape, dtype: Any, op: str, what: str = "output") -> None:
    """MemoryError now if a result of ``shape`` and ``dtype`` cannot exist (64-bit
    overflow, or more bytes than this machine has): called before inputs are copied."""
    from . import _core

    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        return  # not a size problem: the op's own validation names the bad dimension
    _core.check_result(dims, np.dtype(dtype).itemsize, f"{op} {what}")
