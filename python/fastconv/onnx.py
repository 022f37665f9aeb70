"""Import ONNX models as runnable, trainable fastconv modules: :func:`load`.

>>> import fastconv.onnx
>>> model = fastconv.onnx.load("lenet.onnx")          # doctest: +SKIP
>>> logits = model(x)                                 # doctest: +SKIP

:func:`load` takes a path, an ``onnx.ModelProto``, the serialized bytes or a
binary file, and returns an :class:`OnnxModule`: an ordinary
``fastconv.nn.Module`` whose ``forward`` runs the graph with fastconv's own
ops, so autograd, optimisers, ``state_dict()``, ``print(model)`` and
``fastconv.summary`` work on it. Reading the file needs the ``onnx`` package
(``pip install 'fastconv[onnx]'``); importing this module does not.

How the graph becomes a module (all decided once, at load time):

- Conv, Gemm (when it is a ``Linear``: transB=1, alpha=1, a 1-D bias),
  BatchNormalization, the poolings, the activations, Softmax, Flatten and
  Dropout become fastconv layers (subclasses of ``nn.Conv2d`` etc. that add
  ONNX's padding rules), registered as child modules in graph order. The other
  operators become small closures over NumPy / Tensor operations.
- Floating-point initializers that feed a computation become
  ``nn.Parameter`` s; BatchNorm's mean and variance become buffers. Names: a
  layer sits at its parameters' common prefix when their ONNX names are clean
  dotted paths (``features.0`` for ``features.0.weight``, as PyTorch's exporter
  writes them: ``state_dict`` keys then equal the PyTorch model's), else at the
  module path in a PyTorch-style node name (``/features/features.2/Relu`` ->
  ``features.2``), else under its sanitised node name. Parameters of the other
  operators keep their (sanitised) initializer names. ``initializer_names``
  maps every ``state_dict`` key of a parameter to its ONNX initializer.
- Whatever depends only on constants is folded into constants. Values
  computed from tensor *shapes* (the Shape -> Gather -> Unsqueeze -> Concat ->
  Reshape chain PyTorch writes for ``x.view(x.size(0), -1)``) are evaluated
  with NumPy on the first call for each distinct input shape and then served
  from a cache, so a fixed or a dynamic batch size costs one dictionary lookup
  per call. (ONNX's own shape inference is not used: it disagrees with
  onnxruntime and PyTorch on some ceil_mode pooling sizes.)

Calling the module: one argument per graph input (positional, or keyword by
input name), NumPy arrays or fastconv Tensors; the result is a Tensor, or a
tuple of Tensors for several graph outputs. With NumPy inputs, while the module
is in eval mode (as :func:`load` returns it) or grad mode is off, the graph runs
on plain arrays through the kernels' fast paths and records nothing. With
Tensor inputs, or in training mode, it records for ``backward()`` (the
parameters require grad), so an imported model can be fine-tuned. In training
mode BatchNorm uses batch statistics and Dropout drops, as in ``torch.nn``.
"""

from __future__ import annotations

import math
import operator
import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union, cast

import numpy as np

from . import _conv, _elementwise as _E, _norm as _N, _pool
from . import autograd as _autograd
from . import functional as F
from .autograd import Context, Function
from .nn import layers as _L
from .nn.module import Module, Parameter
from .tensor import Tensor, cat as _cat

__all__ = ["load", "OnnxModule", "UnsupportedOperatorError", "SUPPORTED_OPS", "MIN_OPSET", "MAX_OPSET"]

#: Oldest opset of the default ONNX domain :func:`load` accepts (before 7, Add & co. had an
#: explicit ``broadcast`` attribute).
MIN_OPSET = 7
#: Newest opset :func:`load` accepts: the supported operators' versions after 21 only add
#: element types.
MAX_OPSET = 28

_DEFAULT_DOMAINS = ("", "ai.onnx")

Value = Any  # a graph value at run time: ndarray, Tensor or (shape chains) NumPy scalar
Quad = Tuple[int, int, int, int]  # (top, bottom, left, right)


class UnsupportedOperatorError(ValueError):
    """The model uses operators (or operator variants) fastconv cannot run.

    :func:`load` raises it once, listing every problem: ``op_types`` is the sorted
    list of the offending operator types (``domain::Op`` outside the default
    domain), ``problems`` a list of ``(op_type, node_name, reason)``.
    """

    def __init__(self, problems: Sequence[Tuple[str, str, str]]) -> None:
        self.problems = list(problems)
        self.op_types = sorted({p[0] for p in self.problems})
        super().__init__(self._message())

    def _message(self) -> str:
        groups: Dict[Tuple[str, str], List[str]] = {}
        for op, node, reason in self.problems:
            groups.setdefault((op, reason), []).append(node)
        n = len(self.problems)
        lines = [
            f"fastconv.onnx cannot run this model: {n} node{'s' if n != 1 else ''} "
            f"use{'s' if n == 1 else ''} unsupported operators or operator variants:"
        ]
        for (op, reason), nodes in sorted(groups.items()):
            shown = ", ".join(repr(s) for s in nodes[:5]) + (", ..." if len(nodes) > 5 else "")
            what = f" - {reason}" if reason else ""
            lines.append(f"  {op}: {len(nodes)} node{'s' if len(nodes) != 1 else ''} ({shown}){what}")
        lines.append("supported operators: " + ", ".join(SUPPORTED_OPS))
        return "\n".join(lines)


class _Unsupported(Exception):
    """A builder's way of saying that a node's variant is not supported (collected, then reported)."""


def _import_onnx() -> Any:
    """The top-level ``onnx`` package (this module is ``fastconv.onnx``; the import is absolute)."""
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "fastconv.onnx needs the 'onnx' package to read ONNX models; install it with "
            "pip install 'fastconv[onnx]'"
        ) from exc
    if not hasattr(onnx, "ModelProto"):  # e.g. a stray onnx.py shadowing the package
        raise ImportError(f"the module imported as 'onnx' ({getattr(onnx, '__file__', '?')}) is not the onnx package")
    return onnx


# ----------------------------------------------------------------------------------------------
# helpers shared by the steps


def _unwrap(v: Any) -> Any:
    """Arrays behind Tensors, through tuples (what the array-only path passes on)."""
    if isinstance(v, Tensor):
        return v.data
    if type(v) is tuple:
        return tuple(_unwrap(a) for a in v)
    return v


def _data(v: Value) -> np.ndarray:
    return v.data if isinstance(v, Tensor) else v


def _arr(p: Optional[Parameter]) -> Optional[np.ndarray]:
    """A parameter's array (None stays None: a layer without bias)."""
    return None if p is None else p.data


def _as_float(x: Value) -> Value:
    """Integer, bool and float16 values as float32 (fastconv's dtype policy); Tensors stay Tensors."""
    d = _data(x)
    if d.dtype.kind == "f" and d.dtype.itemsize >= 4:
        return x
    d = np.asarray(d, dtype=np.float32)
    return Tensor(d) if isinstance(x, Tensor) else d


def _pad_array(x: np.ndarray, pads: Sequence[Tuple[int, int]], value: float) -> Tuple[np.ndarray, tuple]:
    """``x`` padded with ``value``: pads is ((before, after), ...) for the trailing dims (non-negative)."""
    lead = x.ndim - len(pads)
    shape = x.shape[:lead] + tuple(n + b + a for n, (b, a) in zip(x.shape[lead:], pads))
    y = np.full(shape, value, dtype=x.dtype)
    idx = (slice(None),) * lead + tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[lead:], pads))
    y[idx] = x
    return y, idx


