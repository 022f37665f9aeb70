"""Batch inference on a Dask cluster (or Dask's local schedulers).

:func:`predict_dask` runs a model over a ``dask.array`` of inputs along the
batch axis and returns a lazy ``dask.array`` of outputs::

    import dask.array as da
    from fastconv.distributed import predict_dask

    images = da.from_zarr("images.zarr")                 # (N, 3, 32, 32)
    logits = predict_dask(model, images, batch_size=256)  # (N, 10), lazy
    labels = logits.argmax(axis=1).compute()

What it does, so you can rely on it:

- The model is shipped once per graph, not once per chunk: it becomes a single
  key that every block task depends on (or pass a future from
  :func:`scatter_model`, which puts it on the workers ahead of time).
- Every task runs the model in eval mode under ``no_grad()``. A model in
  training mode is deep-copied and the copy switched to eval; your model is
  never modified.
- Every task sets fastconv's thread count for its duration (restoring it when
  the last concurrent task of the process ends), so that worker threads times
  fastconv threads does not exceed the cores. See :func:`predict_dask`.

Dask is optional: this module imports without it, and its functions raise an
``ImportError`` naming ``pip install 'fastconv[dask]'`` when called without it.
Workers need fastconv installed (the model is pickled; see docs/distributed.md
for the pickling guarantee).
"""

from __future__ import annotations

import contextlib
import copy
import operator
import os
import socket
import sys
import threading
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from ._runtime import MAX_THREADS, build_info, get_num_threads, set_num_threads
from .autograd import no_grad
from .nn.module import Module
from .tensor import Tensor

__all__ = ["predict_dask", "scatter_model", "configure_worker_threads"]

_INSTALL_HINT = "pip install 'fastconv[dask]'"


def _require_dask(func: str) -> Any:
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError as e:
        raise ImportError(f"fastconv.distributed.{func} needs Dask; install it with: {_INSTALL_HINT}") from e
    return dask


def _require_distributed(func: str) -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ImportError(
            f"fastconv.distributed.{func} needs dask.distributed; install it with: {_INSTALL_HINT}"
        ) from e
    return distributed


def _positive_int(n: Any, name: str, hi: Optional[int] = None) -> int:
    if isinstance(n, bool):
        raise TypeError(f"{name} must be an int, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(n).__name__}") from None
    if n < 1 or (hi is not None and n > hi):
        raise ValueError(f"{name} must be >= 1{f' and <= {hi}' if hi else ''}, got {n}")
    return n


# ----------------------------------------------------------------------------------------------
# thread budget


