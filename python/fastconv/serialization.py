"""``fastconv.save`` / ``fastconv.load``: state dicts as ``.npz``, never pickle."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from .tensor import Tensor


def _arrays(obj):
    from .nn.module import Module

    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"save: expected a Module or a dict of arrays, got {type(obj).__name__}")
    out = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise TypeError(f"save: keys must be strings, got {k!r}")
        if isinstance(v, Tensor):
            v = v.data
        elif not isinstance(v, np.ndarray) and hasattr(v, "numpy"):
            v = v.detach().cpu().numpy() if hasattr(v, "detach") else v.numpy()
        arr = np.asarray(v)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"save: '{k}' has dtype {arr.dtype}; only numeric arrays are saved (no pickling)")
        out[k] = arr
    return out


def save(obj, path) -> None:
    """Write a Module's ``state_dict()`` (or a dict of arrays) to ``path`` as ``.npz``.

    The file holds plain numeric arrays under the state_dict's keys; loading
    it never executes code.
    """
    arrays = _arrays(obj)
    path = os.fspath(path)
    with open(path, "wb") as f:  # np.savez would append ".npz" to a str path
        np.savez(f, **arrays)


def load(path) -> "OrderedDict[str, np.ndarray]":
    """Read a file written by :func:`save`: an ordered {name: ndarray}, ready for ``load_state_dict``."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return OrderedDict((k, z[k]) for k in z.files)