class _ConstPad(Function):
    """Constant padding of the trailing dims: ONNX's explicit and asymmetric pads, and Pad."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, pads: Sequence[Tuple[int, int]], value: float) -> np.ndarray:
        y, ctx.idx = _pad_array(np.asarray(x), pads, value)
        return y

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dy[ctx.idx])


def _pad(x: Value, pads: Sequence[Tuple[int, int]], value: float = 0.0) -> Value:
    if isinstance(x, Tensor):
        return _ConstPad.apply(x, pads, value)
    return _pad_array(x, pads, value)[0]


def _pool_size(n: int, k_eff: int, stride: int, pad_begin: int, pad_end: int, ceil_mode: bool) -> int:
    """onnxruntime's (and PyTorch's) pooled size: with ceil_mode, the last window must start inside
    the input or the leading padding."""
    num = n + pad_begin + pad_end - k_eff
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + pad_begin:
        out -= 1
    return out


class _PadRule:
    """Conv / pool padding in ONNX's terms (``auto_pad`` and ``pads``), resolved to
    (top, bottom, left, right) for an input size; SAME_* depend on it (cached per size)."""

    __slots__ = ("auto_pad", "static", "kernel", "stride", "_cache")

    def __init__(self, auto_pad: str, pads: Sequence[int], kernel: Optional[Tuple[int, ...]],
                 stride: Sequence[int]) -> None:
        self.auto_pad = auto_pad
        self.kernel = kernel  # effective (dilated) extent; None: known only at run time (weights as inputs)
        self.stride = tuple(stride)
        self._cache: Dict[Tuple[int, int], Quad] = {}
        self.static: Optional[Quad] = None
        if auto_pad == "VALID":
            self.static = (0, 0, 0, 0)
        elif auto_pad == "NOTSET":
            self.static = (pads[0], pads[2], pads[1], pads[3])

    def quad(self, H: int, W: int, kernel: Optional[Tuple[int, ...]] = None) -> Quad:
        if self.static is not None:
            return self.static
        r = self._cache.get((H, W))
        if r is None:
            k = self.kernel or kernel
            assert k is not None
            pads: List[int] = []
            for n, kk, s in zip((H, W), k, self.stride):
                out = -(-n // s)
                total = max((out - 1) * s + kk - n, 0)
                small, big = total // 2, total - total // 2
                pads += [small, big] if self.auto_pad == "SAME_UPPER" else [big, small]
            r = (pads[0], pads[1], pads[2], pads[3])
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[(H, W)] = r
        return r

    def describe(self) -> str:
        if self.static is None:
            return f"auto_pad={self.auto_pad}"
        return f"pads={self.static}"


def _symmetric(q: Quad) -> bool:
    return q[0] == q[1] and q[2] == q[3]


# ----------------------------------------------------------------------------------------------
# layers: fastconv's nn layers plus ONNX's padding rules; ``_fast`` is the same computation on
# plain arrays (what the graph runs when nothing is recorded)


class Conv2d(_L.Conv2d):
    """``nn.Conv2d`` made from an ONNX Conv node (its parameters are the graph's initializers).

    ``onnx_padding`` is None when ``padding`` says it all, else the ONNX rule
    (auto_pad SAME_*, asymmetric pads: an explicit zero pad, then the conv).
    """

    def __init__(self, weight: Parameter, bias: Optional[Parameter], stride: Tuple[int, int],
                 dilation: Tuple[int, int], groups: int, rule: _PadRule) -> None:
        oc, cg, kh, kw = weight.data.shape
        q = rule.static
        sym = q is not None and _symmetric(q)
        padding = (q[0], q[2]) if q is not None and sym else 0
        super().__init__(cg * groups, oc, (kh, kw), stride, padding, dilation, groups, bias is not None,
                         dtype=weight.data.dtype)
        self.weight = weight
        if bias is not None:
            self.bias = bias
        self.onnx_padding: Optional[_PadRule] = None if sym else rule

    def reset_parameters(self) -> None:  # the values come from the model
        pass

    def _run(self, conv: Callable[..., Any], x: Value, w: Value, b: Value) -> Value:
        rule = self.onnx_padding
        if rule is None:
            return conv(x, w, b, self.stride, self.padding, self.dilation, self.groups)
        q = rule.quad(x.shape[-2], x.shape[-1])
        if _symmetric(q):
            return conv(x, w, b, self.stride, (q[0], q[2]), self.dilation, self.groups)
        return conv(_pad(x, ((q[0], q[1]), (q[2], q[3]))), w, b, self.stride, 0, self.dilation, self.groups)

    def forward(self, input: Any) -> Any:
        return self._run(F.conv2d, input, self.weight, self.bias)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        p = self._parameters
        return self._run(_conv.conv2d, x, _arr(p.get("weight")), _arr(p.get("bias")))

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.onnx_padding is None else f"{s}, {self.onnx_padding.describe()}"


class Linear(_L.Linear):
    """``nn.Linear`` made from an ONNX Gemm node with transB=1, alpha=1 and a 1-D bias (how PyTorch
    exports ``nn.Linear``)."""

    def __init__(self, weight: Parameter, bias: Optional[Parameter]) -> None:
        out_f, in_f = weight.data.shape
        super().__init__(in_f, out_f, bias is not None, dtype=weight.data.dtype)
        self.weight = weight
        if bias is not None:
            self.bias = bias

    def reset_parameters(self) -> None:
        pass

    def _fast(self, x: np.ndarray) -> np.ndarray:
        p = self._parameters
        return _conv.linear(x, cast(np.ndarray, _arr(p.get("weight"))), _arr(p.get("bias")))


class _OnnxPool(Module):
    """What the two poolings share: symmetric pads within half the kernel go to fastconv's pooling
    as they are; anything else (asymmetric, SAME_*, larger pads) pads explicitly first and trims the
    output to onnxruntime's size."""

    onnx_padding: Optional[_PadRule]
    ceil_mode: bool
    kernel_size: Any
    stride: Any
    padding: Any
    _k_eff: Tuple[int, int]

    def _resolve(self, H: int, W: int) -> Tuple[Any, Optional[Quad]]:
        """(padding for fastconv's pooling, None) when it can take ONNX's pads as they are, else
        (0, the (top, bottom, left, right) pads to apply explicitly)."""
        rule = self.onnx_padding
        if rule is None:
            return self.padding, None
        q = rule.quad(H, W, self._k_eff)
        kh, kw = self.kernel_size
        if _symmetric(q) and q[0] <= kh // 2 and q[2] <= kw // 2:  # e.g. SAME_* on this input size
            return (q[0], q[2]), None
        return 0, q

    def _pool(self, fn: Callable[..., Any], x: Value, pad_value: float, *extra: Any) -> Value:
        H, W = x.shape[-2], x.shape[-1]
        padding, q = self._resolve(H, W)
        if q is None:
            return fn(x, self.kernel_size, self.stride, padding, *extra)
        y = fn(_pad(_as_float(x), ((q[0], q[1]), (q[2], q[3])), pad_value), self.kernel_size, self.stride, 0, *extra)
        sh, sw = self.stride
        oh = _pool_size(H, self._k_eff[0], sh, q[0], q[1], self.ceil_mode)
        ow = _pool_size(W, self._k_eff[1], sw, q[2], q[3], self.ceil_mode)
        if y.shape[-2] != oh or y.shape[-1] != ow:
            y = y[..., :oh, :ow]
        return y

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.onnx_padding is None else f"{s}, {self.onnx_padding.describe()}"


def _pool_padding(rule: _PadRule, kernel: Sequence[int]) -> Tuple[Tuple[int, int], Optional[_PadRule]]:
    """(padding pair for the layer, the rule or None when the pair says it all)."""
    q = rule.static
    if q is not None and _symmetric(q) and q[0] <= kernel[0] // 2 and q[2] <= kernel[1] // 2:
        return (q[0], q[2]), None
    return (0, 0), rule


class MaxPool2d(_OnnxPool, _L.MaxPool2d):
    """``nn.MaxPool2d`` made from an ONNX MaxPool node (explicit -inf padding where fastconv's
    symmetric padding cannot express ONNX's)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], ceil_mode: bool,
                 rule: _PadRule) -> None:
        padding, own_rule = _pool_padding(rule, kernel)
        _L.MaxPool2d.__init__(self, (kernel[0], kernel[1]), (stride[0], stride[1]), padding,
                              (dilation[0], dilation[1]), False, bool(ceil_mode))
        self.onnx_padding = own_rule
        self._k_eff = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)

    def forward(self, input: Any) -> Any:
        return self._pool(F.max_pool2d, input, -np.inf, self.dilation, self.ceil_mode)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        return self._pool(_pool.max_pool2d, x, -np.inf, self.dilation, self.ceil_mode)


class AvgPool2d(_OnnxPool, _L.AvgPool2d):
    """``nn.AvgPool2d`` made from an ONNX AveragePool node. Where the padding is explicit and must not
    count (count_include_pad=0), each window's mean is rescaled by the share of real elements in it."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int], ceil_mode: bool, count_include_pad: bool,
                 rule: _PadRule) -> None:
        padding, own_rule = _pool_padding(rule, kernel)
        _L.AvgPool2d.__init__(self, (kernel[0], kernel[1]), (stride[0], stride[1]), padding, bool(ceil_mode),
                              bool(count_include_pad))
        self.onnx_padding = own_rule
        self._k_eff = (kernel[0], kernel[1])
        self._ratios: Dict[Any, np.ndarray] = {}

    def _ratio(self, H: int, W: int, q: Quad, dtype: np.dtype) -> np.ndarray:
        """Per output position: real elements / elements of the window inside the padded input."""
        key = (H, W, q, dtype.str)
        r = self._ratios.get(key)
        if r is None:
            ones, _ = _pad_array(np.ones((1, 1, H, W), dtype), ((q[0], q[1]), (q[2], q[3])), 0.0)
            r = _pool.avg_pool2d(ones, self.kernel_size, self.stride, 0, self.ceil_mode, True)[0, 0]
            sh, sw = self.stride
            oh = _pool_size(H, self._k_eff[0], sh, q[0], q[1], self.ceil_mode)
            ow = _pool_size(W, self._k_eff[1], sw, q[2], q[3], self.ceil_mode)
            r = np.ascontiguousarray(r[:oh, :ow])
            if len(self._ratios) > 16:
                self._ratios.clear()
            self._ratios[key] = r
        return r

    def _avg(self, fn: Callable[..., Any], x: Value) -> Value:
        y = self._pool(fn, x, 0.0, self.ceil_mode, self.count_include_pad)
        if self.count_include_pad:
            return y
        _, q = self._resolve(x.shape[-2], x.shape[-1])
        if q is None or not any(q):
            return y
        return y / self._ratio(x.shape[-2], x.shape[-1], q, _data(y).dtype)

    def forward(self, input: Any) -> Any:
        return self._avg(F.avg_pool2d, input)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        return self._avg(_pool.avg_pool2d, x)


