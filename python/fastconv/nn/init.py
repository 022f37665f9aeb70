"""Parameter initialisation (``torch.nn.init`` names), drawing from fastconv's generator.

Every ``*_`` function fills its argument in place (a :class:`~fastconv.Tensor`,
e.g. a Parameter, or an ndarray) and returns it. Fans follow PyTorch: for a
conv weight (OC, C/groups, kH, kW), ``fan_in = C/groups * kH * kW`` and
``fan_out = OC * kH * kW``; for a linear weight (out, in), ``in`` and ``out``.
Random draws use :func:`fastconv.manual_seed`'s generator unless ``generator``
is given.

>>> from fastconv.nn import init
>>> w = np.empty((16, 3, 3, 3), np.float32)
>>> init.calculate_fan_in_and_fan_out(w)
(27, 144)
>>> _ = init.kaiming_uniform_(w, nonlinearity="relu", generator=np.random.default_rng(0))
>>> bool(np.abs(w).max() <= np.sqrt(6 / 27))
True
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from .._elementwise import default_generator
from .._typing import ArrayT
from ..tensor import Tensor


def _arr(t: Union[Tensor, np.ndarray]) -> np.ndarray:
    return t.data if isinstance(t, Tensor) else t


def calculate_fan_in_and_fan_out(t: Union[Tensor, np.ndarray]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of at least 2 dimensions (see the module docstring).

    >>> nn.init.calculate_fan_in_and_fan_out(np.empty((10, 4)))
    (4, 10)
    """
    a = _arr(t)
    if a.ndim < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {a.shape}")
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for ``nonlinearity`` (``param``: leaky_relu's negative slope), as PyTorch.

    >>> nn.init.calculate_gain("relu") == np.sqrt(2), nn.init.calculate_gain("tanh")
    (True, 1.6666666666666667)
    """
    if nonlinearity in ("linear", "conv1d", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(t: ArrayT, a: float = 0.0, b: float = 1.0, generator: Optional[np.random.Generator] = None) -> ArrayT:
    """Fill ``t`` with draws from U(a, b); returns ``t``.

    >>> w = nn.init.uniform_(np.empty(3), 2.0, 3.0)
    >>> bool(((w >= 2.0) & (w < 3.0)).all())
    True
    """
    arr = _arr(t)
    g = generator or default_generator()
    arr[...] = g.uniform(a, b, size=arr.shape).astype(arr.dtype)
    return t


def normal_(
    t: ArrayT, mean: float = 0.0, std: float = 1.0, generator: Optional[np.random.Generator] = None
) -> ArrayT:
    """Fill ``t`` with draws from N(mean, std**2); returns ``t``.

    >>> w = nn.init.normal_(np.empty(10000), 1.0, 0.1, generator=np.random.default_rng(0))
    >>> round(float(w.mean()), 1), round(float(w.std()), 1)
    (1.0, 0.1)
    """
    arr = _arr(t)
    g = generator or default_generator()
    arr[...] = g.normal(mean, std, size=arr.shape).astype(arr.dtype)
    return t


def constant_(t: ArrayT, val: float) -> ArrayT:
    """Fill ``t`` with ``val``; returns ``t``.

    >>> nn.init.constant_(nn.Parameter(np.zeros(2, np.float32)), 0.5).tolist()
    [0.5, 0.5]
    """
    _arr(t)[...] = val
    return t


def zeros_(t: ArrayT) -> ArrayT:
    """Fill ``t`` with zeros; returns ``t``.

    >>> nn.init.zeros_(np.ones(2)).tolist()
    [0.0, 0.0]
    """
    return constant_(t, 0.0)


def ones_(t: ArrayT) -> ArrayT:
    """Fill ``t`` with ones; returns ``t``.

    >>> nn.init.ones_(np.zeros(2)).tolist()
    [1.0, 1.0]
    """
    return constant_(t, 1.0)


def kaiming_uniform_(
    t: ArrayT,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Optional[np.random.Generator] = None,
) -> ArrayT:
    """He initialisation: U(-bound, bound), ``bound = gain * sqrt(3 / fan)``; returns ``t``.

    ``mode``: ``'fan_in'`` or ``'fan_out'``; ``a``: the leaky_relu slope in the
    gain. ``a=sqrt(5)`` is the default initialisation of Conv2d and Linear
    weights (as PyTorch).

    >>> w = nn.init.kaiming_uniform_(np.empty((64, 32, 3, 3)), nonlinearity="relu")
    >>> bool(np.abs(w).max() <= np.sqrt(6 / (32 * 9)))
    True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan) if fan else 0.0
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(
    t: ArrayT,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Optional[np.random.Generator] = None,
) -> ArrayT:
    """He initialisation: N(0, std**2), ``std = gain / sqrt(fan)``; returns ``t``.

    >>> w = nn.init.kaiming_normal_(np.empty((256, 512)), nonlinearity="relu")
    >>> round(float(w.std() * np.sqrt(512 / 2)), 1)
    1.0
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal_(t, 0.0, std, generator)


def xavier_uniform_(t: ArrayT, gain: float = 1.0, generator: Optional[np.random.Generator] = None) -> ArrayT:
    """Glorot initialisation: U(-bound, bound), ``bound = gain * sqrt(6 / (fan_in + fan_out))``; returns ``t``.

    >>> w = nn.init.xavier_uniform_(np.empty((20, 30)))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 50))
    True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t: ArrayT, gain: float = 1.0, generator: Optional[np.random.Generator] = None) -> ArrayT:
    """Glorot initialisation: N(0, std**2), ``std = gain * sqrt(2 / (fan_in + fan_out))``; returns ``t``.

    >>> w = nn.init.xavier_normal_(np.empty((300, 500)))
    >>> round(float(w.std() * np.sqrt(800 / 2)), 1)
    1.0
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(t, 0.0, std, generator)