def _cpu_set() -> Optional[frozenset]:
    """The CPUs this process may run on (None where the OS does not say)."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _usable_cpus() -> int:
    """Cores this process may use: CPU affinity, capped by a cgroup quota (Dask's CPU_COUNT)."""
    cpus = _cpu_set()
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    try:
        from dask.system import CPU_COUNT

        n = min(n, CPU_COUNT)
    except ImportError:
        pass
    return max(1, n)


def _worker_facts(dask_worker: Any = None) -> dict:
    """Run on each worker by ``client.run``: what the thread plan needs to know."""
    cpus = _cpu_set()
    return {
        "host": socket.gethostname(),
        "cpus": sorted(cpus) if cpus else None,
        "ncpu": _usable_cpus(),
        "nthreads": int(dask_worker.state.nthreads),
    }


def _overlap(a: Optional[frozenset], b: Optional[frozenset]) -> bool:
    return a is None or b is None or bool(a & b)  # an unknown CPU set may overlap anything


def _plan_threads(facts: Dict[str, dict]) -> Dict[str, int]:
    """fastconv threads per task for each worker: its cores // the worker threads sharing them.

    Workers on the same host whose CPU sets overlap (or are unknown) share
    those cores, so a host with c cores running w workers of k threads each
    gives max(1, c // (w * k)); workers pinned to disjoint CPU sets each get
    their own cores.
    """
    by_host: Dict[str, list] = {}
    for addr, f in facts.items():
        by_host.setdefault(f["host"], []).append((addr, f))
    plan = {}
    for members in by_host.values():
        sets = {addr: (frozenset(f["cpus"]) if f["cpus"] else None) for addr, f in members}
        for addr, f in members:
            mine = sets[addr]
            sharing = sum(g["nthreads"] for other, g in members if _overlap(mine, sets[other]))
            plan[addr] = max(1, f["ncpu"] // max(1, sharing))
    return plan


_threads_lock = threading.Lock()
_threads_active = 0
_threads_saved: Optional[int] = None
#: set on a worker by configure_worker_threads; predict_dask's default then uses it
_configured_threads: Optional[int] = None


def _apply_threads(n: int) -> int:
    """set_num_threads(n), or 1 in a child forked after OpenMP started (it cannot run a team)."""
    if n > 1 and build_info()["forked_serial"]:
        n = 1
    if get_num_threads() != n:
        set_num_threads(n)
    return n


@contextlib.contextmanager
def _task_threads(n: Optional[int]) -> Iterator[None]:
    """Run a task with ``n`` fastconv threads; the last task of the process to leave restores the setting.

    The setting is process-wide, so concurrent tasks (a worker's threads, the
    threaded scheduler's pool) share one count and one saved value. With
    ``n=None`` the count follows the tasks running now: cores // running
    tasks, re-divided as tasks start and end (one task alone, as under the
    synchronous scheduler or at the tail of a job, gets every core). Changing
    the count mid-task is safe: kernels read it when they start, and results do
    not depend on it.
    """
    global _threads_active, _threads_saved
    with _threads_lock:
        if _threads_active == 0:
            _threads_saved = get_num_threads()
        _threads_active += 1
        _apply_threads(n if n is not None else max(1, _usable_cpus() // _threads_active))
    try:
        yield
    finally:
        with _threads_lock:
            _threads_active -= 1
            if _threads_active == 0:
                if _threads_saved is not None and get_num_threads() != _threads_saved:
                    set_num_threads(_threads_saved)
            elif n is None:
                _apply_threads(max(1, _usable_cpus() // _threads_active))


def _current_worker() -> Any:
    """The dask.distributed worker running this task, or None (local schedulers)."""
    if "distributed" not in sys.modules:  # not imported: cannot be on a worker
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


class _BlockSpec:
    """What every block task needs besides the block and the model (small; embedded per task)."""

    def __init__(self, out_tail: Tuple[int, ...], out_dtype: str, fixed: Optional[int], per_worker: Dict[str, int]):
        self.out_tail = tuple(out_tail)
        self.out_dtype = out_dtype
        self.fixed = fixed
        self.per_worker = dict(per_worker)

    def __dask_tokenize__(self) -> Any:
        return ("fastconv-blockspec", self.out_tail, self.out_dtype, self.fixed, sorted(self.per_worker.items()))

    def threads(self) -> Optional[int]:
        """Threads for this task; None: share the cores among this process's running tasks."""
        if self.fixed is not None:
            return self.fixed
        worker = _current_worker()
        if worker is None:  # a local scheduler
            return None
        if _configured_threads is not None:
            return _configured_threads
        n = self.per_worker.get(worker.address)
        if n is None:  # a worker that joined after predict_dask was called
            n = max(1, _usable_cpus() // max(1, int(worker.state.nthreads)))
        return n


# ----------------------------------------------------------------------------------------------
# the model on the cluster


def _nbytes(model: Module) -> int:
    n = 0
    for p in model.parameters():
        n += p.data.nbytes + (p.grad.nbytes if p.grad is not None else 0)
    for b in model.buffers():
        n += b.nbytes
    return n


class _ModelBox:
    """Holds the eval-mode model shipped to the workers.

    ``sys.getsizeof`` (which Dask's ``sizeof`` falls back to) reports the
    arrays' bytes, so worker memory accounting and scheduling see the model's
    real size rather than that of a bare Python object.
    """

    def __init__(self, model: Module):
        self.model = model

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + _nbytes(self.model)


def _unbox(model: Any) -> Module:
    m = model.model if isinstance(model, _ModelBox) else model
    if not isinstance(m, Module):
        raise TypeError(f"predict_dask: the model must be a fastconv.nn.Module, got {type(m).__name__}")
    return m


def _training_modules(model: Module) -> list:
    return [name or type(model).__name__ for name, m in model.named_modules() if m.training]


def _eval_model(model: Module) -> Module:
    """The model itself if it (and every submodule) is in eval mode, else an eval-mode deep copy."""
    if not _training_modules(model):
        return model
    return copy.deepcopy(model).eval()


def _probe(model: Any, sample_shape: Tuple[int, ...], dtype: Any) -> Tuple[Tuple[int, ...], str]:
    """Per-sample output shape and dtype, from one forward pass on a 1-sample zero input."""
    m = _unbox(model)
    busy = _training_modules(m)
    if busy:
        raise ValueError(
            "predict_dask: a scattered model must be in eval mode; these modules are in training mode: "
            + ", ".join(busy)
            + " (scatter_model() switches a copy to eval for you)"
        )
    with no_grad():
        y = m(Tensor(np.zeros((1,) + tuple(sample_shape), dtype=dtype)))
    if isinstance(y, (tuple, list)):
        raise TypeError(f"predict_dask: the model must return one array, got a {type(y).__name__}")
    y = y.data if isinstance(y, Tensor) else np.asarray(y)
    if y.ndim < 1 or y.shape[0] != 1:
        raise ValueError(
            f"predict_dask: the model's output must keep the batch dimension: a batch of 1 sample "
            f"{tuple(sample_shape)} gave shape {y.shape}"
        )
    return tuple(int(d) for d in y.shape[1:]), y.dtype.str


def _predict_block(block: np.ndarray, model: Any, spec: _BlockSpec) -> np.ndarray:
    """One Dask task: the model on one batch chunk, eval mode, no graph, a bounded thread count."""
    m = _unbox(model)
    n = block.shape[0]
    want = (n,) + spec.out_tail
    if n == 0:
        return np.empty(want, dtype=spec.out_dtype)
    with _task_threads(spec.threads()), no_grad():
        y = m(Tensor(np.asarray(block)))
    y = y.data if isinstance(y, Tensor) else np.asarray(y)
    if y.shape != want:
        raise ValueError(f"predict_dask: the model returned shape {y.shape} for a block of {n} samples, expected {want}")
    return y.astype(spec.out_dtype, copy=False)


def _active_client(dask: Any, client: Any, collections: list) -> Any:
    """The distributed Client the result will (most likely) be computed on, or None."""
    if client is not None:
        return client
    if "distributed" not in sys.modules:
        return None
    from distributed import Client

    try:
        scheduler = dask.base.get_scheduler(collections=collections)
    except (RuntimeError, ValueError):
        return None
    owner = getattr(scheduler, "__self__", None)
    return owner if isinstance(owner, Client) else None


def _is_future(obj: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(obj, distributed.Future)


def _worker_plan(client: Any) -> Dict[str, int]:
    if client is None or getattr(client, "asynchronous", False):
        return {}
    return _plan_threads(client.run(_worker_facts))


# ----------------------------------------------------------------------------------------------
# public API


def scatter_model(model: Module, *, client: Any = None, broadcast: bool = True) -> Any:
    """Put an eval-mode copy of ``model`` on the workers ahead of time; returns a Future for :func:`predict_dask`.

    Use it for large models (more than a few MB of parameters): the model goes
    from this process to one worker and from there to the others
    (``broadcast=True``), instead of travelling inside the task graph through
    the scheduler. Your model is not modified (a model in training mode is
    copied and the copy switched to eval).

    Example (needs a ``distributed.Client``)::

    >>> from fastconv.distributed import predict_dask, scatter_model  # doctest: +SKIP
    >>> future = scatter_model(fastconv.models.AlexNet(), client=client)  # doctest: +SKIP
    >>> logits = predict_dask(future, images, batch_size=64)  # doctest: +SKIP
    """
    _require_dask("scatter_model")
    distributed = _require_distributed("scatter_model")
    if not isinstance(model, Module):
        raise TypeError(f"scatter_model: model must be a fastconv.nn.Module, got {type(model).__name__}")
    client = client if client is not None else distributed.default_client()
    return client.scatter(_ModelBox(_eval_model(model)), broadcast=broadcast, hash=False)


def predict_dask(
    model: Any,
    images: Any,
    *,
    batch_size: Optional[int] = None,
    threads_per_task: Optional[int] = None,
    input_dtype: Any = None,
    client: Any = None,
) -> Any:
    """Run ``model`` over ``images`` along the batch axis; returns a lazy ``dask.array``.

    Parameters
    ----------
    model
        A :class:`fastconv.nn.Module`, or a Future from :func:`scatter_model`
        (or ``client.scatter`` of an eval-mode module). A module is embedded
        once in the graph (one key every block task depends on), never once per
        chunk; in training mode it is deep-copied and the copy set to eval, so
        BatchNorm uses its running statistics and Dropout is off. Your model is
        never modified.
    images
        A ``dask.array.Array`` (or anything ``dask.array.asarray`` takes),
        batch first: ``(N, C, H, W)`` for a CNN. The non-batch axes are
        rechunked to single chunks; the batch chunks are kept unless
        ``batch_size`` is given.
    batch_size
        Rechunk the batch axis to this many samples per task.
    threads_per_task
        fastconv threads each task uses. Default: on a ``dask.distributed``
        worker, the value set by :func:`configure_worker_threads` if any, else
        the worker's cores divided by the worker threads sharing them (all
        workers on the host whose CPU sets overlap), planned when this
        function is called for ``client`` or the default client; under Dask's
        local schedulers, the cores divided among the tasks running at the
        moment (all of them under the synchronous scheduler).
    input_dtype
        Cast the input blocks to this dtype first (e.g. ``np.float32`` for
        float64 or uint8 data); by default fastconv's dtype rules apply
        (integers become float32, float64 stays float64).
    client
        The ``distributed.Client`` to plan threads for (default: the active
        default client, if any).

    Returns
    -------
    dask.array.Array
        ``(N, *out)`` with the output shape and dtype of one forward pass on a
        1-sample zero input, chunked like the (rechunked) batch axis.

    Example (needs Dask; computes with whatever scheduler is active)::

    >>> import dask.array as da  # doctest: +SKIP
    >>> from fastconv.distributed import predict_dask  # doctest: +SKIP
    >>> images = da.zeros((64, 3, 32, 32), chunks=(16, 3, 32, 32), dtype=np.float32)  # doctest: +SKIP
    >>> logits = predict_dask(fastconv.models.CifarVGG(), images, batch_size=32)  # doctest: +SKIP
    >>> logits.shape, logits.chunks, logits.dtype  # doctest: +SKIP
    ((64, 10), ((32, 32), (10,)), dtype('float32'))
    >>> logits.argmax(axis=1).compute().shape  # doctest: +SKIP
    (64,)
    """
    dask = _require_dask("predict_dask")
    import dask.array as da

    if batch_size is not None:
        batch_size = _positive_int(batch_size, "predict_dask: batch_size")
    fixed = None
    if threads_per_task is not None:
        fixed = _positive_int(threads_per_task, "predict_dask: threads_per_task", MAX_THREADS)

    x = images if isinstance(images, da.Array) else da.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"predict_dask: images must be batched, (N, ...) with at least 2 dimensions, got shape {x.shape}")
    if any(np.isnan(d) for d in x.shape[1:]):
        raise ValueError(f"predict_dask: the per-sample shape must be known, got {x.shape}")
    if input_dtype is not None:
        x = x.astype(np.dtype(input_dtype))
    rechunk = {i: -1 for i in range(1, x.ndim) if len(x.chunks[i]) > 1}
    if batch_size is not None:
        rechunk[0] = batch_size
    if rechunk:
        x = x.rechunk(rechunk)
    sample_shape = tuple(int(d) for d in x.shape[1:])

    if isinstance(model, Module):
        box = _ModelBox(_eval_model(model))
        out_tail, out_dtype = _probe(box, sample_shape, x.dtype)
        model_arg = dask.delayed(box, pure=False, traverse=False)
    elif _is_future(model):
        client = client if client is not None else model.client
        out_tail, out_dtype = client.submit(_probe, model, sample_shape, x.dtype.str, pure=False).result()
        model_arg = model
    else:
        raise TypeError(
            f"predict_dask: model must be a fastconv.nn.Module or a Future from scatter_model(), got {type(model).__name__}"
        )

    per_worker = {} if fixed is not None else _worker_plan(_active_client(dask, client, [x]))
    spec = _BlockSpec(out_tail, out_dtype, fixed, per_worker)

    out_ndim = 1 + len(out_tail)
    kwargs: Dict[str, Any] = {}
    if out_ndim < x.ndim:
        kwargs["drop_axis"] = list(range(out_ndim, x.ndim))
    elif out_ndim > x.ndim:
        kwargs["new_axis"] = list(range(x.ndim, out_ndim))
    return da.map_blocks(
        _predict_block,
        x,
        model_arg,
        spec,
        chunks=(x.chunks[0],) + tuple((d,) for d in out_tail),
        meta=np.empty((0,) * out_ndim, dtype=out_dtype),
        token="fastconv-predict",
        **kwargs,
    )


def _configure_on_worker(n: Optional[int], plan: Dict[str, int], dask_worker: Any = None) -> int:
    global _configured_threads
    if n is None:
        n = plan.get(dask_worker.address) or max(1, _usable_cpus() // max(1, int(dask_worker.state.nthreads)))
    os.environ["OMP_NUM_THREADS"] = str(n)
    n = _apply_threads(n)
    _configured_threads = n
    return n


def configure_worker_threads(n: Optional[int] = None, *, client: Any = None) -> Dict[str, int]:
    """Set fastconv's thread count and ``OMP_NUM_THREADS`` on every current worker; returns {address: threads}.

    With ``n=None`` each worker gets its share of its host's cores: cores //
    (worker threads of all workers sharing them), at least 1. The value stays
    set in the worker process and :func:`predict_dask` uses it by default.
    ``OMP_NUM_THREADS`` only affects libraries that read it later (fastconv
    itself is set directly). Workers that join afterwards are not configured;
    ``predict_dask`` still plans their threads.

    Example (needs a ``distributed.Client``; here 2 workers of 1 thread on 4 cores)::

    >>> from fastconv.distributed import configure_worker_threads  # doctest: +SKIP
    >>> configure_worker_threads(client=client)  # doctest: +SKIP
    {'tcp://127.0.0.1:40427': 2, 'tcp://127.0.0.1:36619': 2}
    """
    _require_dask("configure_worker_threads")
    distributed = _require_distributed("configure_worker_threads")
    if n is not None:
        n = _positive_int(n, "configure_worker_threads: n", MAX_THREADS)
    client = client if client is not None else distributed.default_client()
    plan = {} if n is not None else _worker_plan(client)
    return client.run(_configure_on_worker, n, plan)
