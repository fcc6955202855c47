"""One place that sets how many threads numba's kernels and BLAS use, so they never
oversubscribe the cores (two-thread OpenMP stalls badly when anything else takes a core)."""
from __future__ import annotations

import os
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def configure(threads: int | None = None) -> int:
    """Use `threads` (default: every available core) for numba and BLAS; returns the count."""
    threads = max(1, min(threads or available_cores(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    threadpool_limits(threads)
    return threads


@contextmanager
def limit_threads(threads: int):
    previous = numba.get_num_threads()
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    with threadpool_limits(threads):
        yield threads
    numba.set_num_threads(previous)
