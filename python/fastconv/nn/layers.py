"""Layers with PyTorch's constructor arguments, attribute names, parameter
names and default initialisation; each is a thin wrapper over
:mod:`fastconv.functional`.

Images are NCHW. Layers with parameters (``Conv2d``, ``Linear``,
``BatchNorm2d``) return Tensors; the others return what they are given
(NumPy in, NumPy out).

>>> model = nn.Sequential(
...     nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
...     nn.Flatten(), nn.Linear(8 * 14 * 14, 10),
... )
>>> model(np.zeros((4, 1, 28, 28), np.float32)).shape
(4, 10)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterable, Iterator, Optional, TypeVar, Union, cast, overload

import numpy as np

from .. import _core
from .. import functional as F
from .._args import as_int, as_pair
from .._functions import Pad
from .._typing import ArrayT, DTypeLike, IntPair, OutputSize, Padding, Shape, TensorLike
from . import init
from ..tensor import Tensor
from .module import Module, Parameter
from ..autograd import is_grad_enabled


# --- inference on plain arrays -------------------------------------------------------------
# A Sequential run with nothing to record (grad mode off, or no Tensor that requires
# grad) chains its children on NumPy arrays: each library layer's _array_forward uses
# its parameters' arrays, and only the Sequential's result is wrapped in a Tensor. The
# same kernels run in the same order, so the numbers are those of calling the layers
# one by one; what goes is a Tensor wrapper per layer (LeNet-5 at batch 1: about
# 2.5 us of Python per layer). Conv2d, Linear, ReLU and MaxPool2d call their compiled
# fast path straight away (Flatten and Dropout in eval mode return the view or input
# F.flatten / F.dropout would), and hand whatever it declines (other dtypes, layouts,
# lists, bad shapes) to the functional op: LeNet-5 at batch 1, eval().prepack() under
# no_grad, 1 thread, went from 27.0-27.3 to 23.0-23.9 us per call (timeit, 20,000
# calls, two runs alternated with the functional-op forms). A child with forward hooks,
# a subclass that overrides forward, or a layer without an array form makes the whole
# Sequential take the ordinary path.


_ARRAY_CLASSES: dict[type, bool] = {}  # class -> has an array form its forward does not override


def _array_fn(m: Module) -> Any:
    """``m``'s computation on arrays, or None when it must run as a module."""
    cls = type(m)
    ok = _ARRAY_CLASSES.get(cls)
    if ok is None:
        of = getattr(cls, "_array_forward_of", None)
        ok = _ARRAY_CLASSES[cls] = of is not None and cls.forward is of
    if not ok or m._forward_hooks or not m._array_ready():
        return None
    return m._array_forward


