"""``fastconv.Tensor``: a NumPy array that records the operations on it.

Enough of PyTorch's tensor API for building and training small CNNs:
arithmetic with broadcasting (a Tensor on either side), ``@``, reductions,
reshapes, transposes, basic indexing, ``cat``; every functional op in
:mod:`fastconv.functional` accepts Tensors and records its backward.

>>> x = fastconv.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad.tolist()
[[2.0, 4.0], [6.0, 8.0]]
"""

from __future__ import annotations

import builtins
import copy as _copy
import numbers
from typing import Any, Optional, Sequence, Union, overload

import numpy as np

from ._typing import DTypeLike, TensorLike
from .autograd import Context, Function, Node, backward as _run_backward, is_grad_enabled, RuntimeError_

__all__ = ["Tensor", "tensor", "cat", "stack"]


def _as_data(x: Any, dtype: Optional[DTypeLike] = None) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.data
    return np.asarray(x, dtype=dtype)


class Tensor:
    """A NumPy array plus autograd bookkeeping.

    ``data`` is the ndarray, ``grad`` the accumulated gradient (an ndarray or
    ``None``), ``requires_grad`` whether gradients flow to it. ``Tensor(data)``
    wraps ``np.asarray(data)`` without copying; :func:`fastconv.tensor` copies.
    Any shape; images are NCHW as everywhere in fastconv.

    >>> t = fastconv.Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    >>> t.shape, t.dtype, t.requires_grad, t.is_leaf
    ((2, 3), dtype('float32'), True, True)
    >>> (t + 1).sum().backward()
    >>> t.grad.shape
    (2, 3)
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_out_index", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators

    data: np.ndarray
    grad: Optional[np.ndarray]
    requires_grad: bool
    _node: Optional[Node]
    _out_index: int

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: Optional[DTypeLike] = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        arr = np.asarray(data, dtype=dtype)
        if arr.dtype.kind == "c":
            raise TypeError(f"Tensor: complex data ({arr.dtype}) is not supported")
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"Tensor: unsupported dtype {arr.dtype}")
        self.data = arr
        self.grad = None
        self._node = None
        self._out_index = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: Any, node: Optional[Node], index: int) -> Tensor:
        t = cls.__new__(cls)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t._node = node
        t._out_index = index
        t.requires_grad = node is not None
        return t

    # --- array protocol ---------------------------------------------------
    def __array__(self, dtype: Optional[DTypeLike] = None, copy: Optional[bool] = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        return self.data

    def _fastconv_data(self) -> np.ndarray:
        return self.data

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, like ``torch.Tensor.numpy``)."""
        return self.data

    def item(self) -> Any:
        """The single element as a Python number.

        >>> fastconv.tensor([2.5]).item()
        2.5
        """
        return self.data.item()

    def tolist(self) -> Any:
        """The data as (nested) Python lists."""
        return self.data.tolist()

    # --- metadata ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``data``."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def dim(self) -> int:
        """The number of dimensions (``torch.Tensor.dim``)."""
        return self.data.ndim

    @overload
    def size(self, dim: None = None) -> tuple[int, ...]: ...

    @overload
    def size(self, dim: int) -> int: ...

    def size(self, dim: Optional[int] = None) -> Union[tuple[int, ...], int]:
        """The shape, or the size of dimension ``dim``.

        >>> t = fastconv.tensor(np.zeros((2, 3)))
        >>> t.size(), t.size(1)
        ((2, 3), 3)
        """
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def is_leaf(self) -> bool:
        """True unless the tensor was computed by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self) -> Optional[type[Function]]:
        """The :class:`~fastconv.autograd.Function` that computed this tensor (None for leaves)."""
        return None if self._node is None else self._node.fn

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self._node is not None:
            extra = f", grad_fn=<{self._node.fn.__name__}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self.data.dtype != np.float32:
            extra = f", dtype={self.data.dtype}" + extra
        return f"tensor({body}{extra})"

    # --- autograd ---------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (float leaf tensors only); returns self."""
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating point tensors can require gradients (this one is {self.data.dtype})"
            )
        if not requires_grad and self._node is not None:
            raise RuntimeError_("you can only change requires_grad flags of leaf tensors")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad: Optional[TensorLike] = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (the gradient of some scalar w.r.t. this tensor, of this tensor's
        shape) may be omitted for a one-element tensor. The graph is freed unless
        ``retain_graph``.

        >>> x = fastconv.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).backward(np.ones(3, np.float32))
        >>> x.grad.tolist()
        [2.0, 4.0, 6.0]
        """
        _run_backward(self, grad, retain_graph)

    def _accumulate(self, g: np.ndarray) -> None:
        if self.grad is None:
            g = np.array(g, dtype=self.data.dtype, copy=True)
            self.grad = g.reshape(self.data.shape)
        else:
            self.grad = self.grad + g

    def detach(self) -> "Tensor":
        """The same data, cut off from the graph."""
        return Tensor._from_op(self.data, None, 0)

    def zero_grad_(self) -> Tensor:
        """Drop the gradient (``grad = None``); returns self."""
        self.grad = None
        return self

    # --- pickling and copying -------------------------------------------------
    # A pickled Tensor is its data and requires_grad flag (a Parameter stays a
    # Parameter), as torch pickles tensors: the autograd graph is never pickled
    # (a non-leaf comes back as a leaf holding the same data) and neither is
    # ``.grad``, so shipping a trained model to workers sends only its weights.
    # Every pickle protocol works (0 and 1 reject __slots__ classes otherwise).
    # copy.deepcopy keeps ``.grad`` (as torch.Tensor.__deepcopy__) but also
    # drops the graph.
    def __reduce_ex__(self, protocol: Any) -> Any:
        state = getattr(self, "__dict__", None) or None  # attributes of a user subclass
        return (_rebuild_tensor, (type(self), self.data, self.requires_grad), state)

    def __deepcopy__(self, memo: dict) -> Tensor:
        new = _rebuild_tensor(type(self), _copy.deepcopy(self.data, memo), self.requires_grad)
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = _copy.deepcopy(self.grad, memo)
        extra = getattr(self, "__dict__", None)
        if extra:
            new.__dict__.update(_copy.deepcopy(extra, memo))
        return new

    # --- dtype -------------------------------------------------------------
    def float(self) -> Tensor:
        """A float32 copy (differentiable)."""
        return _Cast.apply(self, dtype=np.float32)

    def double(self) -> Tensor:
        """A float64 copy (differentiable)."""
        return _Cast.apply(self, dtype=np.float64)

    def to(self, dtype: DTypeLike) -> Tensor:
        """A copy cast to ``dtype`` (differentiable).

        >>> fastconv.tensor([1.0]).to(np.float64).dtype
        dtype('float64')
        """
        return _Cast.apply(self, dtype=np.dtype(dtype))

    # --- arithmetic --------------------------------------------------------
    def __add__(self, other: TensorLike) -> Tensor:
        return _Add.apply(self, _operand(other, self))

    def __radd__(self, other: TensorLike) -> Tensor:
        return _Add.apply(_operand(other, self), self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return _Sub.apply(self, _operand(other, self))

    def __rsub__(self, other: TensorLike) -> Tensor:
        return _Sub.apply(_operand(other, self), self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return _Mul.apply(self, _operand(other, self))

    def __rmul__(self, other: TensorLike) -> Tensor:
        return _Mul.apply(_operand(other, self), self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return _Div.apply(self, _operand(other, self))

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return _Div.apply(_operand(other, self), self)

    def __matmul__(self, other: TensorLike) -> Tensor:
        return _MatMul.apply(self, _operand(other, self))

    def __rmatmul__(self, other: TensorLike) -> Tensor:
        return _MatMul.apply(_operand(other, self), self)

    def __neg__(self) -> Tensor:
        return _Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: builtins.float) -> Tensor:
        if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
            raise TypeError(f"Tensor ** : only real scalar exponents are supported, got {type(exponent).__name__}")
        return _Pow.apply(self, exponent=float(exponent))

    # comparisons give plain boolean Tensors (no gradient)
    def _cmp(self, other: TensorLike, op: Any) -> Tensor:
        return Tensor(op(self.data, _as_data(other)))

    def __lt__(self, other: TensorLike) -> Tensor:
        return self._cmp(other, np.less)

    def __le__(self, other: TensorLike) -> Tensor:
        return self._cmp(other, np.less_equal)

    def __gt__(self, other: TensorLike) -> Tensor:
        return self._cmp(other, np.greater)

    def __ge__(self, other: TensorLike) -> Tensor:
        return self._cmp(other, np.greater_equal)

    def __eq__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return self._cmp(other, np.equal)

    def __ne__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return self._cmp(other, np.not_equal)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> builtins.float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    # --- reductions and shapes ----------------------------------------------
    def sum(
        self, dim: Union[int, Sequence[int], None] = None, keepdim: bool = False, keepdims: Optional[bool] = None
    ) -> Tensor:
        """Sum over ``dim`` (an int, several, or all when None), as ``torch.Tensor.sum``.

        >>> t = fastconv.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> t.sum().item(), t.sum(0).tolist(), t.sum(1, keepdim=True).shape
        (10.0, [4.0, 6.0], (2, 1))
        """
        if keepdims is not None:
            keepdim = keepdims
        return _Sum.apply(self, dim=_norm_dims(dim, self.ndim), keepdim=bool(keepdim))

    def mean(
        self, dim: Union[int, Sequence[int], None] = None, keepdim: bool = False, keepdims: Optional[bool] = None
    ) -> Tensor:
        """Mean over ``dim`` (an int, several, or all when None), as ``torch.Tensor.mean``."""
        if keepdims is not None:
            keepdim = keepdims
        return _Mean.apply(self, dim=_norm_dims(dim, self.ndim), keepdim=bool(keepdim))

    def reshape(self, *shape: Any) -> Tensor:
        """The same data in a new shape (ints or one sequence; -1 infers a size); ``view`` is an alias.

        >>> fastconv.tensor(np.zeros(6)).reshape(2, -1).shape
        (2, 3)
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _Reshape.apply(self, shape=tuple(int(s) for s in shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim..end_dim`` (all by default, as ``torch.flatten``).

        >>> fastconv.tensor(np.zeros((2, 3, 4, 4))).flatten(1).shape
        (2, 48)
        """
        nd = max(self.ndim, 1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
        shp = self.shape
        new = shp[:s] + (int(np.prod(shp[s : e + 1], dtype=np.int64)),) + shp[e + 1 :]
        return self.reshape(new)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two dimensions."""
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return _Permute.apply(self, dims=tuple(perm))

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the dimensions (ints or one sequence).

        >>> fastconv.tensor(np.zeros((2, 3, 4))).permute(2, 0, 1).shape
        (4, 2, 3)
        """
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dimensions")
        return _Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    @property
    def T(self) -> Tensor:
        """All dimensions reversed."""
        return _Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _GetItem.apply(self, index=index)

    # --- elementwise conveniences (differentiable) ----------------------------
    def exp(self) -> Tensor:
        """Elementwise ``e**x``."""
        return _Exp.apply(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return _Log.apply(self)

    def relu(self) -> Tensor:
        """:func:`fastconv.functional.relu`."""
        from . import functional

        return functional.relu(self)

    def sigmoid(self) -> Tensor:
        """:func:`fastconv.functional.sigmoid`."""
        from . import functional

        return functional.sigmoid(self)

    def tanh(self) -> Tensor:
        """:func:`fastconv.functional.tanh`."""
        from . import functional

        return functional.tanh(self)

    def softmax(self, dim: int) -> Tensor:
        """:func:`fastconv.functional.softmax` along ``dim``."""
        from . import functional

        return functional.softmax(self, dim)

    def log_softmax(self, dim: int) -> Tensor:
        """:func:`fastconv.functional.log_softmax` along ``dim``."""
        from . import functional

        return functional.log_softmax(self, dim)

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        """Indices of the maxima (int64, not differentiable), over all elements or along ``dim``.

        >>> fastconv.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(1).tolist()
        [1, 0]
        """
        r = np.argmax(self.data, axis=dim)
        if keepdim and dim is not None:
            r = np.expand_dims(r, dim)
        return Tensor(r)


def _rebuild_tensor(cls: type[Tensor], data: np.ndarray, requires_grad: bool) -> Any:
    """Unpickle a Tensor (or subclass) as a leaf; pickles refer to this name, so keep it."""
    t = cls.__new__(cls)
    t.data = data
    t.grad = None
    t._node = None
    t._out_index = 0
    t.requires_grad = bool(requires_grad)
    return t


def _operand(x: Any, like: Tensor) -> Any:
    """Scalars and arrays meeting a Tensor: arrays of its dtype family."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (numbers.Number, np.number)) and not isinstance(x, (complex, np.complexfloating)):
        return x  # numpy keeps the tensor's float dtype for Python scalars
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise TypeError("complex operands are not supported")
    return arr


def _norm_dims(dim: Any, ndim: int) -> Optional[tuple[int, ...]]:
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(int(d) % max(ndim, 1) for d in dim))
    return (int(dim) % max(ndim, 1),)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from .autograd import _sum_to_shape

    return _sum_to_shape(g, shape)


class _Cast(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.src = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return g.astype(ctx.src)


class _Add(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        na, nb = ctx.needs_input_grad
        return (_unbroadcast(g, ctx.shapes[0]) if na else None, _unbroadcast(g, ctx.shapes[1]) if nb else None)


class _Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        na, nb = ctx.needs_input_grad
        return (_unbroadcast(g, ctx.shapes[0]) if na else None, _unbroadcast(-g, ctx.shapes[1]) if nb else None)


class _Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (
            _unbroadcast(g * b, np.shape(a)) if na else None,
            _unbroadcast(g * a, np.shape(b)) if nb else None,
        )


class _Div(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.divide(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (
            _unbroadcast(g / b, np.shape(a)) if na else None,
            _unbroadcast(-g * a / (np.asarray(b) * b), np.shape(b)) if nb else None,
        )


class _Neg(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return np.negative(a)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return -g


class _Pow(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, exponent: float) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.p = exponent
        return np.power(a, a.dtype.type(exponent))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        (a,) = ctx.saved_tensors
        p = a.dtype.type(ctx.p)
        return g * p * np.power(a, p - 1)


class _Exp(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        y = np.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return g * ctx.saved_tensors[0]


class _Log(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return g / ctx.saved_tensors[0]


class _MatMul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least 1 dimension")
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if na:
            ga = np.matmul(g2, np.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],))
            ga = _unbroadcast(ga, a.shape)
        if nb:
            gb = np.matmul(np.swapaxes(a2, -1, -2), g2)
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
            gb = _unbroadcast(gb, b.shape)
        return ga, gb


class _Sum(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dim: Optional[tuple[int, ...]], keepdim: bool) -> np.ndarray:
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        return np.asarray(np.sum(a, axis=dim, keepdims=keepdim))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        if ctx.dim is not None and not ctx.keepdim:
            g = np.expand_dims(g, ctx.dim)
        return np.broadcast_to(g, ctx.shape)


class _Mean(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dim: Optional[tuple[int, ...]], keepdim: bool) -> np.ndarray:
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        ctx.count = a.size if dim is None else int(np.prod([a.shape[d] for d in dim]))
        return np.asarray(np.mean(a, axis=dim, keepdims=keepdim))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        if ctx.dim is not None and not ctx.keepdim:
            g = np.expand_dims(g, ctx.dim)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / g.dtype.type(ctx.count)
        return np.broadcast_to(g, ctx.shape)


class _Reshape(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return g.reshape(ctx.shape)


class _Permute(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
        ctx.inv = tuple(np.argsort(dims))
        return np.transpose(a, dims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return np.transpose(g, ctx.inv)


class _GetItem(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        out = np.zeros(ctx.shape, ctx.dtype)
        np.add.at(out, ctx.index, g)
        return out


class _Cat(Function):
    @staticmethod
    def forward(ctx: Context, *arrays: Any, dim: int) -> np.ndarray:
        ctx.sizes = [np.shape(a)[dim] for a in arrays]
        ctx.dim = dim
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        splits = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.split(g, splits, axis=ctx.dim))


class _Stack(Function):
    @staticmethod
    def forward(ctx: Context, *arrays: Any, dim: int) -> np.ndarray:
        ctx.dim = dim
        return np.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> Any:
        return tuple(np.moveaxis(g, ctx.dim, 0))


def _seq_check(tensors: Any, op: str) -> list[Any]:
    if isinstance(tensors, (Tensor, np.ndarray)) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op}: expected a sequence of tensors")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    return tensors


@overload
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor: ...


@overload
def cat(tensors: Sequence[np.ndarray], dim: int = 0) -> np.ndarray: ...


@overload
def cat(tensors: Sequence[TensorLike], dim: int = 0) -> Union[Tensor, np.ndarray]: ...


def cat(tensors: Sequence[TensorLike], dim: int = 0) -> Union[Tensor, np.ndarray]:
    """Concatenate along ``dim`` (Inception / DenseNet blocks), as ``torch.cat``.

    Shapes must match except in ``dim``. A Tensor result (recorded for autograd)
    if any input is a Tensor, else an ndarray.

    >>> a = fastconv.tensor(np.zeros((1, 2, 4, 4)), requires_grad=True)
    >>> b = fastconv.tensor(np.ones((1, 3, 4, 4)))
    >>> fastconv.cat([a, b], dim=1).shape
    (1, 5, 4, 4)
    """
    tensors = _seq_check(tensors, "cat")
    nd = np.ndim(_as_data(tensors[0]))
    if nd == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
    d = int(dim) % nd
    shapes = [np.shape(_as_data(t)) for t in tensors]
    for s in shapes:
        if len(s) != nd or s[:d] + s[d + 1 :] != shapes[0][:d] + shapes[0][d + 1 :]:
            raise ValueError(f"cat: shapes {shapes} must match except in dimension {d}")
    if not any(isinstance(t, Tensor) for t in tensors):
        return np.concatenate([np.asarray(t) for t in tensors], axis=d)
    return _Cat.apply(*tensors, dim=d)


@overload
def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor: ...


@overload
def stack(tensors: Sequence[np.ndarray], dim: int = 0) -> np.ndarray: ...


@overload
def stack(tensors: Sequence[TensorLike], dim: int = 0) -> Union[Tensor, np.ndarray]: ...


def stack(tensors: Sequence[TensorLike], dim: int = 0) -> Union[Tensor, np.ndarray]:
    """Stack equally shaped tensors along a new dimension ``dim``, as ``torch.stack``.

    A Tensor result if any input is a Tensor, else an ndarray.

    >>> x = fastconv.tensor(np.zeros((3, 4)))
    >>> fastconv.stack([x, x], dim=0).shape
    (2, 3, 4)
    """
    tensors = _seq_check(tensors, "stack")
    shapes = {np.shape(_as_data(t)) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    nd = np.ndim(_as_data(tensors[0])) + 1
    d = int(dim) % nd
    if not any(isinstance(t, Tensor) for t in tensors):
        return np.stack([np.asarray(t) for t in tensors], axis=d)
    return _Stack.apply(*tensors, dim=d)


def tensor(data: TensorLike, requires_grad: bool = False, dtype: Optional[DTypeLike] = None) -> Tensor:
    """A new leaf Tensor holding a copy of ``data``.

    As ``torch.tensor``: Python floats become float32, Python ints int64;
    NumPy arrays keep their dtype unless ``dtype`` is given.

    >>> t = fastconv.tensor([[1.0, 2.0]], requires_grad=True)
    >>> t
    tensor([[1., 2.]], requires_grad=True)
    >>> fastconv.tensor([1, 2]).dtype, fastconv.tensor(np.zeros(2)).dtype
    (dtype('int64'), dtype('float64'))
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, np.ndarray):
        arr = np.array(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    else:
        arr = np.array(data, dtype=dtype, copy=True)
    return Tensor(arr, requires_grad=requires_grad)
