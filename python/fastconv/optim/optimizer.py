"""Optimisers over Parameters (NumPy arrays), with PyTorch's update rules.

SGD (torch.optim.SGD):
    g = grad + weight_decay * p
    buf = g (first step) | momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (nesterov) | buf
    p -= lr * g
Adam (torch.optim.Adam):
    g = grad + weight_decay * p
    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

A training step, as in PyTorch:

>>> model = nn.Linear(4, 2)
>>> opt = fastconv.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> x, target = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
>>> opt.zero_grad()
>>> loss = F.cross_entropy(model(x), target)
>>> loss.backward()
>>> opt.step()
>>> bool(F.cross_entropy(model(x), target).item() < loss.item())
True
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, Iterable, Optional, Union

import numpy as np

from ..tensor import Tensor

#: What an optimiser takes: Parameters (or Tensors), or dicts with a "params" entry and per-group options.
ParamsT = Union[Iterable[Tensor], Iterable[Dict[str, Any]]]


def _num(
    v: Any, name: str, cls: str, lo: float = 0.0, hi: Optional[float] = None, hi_open: bool = False
) -> float:
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{cls}: {name} must be a number, got {v!r}")
    v = float(v)
    if v < lo or (hi is not None and (v >= hi if hi_open else v > hi)) or math.isnan(v):
        rng = f"[{lo}, {hi})" if hi is not None and hi_open else (f"[{lo}, {hi}]" if hi is not None else f">= {lo}")
        raise ValueError(f"{cls}: invalid {name} {v} (expected {rng})")
    return v


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``.

    ``params`` is an iterable of Parameters, or of dicts each holding a
    ``"params"`` list and options that override ``defaults`` for that group.
    ``state`` maps ``id(parameter)`` to that parameter's buffers.
    """

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[int, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters or dicts, got a Tensor")
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: Dict[str, Any]) -> None:
        """Add a group ``{"params": [...], option: value, ...}``; missing options take the defaults.

        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> opt = fastconv.optim.SGD(a.parameters(), lr=0.1)
        >>> opt.add_param_group({"params": b.parameters(), "lr": 0.01})
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
        """
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimise Tensors, got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: can only optimise floating point tensors")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: Dict[str, Any]) -> None:
        pass

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to None by default, as PyTorch)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.data)

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: buffers}, "param_groups": [...]}``, parameters numbered in group order (as PyTorch)."""
        index: dict[int, int] = {}
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
        return {
            "state": {index[pid]: dict(s) for pid, s in self.state.items() if pid in index},
            "param_groups": [
                {**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                for g in self.param_groups
            ],
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore options and buffers from :meth:`state_dict` (the same parameter layout)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("load_state_dict: the number of parameter groups differs")
        params = [p for g in self.param_groups for p in g["params"]]
        for g, sg in zip(self.param_groups, groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("load_state_dict: a parameter group has a different number of parameters")
            g.update({k: v for k, v in sg.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            self.state[id(params[int(i)])] = {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in s.items()}

    # Pickling and deepcopy: ``state`` is keyed by id(parameter), which a copy
    # does not keep, so it travels keyed by the parameter's position across the
    # groups (as in state_dict) and is re-keyed to the copies' ids on arrival.
    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        index: dict[int, int] = {}
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
        d["state"] = {index[pid]: s for pid, s in self.state.items() if pid in index}
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        params: list[Any] = []
        seen: set[int] = set()
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        self.state = {id(params[i]): s for i, s in d["state"].items()}

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:  # pragma: no cover - abstract
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum / dampening / Nesterov / weight decay.

    Update rule as ``torch.optim.SGD`` (see the module docstring).

    >>> p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    >>> p.grad = np.array([1.0, -1.0], np.float32)
    >>> fastconv.optim.SGD([p], lr=0.5).step()
    >>> p.tolist()
    [0.5, 2.5]
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g: Dict[str, Any]) -> None:
        g["lr"] = _num(g["lr"], "learning rate", "SGD")
        g["momentum"] = _num(g["momentum"], "momentum value", "SGD")
        g["dampening"] = _num(g["dampening"], "dampening", "SGD")
        g["weight_decay"] = _num(g["weight_decay"], "weight_decay value", "SGD")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One SGD update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for g in self.param_groups:
            lr, mom, damp, wd = g["lr"], g["momentum"], g["dampening"], g["weight_decay"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad if not g["maximize"] else -p.grad
                dt = p.data.dtype.type
                if wd != 0:
                    d = d + dt(wd) * p.data
                if mom != 0:
                    st = self.state.setdefault(id(p), {})
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(d, dtype=p.data.dtype, copy=True)
                    else:
                        buf *= dt(mom)
                        buf += dt(1 - damp) * d
                    st["momentum_buffer"] = buf
                    d = d + dt(mom) * buf if g["nesterov"] else buf
                p.data -= dt(lr) * d
        return loss


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay, as ``torch.optim.Adam``.

    The first step moves each parameter by about ``lr`` against its gradient's sign:

    >>> p = nn.Parameter(np.array([1.0, 1.0], np.float32))
    >>> p.grad = np.array([3.0, -0.5], np.float32)
    >>> fastconv.optim.Adam([p], lr=0.1).step()
    >>> print(p.data)
    [0.9 1.1]
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g: Dict[str, Any]) -> None:
        g["lr"] = _num(g["lr"], "learning rate", "Adam")
        g["eps"] = _num(g["eps"], "epsilon value", "Adam")
        b = tuple(g["betas"])
        if len(b) != 2:
            raise ValueError(f"Adam: betas must be a pair, got {g['betas']!r}")
        g["betas"] = (_num(b[0], "beta parameter at index 0", "Adam", 0.0, 1.0, True),
                      _num(b[1], "beta parameter at index 1", "Adam", 0.0, 1.0, True))
        g["weight_decay"] = _num(g["weight_decay"], "weight_decay value", "Adam")

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One Adam update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for g in self.param_groups:
            lr, (b1, b2), eps, wd = g["lr"], g["betas"], g["eps"], g["weight_decay"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                dt = p.data.dtype.type
                d = p.grad if not g["maximize"] else -p.grad
                if wd != 0:
                    d = d + dt(wd) * p.data
                st = self.state.setdefault(id(p), {})
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = np.zeros_like(p.data)
                    st["exp_avg_sq"] = np.zeros_like(p.data)
                st["step"] += 1
                t = st["step"]
                m, v = st["exp_avg"], st["exp_avg_sq"]
                m += (d - m) * dt(1 - b1)  # lerp, as PyTorch
                v *= dt(b2)
                v += dt(1 - b2) * d * d
                bc1 = 1 - b1**t
                bc2_sqrt = math.sqrt(1 - b2**t)
                step_size = lr / bc1
                denom = np.sqrt(v) / dt(bc2_sqrt) + dt(eps)
                p.data -= dt(step_size) * (m / denom)
        return loss