class GlobalAvgPool(_L.AdaptiveAvgPool2d):
    """ONNX GlobalAveragePool: the mean over every spatial dim (any number of them), kept as size 1."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, input: Any) -> Any:
        if not isinstance(input, Tensor):
            return self._fast(input)
        if input.ndim == 4:
            return F.adaptive_avg_pool2d(input, 1)
        return _as_float(input).mean(dim=tuple(range(2, input.ndim)), keepdim=True)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 4:
            return _pool.adaptive_avg_pool2d(x, 1)
        x = _as_float(x)
        return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)


class GlobalMaxPool(_L.AdaptiveMaxPool2d):
    """ONNX GlobalMaxPool: the max over every spatial dim (any number of them), kept as size 1."""

    def __init__(self) -> None:
        super().__init__(1)

    def _run(self, pool: Callable[..., Any], x: Value) -> Value:
        if x.ndim == 4:
            return pool(x, 1)
        s = x.shape
        return pool(x.reshape(s[0], s[1], -1, 1), 1).reshape(s[:2] + (1,) * (len(s) - 2))

    def forward(self, input: Any) -> Any:
        return self._run(F.adaptive_max_pool2d, input)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        return self._run(_pool.adaptive_max_pool2d, x)


class BatchNorm2d(_L.BatchNorm2d):
    """``nn.BatchNorm2d`` made from an ONNX BatchNormalization node; takes (N, C, ...) of any rank >= 2,
    as ONNX does. ONNX's momentum m is PyTorch's 1 - m (it matters in training mode only)."""

    def __init__(self, weight: Parameter, bias: Parameter, mean: np.ndarray, var: np.ndarray, eps: float,
                 momentum: float) -> None:
        dt = weight.data.dtype
        super().__init__(int(np.size(mean)), eps, momentum, dtype=dt)
        self.weight = weight
        self.bias = bias
        self.running_mean = np.array(mean, dtype=dt).reshape(-1)
        self.running_var = np.array(var, dtype=dt).reshape(-1)

    def forward(self, input: Any) -> Any:
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training:
            self.num_batches_tracked += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            momentum, self.eps)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        if self.training:  # updates the running statistics: the one implementation
            return _unwrap(self.forward(x))
        p = self._parameters
        return _N.batch_norm(x, self.running_mean, self.running_var, _arr(p.get("weight")), _arr(p.get("bias")),
                             False, 0.0, self.eps)


class ReLU(_L.ReLU):
    def _fast(self, x: np.ndarray) -> np.ndarray:
        return _E.relu(x)


class LeakyReLU(_L.LeakyReLU):
    def _fast(self, x: np.ndarray) -> np.ndarray:
        return _E.leaky_relu(x, self.negative_slope)


class Sigmoid(_L.Sigmoid):
    def _fast(self, x: np.ndarray) -> np.ndarray:
        return _E.sigmoid(x)


class Tanh(_L.Tanh):
    def _fast(self, x: np.ndarray) -> np.ndarray:
        return _E.tanh(x)


class Softmax(_L.Softmax):
    """Softmax over ``dim``; with ``coerce_2d`` (ONNX before opset 13) over all the dims from ``dim`` on,
    taken as one row (the input seen as 2-D)."""

    _fn = "softmax"

    def __init__(self, dim: int, coerce_2d: bool = False) -> None:
        super().__init__(dim)
        self.coerce_2d = coerce_2d

    def _run(self, fn: Callable[..., Any], x: Value) -> Value:
        dim = cast(int, self.dim)
        nd = x.ndim
        if not self.coerce_2d or nd == 0:
            return fn(x, dim)
        a = dim % nd if -nd <= dim < nd else dim
        if a == nd - 1:
            return fn(x, -1)
        s = x.shape
        return fn(x.reshape(math.prod(s[:a]), math.prod(s[a:])), 1).reshape(s)

    def forward(self, input: Any) -> Any:
        return self._run(getattr(F, self._fn), input)

    def _fast(self, x: np.ndarray) -> np.ndarray:
        return self._run(getattr(_E, self._fn), x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}" + (", coerce_2d=True" if self.coerce_2d else "")


class LogSoftmax(Softmax):
    """Log-softmax, with the same two rules as :class:`Softmax`."""

    _fn = "log_softmax"


class Flatten(_L.Flatten):
    """ONNX Flatten: (d0 * ... * d[axis-1], d[axis] * ...), always 2-D (``axis=1`` is ``nn.Flatten()``)."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__(1, -1)
        self.axis = axis

    def forward(self, input: Any) -> Any:
        s = input.shape
        a = self.axis + len(s) if self.axis < 0 else self.axis
        if not 0 <= a <= len(s):
            raise ValueError(f"Flatten: axis={self.axis} is out of range for a {len(s)}-D input")
        return input.reshape(math.prod(s[:a]), math.prod(s[a:]))

    def _fast(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Dropout(_L.Dropout):
    """Identity in eval mode (ONNX inference); inverted dropout in training mode, as ``nn.Dropout``.
    With ``return_mask`` it also returns the keep-mask (all ones in eval mode): bool, or with
    ``float_mask`` (ONNX before opset 10) of the input's dtype."""

    def __init__(self, p: float = 0.5, return_mask: bool = False, float_mask: bool = False) -> None:
        super().__init__(p)
        self.return_mask = return_mask
        self.float_mask = float_mask

    def _mask(self, keep: np.ndarray, x: Value) -> np.ndarray:
        return keep.astype(_data(x).dtype) if self.float_mask else keep

    def forward(self, input: Any) -> Any:
        if not self.return_mask:
            return F.dropout(input, self.p, self.training)
        shape = input.shape
        if not self.training:
            return input, self._mask(np.ones(shape, dtype=bool), input)
        keep = _E.default_generator().random(shape) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        x = _as_float(input)
        return x * (keep * scale).astype(_data(x).dtype), self._mask(keep, x)

    def _fast(self, x: np.ndarray) -> Any:
        if self.training:
            return _unwrap(self.forward(x))
        return (x, self._mask(np.ones(x.shape, dtype=bool), x)) if self.return_mask else x

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", return_mask=True" if self.return_mask else "")


class Scope(Module):
    """Groups the layers and parameters whose ONNX names share a dotted prefix (``features`` of
    ``features.0.weight``), so that ``state_dict`` keys keep those names. Indexable by child name
    (``model.features[0]``, also to replace a child); not callable."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a Scope only groups layers of an OnnxModule; call the OnnxModule instead")

    def __getitem__(self, key: Union[int, str]) -> Module:
        m = self._modules.get(str(key))
        if m is None:
            raise KeyError(f"Scope has no child {str(key)!r}; children: {list(self._modules)}")
        return m

    def __setitem__(self, key: Union[int, str], module: Module) -> None:
        """Put ``module`` in the child's place (a new classifier head): the graph calls it from then on."""
        if str(key) not in self._modules:
            raise KeyError(f"Scope has no child {str(key)!r}; children: {list(self._modules)}")
        self.add_module(str(key), module)

    def __len__(self) -> int:
        return len(self._modules)


# ----------------------------------------------------------------------------------------------
# generic operations: closures over NumPy / Tensor code (one callable serves both paths)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))


def _div(a: Value, b: Value) -> Value:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return _int_div(a, b)  # C's truncation, as onnxruntime
    return a / b


def _concat(axis: int) -> Callable[..., Value]:
    def concat(*xs: Value) -> Value:
        for x in xs:
            if isinstance(x, Tensor):
                return _cat(list(xs), axis)
        return np.concatenate(xs, axis=axis)

    return concat


def _reshape_target(in_shape: Tuple[int, ...], target: Any, allowzero: int) -> Tuple[int, ...]:
    t = [int(v) for v in target]
    if not allowzero:
        for i, v in enumerate(t):
            if v == 0:
                if i >= len(in_shape):
                    raise ValueError(f"Reshape: shape {t} copies dim {i} (0) of an input of shape {tuple(in_shape)}")
                t[i] = in_shape[i]
    return tuple(t)


def _reshape_to(x: Value, shape: Tuple[int, ...]) -> Value:
    try:
        return x.reshape(shape)
    except ValueError:
        raise ValueError(f"Reshape: cannot reshape a tensor of shape {tuple(x.shape)} into {shape}") from None


def _slice_index(shape: Tuple[int, ...], starts: Any, ends: Any, axes: Any, steps: Any) -> Tuple[slice, ...]:
    """ONNX Slice as a tuple of Python slices (ONNX clamps; a negative step may end "before 0")."""
    idx = [slice(None)] * len(shape)
    nd = len(shape)
    for i, a in enumerate(axes):
        a = int(a)
        a = a + nd if a < 0 else a
        d = shape[a]
        s, e = int(starts[i]), int(ends[i])
        st = int(steps[i]) if steps is not None else 1
        if st == 0:
            raise ValueError("Slice: steps must not be 0")
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            idx[a] = slice(min(max(s, 0), d), min(max(e, 0), d), st)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
            idx[a] = slice(s, None if e < 0 else e, st)
    return tuple(idx)


def _unsqueezed_shape(shape: Tuple[int, ...], axes: Any) -> Tuple[int, ...]:
    r = len(shape) + len(axes)
    ax = sorted(int(a) + r if int(a) < 0 else int(a) for a in axes)
    if len(set(ax)) != len(ax) or (ax and (ax[0] < 0 or ax[-1] >= r)):
        raise ValueError(f"Unsqueeze: invalid axes {list(axes)} for a {len(shape)}-D input")
    it = iter(shape)
    return tuple(1 if i in ax else next(it) for i in range(r))


def _squeezed_shape(shape: Tuple[int, ...], axes: Any) -> Tuple[int, ...]:
    nd = len(shape)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    ax = {int(a) + nd if int(a) < 0 else int(a) for a in axes}
    for a in ax:
        if not 0 <= a < nd or shape[a] != 1:
            raise ValueError(f"Squeeze: cannot squeeze axis {a} of a tensor of shape {tuple(shape)}")
    return tuple(d for i, d in enumerate(shape) if i not in ax)


def _cast(dtype: np.dtype) -> Callable[[Value], Value]:
    def cast_(x: Value) -> Value:
        if isinstance(x, Tensor):
            if x.data.dtype == dtype:
                return x
            if dtype.kind == "f" and x.data.dtype.kind == "f":
                return x.to(dtype)  # differentiable
            return Tensor(x.data.astype(dtype))
        return np.asarray(x).astype(dtype, copy=False)

    return cast_


