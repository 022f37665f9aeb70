"""``fastconv.summary``: a per-layer table of a model, traced on a dummy input.

For every leaf module: its output shape, its parameters (trainable tensors;
a shared parameter counts once, where it first appears), its multiply-adds
per sample (conv ``OC*OH*OW*(C/groups)*KH*KW``, linear ``in*out`` per input
row), and the receptive field of one of its outputs on the model input.

Receptive fields follow the data flow, not the module order: each traced
tensor carries (field, jump) per axis; a conv or pooling layer maps
``field += (dilation*(k-1)) * jump``, ``jump *= stride``; elementwise layers
keep it; anything that mixes all positions (flatten, linear, global pooling)
sees the whole input. Tensors made by plain tensor ops in a custom
``forward`` (a residual ``+``, ``cat``) take the widest field among the
tensors they were computed from, found through the autograd graph.

>>> s = fastconv.summary(fastconv.models.LeNet5(), (1, 1, 32, 32))
>>> s.total_params, s.total_macs
(61706, 416520)
>>> s.rows[0]
SummaryRow(name='features.0', type='Conv2d', output_shape=(1, 6, 28, 28), params=156, macs=117600, receptive_field=5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.typing import DTypeLike

from .autograd import enable_grad
from .nn import layers as L
from .nn.module import Module
from .tensor import Tensor


@dataclass
class SummaryRow:
    """One layer of a :class:`Summary`.

    ``name``: the qualified module name; ``type``: its class name;
    ``output_shape``: with the batch dimension; ``params``: trainable and frozen
    parameter elements first seen in this layer; ``macs``: multiply-adds per
    sample; ``receptive_field``: an int (square), ``(h, w)``, or None where
    undefined.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: Union[int, tuple[int, int], None]


class Summary:
    """The result of :func:`summary`: ``rows``, totals, and a table as ``str()``.

    Attributes: ``rows`` (list of :class:`SummaryRow`), ``total_params``,
    ``trainable_params``, ``total_macs`` (per sample), ``input_shape``,
    ``model_name``.

    >>> s = fastconv.summary(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)), (1, 8))
    >>> [(r.name, r.params, r.macs) for r in s.rows]
    [('0', 36, 32), ('1', 0, 0), ('2', 10, 8)]
    >>> s.total_params, s.trainable_params, s.total_macs
    (46, 46, 40)
    """

    def __init__(
        self,
        rows: list[SummaryRow],
        total_params: int,
        trainable_params: int,
        total_macs: int,
        input_shape: Sequence[int],
        model_name: str,
    ) -> None:
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_macs = total_macs
        self.input_shape = tuple(input_shape)
        self.model_name = model_name

    def __repr__(self) -> str:
        return self.table()

    def __str__(self) -> str:
        return self.table()

    def table(self) -> str:
        """The table ``str()`` prints: one row per layer, totals at the bottom.

        >>> print(fastconv.summary(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 1, 8, 8)))
        Sequential on input (1, 1, 8, 8)
        -------------------------------------------------------------
        Layer  Type    Output shape  Params  Mult-adds  Recept. field
        -------------------------------------------------------------
        0      Conv2d  (1, 2, 6, 6)      20        648              3
        1      ReLU    (1, 2, 6, 6)       0          0              3
        -------------------------------------------------------------
        Total params:         20
        Trainable params:     20
        Non-trainable params: 0
        Mult-adds per sample: 648
        """

        def rf(v: Union[int, tuple[int, int], None]) -> str:
            if v is None:
                return "-"
            if isinstance(v, tuple):
                return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"
            return str(v)

        header = ("Layer", "Type", "Output shape", "Params", "Mult-adds", "Recept. field")
        body = [
            (r.name, r.type, str(tuple(r.output_shape)), f"{r.params:,}", f"{r.macs:,}", rf(r.receptive_field))
            for r in self.rows
        ]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
        right = (False, False, False, True, True, True)

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right))

        rule = "-" * len(fmt(header))
        lines = [f"{self.model_name} on input {self.input_shape}", rule, fmt(header), rule]
        lines += [fmt(b) for b in body]
        lines += [
            rule,
            f"Total params:         {self.total_params:,}",
            f"Trainable params:     {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Mult-adds per sample: {self.total_macs:,}",
        ]
        return "\n".join(lines)


#: receptive field and jump per axis: ((rh, rw), (jh, jw))
_Field = tuple[tuple[int, int], tuple[int, int]]


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _macs(module: Module, out_shape: Sequence[int]) -> int:
    if isinstance(module, L.Conv2d):
        kh, kw = module.kernel_size
        return int(np.prod(out_shape[-3:])) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, L.Linear):
        rows = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
        return rows * module.in_features * module.out_features
    return 0


