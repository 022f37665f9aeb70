"""``Module`` and ``Parameter``: PyTorch's module protocol on NumPy arrays.

>>> class TinyNet(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(1, 4, 3, padding=1)
...         self.fc = nn.Linear(4 * 8 * 8, 10)
...     def forward(self, x):
...         return self.fc(F.relu(self.conv(x)).flatten(1))
>>> net = TinyNet()
>>> list(net.state_dict())
['conv.weight', 'conv.bias', 'fc.weight', 'fc.bias']
>>> net(np.zeros((2, 1, 8, 8), np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, Mapping, Optional, TypeVar, Union

import numpy as np

from .._typing import DTypeLike, TensorLike
from ..tensor import Tensor

_M = TypeVar("_M", bound="Module")


class Parameter(Tensor):
    """A Tensor that is a module's trainable parameter (requires grad by default).

    Assigning one to a :class:`Module` attribute registers it under that name.

    >>> p = nn.Parameter(np.zeros((2, 3), np.float32))
    >>> p.requires_grad, p.shape
    (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data: Optional[TensorLike] = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), np.float32)
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _RemovableHandle:
    """Returned by :meth:`Module.register_forward_hook`; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        """Unregister the hook (idempotent)."""
        self._hooks.pop(self._key, None)


class Module:
    """Base class of layers and models, as ``torch.nn.Module``.

    Assigning a :class:`Parameter` or a Module to an attribute registers it;
    ``register_buffer`` adds non-trainable state (saved in ``state_dict``).
    Subclasses call ``super().__init__()`` first and define ``forward``;
    calling the module runs ``forward`` and then any forward hooks.

    >>> m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    >>> [name for name, _ in m.named_parameters()]
    ['0.weight', '0.bias']
    >>> m.num_parameters(), m.eval().training
    (8, False)
    """

    _version = 0

    training: bool
    _parameters: OrderedDict[str, Optional[Parameter]]
    _buffers: OrderedDict[str, Optional[np.ndarray]]
    _non_persistent: set[str]
    _modules: OrderedDict[str, Optional[Module]]
    _forward_hooks: OrderedDict[int, Callable[..., Any]]
    _hook_id: int

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hook_id", 0)
        object.__setattr__(self, "training", True)

    # --- registration -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign to a Module before Module.__init__() is called")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._remove_from(name, self.__dict__, buffers, modules)
            params[name] = value
        elif isinstance(value, Module):
            self._remove_from(name, self.__dict__, params, buffers)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' (Parameter or None expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' (Module or None expected)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, (np.ndarray, Tensor)):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' (array or None expected)")
            buffers[name] = value.data if isinstance(value, Tensor) else value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name: str, *dicts: dict[str, Any]) -> None:
        for d in dicts:
            d.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` (a :class:`Parameter` or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name: str, array: Union[np.ndarray, Tensor, None], persistent: bool = True) -> None:
        """Register non-trainable state (an ndarray or None); ``persistent=False`` keeps it out of ``state_dict``.

        >>> m = nn.Module()
        >>> m.register_buffer("steps", np.zeros((), np.int64))
        >>> list(m.state_dict())
        ['steps']
        """
        if array is not None and not isinstance(array, (np.ndarray, Tensor)):
            raise TypeError(f"register_buffer: '{name}' must be an array or None, got {type(array).__name__}")
        self._buffers[name] = array.data if isinstance(array, Tensor) else array
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Optional[Module]) -> None:
        """Register a child module (or None) under ``name``; ``register_module`` is an alias."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module or None, got {type(module).__name__}")
        self._modules[name] = module

    register_module = add_module

    # --- calling ------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses override it (call the module, not ``forward``)."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    # Inference on plain arrays (see Sequential in layers.py): a library layer
    # sets _array_forward_of to its own forward; _array_forward computes the
    # layer on arrays (by default forward itself, for layers whose forward
    # already maps arrays to arrays) and _array_ready says whether this
    # instance's settings allow it.
    _array_forward_of: Any = None

    def _array_ready(self) -> bool:
        return True

    def _array_forward(self, x: Any) -> Any:
        return self.forward(x)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        if not self._forward_hooks:
            return out
        for hook in list(self._forward_hooks.values()):
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple[Any, ...], Any], Any]) -> _RemovableHandle:
        """``hook(module, inputs, output)`` after every forward; returns a handle with ``remove()``.

        A hook returning something other than None replaces the output.

        >>> m = nn.ReLU()
        >>> shapes = []
        >>> h = m.register_forward_hook(lambda mod, inputs, out: shapes.append(out.shape))
        >>> _ = m(np.zeros((2, 3)))
        >>> h.remove()
        >>> shapes
        [(2, 3)]
        """
        key = self._hook_id
        object.__setattr__(self, "_hook_id", key + 1)
        self._forward_hooks[key] = hook
        return _RemovableHandle(self._forward_hooks, key)

    # --- traversal ------------------------------------------------------------
    def named_modules(self, memo: Optional[set[int]] = None, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(qualified name, module) for this module ("" or ``prefix``) and every descendant, each once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, each once."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) of the direct children."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) pairs; a parameter shared by several modules appears once."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (shared ones once), e.g. for an optimiser."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) of every buffer (e.g. BatchNorm2d's running statistics)."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, b in m._buffers.items():
                if b is None or id(b) in seen:
                    continue
                seen.add(id(b))
                yield (f"{mprefix}.{name}" if mprefix else name), b

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """Every buffer array."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameter elements (shared parameters counted once)."""
        return int(sum(p.data.size for p in self.parameters() if p.requires_grad or not trainable_only))

    # --- modes ----------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        """Set training mode (dropout active, batch statistics) on this module and all descendants; returns self.

        ``train(True)`` also drops weight panels kept by :meth:`prepack`."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
            if mode:
                m._unpack_self()  # training changes the weights: packed panels would go stale
        return self

    def eval(self: _M) -> _M:
        """``train(False)``: inference mode; returns self."""
        return self.train(False)

    def prepack(self: _M) -> _M:
        """Pack every convolution's weight once for repeated inference; returns self.

        A convolution multiplies its weight in a blocked panel layout. Without
        ``prepack`` each call repacks it (a pass over the weight: a few percent
        of a batch-1 layer's time); with it the panels are built on first use
        and kept. Each weight array is made read-only while its panels are
        kept, so it cannot change under them: an in-place write raises
        NumPy's ``ValueError: assignment destination is read-only`` instead of
        being silently ignored. ``unpack()`` (or ``train()``) drops the panels
        and makes the weights writeable again; replacing a weight (e.g.
        ``load_state_dict``, ``to``) drops that layer's panels. Results are
        bitwise those of the unpacked module.

        >>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval().prepack()
        >>> m[0].weight.data.flags.writeable
        False
        >>> m(np.zeros((1, 3, 8, 8), np.float32)).shape
        (1, 8, 6, 6)
        >>> m.unpack()[0].weight.data.flags.writeable
        True
        """
        for m in self.modules():
            m._prepack_self()
        return self

    def unpack(self: _M) -> _M:
        """Drop the weight panels ``prepack`` kept and make those weights writeable again; returns self."""
        for m in self.modules():
            m._unpack_self()
        return self

    def _prepack_self(self) -> None:
        """Layers whose weights have a packed form build it here (see Conv2d)."""

    def _unpack_self(self) -> None:
        pass

    def requires_grad_(self: _M, requires_grad: bool = True) -> _M:
        """Set ``requires_grad`` of every parameter (e.g. to freeze a model); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient (to None by default, as PyTorch)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def apply(self: _M, fn: Callable[[Module], Any]) -> _M:
        """Call ``fn`` on every descendant and then on this module (e.g. custom initialisation); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # --- dtype -----------------------------------------------------------------
    def to(self: _M, dtype: DTypeLike) -> _M:
        """Cast floating-point parameters and buffers to ``dtype`` (float32 or float64)."""
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"to: only float32 and float64 are supported, got {dt}")
        for m in self.modules():
            for name, p in m._parameters.items():
                if p is not None and p.data.dtype.kind == "f" and p.data.dtype != dt:
                    p.data = p.data.astype(dt)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dt)
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f" and b.dtype != dt:
                    m._buffers[name] = b.astype(dt)
            m._on_params_changed()
        return self

    def float(self: _M) -> _M:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def double(self: _M) -> _M:
        """``to(np.float64)``."""
        return self.to(np.float64)

    def _on_params_changed(self) -> None:
        """Hook for modules that cache derived state (packed weights)."""

    # --- state -------------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> OrderedDict[str, np.ndarray]:
        """Ordered {name: ndarray} of parameters and persistent buffers (PyTorch's names).

        The arrays are the module's own (not copies).

        >>> list(nn.BatchNorm2d(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mprefix, m in self.named_modules(prefix=prefix.rstrip(".")):
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{mprefix}.{name}" if mprefix else name] = p.data
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[f"{mprefix}.{name}" if mprefix else name] = b
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays into this module's parameters and buffers.

        Values may be ndarrays, Tensors or anything with ``.numpy()`` (e.g. a
        torch tensor). With ``strict``, a ``ValueError`` lists every missing and
        unexpected key; shape mismatches are always an error. Returns
        ``(missing_keys, unexpected_keys)``.

        >>> a, b = nn.Linear(3, 2), nn.Linear(3, 2)
        >>> b.load_state_dict(a.state_dict())
        ([], [])
        >>> bool((a.weight.data == b.weight.data).all())
        True
        """
        own = self.state_dict()
        given: OrderedDict[str, np.ndarray] = OrderedDict()
        for k, v in state_dict.items():
            if isinstance(v, Tensor):
                v = v.data
            elif not isinstance(v, np.ndarray) and hasattr(v, "numpy"):
                v = v.detach().cpu().numpy() if hasattr(v, "detach") else v.numpy()
            given[k] = np.asarray(v)
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        mismatched = [
            f"{k}: checkpoint shape {tuple(given[k].shape)} vs model shape {tuple(own[k].shape)}"
            for k in own
            if k in given and tuple(given[k].shape) != tuple(own[k].shape)
        ]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise ValueError("load_state_dict: " + " | ".join(problems))
        for mprefix, m in self.named_modules():
            for name, p in m._parameters.items():
                key = f"{mprefix}.{name}" if mprefix else name
                if p is not None and key in given:
                    value = given[key].astype(p.data.dtype, copy=False).reshape(p.data.shape)
                    if p.data.flags.writeable:
                        np.copyto(p.data, value)  # in place, as PyTorch: views of the parameter stay valid
                    else:
                        p.data = value.copy()
            for name, b in m._buffers.items():
                key = f"{mprefix}.{name}" if mprefix else name
                if b is not None and key in given and name not in m._non_persistent:
                    np.copyto(b, given[key].astype(b.dtype, copy=False).reshape(b.shape))
            m._on_params_changed()
        return missing, unexpected

    # --- printing ------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's ``repr`` parentheses (subclasses override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # pickling: plain state (arrays), no native handles
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_pack", None)  # packed weight panels (prepack) are native memory: the copy is unpacked
        state.pop("_pack_made_readonly", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