def _gather(axis: int) -> Callable[[Value, Value], Value]:
    def gather(data: Value, indices: Value) -> Value:
        ind = _data(indices)
        if isinstance(data, Tensor):
            a = axis % max(data.ndim, 1)
            return data[(slice(None),) * a + (np.asarray(ind),)]
        return np.take(data, ind, axis=axis)

    return gather


def _transpose(perm: Optional[Tuple[int, ...]]) -> Callable[[Value], Value]:
    def transpose(x: Value) -> Value:
        p = perm if perm is not None else tuple(reversed(range(x.ndim)))
        if isinstance(x, Tensor):
            return x.permute(p)
        return np.transpose(x, p)

    return transpose


def _shape_of(start: int, end: Optional[int]) -> Callable[[Value], np.ndarray]:
    def shape(x: Value) -> np.ndarray:
        return np.array(x.shape[start:end], dtype=np.int64)

    return shape


# ----------------------------------------------------------------------------------------------
# the module


_MISSING = object()
_CHECK_DIMS = object()  # compares unequal to every shape: the per-dim check runs


class OnnxModule(Module):
    """A model imported by :func:`load`; ``forward(*inputs, **named_inputs)`` runs its graph.

    Attributes: ``input_names``, ``output_names``, ``opset``, ``producer`` (the tool that
    wrote the file) and ``initializer_names`` (``state_dict`` key of each parameter -> its
    ONNX initializer name). Inputs are checked against the graph's declared shapes (symbolic
    dims such as a dynamic batch match any size); a mismatch is a ``ValueError`` naming the
    input, its shape and the expected one.
    """

    input_names: List[str]
    output_names: List[str]
    opset: int
    producer: str
    initializer_names: Dict[str, str]

    # ---- running ---------------------------------------------------------------------------
    def _bind(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> List[Value]:
        names = self.input_names
        n = len(names)
        if len(args) > n:
            raise TypeError(f"OnnxModule: the model takes {n} input{'s' if n != 1 else ''} {names}, got {len(args)}")
        vals = list(args)
        if kwargs or len(vals) < n:
            vals += [_MISSING] * (n - len(vals))
            for k, v in kwargs.items():
                i = self._input_index.get(k)
                if i is None:
                    raise TypeError(f"OnnxModule: unexpected input {k!r}; the model's inputs are {names}")
                if vals[i] is not _MISSING:
                    raise TypeError(f"OnnxModule: got two values for input {k!r}")
                vals[i] = v
            missing = [names[i] for i, v in enumerate(vals) if v is _MISSING]
            if missing:
                raise TypeError(f"OnnxModule: missing input{'s' if len(missing) > 1 else ''} {missing}")
        for i, v in enumerate(vals):
            if isinstance(v, Tensor):
                d = v.data
            else:
                if type(v) is not np.ndarray:
                    try:
                        v = np.asarray(v)
                    except Exception as exc:
                        raise TypeError(
                            f"OnnxModule: input {names[i]!r} could not be converted to an array: {exc}"
                        ) from None
                d = v
            kind = d.dtype.kind
            if kind == "c":
                raise TypeError(f"OnnxModule: input {names[i]!r} is complex ({d.dtype}); expected real data")
            if kind not in "fiub":
                raise TypeError(f"OnnxModule: input {names[i]!r} has unsupported dtype {d.dtype}")
            if self._input_float[i] and (kind in "iub" or d.dtype == np.float16):
                d = d.astype(np.float32)  # fastconv's dtype policy
                v = Tensor(d) if isinstance(v, Tensor) else d
            spec = self._input_specs[i]
            if spec is not None and d.shape != spec:
                self._check_shape(i, d.shape)
            vals[i] = v
        return vals

    def _check_shape(self, i: int, shape: Tuple[int, ...]) -> None:
        dims = self._input_dims[i]
        fits = lambda dd, ss: all(not isinstance(w, int) or w == s for w, s in zip(dd, ss))  # noqa: E731
        if len(shape) == len(dims) and fits(dims, shape):
            return
        want = "(" + ", ".join(str(w) for w in dims) + ("," if len(dims) == 1 else "") + ")"
        hint = ""
        if len(shape) == len(dims) and dims and isinstance(dims[0], int) and fits(dims[1:], shape[1:]):
            hint = " (the model was exported with a fixed batch size; export it with a dynamic batch axis)"
        raise ValueError(f"OnnxModule: input {self.input_names[i]!r} has shape {tuple(shape)}, expected {want}{hint}")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        xs = self._bind(args, kwargs)
        state = _autograd._state
        grad_on = state.enabled
        fast = not (grad_on and self.training)  # arrays only: nothing will be recorded
        if fast:
            for x in xs:
                if isinstance(x, Tensor):
                    fast = False
                    break
        env = self._template[:]
        for slot, owner, key in self._param_slots:
            p = owner._parameters[key]
            env[slot] = p.data if fast else p
        for slot, x in zip(self._input_slots, xs):
            env[slot] = x
        plan = self._plan_full
        key = None
        if self._cached_slots:
            key = tuple(_data(x).shape for x in xs)
            hit = self._shape_cache.get(key)
            if hit is not None:
                for slot, v in hit:
                    env[slot] = v
                plan = self._plan_hit
                key = None
        fns = plan[0] if fast else plan[1]
        out: Any = None
        if fast:
            state.enabled = False
        try:
            for f, ins, out, free in zip(fns, plan[2], plan[3], plan[4]):
                n = len(ins)
                if n == 1:
                    r = f(env[ins[0]])
                elif n == 2:
                    r = f(env[ins[0]], env[ins[1]])
                else:
                    r = f(*[env[i] for i in ins])
                if out.__class__ is int:
                    env[out] = r
                else:
                    for o, v in zip(out, r):
                        env[o] = v
                if free:
                    for i in free:
                        env[i] = None
        except Exception as exc:
            _annotate(exc, self._step_names.get(out))
            raise
        finally:
            if fast:
                state.enabled = grad_on
        if key is not None:
            if len(self._shape_cache) >= 16:
                self._shape_cache.clear()
            self._shape_cache[key] = [(s, env[s]) for s in self._cached_slots]
        outs = []
        for s, shared in zip(self._output_slots, self._output_shared):
            v = env[s]
            if not isinstance(v, Tensor):  # constants and cached shape values are the module's: copies
                v = Tensor._from_op(np.array(v) if shared else np.asarray(v), None, 0)
            outs.append(v)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ---- plans: the step lists, with layer steps bound to this module's (current) children -----
    def _submodule(self, path: str) -> Module:
        m: Module = self
        for p in path.split(".") if path else ():
            child = m._modules[p]
            assert child is not None
            m = child
        return m

    def _make_plans(self) -> None:
        fast_fns, slow_fns, ins_l, outs_l, layer_refs, plans = self._steps
        fast_fns, slow_fns = list(fast_fns), list(slow_fns)
        for k, (path, key, cls) in layer_refs.items():
            fast_fns[k], slow_fns[k] = _layer_fns(self._submodule(path), key, cls)
        built = [
            ([fast_fns[k] for k in idx], [slow_fns[k] for k in idx], [ins_l[k] for k in idx],
             [outs_l[k] for k in idx], fr)
            for idx, fr in plans
        ]
        od = object.__setattr__
        od(self, "_plan_full", built[0])
        od(self, "_plan_hit", built[-1])
        od(self, "_param_slots", [(s, self._submodule(path), key) for s, path, key in self._param_refs])

    def __setstate__(self, state: Dict[str, Any]) -> None:  # copy.deepcopy: bind to the copy's layers
        super().__setstate__(state)
        if "_steps" in self.__dict__:
            self._make_plans()

    # ---- dtype: float constants follow the parameters (module.double() for gradient checks) --
    def _on_params_changed(self) -> None:
        if "_float_consts" not in self.__dict__:
            return
        dt = None
        for p in self.parameters():
            if p.data.dtype.kind == "f":
                dt = p.data.dtype
                break
        if dt is None or dt == self._const_dtype:
            return
        object.__setattr__(self, "_const_dtype", dt)
        for slot, value in self._float_consts:
            self._template[slot] = value.astype(dt)
        self._shape_cache.clear()

    def extra_repr(self) -> str:
        ins = ", ".join(
            f"{n}: ({', '.join(str(d) for d in dims)})" if dims is not None else n
            for n, dims in zip(self.input_names, self._input_dims)
        )
        return f"opset={self.opset}, inputs=[{ins}], outputs={self.output_names}"


def _annotate(exc: BaseException, where: Optional[str]) -> None:
    """Prefix an error raised inside a step with the ONNX node it came from (one-string messages only)."""
    if where is None or len(exc.args) != 1 or not isinstance(exc.args[0], str):
        return
    if not exc.args[0].startswith("ONNX node"):
        exc.args = (f"ONNX node {where}: {exc.args[0]}",)


def _layer_fns(owner: Module, key: str, cls: type) -> Tuple[Callable[..., Any], Callable[..., Any]]:
    """A layer step's two callables. The array path calls the layer's ``_fast`` unless the layer was
    replaced (fine-tuning a new head) or has forward hooks: then the module itself is called."""
    mods = owner._modules

    def fast(*xs: Any) -> Any:
        m: Any = mods[key]
        own = type(m) is cls
        if own and not m._forward_hooks:
            return m._fast(*xs)
        return _unwrap(m(*xs))

    def slow(*xs: Any) -> Any:
        return cast(Any, mods[key])(*xs)

    return fast, slow


# ----------------------------------------------------------------------------------------------
# loading


def load(model: Any) -> OnnxModule:
    """Import an ONNX model as a fastconv module, in eval mode.

    ``model``: a path (str or path-like) to a ``.onnx`` file, an ``onnx.ModelProto``, the
    serialized bytes, or a binary file object. Raises :class:`UnsupportedOperatorError` (a
    ``ValueError``) listing every operator the model uses that fastconv cannot run, and
    ``ValueError`` for an opset outside ``MIN_OPSET..MAX_OPSET`` or a malformed graph. Needs
    the ``onnx`` package (``pip install 'fastconv[onnx]'``).

    >>> from onnx import helper, TensorProto
    >>> x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    >>> y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x_info], [y_info])
    >>> onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    >>> model = fastconv.onnx.load(onnx_model)
    >>> model(np.array([[-1.0, 0.5, 2.0]], np.float32)).numpy().tolist()
    [[0.0, 0.5, 2.0]]
    """
    onnx = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto = onnx.load_from_string(bytes(model))
    elif isinstance(model, (str, os.PathLike)):
        proto = onnx.load(os.fspath(model))
    elif hasattr(model, "read"):
        proto = onnx.load(model)
    else:
        raise TypeError(
            f"fastconv.onnx.load: expected a path, bytes, a file object or an onnx.ModelProto, "
            f"got {type(model).__name__}"
        )
    return _Builder(onnx, proto).build()


_IDENT = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\Z")
_RESERVED = set(dir(OnnxModule)) | set(dir(Scope)) | {
    "training", "opset", "producer", "input_names", "output_names", "initializer_names"}


def _sanitize(name: str) -> Optional[str]:
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")
    return s or None


def _scope_path(node_name: str) -> Optional[str]:
    """The module path in a PyTorch-style node name: '/layer1/layer1.0/relu/Relu' -> 'layer1.0.relu'
    (a Sequential child's scope repeats its parent's name: 'layer1', then 'layer1.0')."""
    if not node_name.startswith("/"):
        return None
    parts = node_name[1:].split("/")[:-1]
    path: List[str] = []
    prev: Optional[str] = None
    for c in parts:
        path.append(c[len(prev) + 1:] if prev is not None and c.startswith(prev + ".") else c)
        prev = c
    p = ".".join(path)
    return p if path and _IDENT.match(p) else None


def _f32(v: Any) -> float:
    """A float32 attribute as the shortest Python float that rounds to it (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(np.asarray(v).reshape(-1)[0])))


class _Spec:
    """What a builder makes of a node: a layer module over input 0, or a function over some inputs.

    ``inputs``: the node's input positions passed at run time (the others were read as constants
    by the builder). ``shape_inputs``: those whose *values* decide the output's shape (a Reshape's
    target), for the shape-chain cache.
    """

    __slots__ = ("fn", "inputs", "layer", "param_names", "shape_inputs")

    def __init__(self, fn: Optional[Callable[..., Any]] = None, inputs: Sequence[int] = (0,),
                 layer: Optional[Module] = None, param_names: Optional[Dict[str, str]] = None,
                 shape_inputs: Sequence[int] = ()) -> None:
        self.fn = fn
        self.inputs = tuple(inputs)
        self.layer = layer
        self.param_names = param_names or {}
        self.shape_inputs = tuple(shape_inputs)


_ALIAS = "alias"
BuildResult = Union[_Spec, str, Tuple[str, List[np.ndarray]]]


class _Ctx:
    """One node, as its builder sees it."""

    def __init__(self, b: _Builder, node: Any, index: int) -> None:
        self.b = b
        self.op: str = node.op_type
        self.node_name: str = node.name
        self.name: str = node.name or f"{node.op_type}_{index}"
        self.inputs = [b.resolve(n) if n else "" for n in node.input]
        self.raw_inputs = list(node.input)
        self.outputs = list(node.output)
        self.opset = b.opset
        self.attrs = {a.name: b.attr_value(a) for a in node.attribute}

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def ints(self, name: str, default: Sequence[int], n: Optional[int] = None) -> List[int]:
        v = [int(x) for x in self.attrs.get(name, default)]
        if n is not None and len(v) != n:
            raise _Unsupported(f"{name} of length {len(v)} (only 2-D {self.op} is supported)")
        return v

    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def const(self, i: int) -> Optional[np.ndarray]:
        """The input's value if it is known at load time (constants and initializers), else None."""
        if not self.has(i):
            return None
        name = self.inputs[i]
        if name in self.b.consts:
            return self.b.consts[name]
        return self.b.init_values.get(name)

    def need_const(self, i: int, what: str) -> Optional[np.ndarray]:
        v = self.const(i)
        if v is None and self.has(i):
            raise _Unsupported(f"{what} computed at run time")
        return v

    def is_param(self, i: int) -> bool:
        return self.has(i) and self.inputs[i] in self.b.float_inits

    def param(self, i: int) -> Parameter:
        return self.b.get_param(self.inputs[i])

    def const_shape(self, i: int) -> Optional[Tuple[int, ...]]:
        v = self.const(i)
        return None if v is None else v.shape


