"""fastconv: fast CPU convolutional networks for Python.

A C++ core (conv2d, pooling, linear; forward and backward; cache-blocked,
OpenMP-parallel, SIMD kernels chosen at run time) behind a NumPy API whose
semantics follow PyTorch's ``torch.nn.functional``.
"""

from . import _core
from . import functional
from ._runtime import build_info, get_num_threads, set_num_threads

__version__ = _core.build_info()["version"]

__all__ = [
    "functional",
    "build_info",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]
