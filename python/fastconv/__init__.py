"""fastconv: fast CPU convolutional networks for Python.

A C++ core (conv2d, pooling, linear; forward and backward; cache-blocked,
OpenMP-parallel, SIMD kernels chosen at run time) behind a NumPy API whose
semantics follow PyTorch's ``torch.nn.functional``, plus a small autograd
``Tensor``.

Subpackages: :mod:`fastconv.functional` (ops on NumPy arrays or Tensors),
:mod:`fastconv.nn` (modules), :mod:`fastconv.optim` (SGD, Adam),
:mod:`fastconv.models` (a small model zoo). Images are NCHW.

>>> import numpy as np, fastconv
>>> from fastconv import nn
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
>>> model(np.zeros((2, 3, 16, 16), np.float32)).shape
(2, 8)
"""

from typing import Any

from . import _core
from . import functional
from . import nn
from . import optim
from . import models
from .serialization import load, save
from .summary import Summary, summary
from ._elementwise import manual_seed
from ._runtime import (
    CONV_ALGORITHMS,
    build_info,
    get_conv_algorithm,
    get_num_threads,
    set_conv_algorithm,
    set_num_threads,
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import Tensor, cat, stack, tensor

__version__ = _core.build_info()["version"]

from . import _threadpool

_threadpool.register()  # threadpoolctl sees and limits fastconv's threads (when it is installed)

__all__ = [
    "functional",
    "nn",
    "optim",
    "models",
    "save",
    "load",
    "summary",
    "Summary",
    "Tensor",
    "tensor",
    "cat",
    "stack",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "manual_seed",
    "build_info",
    "get_num_threads",
    "set_num_threads",
    "set_conv_algorithm",
    "get_conv_algorithm",
    "CONV_ALGORITHMS",
    "__version__",
]

# Optional-feature modules load on first use, so ``import fastconv`` stays as
# light as NumPy allows: ``fastconv.onnx`` (needs the onnx package),
# ``fastconv.viz`` (matplotlib) and ``fastconv.distributed`` (dask).
_LAZY_SUBMODULES = ("onnx", "viz", "distributed")


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