def _opset_version(proto: Any) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        if proto.ir_version and proto.ir_version < 3:
            return 1
        raise ValueError("fastconv.onnx.load: the model imports no opset of the default ONNX domain")
    return int(max(versions))


_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


class _Builder:
    """Turns a ModelProto into an OnnxModule: node by node (folding constants, collecting unsupported
    nodes), then naming and registering layers and parameters and laying out the run-time plan."""

    def __init__(self, onnx: Any, proto: Any) -> None:
        self.onnx = onnx
        self.proto = proto
        self.graph = proto.graph
        self.opset = _opset_version(proto)
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            hint = ""
            if self.opset < MIN_OPSET:
                hint = " (convert it first: onnx.version_converter.convert_version(model, 13))"
            raise ValueError(
                f"fastconv.onnx.load: the model uses opset {self.opset} of the default ONNX domain; "
                f"fastconv supports opsets {MIN_OPSET} to {MAX_OPSET}{hint}"
            )
        self.consts: Dict[str, np.ndarray] = {}  # known at load time (Constant nodes, folding)
        self.init_values: Dict[str, np.ndarray] = {}
        self.float_inits: Set[str] = set()  # initializers that become parameters when a step reads them
        self.params: Dict[str, Parameter] = {}
        self.alias: Dict[str, str] = {}
        self.runtime: Set[str] = set()  # computed at run time (graph inputs, step outputs)
        self.static: Dict[str, bool] = {}  # shape depends only on the graph inputs' shapes
        self.derived: Dict[str, bool] = {}  # value depends only on constants and shapes (cacheable)
        self.steps: List[Tuple[_Ctx, _Spec, List[str]]] = []
        self.problems: List[Tuple[str, str, str]] = []

    # ---- small services for the builders ---------------------------------------------------------
    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def attr_value(self, a: Any) -> Any:
        v = self.onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            return v.decode("utf-8", "replace")
        if isinstance(v, self.onnx.TensorProto):
            return self.to_array(v)
        if isinstance(v, list) and v and isinstance(v[0], bytes):
            return [s.decode("utf-8", "replace") for s in v]
        return v

    def to_array(self, t: Any) -> np.ndarray:
        if t.data_type == self.onnx.TensorProto.BFLOAT16 or t.data_type > 16:
            raise _Unsupported(f"tensors of type {self.onnx.TensorProto.DataType.Name(t.data_type)}")
        return cast(np.ndarray, self.onnx.numpy_helper.to_array(t))

    def get_param(self, name: str) -> Parameter:
        p = self.params.get(name)
        if p is None:
            p = self.params[name] = Parameter(self.init_values[name])
        return p

    # ---- nodes ------------------------------------------------------------------------------------
    def build(self) -> OnnxModule:
        g = self.graph
        if len(g.sparse_initializer):
            self.problems.append(("sparse_initializer", g.name or "graph", "sparse initializers"))
        for t in g.initializer:
            try:
                a = self.to_array(t)
            except _Unsupported as e:
                self.problems.append(("initializer", t.name, str(e)))
                continue
            if a.dtype == np.float16:
                a = a.astype(np.float32)
            if a.dtype.kind == "f":
                if not (a.flags.writeable and a.flags.c_contiguous):  # parameters are updated in place
                    a = np.array(a, order="C")
                self.float_inits.add(t.name)
            self.init_values[t.name] = a
            self.static[t.name] = True
            self.derived[t.name] = t.name not in self.float_inits
        inputs = [v for v in g.input if v.name not in self.init_values]
        for v in inputs:
            self.runtime.add(v.name)
            self.static[v.name] = True
            self.derived[v.name] = False

        self._scan_ops()
        for i, node in enumerate(g.node):
            self._build_node(node, i)

        outputs = [self.resolve(o.name) for o in g.output]
        for name in outputs:
            known = name in self.runtime or name in self.consts or name in self.init_values
            if not known and not self.problems:
                raise ValueError(f"fastconv.onnx.load: graph output {name!r} is never computed")
        if self.problems:
            raise UnsupportedOperatorError(self.problems)
        return self._assemble(inputs, outputs)

    def _scan_ops(self) -> None:
        """Unknown operator types and foreign domains, all of them, before anything is built."""
        for i, node in enumerate(self.graph.node):
            name = node.name or f"{node.op_type}_{i}"
            if node.domain not in _DEFAULT_DOMAINS:
                self.problems.append((f"{node.domain}::{node.op_type}", name,
                                      "operators outside the default ONNX domain are not supported"))
            elif node.op_type not in _BUILDERS:
                self.problems.append((node.op_type, name, ""))

    def _build_node(self, node: Any, index: int) -> None:
        if node.domain not in _DEFAULT_DOMAINS or node.op_type not in _BUILDERS:
            self._mark_unknown(node)
            return
        try:
            ctx = _Ctx(self, node, index)
            for n in ctx.inputs:
                if n and n not in self.runtime and n not in self.consts and n not in self.init_values:
                    raise ValueError(f"input {n!r} is not defined before this node")
            for n in node.output:
                if n and (n in self.runtime or n in self.consts or n in self.alias or n in self.init_values):
                    raise ValueError(f"output {n!r} is defined twice")
            self._place(ctx, _BUILDERS[node.op_type](ctx))
        except _Unsupported as e:
            self.problems.append((node.op_type, node.name or f"{node.op_type}_{index}", str(e)))
            self._mark_unknown(node)
        except Exception as e:
            if self.problems:  # the model cannot load anyway: report what is unsupported
                self._mark_unknown(node)
                return
            raise ValueError(f"fastconv.onnx.load: node {node.name or index!r} ({node.op_type}): {e}") from e

    def _mark_unknown(self, node: Any) -> None:
        for n in node.output:
            if n:
                self.runtime.add(n)
                self.static[n] = self.derived[n] = False

    def _place(self, ctx: _Ctx, spec: BuildResult) -> None:
        outs = ctx.outputs
        if isinstance(spec, str):  # _ALIAS
            self.alias[outs[0]] = ctx.inputs[0]
            return
        if isinstance(spec, tuple):  # ("const", values)
            for n, v in zip(outs, spec[1]):
                if n:
                    self.consts[n] = v
                    self.static[n] = self.derived[n] = True
            return
        ins = [ctx.inputs[i] for i in spec.inputs]
        known = lambda n: n in self.consts or (n in self.init_values and n not in self.float_inits)  # noqa: E731
        if spec.layer is None and spec.fn is not None and ins and all(known(n) for n in ins):
            vals = [self.consts[n] if n in self.consts else self.init_values[n] for n in ins]
            r = spec.fn(*vals)
            for n, v in zip(outs, r if len(outs) > 1 else (r,)):
                if n:
                    self.consts[n] = np.asarray(_unwrap(v))
                    self.static[n] = self.derived[n] = True
            return
        static = all(self.static.get(n, False) for n in ins) and all(
            self.derived.get(ctx.inputs[i], False) for i in spec.shape_inputs
        )
        if ctx.op == "Shape":
            derived = self.static.get(ins[0], False)
        else:
            derived = spec.layer is None and all(self.derived.get(n, False) for n in ins)
        for n in outs:
            if n:
                self.runtime.add(n)
                self.static[n] = static
                self.derived[n] = derived
        self.steps.append((ctx, spec, ins))

    # ---- naming and registration -----------------------------------------------------------------
    @staticmethod
    def _taken(owner: Module, name: str) -> bool:
        return (name in owner._modules or name in owner._parameters or name in owner._buffers
                or name in _RESERVED or name in owner.__dict__)

    def _free_name(self, owner: Module, name: str) -> str:
        if not self._taken(owner, name):
            return name
        k = 1
        while self._taken(owner, f"{name}_{k}"):
            k += 1
        return f"{name}_{k}"

    def _put(self, root: Module, path: str, obj: Union[Module, Parameter]) -> Optional[Tuple[Module, str]]:
        """Register ``obj`` at dotted ``path`` (creating Scopes); None if the path collides."""
        parts = path.split(".")
        node = root
        for p in parts[:-1]:
            child = node._modules.get(p)
            if child is None:
                if self._taken(node, p):
                    return None
                child = Scope()
                node.add_module(p, child)
            elif not isinstance(child, Scope):
                return None
            node = child
        last = parts[-1]
        if self._taken(node, last):
            return None
        if isinstance(obj, Module):
            node.add_module(last, obj)
        else:
            node.register_parameter(last, obj)
        return node, last

    def _layer_path(self, spec: _Spec) -> Optional[str]:
        """The common prefix P of the layer's parameters when all are named 'P.<attribute>'."""
        prefixes = set()
        for attr, raw in spec.param_names.items():
            if not raw.endswith("." + attr):
                return None
            prefixes.add(raw[: -len(attr) - 1])
        if len(prefixes) != 1:
            return None
        p = prefixes.pop()
        return p if _IDENT.match(p) else None

    def _place_layer(self, m: OnnxModule, ctx: _Ctx, layer: Module, spec: _Spec) -> Tuple[Module, str]:
        """At the parameters' common prefix, else at the module path of a PyTorch-style node name,
        else under the sanitised node name."""
        paths = [p for p in (self._layer_path(spec), _scope_path(ctx.node_name)) if p]
        for path in paths:
            placed = self._put(m, path, layer)
            if placed:
                return placed
        for path in paths:  # a module called twice (a reused ReLU): relu, relu_1, ...
            head, _, last = path.rpartition(".")
            for k in range(1, 100):
                placed = self._put(m, f"{head}.{last}_{k}" if head else f"{last}_{k}", layer)
                if placed:
                    return placed
        key = self._free_name(m, _sanitize(ctx.name) or ctx.op.lower())
        m.add_module(key, layer)
        return m, key

    def _assemble(self, inputs: List[Any], outputs: List[str]) -> OnnxModule:
        m = OnnxModule()
        slots: Dict[str, int] = {}  # every value a step or an output reads or writes

        def slot(name: str) -> int:
            s = slots.get(name)
            if s is None:
                s = slots[name] = len(slots)
            return s

        input_slots = [slot(v.name) for v in inputs]
        template_consts: Dict[int, np.ndarray] = {}
        param_slots: List[Tuple[int, Module, str]] = []
        param_owner: Dict[str, Tuple[Module, str]] = {}
        init_names: Dict[str, str] = {}

        def value_slot(name: str) -> int:
            s = slot(name)
            if name in self.float_inits:
                if name not in param_owner:
                    p = self.get_param(name)
                    placed = self._put(m, name, p) if _IDENT.match(name) else None
                    if placed is None:
                        key = self._free_name(m, _sanitize(name) or "param")
                        m.register_parameter(key, p)
                        placed = (m, key)
                    param_owner[name] = placed
                    init_names[_qualified(m, *placed)] = name
                    param_slots.append((s, *placed))
            elif name in self.consts:
                template_consts[s] = self.consts[name]
            elif name in self.init_values:
                template_consts[s] = self.init_values[name]
            return s

        fast_fns: List[Optional[Callable[..., Any]]] = []
        slow_fns: List[Optional[Callable[..., Any]]] = []
        ins_l: List[Tuple[int, ...]] = []
        outs_l: List[Union[int, Tuple[int, ...]]] = []
        layer_refs: Dict[int, Tuple[str, str, type]] = {}  # step -> (owner path, key, class)
        step_names: Dict[Any, str] = {}
        cacheable: List[bool] = []
        for ctx, spec, ins in self.steps:
            in_slots = tuple(value_slot(n) for n in ins)
            out_slots = tuple(slot(n) if n else slot(f"\0unused{len(slots)}") for n in ctx.outputs)
            if spec.layer is not None:
                owner, key = self._place_layer(m, ctx, spec.layer, spec)
                for attr, raw in spec.param_names.items():
                    init_names[_qualified(m, spec.layer, attr)] = raw
                layer_refs[len(fast_fns)] = (_qualified(m, owner, ""), key, type(spec.layer))
                fast_fns.append(None)
                slow_fns.append(None)
            else:
                fast_fns.append(spec.fn)
                slow_fns.append(spec.fn)
            out = out_slots[0] if len(out_slots) == 1 else out_slots
            step_names[out] = f"{ctx.name!r} ({ctx.op})"
            ins_l.append(in_slots)
            outs_l.append(out)
            cacheable.append(all(self.derived.get(n, False) for n in ctx.outputs if n))

        output_slots = [value_slot(n) for n in outputs]
        template: List[Any] = [None] * len(slots)
        pdt = next((p.data.dtype for p in m.parameters() if p.data.dtype.kind == "f"), np.dtype(np.float32))
        float_consts = []
        for s, v in template_consts.items():
            template[s] = v
            if isinstance(v, np.ndarray) and v.dtype == pdt:
                float_consts.append((s, v))

        cached_slots: List[int] = []
        for k, c in enumerate(cacheable):
            if c:
                o = outs_l[k]
                cached_slots += [o] if isinstance(o, int) else list(o)

        # a value's slot is cleared after its last reader, unless it must survive the call
        keep = set(output_slots) | set(input_slots) | set(cached_slots) | set(template_consts)
        keep |= {s for s, _, _ in param_slots}

        def frees(indices: List[int]) -> List[Tuple[int, ...]]:
            last = {}
            for k in indices:
                for s in ins_l[k]:
                    last[s] = k
            out: Dict[int, List[int]] = {k: [] for k in indices}
            for s, k in last.items():
                if s not in keep:
                    out[k].append(s)
            return [tuple(out[k]) for k in indices]

        everything = list(range(len(fast_fns)))
        plans = [(everything, frees(everything))]
        if cached_slots:  # the plan for calls whose shape-chain values come from the cache
            hit = [k for k in everything if not cacheable[k]]
            plans.append((hit, frees(hit)))

        specs: List[Any] = []
        dims: List[Optional[Tuple[Union[int, str], ...]]] = []
        floats: List[bool] = []
        for v in inputs:
            tt = v.type.tensor_type
            if v.type.HasField("tensor_type") and tt.HasField("shape"):
                d = tuple(x.dim_value if x.HasField("dim_value") else (x.dim_param or "?") for x in tt.shape.dim)
                dims.append(d)
                specs.append(d if all(isinstance(x, int) for x in d) else _CHECK_DIMS)
            else:
                dims.append(None)
                specs.append(None)
            floats.append(bool(v.type.HasField("tensor_type") and tt.elem_type in _FLOAT_TYPES))

        od = object.__setattr__
        od(m, "opset", self.opset)
        od(m, "producer", f"{self.proto.producer_name} {self.proto.producer_version}".strip())
        od(m, "input_names", [v.name for v in inputs])
        od(m, "output_names", [o.name for o in self.graph.output])
        od(m, "initializer_names", init_names)
        od(m, "_input_index", {v.name: i for i, v in enumerate(inputs)})
        od(m, "_input_specs", specs)
        od(m, "_input_dims", dims)
        od(m, "_input_float", floats)
        od(m, "_input_slots", input_slots)
        od(m, "_output_slots", output_slots)
        od(m, "_output_shared", [s in template_consts or s in cached_slots for s in output_slots])
        od(m, "_param_refs", [(s, _qualified(m, owner, ""), key) for s, owner, key in param_slots])
        od(m, "_template", template)
        od(m, "_float_consts", float_consts)
        od(m, "_const_dtype", pdt)
        od(m, "_steps", (fast_fns, slow_fns, ins_l, outs_l, layer_refs, plans))
        od(m, "_cached_slots", cached_slots)
        od(m, "_shape_cache", {})
        od(m, "_step_names", step_names)
        m._make_plans()
        m.eval()
        return m


