"""Thread count and build information.

>>> n = fastconv.get_num_threads()
>>> fastconv.set_num_threads(1)
>>> fastconv.get_num_threads()
1
>>> fastconv.set_num_threads(n)
>>> sorted(k for k in fastconv.build_info() if k in ("version", "openmp", "simd", "threads"))
['openmp', 'simd', 'threads', 'version']
"""

from __future__ import annotations

import operator
import warnings
from typing import Any

from . import _core

#: The largest thread count ``set_num_threads`` accepts (far above any core count;
#: a larger value is almost certainly a bug in the caller).
MAX_THREADS = 4096


def set_num_threads(n: int) -> None:
    """Set the number of threads every fastconv kernel uses (process-wide).

    Takes effect for kernels started from any Python thread. The default is
    ``OMP_NUM_THREADS`` when set, else the number of cores. ``n`` must be in
    ``[1, MAX_THREADS]``; results do not depend on the thread count.

    >>> before = fastconv.get_num_threads()
    >>> fastconv.set_num_threads(2)
    >>> fastconv.get_num_threads()
    2
    >>> fastconv.set_num_threads(before)
    """
    if isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be <= {MAX_THREADS}, got {n}")
    if n > 1 and _core.build_info()["forked_serial"]:
        warnings.warn(
            "fastconv: this process was forked after its parent started fastconv's OpenMP threads; "
            "GNU OpenMP cannot run a thread team here, so kernels stay on one thread",
            RuntimeWarning,
            stacklevel=2,
        )
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads fastconv kernels use.

    >>> fastconv.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


#: The convolution algorithms ``set_conv_algorithm`` accepts.
CONV_ALGORITHMS = ("auto", "direct", "winograd", "im2col")


def set_conv_algorithm(name: str) -> None:
    """Choose how dense convolutions are computed (process-wide).

    ``"auto"`` (the default) picks per shape: Winograd F(2x2, 3x3) for
    float32 3x3 stride-1 convolutions (one group, dilation 1) with at least
    16 input and output channels and enough output tiles, forward and
    backward; a direct kernel for other stride-1 and most strided shapes;
    implicit-im2col GEMM for the rest. ``"direct"`` is ``"auto"`` without
    Winograd: each output is then a plain sum of products, as in PyTorch's
    default CPU path (Winograd's results differ from it in the last bits).
    ``"winograd"`` takes Winograd wherever it applies, even on shapes where
    it is slower, and also for 5x5 kernels (F(2x2, 5x5): faster on wide
    layers, with rounding errors several times the direct kernel's, so not
    in ``"auto"``). ``"im2col"`` forces the GEMM everywhere. Depthwise
    convolutions always use their own kernel. Results never depend on the
    thread count under any choice.

    >>> fastconv.set_conv_algorithm("direct")
    >>> fastconv.get_conv_algorithm()
    'direct'
    >>> fastconv.set_conv_algorithm("auto")
    """
    if not isinstance(name, str):
        raise TypeError(f"set_conv_algorithm: name must be a str, got {type(name).__name__}")
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: name must be one of {', '.join(map(repr, CONV_ALGORITHMS))}, "
                         f"got {name!r}")
    _core.set_conv_algorithm(name)


def get_conv_algorithm() -> str:
    """The convolution algorithm setting (see ``set_conv_algorithm``).

    >>> fastconv.get_conv_algorithm() in fastconv.CONV_ALGORITHMS
    True
    """
    return _core.get_conv_algorithm()


def build_info() -> dict[str, Any]:
    """How this fastconv was built and what it runs on.

    Keys: ``version``, ``compiler``, ``openmp`` (bool), ``simd`` (the kernel
    path in use: ``avx512``, ``avx2``, ``neon`` or ``scalar``),
    ``simd_available`` (paths this build and CPU can run), ``threads``,
    ``forked_serial`` (True in a child forked after the parent started the
    OpenMP threads: kernels then run on one thread), and the names of the
    GEMM micro-kernels in use.

    >>> info = fastconv.build_info()
    >>> info["simd"] in info["simd_available"], info["threads"] == fastconv.get_num_threads()
    (True, True)
    """
    return dict(_core.build_info())