def _data(t: Optional[Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.data

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

_T = TypeVar("_T")


def _pair_attr(v: Any, name: str, op: str) -> tuple[int, int]:
    return as_pair(v, name, op)


class Identity(Module):
    """Returns its input unchanged (constructor arguments are ignored, as PyTorch).

    >>> x = np.zeros(3)
    >>> nn.Identity()(x) is x
    True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: _T) -> _T:
        return input

    _array_forward_of = forward  # forward maps arrays to arrays as it is


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features).

    input (*, in_features) -> (*, out_features). Parameters ``weight`` (out, in)
    and ``bias`` (out,), Kaiming-uniform initialised as in PyTorch; ``dtype``
    float32 (default) or float64.

    >>> fc = nn.Linear(20, 5)
    >>> fc.weight.shape, fc.bias.shape
    ((5, 20), (5,))
    >>> fc(np.zeros((3, 20), np.float32)).shape
    (3, 5)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, dtype: DTypeLike = np.float32
    ) -> None:
        super().__init__()
        self.in_features = as_int(in_features, "in_features", "Linear")
        self.out_features = as_int(out_features, "out_features", "Linear")
        if self.in_features < 0 or self.out_features < 0:
            raise ValueError(f"Linear: feature counts must be non-negative, got ({in_features}, {out_features})")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        self.bias: Optional[Parameter] = Parameter(np.empty((self.out_features,), dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the parameters with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: TensorLike) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    _array_forward_of = forward

    def _array_forward(self, x: Any) -> Any:
        params = self._parameters
        w, b = cast(Parameter, params["weight"]).data, _data(params.get("bias"))
        y = _core.linear_fast(x, w, b)  # None: the general path (conversions, checks, errors)
        return F.linear(x, w, b) if y is None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution layer, as ``torch.nn.Conv2d``.

    input (N, in_channels, H, W) or unbatched (in_channels, H, W) ->
    (N, out_channels, OH, OW), see :func:`fastconv.functional.conv2d`.
    Parameters ``weight`` (out_channels, in_channels/groups, kH, kW) and
    ``bias`` (out_channels,). ``padding``: int, pair, ``'valid'`` or ``'same'``;
    ``padding_mode``: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    >>> conv = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)
    >>> conv
    Conv2d(3, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    >>> conv.weight.shape
    (16, 3, 3, 3)
    >>> conv(np.zeros((1, 3, 32, 32), np.float32)).shape
    (1, 16, 16, 16)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: Padding = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        op = "Conv2d"
        self.in_channels = as_int(in_channels, "in_channels", op)
        self.out_channels = as_int(out_channels, "out_channels", op)
        self.kernel_size = _pair_attr(kernel_size, "kernel_size", op)
        self.stride = _pair_attr(stride, "stride", op)
        self.dilation = _pair_attr(dilation, "dilation", op)
        self.groups = as_int(groups, "groups", op)
        if self.groups <= 0:
            raise ValueError(f"{op}: groups must be a positive integer, got {groups}")
        if self.in_channels % self.groups:
            raise ValueError(f"{op}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"{op}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0 or min(self.dilation) <= 0:
            raise ValueError(
                f"{op}: kernel_size, stride and dilation must be positive, got {self.kernel_size}, "
                f"{self.stride}, {self.dilation}"
            )
        self.padding: Union[str, tuple[int, int]]
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            pad = _pair_attr(padding, "padding", op)
            self.padding = pad
            if min(pad) < 0:
                raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{op}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // self.groups, kh, kw), dtype))
        self.bias: Optional[Parameter] = Parameter(np.empty((self.out_channels,), dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the parameters with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _explicit_pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) for the non-zero padding modes."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            th = self.dilation[0] * (self.kernel_size[0] - 1)
            tw = self.dilation[1] * (self.kernel_size[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        ph, pw = cast("tuple[int, int]", self.padding)  # not 'valid' / 'same': a pair
        return (ph, ph, pw, pw)

    def forward(self, input: TensorLike) -> Tensor:
        if "_pack" in self.__dict__ and self.padding_mode == "zeros":
            raw = F._untracked(input, self.weight, self.bias)
            if raw is not None:  # nothing to record: the array form, with the kept panels
                return F._wrap(self._array_forward(raw[0]))
        if self.padding_mode != "zeros":
            pads = self._explicit_pads()
            if any(pads):
                input = Pad.apply(input, pads, self.padding_mode)
            return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    _array_forward_of = forward

    def _array_ready(self) -> bool:
        return self.padding_mode == "zeros"

    def _array_forward(self, x: Any) -> Any:
        params = self._parameters
        w, b = cast(Parameter, params["weight"]).data, _data(params.get("bias"))
        pack = self.__dict__.get("_pack")
        if pack is not None:
            if w is pack.weight:
                y = _core.conv2d_fast_packed(x, w, b, self.stride, self.padding, self.dilation, self.groups, pack)
                if y is not None:
                    return y
            else:  # the weight was replaced: its panels are of no use
                self._unpack_self()
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    # --- prepack (Module.prepack): the weight's panels kept while it is read-only
    def _prepack_self(self) -> None:
        if "_pack" in self.__dict__:
            return
        w = cast(Parameter, self._parameters["weight"]).data
        if not (isinstance(w, np.ndarray) and type(w) is np.ndarray and w.ndim == 4 and w.flags.c_contiguous
                and w.flags.aligned and w.dtype in (np.float32, np.float64)):
            return  # the call would copy it anyway: nothing to keep
        was_writeable = bool(w.flags.writeable)
        w.flags.writeable = False
        object.__setattr__(self, "_pack", _core.ConvWeightPack(w, self.groups))
        object.__setattr__(self, "_pack_made_readonly", was_writeable)

    def _unpack_self(self) -> None:
        pack = self.__dict__.pop("_pack", None)
        if pack is not None and self.__dict__.pop("_pack_made_readonly", False):
            pack.weight.flags.writeable = True

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class MaxPool2d(Module):
    """2-D max pooling layer, see :func:`fastconv.functional.max_pool2d`.

    (N, C, H, W) -> (N, C, OH, OW); with ``return_indices`` the call returns
    ``(output, indices)``. ``stride`` defaults to ``kernel_size``.

    >>> nn.MaxPool2d(2)(np.zeros((1, 3, 8, 8))).shape
    (1, 3, 4, 4)
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: Optional[IntPair] = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: TensorLike) -> Any:
        return F.max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )

    _array_forward_of = forward

    def _array_ready(self) -> bool:
        return not self.return_indices

    def _array_forward(self, x: Any) -> Any:
        y = _core.max_pool2d_fast(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        if y is None:
            return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        return y

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """2-D average pooling layer, see :func:`fastconv.functional.avg_pool2d`.

    (N, C, H, W) -> (N, C, OH, OW); ``stride`` defaults to ``kernel_size``.

    >>> nn.AvgPool2d(2)(np.ones((1, 1, 4, 4))).tolist()
    [[[[1.0, 1.0], [1.0, 1.0]]]]
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: Optional[IntPair] = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: ArrayT) -> ArrayT:
        return F.avg_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
            self.divisor_override,
        )

    _array_forward_of = forward  # forward maps arrays to arrays as it is

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size``; ``AdaptiveAvgPool2d(1)`` is global average pooling.

    (N, C, H, W) -> (N, C, *output_size); see :func:`fastconv.functional.adaptive_avg_pool2d`.

    >>> nn.AdaptiveAvgPool2d((6, 6))(np.zeros((2, 256, 13, 13))).shape
    (2, 256, 6, 6)
    """

    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: ArrayT) -> ArrayT:
        return F.adaptive_avg_pool2d(input, self.output_size)

    _array_forward_of = forward  # forward maps arrays to arrays as it is

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed ``output_size``; see :func:`fastconv.functional.adaptive_max_pool2d`.

    (N, C, H, W) -> (N, C, *output_size), or ``(output, indices)`` with ``return_indices``.

    >>> nn.AdaptiveMaxPool2d(1)(np.arange(16.0).reshape(1, 1, 4, 4)).tolist()
    [[[[15.0]]]]
    """

    def __init__(self, output_size: OutputSize, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: TensorLike) -> Any:
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxUnpool2d(Module):
    """Partial inverse of :class:`MaxPool2d`: called with ``(input, indices, output_size=None)``.

    >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    >>> y, idx = pool(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> unpool(y, idx).shape
    (1, 1, 4, 4)
    """

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding

    def forward(
        self, input: TensorLike, indices: TensorLike, output_size: Optional[Shape] = None
    ) -> Union[Tensor, np.ndarray]:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Flatten(Module):
    """Merge dims ``start_dim..end_dim``: (N, C, H, W) -> (N, C*H*W) by default.

    >>> nn.Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: ArrayT) -> ArrayT:
        return F.flatten(input, self.start_dim, self.end_dim)

    _array_forward_of = forward

    def _array_forward(self, x: Any) -> Any:
        if type(x) is np.ndarray and x.ndim >= 2 and self.start_dim == 1 and self.end_dim == -1:
            if x.dtype == np.float32 or x.dtype == np.float64:
                return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # what F.flatten returns for these
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class ReLU(Module):
    """``max(x, 0)`` elementwise; any shape. ``inplace`` is accepted and ignored (results are fresh).

    >>> nn.ReLU()(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace  # accepted for compatibility; results are always fresh arrays

    def forward(self, input: ArrayT) -> ArrayT:
        return F.relu(input)

    _array_forward_of = forward

    def _array_forward(self, x: Any) -> Any:
        y = _core.relu_fast(x)  # None: the general path
        return F.relu(x) if y is None else y

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x`` elementwise; any shape.

    >>> nn.LeakyReLU(0.1)(np.array([-1.0, 2.0])).tolist()
    [-0.1, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: ArrayT) -> ArrayT:
        return F.leaky_relu(input, self.negative_slope)

    _array_forward_of = forward  # forward maps arrays to arrays as it is

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise; any shape.

    >>> nn.Sigmoid()(np.array([0.0])).tolist()
    [0.5]
    """

    def forward(self, input: ArrayT) -> ArrayT:
        return F.sigmoid(input)

    _array_forward_of = forward  # forward maps arrays to arrays as it is