def _qualified(root: Module, owner: Module, key: str) -> str:
    """The dotted name of ``owner.key`` in ``root`` (``key=""``: the owner's own path)."""
    for name, mod in root.named_modules():
        if mod is owner:
            return ".".join(p for p in (name, key) if p)
    return key


# ----------------------------------------------------------------------------------------------
# the operators


def _auto_pad(ctx: _Ctx) -> str:
    a = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if a not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"unknown auto_pad {a!r}")
    return cast(str, a)


def _pads(ctx: _Ctx) -> List[int]:
    p = ctx.ints("pads", [0, 0, 0, 0], 4)
    if min(p) < 0:
        raise ValueError(f"negative pads {p}")
    return p


def _b_conv(ctx: _Ctx) -> BuildResult:
    wshape = ctx.const_shape(1)
    ks = ctx.attr("kernel_shape")
    if ks is not None and len(ks) != 2:
        raise _Unsupported(f"{len(ks)}-D convolution (only 2-D is supported)")
    if wshape is not None and len(wshape) != 4:
        raise _Unsupported(f"{len(wshape) - 2}-D convolution (only 2-D is supported)")
    strides = ctx.ints("strides", [1, 1], 2)
    dil = ctx.ints("dilations", [1, 1], 2)
    group = int(ctx.attr("group", 1))
    keff = None
    if wshape is not None or ks is not None:
        k = list(wshape[2:]) if wshape is not None else [int(v) for v in ks]
        keff = tuple((kk - 1) * d + 1 for kk, d in zip(k, dil))
    rule = _PadRule(_auto_pad(ctx), _pads(ctx), keff, strides)
    has_b = ctx.has(2)
    if ctx.is_param(1) and (not has_b or ctx.is_param(2)):
        layer = Conv2d(ctx.param(1), ctx.param(2) if has_b else None, (strides[0], strides[1]), (dil[0], dil[1]),
                       group, rule)
        names = {"weight": ctx.raw_inputs[1]}
        if has_b:
            names["bias"] = ctx.raw_inputs[2]
        return _Spec(layer=layer, param_names=names)

    def conv(x: Value, w: Value, b: Value = None) -> Value:  # weights computed or fed at run time
        ws = _data(w).shape[2:]
        q = rule.quad(x.shape[-2], x.shape[-1], tuple((kk - 1) * d + 1 for kk, d in zip(ws, dil)))
        if _symmetric(q):
            return F.conv2d(x, w, b, strides, (q[0], q[2]), dil, group)
        return F.conv2d(_pad(x, ((q[0], q[1]), (q[2], q[3]))), w, b, strides, 0, dil, group)

    return _Spec(conv, (0, 1, 2) if has_b else (0, 1))


