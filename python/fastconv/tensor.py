"""``fastconv.Tensor``: a NumPy array that records the operations on it.

Enough of PyTorch's tensor API for building and training small CNNs:
arithmetic with broadcasting (a Tensor on either side), ``@``, reductions,
reshapes, transposes, basic indexing, ``cat``; every functional op in
:mod:`fastconv.functional` accepts Tensors and records its backward.
"""

from __future__ import annotations

import numbers

import numpy as np

from .autograd import Function, backward as _run_backward, is_grad_enabled, RuntimeError_

__all__ = ["Tensor", "tensor", "cat", "stack"]


def _as_data(x, dtype=None):
    if isinstance(x, Tensor):
        return x.data
    return np.asarray(x, dtype=dtype)


class Tensor:
    """A NumPy array plus autograd bookkeeping.

    ``data`` is the ndarray, ``grad`` the accumulated gradient (an ndarray or
    ``None``), ``requires_grad`` whether gradients flow to it.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_out_index", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
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
    def _from_op(cls, data, node, index):
        t = cls.__new__(cls)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t._node = node
        t._out_index = index
        t.requires_grad = node is not None
        return t

    # --- array protocol ---------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        return self.data

    def _fastconv_data(self):
        return self.data

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, like ``torch.Tensor.numpy``)."""
        return self.data

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    # --- metadata ---------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else self._node.fn

    def __repr__(self):
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
    def requires_grad_(self, requires_grad: bool = True):
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating point tensors can require gradients (this one is {self.data.dtype})"
            )
        if not requires_grad and self._node is not None:
            raise RuntimeError_("you can only change requires_grad flags of leaf tensors")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad=None, retain_graph: bool = False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (the gradient of some scalar w.r.t. this tensor) may be omitted
        for a one-element tensor. The graph is freed unless ``retain_graph``.
        """
        _run_backward(self, grad, retain_graph)

    def _accumulate(self, g):
        if self.grad is None:
            g = np.array(g, dtype=self.data.dtype, copy=True)
            self.grad = g.reshape(self.data.shape)
        else:
            self.grad = self.grad + g

    def detach(self) -> "Tensor":
        """The same data, cut off from the graph."""
        return Tensor._from_op(self.data, None, 0)

    def zero_grad_(self):
        self.grad = None
        return self

    # --- dtype -------------------------------------------------------------
    def float(self):
        return _Cast.apply(self, dtype=np.float32)

    def double(self):
        return _Cast.apply(self, dtype=np.float64)

    def to(self, dtype):
        return _Cast.apply(self, dtype=np.dtype(dtype))

    # --- arithmetic --------------------------------------------------------
    def __add__(self, other):
        return _Add.apply(self, _operand(other, self))

    def __radd__(self, other):
        return _Add.apply(_operand(other, self), self)

    def __sub__(self, other):
        return _Sub.apply(self, _operand(other, self))

    def __rsub__(self, other):
        return _Sub.apply(_operand(other, self), self)

    def __mul__(self, other):
        return _Mul.apply(self, _operand(other, self))

    def __rmul__(self, other):
        return _Mul.apply(_operand(other, self), self)

    def __truediv__(self, other):
        return _Div.apply(self, _operand(other, self))

    def __rtruediv__(self, other):
        return _Div.apply(_operand(other, self), self)

    def __matmul__(self, other):
        return _MatMul.apply(self, _operand(other, self))

    def __rmatmul__(self, other):
        return _MatMul.apply(_operand(other, self), self)

    def __neg__(self):
        return _Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
            raise TypeError(f"Tensor ** : only real scalar exponents are supported, got {type(exponent).__name__}")
        return _Pow.apply(self, exponent=float(exponent))

    # comparisons give plain boolean Tensors (no gradient)
    def _cmp(self, other, op):
        return Tensor(op(self.data, _as_data(other)))

    def __lt__(self, other):
        return self._cmp(other, np.less)

    def __le__(self, other):
        return self._cmp(other, np.less_equal)

    def __gt__(self, other):
        return self._cmp(other, np.greater)

    def __ge__(self, other):
        return self._cmp(other, np.greater_equal)

    def __eq__(self, other):
        return self._cmp(other, np.equal)

    def __ne__(self, other):
        return self._cmp(other, np.not_equal)

    __hash__ = object.__hash__

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    # --- reductions and shapes ----------------------------------------------
    def sum(self, dim=None, keepdim: bool = False, keepdims=None):
        if keepdims is not None:
            keepdim = keepdims
        return _Sum.apply(self, dim=_norm_dims(dim, self.ndim), keepdim=bool(keepdim))

    def mean(self, dim=None, keepdim: bool = False, keepdims=None):
        if keepdims is not None:
            keepdim = keepdims
        return _Mean.apply(self, dim=_norm_dims(dim, self.ndim), keepdim=bool(keepdim))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _Reshape.apply(self, shape=tuple(int(s) for s in shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        nd = max(self.ndim, 1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
        shp = self.shape
        new = shp[:s] + (int(np.prod(shp[s : e + 1], dtype=np.int64)),) + shp[e + 1 :]
        return self.reshape(new)

    def transpose(self, dim0: int, dim1: int):
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return _Permute.apply(self, dims=tuple(perm))

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dimensions")
        return _Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    @property
    def T(self):
        return _Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _GetItem.apply(self, index=index)

    # --- elementwise conveniences (differentiable) ----------------------------
    def exp(self):
        return _Exp.apply(self)

    def log(self):
        return _Log.apply(self)

    def relu(self):
        from . import functional

        return functional.relu(self)

    def sigmoid(self):
        from . import functional

        return functional.sigmoid(self)

    def tanh(self):
        from . import functional

        return functional.tanh(self)

    def softmax(self, dim):
        from . import functional

        return functional.softmax(self, dim)

    def log_softmax(self, dim):
        from . import functional

        return functional.log_softmax(self, dim)

    def argmax(self, dim=None, keepdim=False):
        r = np.argmax(self.data, axis=dim)
        if keepdim and dim is not None:
            r = np.expand_dims(r, dim)
        return Tensor(r)


def _operand(x, like):
    """Scalars and arrays meeting a Tensor: arrays of its dtype family."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (numbers.Number, np.number)) and not isinstance(x, (complex, np.complexfloating)):
        return x  # numpy keeps the tensor's float dtype for Python scalars
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise TypeError("complex operands are not supported")
    return arr


