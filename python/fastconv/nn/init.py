"""Parameter initialisation (``torch.nn.init`` names), drawing from fastconv's generator."""

from __future__ import annotations

import math

import numpy as np

from .._elementwise import default_generator
from ..tensor import Tensor


def _arr(t):
    return t.data if isinstance(t, Tensor) else t


def calculate_fan_in_and_fan_out(t):
    a = _arr(t)
    if a.ndim < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {a.shape}")
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
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


def uniform_(t, a: float = 0.0, b: float = 1.0, generator=None):
    arr = _arr(t)
    g = generator or default_generator()
    arr[...] = g.uniform(a, b, size=arr.shape).astype(arr.dtype)
    return t


def normal_(t, mean: float = 0.0, std: float = 1.0, generator=None):
    arr = _arr(t)
    g = generator or default_generator()
    arr[...] = g.normal(mean, std, size=arr.shape).astype(arr.dtype)
    return t


def constant_(t, val: float):
    _arr(t)[...] = val
    return t


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def kaiming_uniform_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan) if fan else 0.0
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal_(t, 0.0, std, generator)


def xavier_uniform_(t, gain: float = 1.0, generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t, gain: float = 1.0, generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(t, 0.0, std, generator)