class Tanh(Module):
    """Hyperbolic tangent elementwise; any shape.

    >>> nn.Tanh()(np.array([0.0])).tolist()
    [0.0]
    """

    def forward(self, input: ArrayT) -> ArrayT:
        return F.tanh(input)

    _array_forward_of = forward  # forward maps arrays to arrays as it is


def _implicit_dim(ndim: int) -> int:
    # PyTorch's legacy rule when dim is None
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """Softmax along ``dim`` (logits (N, C): ``dim=1``); any shape.

    ``dim=None`` uses PyTorch's legacy choice (0 for 0-, 1- and 3-D input, else 1).

    >>> nn.Softmax(dim=1)(np.zeros((1, 4))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim: Optional[int] = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: ArrayT) -> ArrayT:
        dim = self.dim if self.dim is not None else _implicit_dim(np.ndim(np.asarray(input)))
        return F.softmax(input, dim)

    _array_forward_of = forward  # forward maps arrays to arrays as it is

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Log-softmax along ``dim`` (numerically stable); any shape.

    >>> np.exp(nn.LogSoftmax(dim=1)(np.zeros((1, 2)))).tolist()
    [[0.5, 0.5]]
    """

    def forward(self, input: ArrayT) -> ArrayT:
        dim = self.dim if self.dim is not None else _implicit_dim(np.ndim(np.asarray(input)))
        return F.log_softmax(input, dim)

    _array_forward_of = forward  # forward maps arrays to arrays as it is