def _norm_dims(dim, ndim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(int(d) % max(ndim, 1) for d in dim))
    return (int(dim) % max(ndim, 1),)


def _unbroadcast(g, shape):
    from .autograd import _sum_to_shape

    return _sum_to_shape(g, shape)


class _Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.src = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src)


class _Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b)

    @staticmethod
    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        return (_unbroadcast(g, ctx.shapes[0]) if na else None, _unbroadcast(g, ctx.shapes[1]) if nb else None)


class _Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        return (_unbroadcast(g, ctx.shapes[0]) if na else None, _unbroadcast(-g, ctx.shapes[1]) if nb else None)


class _Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (
            _unbroadcast(g * b, np.shape(a)) if na else None,
            _unbroadcast(g * a, np.shape(b)) if nb else None,
        )


class _Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (
            _unbroadcast(g / b, np.shape(a)) if na else None,
            _unbroadcast(-g * a / (np.asarray(b) * b), np.shape(b)) if nb else None,
        )


class _Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, g):
        return -g


class _Pow(Function):
    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.p = exponent
        return np.power(a, a.dtype.type(exponent))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        p = a.dtype.type(ctx.p)
        return g * p * np.power(a, p - 1)


class _Exp(Function):
    @staticmethod
    def forward(ctx, a):
        y = np.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved_tensors[0]


class _Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved_tensors[0]


class _MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least 1 dimension")
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
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
    def forward(ctx, a, dim, keepdim):
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        return np.asarray(np.sum(a, axis=dim, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        if ctx.dim is not None and not ctx.keepdim:
            g = np.expand_dims(g, ctx.dim)
        return np.broadcast_to(g, ctx.shape)


class _Mean(Function):
    @staticmethod
    def forward(ctx, a, dim, keepdim):
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        ctx.count = a.size if dim is None else int(np.prod([a.shape[d] for d in dim]))
        return np.asarray(np.mean(a, axis=dim, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        if ctx.dim is not None and not ctx.keepdim:
            g = np.expand_dims(g, ctx.dim)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / g.dtype.type(ctx.count)
        return np.broadcast_to(g, ctx.shape)


class _Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class _Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inv = tuple(np.argsort(dims))
        return np.transpose(a, dims)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, ctx.inv)


class _GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx, g):
        out = np.zeros(ctx.shape, ctx.dtype)
        np.add.at(out, ctx.index, g)
        return out


class _Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.sizes = [np.shape(a)[dim] for a in arrays]
        ctx.dim = dim
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        splits = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.split(g, splits, axis=ctx.dim))


class _Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim = dim
        return np.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.dim, 0))


def _seq_check(tensors, op):
    if isinstance(tensors, (Tensor, np.ndarray)) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op}: expected a sequence of tensors")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    return tensors


def cat(tensors, dim: int = 0):
    """Concatenate along ``dim`` (Inception / DenseNet blocks), as ``torch.cat``."""
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


def stack(tensors, dim: int = 0):
    """Stack along a new dimension ``dim``, as ``torch.stack``."""
    tensors = _seq_check(tensors, "stack")
    shapes = {np.shape(_as_data(t)) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    nd = np.ndim(_as_data(tensors[0])) + 1
    d = int(dim) % nd
    if not any(isinstance(t, Tensor) for t in tensors):
        return np.stack([np.asarray(t) for t in tensors], axis=d)
    return _Stack.apply(*tensors, dim=d)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new leaf Tensor holding a copy of ``data``.

    As ``torch.tensor``: Python floats become float32, Python ints int64;
    NumPy arrays keep their dtype unless ``dtype`` is given.
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
