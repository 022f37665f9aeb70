"""A small reverse-mode autograd engine.

A :class:`Function` has ``forward(ctx, *args, **options)`` working on NumPy
arrays and ``backward(ctx, *grad_outputs)`` returning one gradient per
positional input (``None`` where there is none or nobody needs it; look at
``ctx.needs_input_grad``). ``Function.apply`` runs the forward pass on the
arrays inside any :class:`~fastconv.Tensor` inputs and, when grad mode is on
and an input requires grad, records a node so :meth:`Tensor.backward` can walk
the graph in reverse topological order and accumulate gradients into the
``.grad`` of leaf tensors.

>>> w = fastconv.tensor([2.0], requires_grad=True)
>>> y = (w * w * 3).sum()   # records _Mul, _Mul, _Sum
>>> y.grad_fn.__name__
'_Sum'
>>> y.backward()
>>> w.grad.tolist()       # d(3 w^2)/dw = 6 w
[12.0]
"""

from __future__ import annotations

import functools
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, TypeVar

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["Function", "Context", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled"]


class _GradState(threading.local):
    def __init__(self) -> None:
        self.enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations on tensors are being recorded (per thread, as in PyTorch).

    >>> fastconv.is_grad_enabled()
    True
    >>> with fastconv.no_grad():
    ...     fastconv.is_grad_enabled()
    False
    """
    return _state.enabled


class set_grad_enabled:
    """Context manager / function setting grad mode on or off for this thread.

    Called as a function it sets the mode at once (as ``torch.set_grad_enabled``);
    as a context manager it restores the previous mode on exit.

    >>> with fastconv.set_grad_enabled(False):
    ...     fastconv.is_grad_enabled()
    False
    >>> fastconv.is_grad_enabled()
    True
    """

    def __init__(self, mode: bool) -> None:
        self.prev = _state.enabled
        _state.enabled = bool(mode)

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]:
        _state.enabled = self.prev
        return False


class _GradModeContext:
    _mode = True

    def __enter__(self) -> _GradModeContext:
        self._prev = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]:
        _state.enabled = self._prev
        return False

    def __call__(self, fn: _F) -> _F:
        """Use as a decorator: ``fn`` runs with this grad mode."""
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _state.enabled
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):
    """Nothing inside is recorded for backward. Context manager and decorator.

    Results computed inside do not require grad, and inference on Tensors takes
    the same fast path as NumPy input.

    >>> w = fastconv.tensor([1.0, 2.0], requires_grad=True)
    >>> with fastconv.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    >>> @fastconv.no_grad()
    ... def predict(x):
    ...     return x * w
    >>> predict(3.0).requires_grad
    False
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a ``no_grad`` block. Context manager and decorator.

    >>> w = fastconv.tensor([1.0], requires_grad=True)
    >>> with fastconv.no_grad():
    ...     with fastconv.enable_grad():
    ...         y = w * 2
    >>> y.requires_grad
    True
    """

    _mode = True


class Context:
    """What a Function's forward passes to its backward.

    ``needs_input_grad``: one bool per positional input of ``apply``;
    ``saved_tensors``: the arrays given to :meth:`save_for_backward`. Any other
    attribute may be set freely (options the backward needs).
    """

    __slots__ = ("needs_input_grad", "saved_tensors", "__dict__")

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep ``arrays`` (NumPy arrays or None) for the backward pass as ``saved_tensors``."""
        self.saved_tensors = arrays

    if TYPE_CHECKING:  # options forward() sets for backward(): any name, typed loosely

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...


@functools.lru_cache(maxsize=None)
def _no_grads(n: int) -> tuple[bool, ...]:
    return (False,) * n


_TENSOR: list[type[Tensor]] = []


def _tensor_class() -> type[Tensor]:
    if not _TENSOR:
        from .tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]


class Node:
    """One recorded application of a Function."""

    __slots__ = ("fn", "ctx", "inputs", "n_outputs", "out_meta")

    def __init__(
        self,
        fn: type[Function],
        ctx: Optional[Context],
        inputs: tuple[Optional[Tensor], ...],
        n_outputs: int,
        out_meta: tuple[tuple[tuple[int, ...], np.dtype], ...],
    ) -> None:
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs  # per positional arg: the Tensor if it requires grad, else None
        self.n_outputs = n_outputs
        self.out_meta = out_meta  # (shape, dtype) of each output, for zero grads


