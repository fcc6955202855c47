"""The CPU ops' own worker threads: a batch (or any range) split over numba's thread count, with
BLAS on one thread in each.

BLAS never runs its own threads once the engine computes: OpenBLAS's idle threads spin for a
while after each multi-threaded call and take the cores from the next op's workers (a vgg-small
step ran a third slower that way). The first split() sets BLAS to one thread for the process and
leaves it there (so numpy's matrix products elsewhere in the process run on one thread too):
switching it per call from a thread other than the main one halved that thread's training speed.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

_pool: ThreadPoolExecutor | None = None
_blas_libraries: list | None = None
_local = threading.local()


def scratch(name: str, size: int, dtype) -> np.ndarray:
    """`size` elements of the calling thread's own scratch buffer `name`, grown as needed and
    reused by every op: a thread runs one op at a time, and an op uses it only within a call."""
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (name, np.dtype(dtype))
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = np.empty(size, dtype)
    return buffer[:size]


def _blas() -> list:
    global _blas_libraries
    if _blas_libraries is None:
        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libraries


def hold_blas_to_one_thread() -> None:
    """Set every BLAS library to one thread, where it is not already (reading is cheap)."""
    for library in _blas():
        if library.num_threads != 1:
            library.set_num_threads(1)


PARALLEL_MIN_WORK = 1 << 20
"""Multiply-adds below which one thread beats handing half the work to another (~20 us)."""


def worker_count(n: int, work: int | None = None) -> int:
    """How many workers split() uses for a range of n (that costs `work` multiply-adds)."""
    if work is not None and work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(numba.get_num_threads(), n))


def split(work, n: int, workers: int | None = None) -> int:
    """Run work(worker, lo, hi) over [0, n) cut into `workers` (default worker_count(n)) equal
    parts, the first in the calling thread; returns the number of parts."""
    global _pool
    workers = min(workers or worker_count(n), n) or 1
    hold_blas_to_one_thread()
    if workers == 1:
        work(0, 0, n)
        return 1
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                   thread_name_prefix="engine")
    bounds = [n * w // workers for w in range(workers + 1)]
    futures = [_pool.submit(work, w, bounds[w], bounds[w + 1]) for w in range(1, workers)]
    work(0, bounds[0], bounds[1])
    for future in futures:
        future.result()
    return workers
