"""A small reverse-mode autograd engine.

A :class:`Function` has ``forward(ctx, *args, **options)`` working on NumPy
arrays and ``backward(ctx, *grad_outputs)`` returning one gradient per
positional input (``None`` where there is none or nobody needs it; look at
``ctx.needs_input_grad``). ``Function.apply`` runs the forward pass on the
arrays inside any :class:`~fastconv.Tensor` inputs and, when grad mode is on
and an input requires grad, records a node so :meth:`Tensor.backward` can walk
the graph in reverse topological order and accumulate gradients into the
``.grad`` of leaf tensors.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["Function", "Context", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled"]


class _GradState(threading.local):
    def __init__(self):
        self.enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations on tensors are being recorded (per thread, as in PyTorch)."""
    return _state.enabled


class set_grad_enabled:
    """Context manager / function setting grad mode on or off for this thread."""

    def __init__(self, mode: bool):
        self.prev = _state.enabled
        _state.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.enabled = self.prev
        return False


class _GradModeContext:
    _mode = True

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _state.enabled
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class no_grad(_GradModeContext):
    """Nothing inside is recorded for backward. Context manager and decorator."""

    _mode = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a ``no_grad`` block."""

    _mode = True


class Context:
    """What a Function's forward passes to its backward."""

    __slots__ = ("needs_input_grad", "saved_tensors", "__dict__")

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays


@functools.lru_cache(maxsize=None)
def _no_grads(n):
    return (False,) * n


_TENSOR = []


def _tensor_class():
    if not _TENSOR:
        from .tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]


class Node:
    """One recorded application of a Function."""

    __slots__ = ("fn", "ctx", "inputs", "n_outputs", "out_meta")

    def __init__(self, fn, ctx, inputs, n_outputs, out_meta):
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs  # per positional arg: the Tensor if it requires grad, else None
        self.n_outputs = n_outputs
        self.out_meta = out_meta  # (shape, dtype) of each output, for zero grads


class Function:
    """Base class of differentiable operations (see the module docstring)."""

    # Outputs at these positions are never differentiable (e.g. pooling indices).
    non_differentiable_outputs: tuple = ()

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
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
        wrapped = []
        for i, o in enumerate(outs):
            differentiable = node is not None and i not in cls.non_differentiable_outputs
            t = Tensor._from_op(o, node if differentiable else None, i)
            wrapped.append(t)
        return tuple(wrapped) if multi else wrapped[0]


def _topological(root_node):
    """Nodes reachable from root_node, each after every node that consumes it."""
    order, seen = [], set()
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


def _sum_to_shape(g, shape):
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


def backward(root, grad=None, retain_graph=False):
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
    pending = {id(root._node): [None] * root._node.n_outputs}
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
