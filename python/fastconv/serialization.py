"""``fastconv.save`` / ``fastconv.load``: state dicts as ``.npz``, never pickle.

>>> import os, tempfile
>>> model = nn.Linear(3, 2)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fastconv.save(model, path)
>>> state = fastconv.load(path)
>>> list(state), state["weight"].shape
(['weight', 'bias'], (2, 3))
>>> nn.Linear(3, 2).load_state_dict(state)
([], [])
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Mapping, Union

import numpy as np

from .nn.module import Module
from .tensor import Tensor

#: A file path: ``str``, ``bytes`` or ``os.PathLike``.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _arrays(obj: Any) -> OrderedDict[str, np.ndarray]:
    from .nn.module import Module

    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"save: expected a Module or a dict of arrays, got {type(obj).__name__}")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
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


def save(obj: Union[Module, Mapping[str, Any]], path: PathLike) -> None:
    """Write a Module's ``state_dict()`` (or a dict of arrays) to ``path`` as ``.npz``.

    The file holds plain numeric arrays under the state_dict's keys; loading
    it never executes code. Values may be ndarrays, Tensors or anything with
    ``.numpy()`` (e.g. torch tensors); the file is written at ``path`` exactly
    (no ``.npz`` suffix is added).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "weights.bin")
    >>> fastconv.save({"w": np.eye(2, dtype=np.float32)}, path)
    >>> os.path.exists(path)
    True
    """
    arrays: dict[str, Any] = _arrays(obj)  # (keyword arguments of np.savez)
    path = os.fspath(path)
    with open(path, "wb") as f:  # np.savez would append ".npz" to a str path
        np.savez(f, **arrays)


def load(path: PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a file written by :func:`save`: an ordered {name: ndarray}, ready for ``load_state_dict``.

    Pickled objects in the file are refused (``allow_pickle=False``).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "bn.npz")
    >>> fastconv.save(nn.BatchNorm2d(4), path)
    >>> {k: v.shape for k, v in fastconv.load(path).items()}
    {'weight': (4,), 'bias': (4,), 'running_mean': (4,), 'running_var': (4,), 'num_batches_tracked': ()}
    """
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return OrderedDict((k, z[k]) for k in z.files)
