"""Make fastconv's thread pool visible to threadpoolctl.

fastconv keeps its own process-wide thread count (``set_num_threads``), not
``omp_set_num_threads``, so threadpoolctl's OpenMP controller cannot see or
limit it. When threadpoolctl is installed, importing fastconv registers a
controller for the compiled module: ``threadpool_info()`` lists it (user API
``"openmp"``, internal API ``"fastconv"``) and ``threadpool_limits`` limits it
like any OpenMP library, e.g.::

    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):                     # every library
        ...
    with threadpool_limits(limits=1, user_api="openmp"):  # OpenMP ones, fastconv included
        ...

    from threadpoolctl import ThreadpoolController
    with ThreadpoolController().select(internal_api="fastconv").limit(limits=2):
        ...                                               # fastconv only

The controller finds the library by the C symbols it exports
(``fastconv_threadpool_get_num_threads`` and friends), so another package's
``_core`` module is never mistaken for fastconv's.
"""

from __future__ import annotations

_registered = False


def register() -> bool:
    """Register the controller with threadpoolctl if it is installed (idempotent).

    Returns True when fastconv's controller is registered.
    """
    global _registered
    if _registered:
        return True
    try:
        import threadpoolctl
    except ImportError:
        return False
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return False  # threadpoolctl < 3.5 has no controller registration

    import ctypes

    class FastconvController(threadpoolctl.LibController):
        """threadpoolctl controller for fastconv's compiled core."""

        user_api = "openmp"
        internal_api = "fastconv"
        filename_prefixes = ("_core",)
        check_symbols = (
            "fastconv_threadpool_get_num_threads",
            "fastconv_threadpool_set_num_threads",
        )

        def _fn(self, name, restype, argtypes):
            fn = getattr(self.dynlib, name, None)
            if fn is not None:
                fn.restype = restype
                fn.argtypes = argtypes
            return fn

        def get_num_threads(self):
            fn = self._fn("fastconv_threadpool_get_num_threads", ctypes.c_int, [])
            return None if fn is None else int(fn())

        def set_num_threads(self, num_threads):
            fn = self._fn("fastconv_threadpool_set_num_threads", None, [ctypes.c_int])
            if fn is not None:
                fn(int(num_threads))

        def get_version(self):
            fn = self._fn("fastconv_threadpool_version", ctypes.c_char_p, [])
            return None if fn is None else fn().decode("ascii", "replace")

    threadpoolctl.register(FastconvController)
    _registered = True
    return True