class Dropout(Module):
    """Inverted dropout in training mode, identity in eval mode; any shape.

    >>> drop = nn.Dropout(p=0.5)
    >>> sorted(set(drop(np.ones(100, np.float32)).tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, input: ArrayT) -> ArrayT:
        return F.dropout(input, self.p, self.training)

    _array_forward_of = forward

    def _array_forward(self, x: Any) -> Any:
        if not self.training and type(x) is np.ndarray and (x.dtype == np.float32 or x.dtype == np.float64) and (
            type(self.p) is float and 0.0 <= self.p <= 1.0
        ):
            return x  # what F.dropout returns in eval mode for these
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``.

    Buffers ``running_mean``, ``running_var``, ``num_batches_tracked``; in
    training mode the batch statistics normalise and update the running ones
    (unbiased variance, ``momentum``; ``momentum=None`` is a cumulative average).
    Input (N, num_features, H, W) -> the same shape.

    >>> bn = nn.BatchNorm2d(2)
    >>> x = np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2)
    >>> y = bn(x)  # training mode: batch statistics
    >>> y.shape, int(bn.num_batches_tracked)
    ((2, 2, 2, 2), 1)
    >>> print(bn.running_mean)  # 0.9 * 0 + 0.1 * batch mean
    [0.55 0.95]
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.num_features = as_int(num_features, "num_features", "BatchNorm2d")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight: Optional[Parameter]
        self.bias: Optional[Parameter]
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, input: TensorLike) -> Union[Tensor, np.ndarray]:
        nd = np.ndim(input.data) if isinstance(input, Tensor) else np.ndim(input)
        if nd != 4:
            raise ValueError(f"BatchNorm2d: expected 4-D input (N, C, H, W), got {nd}-D input")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if (not self.training or self.track_running_stats) else None,
            self.running_var if (not self.training or self.track_running_stats) else None,
            self.weight,
            self.bias,
            use_batch,
            momentum,
            self.eps,
        )

    _array_forward_of = forward

    def _array_ready(self) -> bool:
        return not self.training and self.track_running_stats

    def _array_forward(self, x: Any) -> Any:
        if np.ndim(x) != 4:
            raise ValueError(f"BatchNorm2d: expected 4-D input (N, C, H, W), got {np.ndim(x)}-D input")
        return F.batch_norm(x, self.running_mean, self.running_var, _data(self.weight), _data(self.bias), False,
                            0.0, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class CrossEntropyLoss(Module):
    """:func:`fastconv.functional.cross_entropy` as a module: called with ``(logits, target)``.

    >>> loss = nn.CrossEntropyLoss()(np.zeros((2, 4), np.float32), np.array([0, 3]))
    >>> round(float(loss), 4)  # log(4)
    1.3863
    """

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: TensorLike, target: TensorLike) -> Union[Tensor, np.ndarray]:
        return F.cross_entropy(input, target, self.reduction, self.ignore_index, self.label_smoothing)


class MSELoss(Module):
    """:func:`fastconv.functional.mse_loss` as a module: called with ``(input, target)``.

    >>> float(nn.MSELoss()(np.array([0.0, 0.0]), np.array([1.0, 3.0])))
    5.0
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: TensorLike, target: TensorLike) -> Union[Tensor, np.ndarray]:
        return F.mse_loss(input, target, self.reduction)