class Function:
    """Base class of differentiable operations (see the module docstring).

    Subclasses define two static methods; ``apply`` (not ``forward``) is what
    callers use:

    >>> import numpy as np
    >>> from fastconv.autograd import Function
    >>> class Square(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, dy):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * dy
    >>> t = fastconv.tensor([3.0], requires_grad=True)
    >>> Square.apply(t).sum().backward()
    >>> t.grad.tolist()
    [6.0]
    """

    # Outputs at these positions are never differentiable (e.g. pooling indices).
    non_differentiable_outputs: tuple[int, ...] = ()

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        """Compute the outputs from NumPy arrays (an array, or a tuple of arrays)."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:  # pragma: no cover - abstract
        """One gradient (array or None) per positional input of ``forward``, as a tuple or a single array."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on the arrays inside ``args`` and return Tensor(s), recording the
        op for backward when grad mode is on and a Tensor input requires grad."""
        Tensor = _tensor_class()
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        record = False
        if _state.enabled:
            needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
            record = True in needs
        if not record:
            # inference: run the forward on the arrays, wrap the outputs, record nothing
            out = cls.forward(Context(_no_grads(len(args))), *raw, **kwargs)
            if type(out) is tuple:
                return tuple(Tensor._from_op(o, None, i) for i, o in enumerate(out))
            return Tensor._from_op(out, None, 0)
        ctx = Context(needs)
        out = cls.forward(ctx, *raw, **kwargs)
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        node = None
        if record:
            node = Node(
                cls,
                ctx,
                tuple(a if n else None for a, n in zip(args, needs)),
                len(outs),
                tuple((np.shape(o), np.asarray(o).dtype) for o in outs),
            )
        wrapped: list[Any] = []
        for i, o in enumerate(outs):
            differentiable = node is not None and i not in cls.non_differentiable_outputs
            t = Tensor._from_op(o, node if differentiable else None, i)
            wrapped.append(t)
        return tuple(wrapped) if multi else wrapped[0]


def _topological(root_node: Node) -> list[Node]:
    """Nodes reachable from root_node, each after every node that consumes it."""
    order: list[Node] = []
    seen: set[int] = set()
    stack = [(root_node, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t._node is not None and id(t._node) not in seen:
                stack.append((t._node, False))
    order.reverse()
    return order


def _sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reduce a broadcast gradient back to ``shape``."""
    if g.shape == tuple(shape):
        return g
    ndiff = g.ndim - len(shape)
    if ndiff > 0:
        g = g.sum(axis=tuple(range(ndiff)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Reverse-mode sweep from tensor ``root`` (see :meth:`Tensor.backward`)."""
    if not root.requires_grad:
        raise RuntimeError_("element 0 of tensors does not require grad and does not have a grad_fn")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError_(
                f"grad can be implicitly created only for scalar outputs; got shape {root.data.shape}"
            )
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(getattr(grad, "data", grad), dtype=root.data.dtype)
        if grad.shape != root.data.shape:
            grad = np.broadcast_to(grad, root.data.shape).copy()
    if root._node is None:  # a leaf: its gradient is the seed itself
        root._accumulate(grad)
        return
    pending: dict[int, list[Any]] = {id(root._node): [None] * root._node.n_outputs}  # output grads per node
    pending[id(root._node)][root._out_index] = grad
    with no_grad():
        for node in _topological(root._node):
            grads = pending.pop(id(node), None)
            if grads is None:
                continue
            if node.ctx is None:
                raise RuntimeError_(
                    "Trying to backward through the graph a second time; pass retain_graph=True "
                    "to the first backward() if you need to"
                )
            grads = [
                g if g is not None else np.zeros(shape, dtype)
                for g, (shape, dtype) in zip(grads, node.out_meta)
            ]
            in_grads = node.fn.backward(node.ctx, *grads)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) < len(node.inputs):
                in_grads = in_grads + (None,) * (len(node.inputs) - len(in_grads))
            if not retain_graph:
                node.ctx = None
            for t, g in zip(node.inputs, in_grads):
                if t is None or g is None:
                    continue
                g = np.asarray(g)
                if g.shape != t.data.shape:
                    g = _sum_to_shape(g, t.data.shape)
                if g.dtype != t.data.dtype:
                    g = g.astype(t.data.dtype)
                if t._node is None:
                    t._accumulate(g)
                else:
                    slot = pending.setdefault(id(t._node), [None] * t._node.n_outputs)
                    prev = slot[t._out_index]
                    slot[t._out_index] = g if prev is None else prev + g


class RuntimeError_(RuntimeError):
    """Autograd misuse (PyTorch raises RuntimeError in the same places)."""
