"""How many threads numba's kernels use (BLAS stays on one thread in each of the engine's
workers: engine/kernels/cpu/workers.py), so they never oversubscribe the cores (two-thread
OpenMP stalls badly when anything else takes a core)."""
from __future__ import annotations

import os
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextmanager
def limit_threads(threads: int):
    """numba's kernels and the engine's workers on `threads` threads inside the block."""
    previous = numba.get_num_threads()
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    with threadpool_limits(threads, user_api="openmp"):
        yield threads
    numba.set_num_threads(previous)