def _b_gemm(ctx: _Ctx) -> BuildResult:
    alpha = _f32(ctx.attr("alpha", 1.0))
    beta = _f32(ctx.attr("beta", 1.0))
    ta, tb = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    has_c = ctx.has(2)
    bshape = ctx.const_shape(1)
    if ctx.is_param(1) and tb == 1 and ta == 0 and alpha == 1.0 and bshape is not None and len(bshape) == 2:
        if not has_c or (ctx.is_param(2) and beta == 1.0 and ctx.const_shape(2) == (bshape[0],)):
            names = {"weight": ctx.raw_inputs[1]}
            if has_c:
                names["bias"] = ctx.raw_inputs[2]
            return _Spec(layer=Linear(ctx.param(1), ctx.param(2) if has_c else None), param_names=names)

    def gemm(a: Value, b: Value, c: Value = None) -> Value:
        y = (a.T if ta else a) @ (b.T if tb else b)
        if alpha != 1.0:
            y = y * alpha
        if c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return y

    return _Spec(gemm, (0, 1, 2) if has_c else (0, 1))


def _b_binary(fn: Callable[[Value, Value], Value]) -> Callable[[_Ctx], BuildResult]:
    def build(ctx: _Ctx) -> BuildResult:
        return _Spec(fn, (0, 1))  # opset >= 7: NumPy broadcasting

    return build


def _b_layer(cls: Callable[..., Module], **kw: Callable[[_Ctx], Any]) -> Callable[[_Ctx], BuildResult]:
    def build(ctx: _Ctx) -> BuildResult:
        return _Spec(layer=cls(**{k: v(ctx) for k, v in kw.items()}))

    return build


def _b_softmax(cls: type) -> Callable[[_Ctx], BuildResult]:
    def build(ctx: _Ctx) -> BuildResult:
        legacy = ctx.opset < 13  # before 13: the input seen as 2-D at axis (default 1)
        return _Spec(layer=cls(int(ctx.attr("axis", 1 if legacy else -1)), coerce_2d=legacy))

    return build


def _pool_common(ctx: _Ctx) -> Tuple[List[int], List[int], List[int], bool, _PadRule]:
    ks = ctx.attr("kernel_shape")
    if ks is None:
        raise ValueError("kernel_shape is required")
    if len(ks) != 2:
        raise _Unsupported(f"{len(ks)}-D pooling (only 2-D is supported)")
    k = [int(v) for v in ks]
    strides = ctx.ints("strides", [1, 1], 2)
    dil = ctx.ints("dilations", [1, 1], 2)
    keff = tuple((kk - 1) * d + 1 for kk, d in zip(k, dil))
    return k, strides, dil, bool(ctx.attr("ceil_mode", 0)), _PadRule(_auto_pad(ctx), _pads(ctx), keff, strides)


def _b_maxpool(ctx: _Ctx) -> BuildResult:
    if len(ctx.outputs) > 1 and ctx.outputs[1]:
        raise _Unsupported("the Indices output")
    k, s, d, ceil_mode, rule = _pool_common(ctx)
    return _Spec(layer=MaxPool2d(k, s, d, ceil_mode, rule))


def _b_avgpool(ctx: _Ctx) -> BuildResult:
    k, s, d, ceil_mode, rule = _pool_common(ctx)
    if d != [1, 1]:
        raise _Unsupported(f"dilations {d}")
    return _Spec(layer=AvgPool2d(k, s, ceil_mode, bool(ctx.attr("count_include_pad", 0)), rule))


def _b_batchnorm(ctx: _Ctx) -> BuildResult:
    if int(ctx.attr("training_mode", 0)) or any(ctx.outputs[1:]):
        raise _Unsupported("training mode (running statistics as outputs)")
    if int(ctx.attr("spatial", 1)) != 1:
        raise _Unsupported("spatial=0")
    eps = _f32(ctx.attr("epsilon", 1e-5))
    momentum = float(f"{1.0 - _f32(ctx.attr('momentum', 0.9)):.7g}")
    mean, var = ctx.const(3), ctx.const(4)
    if ctx.is_param(1) and ctx.is_param(2) and mean is not None and var is not None:
        layer = BatchNorm2d(ctx.param(1), ctx.param(2), mean, var, eps, momentum)
        return _Spec(layer=layer, param_names={"weight": ctx.raw_inputs[1], "bias": ctx.raw_inputs[2]})

    def bn(x: Value, w: Value, b: Value, rm: Value, rv: Value) -> Value:
        return F.batch_norm(x, _data(rm), _data(rv), w, b, False, 0.1, eps)

    return _Spec(bn, (0, 1, 2, 3, 4))


def _b_dropout(ctx: _Ctx) -> BuildResult:
    if ctx.opset < 12:
        p = _f32(ctx.attr("ratio", 0.5))
    else:
        r = ctx.need_const(1, "the ratio")
        p = 0.5 if r is None else _f32(r)
        ctx.need_const(2, "training_mode")  # not consulted: train()/eval() decides, as for nn.Dropout
    mask = len(ctx.outputs) > 1 and bool(ctx.outputs[1])
    return _Spec(layer=Dropout(p, return_mask=mask, float_mask=ctx.opset < 10))


def _b_reshape(ctx: _Ctx) -> BuildResult:
    allowzero = int(ctx.attr("allowzero", 0))
    target = ctx.const(1)
    if target is not None:
        t = [int(v) for v in target.reshape(-1)]
        if allowzero or 0 not in t:
            shape = tuple(t)
            return _Spec(lambda x: _reshape_to(x, shape), (0,))
        return _Spec(lambda x: _reshape_to(x, _reshape_target(x.shape, t, 0)), (0,))

    def reshape(x: Value, s: Value) -> Value:
        return _reshape_to(x, _reshape_target(x.shape, np.asarray(s).reshape(-1), allowzero))

    return _Spec(reshape, (0, 1), shape_inputs=(1,))