def summary(model: Module, input_shape: Sequence[int], dtype: DTypeLike = np.float32) -> Summary:
    """Trace ``model`` on zeros of ``input_shape`` (batch included, e.g. ``(1, 1, 32, 32)``).

    Returns a :class:`Summary`; ``print`` it for the table. The model runs once
    in eval mode (its training flag is restored afterwards).

    >>> s = fastconv.summary(fastconv.models.CifarVGG(), (1, 3, 32, 32))
    >>> [r.type for r in s.rows][:4], s.rows[-1].output_shape
    (['Conv2d', 'ReLU', 'Conv2d', 'ReLU'], (1, 10))
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a fastconv.nn.Module, got {type(model).__name__}")
    try:
        input_shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a sequence of ints, got {input_shape!r}") from None
    if len(input_shape) < 2 or min(input_shape) < 1:
        raise ValueError(f"summary: input_shape must include the batch dimension and be positive, got {input_shape}")
    img = input_shape[2:] if len(input_shape) >= 4 else None
    full = _pair(img[-2:]) if img is not None and len(img) >= 2 else None

    fields: dict[int, Optional[_Field]] = {}  # id(tensor) -> ((rh, rw), (jh, jw)) or None for "whole input"
    keep: list[Tensor] = []  # keep traced tensors alive so ids stay unique
    names = {id(m): n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not any(True for _ in m.children()) and m is not model] or [model]
    seen_params: set[int] = set()
    rows: list[SummaryRow] = []

    def field_of(t: Any, depth: int = 0) -> Optional[_Field]:
        if not isinstance(t, Tensor):
            return ((1, 1), (1, 1))
        key = id(t)
        if key in fields:
            return fields[key]
        node = t._node
        if node is None or depth > 500:
            return ((1, 1), (1, 1))
        best = None
        for src in node.inputs:
            if src is None:
                continue
            f = field_of(src, depth + 1)
            if f is None:
                return None
            if best is None or f[0][0] * f[0][1] > best[0][0] * best[0][1]:
                best = f
        fields[key] = best if best is not None else ((1, 1), (1, 1))
        return fields[key]

    def hook(module: Module, inputs: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(out, Tensor):
            out_shape = out.shape
        else:
            out_shape = np.shape(out)
        inp: Any = inputs[0] if inputs else None
        fin = field_of(inp)
        fout = fin
        if fin is not None:
            (rh, rw), (jh, jw) = fin
            if isinstance(module, (L.Conv2d, L.MaxPool2d, L.AvgPool2d)):
                kh, kw = _pair(module.kernel_size)
                sh, sw = _pair(module.stride)
                dh, dw = _pair(getattr(module, "dilation", 1))
                fout = ((rh + dh * (kh - 1) * jh, rw + dw * (kw - 1) * jw), (jh * sh, jw * sw))
            elif isinstance(module, (L.AdaptiveAvgPool2d, L.AdaptiveMaxPool2d)):
                ih, iw = (inp.shape if isinstance(inp, Tensor) else np.shape(inp))[-2:]
                oh, ow = out_shape[-2:]
                kh, kw = -(-ih // oh), -(-iw // ow)
                fout = ((rh + (kh - 1) * jh, rw + (kw - 1) * jw), (jh * max(ih // oh, 1), jw * max(iw // ow, 1)))
            elif isinstance(module, (L.Flatten, L.Linear)):
                fout = None
        if isinstance(out, Tensor):
            fields[id(out)] = fout
            keep.append(out)
        if module in leaves or module is model:
            own = [p for p in module.parameters(recurse=False)]
            n_params = 0
            for p in own:
                if id(p) not in seen_params:
                    seen_params.add(id(p))
                    n_params += p.data.size
            macs = _macs(module, out_shape)
            shape = tuple(out_shape)
            rf: Union[int, tuple[int, int], None]
            if fout is None:
                rf = full
            else:
                rf = fout[0] if fout[0][0] != fout[0][1] else fout[0][0]
            rows.append(SummaryRow(names.get(id(module), type(module).__name__), type(module).__name__, shape,
                                   int(n_params), int(macs), rf))

    handles = [m.register_forward_hook(hook) for m in leaves]
    modes = [(m, m.training) for m in model.modules()]  # restored one by one: modes may be mixed
    model.eval()
    try:
        x = Tensor(np.zeros(input_shape, dtype=dtype), requires_grad=True)
        fields[id(x)] = ((1, 1), (1, 1))
        keep.append(x)
        with enable_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode

    # parameters that no traced leaf owns (e.g. used directly in a custom forward)
    all_params = list(model.parameters())
    total = int(sum(p.data.size for p in all_params))
    trainable = int(sum(p.data.size for p in all_params if p.requires_grad))
    macs_total = int(sum(r.macs for r in rows))  # per sample: outputs are counted without the batch dim
    return Summary(rows, total, trainable, macs_total, input_shape, type(model).__name__)
