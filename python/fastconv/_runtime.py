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