class Sequential(Module):
    """Modules applied in order; children named "0", "1", ... (or by an OrderedDict).

    Indexing gives a child (an int) or a new Sequential (a slice).

    >>> from collections import OrderedDict
    >>> net = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    >>> net[0]
    Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))
    >>> len(net), list(net.state_dict())
    (2, ['conv.weight', 'conv.bias'])
    """

    def __init__(self, *args: Union[Module, OrderedDict[str, Module]]) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, child in args[0].items():
                self.add_module(name, child)
        else:
            for i, m in enumerate(args):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is not a Module ({type(m).__name__})")
                self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]  # no None children here

    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    def __getitem__(self, idx: Union[int, slice]) -> Union[Module, Sequential]:
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))  # type: ignore[arg-type]
        n = len(self._modules)
        i = as_int(idx, "index", "Sequential")
        if not -n <= i < n:
            raise IndexError(f"Sequential index {idx} out of range for {n} modules")
        return list(self._modules.values())[i % n]  # type: ignore[return-value]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self)), module)
        return self

    def _array_ready(self) -> bool:
        return self._array_chain() is not None

    def _array_chain(self) -> Optional[list[Any]]:
        fns = []
        for m in self._modules.values():
            f = _array_fn(m)  # type: ignore[arg-type]  # no None children here
            if f is None:
                return None
            fns.append(f)
        return fns

    def _array_forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m._array_forward(x)  # type: ignore[union-attr]
        return x

    def _has_parameters(self) -> bool:
        for m in self._modules.values():
            if m is None:
                continue
            if any(p is not None for p in m._parameters.values()):
                return True
            if isinstance(m, Sequential) and m._has_parameters():
                return True
        return any(p is not None for p in self._parameters.values())

    def forward(self, input: Any) -> Any:
        recorded = is_grad_enabled() and (
            (isinstance(input, Tensor) and input.requires_grad) or any(p.requires_grad for p in self.parameters())
        )
        fns = None if recorded else self._array_chain()
        if fns is not None:
            x = input.data if isinstance(input, Tensor) else input
            for f in fns:
                x = f(x)
            if isinstance(x, np.ndarray) and (isinstance(input, Tensor) or self._has_parameters()):
                return F._wrap(x)  # what the layers one by one return: a Tensor (nothing recorded)
            return x
        for m in self._modules.values():
            input = m(input)  # type: ignore[misc]  # no None children here
        return input


Sequential._array_forward_of = Sequential.forward


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...).

    >>> blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    >>> len(blocks), blocks.num_parameters()
    (3, 60)
    """

    def __init__(self, modules: Optional[Iterable[Module]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]  # no None entries here

    @overload
    def __getitem__(self, idx: slice) -> ModuleList: ...

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    def __getitem__(self, idx: Union[int, slice]) -> Union[Module, ModuleList]:
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])  # type: ignore[arg-type]
        n = len(self._modules)
        i = as_int(idx, "index", "ModuleList")
        if not -n <= i < n:
            raise IndexError(f"ModuleList index {idx} out of range for {n} modules")
        return list(self._modules.values())[i % n]  # type: ignore[return-value]

    def __setitem__(self, idx: int, module: Module) -> None:
        n = len(self._modules)
        i = as_int(idx, "index", "ModuleList") % max(n, 1)
        self.add_module(str(i), module)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of ``modules``; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (the others are renumbered)."""
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)
