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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .autograd import enable_grad
from .nn import layers as L
from .nn.module import Module
from .tensor import Tensor


@dataclass
class SummaryRow:
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    receptive_field: object  # int, (h, w), or None where undefined


class Summary:
    """The result of :func:`summary`: ``rows``, totals, and a table as ``str()``."""

    def __init__(self, rows, total_params, trainable_params, total_macs, input_shape, model_name):
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_macs = total_macs
        self.input_shape = tuple(input_shape)
        self.model_name = model_name

    def __repr__(self):
        return self.table()

    def __str__(self):
        return self.table()

    def table(self) -> str:
        def rf(v):
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

        def fmt(cells):
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


def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _macs(module, out_shape):
    if isinstance(module, L.Conv2d):
        kh, kw = module.kernel_size
        return int(np.prod(out_shape[-3:])) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, L.Linear):
        rows = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
        return rows * module.in_features * module.out_features
    return 0


def summary(model: Module, input_shape, dtype=np.float32) -> Summary:
    """Trace ``model`` on zeros of ``input_shape`` (batch included, e.g. ``(1, 1, 32, 32)``)."""
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

    fields = {}  # id(tensor) -> ((rh, rw), (jh, jw)) or None for "whole input"
    keep = []  # keep traced tensors alive so ids stay unique
    names = {id(m): n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not any(True for _ in m.children()) and m is not model] or [model]
    seen_params = set()
    rows = []

    def field_of(t, depth=0):
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

    def hook(module, inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(out, Tensor):
            out_shape = out.shape
        else:
            out_shape = np.shape(out)
        inp = inputs[0] if inputs else None
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
            if fout is None:
                rf = full
            else:
                rf = fout[0] if fout[0][0] != fout[0][1] else fout[0][0]
            rows.append(SummaryRow(names.get(id(module), type(module).__name__), type(module).__name__, shape,
                                   int(n_params), int(macs), rf))

    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
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
        model.train(was_training)

    # parameters that no traced leaf owns (e.g. used directly in a custom forward)
    all_params = list(model.parameters())
    total = int(sum(p.data.size for p in all_params))
    trainable = int(sum(p.data.size for p in all_params if p.requires_grad))
    macs_total = int(sum(r.macs for r in rows))  # per sample: outputs are counted without the batch dim
    return Summary(rows, total, trainable, macs_total, input_shape, type(model).__name__)