def _b_concat(ctx: _Ctx) -> BuildResult:
    if "axis" not in ctx.attrs:
        raise ValueError("Concat needs an axis")
    return _Spec(_concat(int(ctx.attr("axis"))), range(len(ctx.inputs)))


def _b_constant(ctx: _Ctx) -> BuildResult:
    a = ctx.attrs
    if "value" in a:
        v = np.asarray(a["value"])
    elif "value_float" in a:
        v = np.array(a["value_float"], dtype=np.float32)
    elif "value_floats" in a:
        v = np.array(a["value_floats"], dtype=np.float32)
    elif "value_int" in a:
        v = np.array(a["value_int"], dtype=np.int64)
    elif "value_ints" in a:
        v = np.array(a["value_ints"], dtype=np.int64)
    else:
        raise _Unsupported(f"attribute {next(iter(a), 'none')}")
    return ("const", [v.astype(np.float32) if v.dtype == np.float16 else v])


def _b_constant_of_shape(ctx: _Ctx) -> BuildResult:
    v = ctx.attr("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    value, dtype = v[0], v.dtype

    def fill(shape: Value) -> np.ndarray:
        return np.full(tuple(int(s) for s in np.asarray(shape).reshape(-1)), value, dtype=dtype)

    return _Spec(fill, (0,), shape_inputs=(0,))


def _b_shape(ctx: _Ctx) -> BuildResult:
    end = ctx.attr("end")
    return _Spec(_shape_of(int(ctx.attr("start", 0)), None if end is None else int(end)), (0,))


def _axes_arg(ctx: _Ctx, since: int = 13) -> Tuple[str, Optional[List[int]]]:
    """("const", axes or None) from the attribute (before ``since``) or a constant input 1;
    ("input", None) when input 1 is computed at run time."""
    if ctx.opset < since:
        v = ctx.attr("axes")
        return ("const", None if v is None else [int(a) for a in v])
    if not ctx.has(1):
        return ("const", None)
    c = ctx.const(1)
    if c is not None:
        return ("const", [int(a) for a in c.reshape(-1)])
    return ("input", None)


def _b_unsqueeze(ctx: _Ctx) -> BuildResult:
    kind, axes = _axes_arg(ctx)
    if kind == "const":
        if axes is None:
            raise ValueError("Unsqueeze needs axes")
        ax = axes
        return _Spec(lambda x: x.reshape(_unsqueezed_shape(x.shape, ax)), (0,))
    return _Spec(lambda x, a: x.reshape(_unsqueezed_shape(x.shape, np.asarray(a).reshape(-1))), (0, 1),
                 shape_inputs=(1,))


def _b_squeeze(ctx: _Ctx) -> BuildResult:
    kind, axes = _axes_arg(ctx)
    if kind == "const":
        return _Spec(lambda x: x.reshape(_squeezed_shape(x.shape, axes)), (0,))
    return _Spec(lambda x, a: x.reshape(_squeezed_shape(x.shape, np.asarray(a).reshape(-1))), (0, 1),
                 shape_inputs=(1,))


def _b_cast(ctx: _Ctx) -> BuildResult:
    to = int(ctx.attr("to"))
    tp = ctx.b.onnx.TensorProto
    try:
        dt = np.dtype(ctx.b.onnx.helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        dt = None
    if dt is None or dt.kind not in "fiub" or to == tp.BFLOAT16 or to > 16:
        raise _Unsupported(f"cast to {tp.DataType.Name(to)}")
    return _Spec(_cast(dt), (0,))


def _b_slice(ctx: _Ctx) -> BuildResult:
    if ctx.opset < 10:
        consts: Tuple[Any, ...] = (ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None)
        runtime: Tuple[int, ...] = ()
    else:
        consts = tuple(ctx.const(i) for i in (1, 2, 3, 4))
        runtime = tuple(i for i in (1, 2, 3, 4) if ctx.has(i) and ctx.const(i) is None)
    if not runtime:
        starts, ends, axes, steps = (None if v is None else [int(a) for a in np.asarray(v).reshape(-1)]
                                     for v in consts)
        if starts is None or ends is None:
            raise ValueError("Slice needs starts and ends")
        st, en = starts, ends
        ax = axes if axes is not None else list(range(len(st)))
        cache: Dict[Tuple[int, ...], Tuple[slice, ...]] = {}

        def slice_const(x: Value) -> Value:
            idx = cache.get(x.shape)
            if idx is None:
                idx = cache[x.shape] = _slice_index(x.shape, st, en, ax, steps)
            return x[idx]

        return _Spec(slice_const, (0,))
    present = tuple(i for i in (1, 2, 3, 4) if ctx.has(i))

    def slice_rt(x: Value, *vals: Value) -> Value:
        got = dict(zip(present, vals))
        st, en = (np.asarray(got[i]).reshape(-1) for i in (1, 2))
        ax = np.asarray(got[3]).reshape(-1) if 3 in got else range(len(st))
        sp = np.asarray(got[4]).reshape(-1) if 4 in got else None
        return x[_slice_index(x.shape, st, en, ax, sp)]

    return _Spec(slice_rt, (0,) + present, shape_inputs=present)


def _b_transpose(ctx: _Ctx) -> BuildResult:
    perm = ctx.attr("perm")
    return _Spec(_transpose(None if perm is None else tuple(int(p) for p in perm)), (0,))


def _b_reduce_mean(ctx: _Ctx) -> BuildResult:
    keep = bool(int(ctx.attr("keepdims", 1)))
    kind, axes = _axes_arg(ctx, since=18)
    if kind != "const":
        raise _Unsupported("axes computed at run time")
    if axes is None and int(ctx.attr("noop_with_empty_axes", 0)):
        return _ALIAS

    def mean(x: Value) -> Value:
        ax = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
        x = _as_float(x)
        if isinstance(x, Tensor):
            return x.mean(dim=ax, keepdim=keep)
        return np.mean(x, axis=ax, keepdims=keep, dtype=x.dtype)

    return _Spec(mean, (0,))


def _b_pad(ctx: _Ctx) -> BuildResult:
    mode = ctx.attr("mode", "constant")
    if mode != "constant":
        raise _Unsupported(f"mode={mode!r}")
    axes = None
    if ctx.opset < 11:
        pads = ctx.attr("pads", ctx.attr("paddings"))
        value = _f32(ctx.attr("value", 0.0))
    else:
        pads = ctx.need_const(1, "pads")
        v = ctx.need_const(2, "constant_value")
        value = 0.0 if v is None or v.size == 0 else v.reshape(-1)[0]
        axes = ctx.need_const(3, "axes") if ctx.opset >= 18 else None
    if pads is None:
        raise ValueError("Pad needs pads")
    p = [int(v) for v in np.asarray(pads).reshape(-1)]

    def pad(x: Value) -> Value:
        nd = x.ndim
        ax = list(range(nd)) if axes is None else [int(a) % nd for a in np.asarray(axes).reshape(-1)]
        n = len(ax)
        if len(p) != 2 * n:
            raise ValueError(f"Pad: {len(p)} pads for {n} axes")
        per = [(0, 0)] * nd
        for i, a in enumerate(ax):
            per[a] = (p[i], p[i + n])
        grow = [(max(b, 0), max(e, 0)) for b, e in per]
        if any(b or e for b, e in grow):
            first = next(i for i, (b, e) in enumerate(grow) if b or e)
            x = _pad(x, grow[first:], value)
        if any(b < 0 or e < 0 for b, e in per):  # negative pads crop
            x = x[tuple(slice(-b if b < 0 else None, e if e < 0 else None) for b, e in per)]
        return x

    return _Spec(pad, (0,))


_BUILDERS: Dict[str, Callable[[_Ctx], BuildResult]] = {
    "Conv": _b_conv,
    "Gemm": _b_gemm,
    "MatMul": _b_binary(operator.matmul),
    "Add": _b_binary(operator.add),
    "Sub": _b_binary(operator.sub),
    "Mul": _b_binary(operator.mul),
    "Div": _b_binary(_div),
    "Relu": _b_layer(ReLU),
    "LeakyRelu": _b_layer(LeakyReLU, negative_slope=lambda c: _f32(c.attr("alpha", 0.01))),
    "Sigmoid": _b_layer(Sigmoid),
    "Tanh": _b_layer(Tanh),
    "Softmax": _b_softmax(Softmax),
    "LogSoftmax": _b_softmax(LogSoftmax),
    "MaxPool": _b_maxpool,
    "AveragePool": _b_avgpool,
    "GlobalAveragePool": _b_layer(GlobalAvgPool),
    "GlobalMaxPool": _b_layer(GlobalMaxPool),
    "BatchNormalization": _b_batchnorm,
    "Dropout": _b_dropout,
    "Flatten": _b_layer(Flatten, axis=lambda c: int(c.attr("axis", 1))),
    "Reshape": _b_reshape,
    "Concat": _b_concat,
    "Identity": lambda ctx: _ALIAS,
    "Constant": _b_constant,
    "ConstantOfShape": _b_constant_of_shape,
    "Shape": _b_shape,
    "Gather": lambda ctx: _Spec(_gather(int(ctx.attr("axis", 0))), (0, 1)),
    "Unsqueeze": _b_unsqueeze,
    "Squeeze": _b_squeeze,
    "Cast": _b_cast,
    "Slice": _b_slice,
    "Transpose": _b_transpose,
    "ReduceMean": _b_reduce_mean,
    "Pad": _b_pad,
}

#: The ONNX operator types (default domain) :func:`load` can import.
SUPPORTED_OPS = tuple(sorted(_BUILDERS))
