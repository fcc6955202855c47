"""The CPU ops' own worker threads: a batch (or any range) split over numba's thread count, with
BLAS on one thread in each.

BLAS never runs its own threads once the engine computes: OpenBLAS's idle threads spin for a
while after each multi-threaded call and take the cores from the next op's workers (a vgg-small
step ran a third slower that way). The first split() sets BLAS to one thread for the process and
leaves it there (so numpy's matrix products elsewhere in the process run on one thread too):
switching it per call from a thread other than the main one halved that thread's training speed.

A part handed to a sleeping thread waits for it to wake: 50-70 us on this machine, more than a
small layer's whole part. So the workers, and the caller waiting for them, first look for work
for about a millisecond (without the GIL, giving up the core between looks, so the kernels'
own threads run), then sleep: a part handed over while they look starts within a few us.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from threadpoolctl import ThreadpoolController

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


def _yield_address() -> int:
    """The address of the C call that gives up the core (0 where there is none)."""
    try:
        call = (ctypes.windll.kernel32.SwitchToThread if sys.platform == "win32"
                else ctypes.CDLL(None).sched_yield)
    except (AttributeError, OSError):
        return 0
    return ctypes.cast(call, ctypes.c_void_p).value or 0


@intrinsic
def _call_int_function(typingctx, address):
    """Call the C function `int f(void)` at `address` (an address as an argument keeps the
    callers cacheable, which a ctypes function in their globals would not)."""
    def codegen(context, builder, signature, args):
        function = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(args[0], function.as_pointer()), [])

    return types.int32(types.int64), codegen


@njit(nogil=True, cache=True)
def _look(counters, index, target, looks, give_way):
    """Whether counters[index] reaches target within `looks` looks, calling give_way (a C
    function's address, or 0) between them; the opaque call makes every look read memory."""
    for _ in range(looks):
        if counters[index] >= target:
            return True
        if give_way:
            _call_int_function(give_way)
    return counters[index] >= target


LOOKS = 2000
"""Looks for work (or for a worker's part to finish) before sleeping: about 1 ms."""


class _Pool:
    """Threads 1..count of split(): each runs the parts posted to it, looking for the next one
    for LOOKS before it sleeps; split()'s caller is thread 0. Each thread sleeps on its own
    condition, so a post wakes only the thread it is for. The counters are read without a lock:
    their writes and the sleepers' checks all run under the GIL, which orders them."""

    def __init__(self, count: int):
        self.posted = np.zeros(count + 1, np.int64)  # parts posted to / finished by each
        self.finished = np.zeros(count + 1, np.int64)
        self.parts: list = [None] * (count + 1)
        self.errors: list = [None] * (count + 1)
        self.wakes = [threading.Condition() for _ in range(count + 1)]
        self.sleeping = [False] * (count + 1)
        self.busy = threading.Lock()  # one split() at a time; others run their parts serially
        self.give_way = _yield_address()
        self.looks = LOOKS if self.give_way else 0  # without a call, LLVM drops the looking
        self.pid = os.getpid()
        for worker in range(1, count + 1):
            threading.Thread(target=self._serve, args=(worker,), name=f"engine-{worker}",
                             daemon=True).start()

    def _wait(self, waiter: int, counters, index: int, target) -> None:
        """Thread `waiter` waits until counters[index] reaches target."""
        if _look(counters, index, target, self.looks, self.give_way):
            return
        with self.wakes[waiter]:
            self.sleeping[waiter] = True
            try:
                self.wakes[waiter].wait_for(lambda: counters[index] >= target)
            finally:
                self.sleeping[waiter] = False

    def _wake(self, waiter: int) -> None:
        if self.sleeping[waiter]:
            with self.wakes[waiter]:
                self.wakes[waiter].notify()

    def _serve(self, worker: int) -> None:
        done = 0
        while True:
            self._wait(worker, self.posted, worker, done + 1)
            work, lo, hi = self.parts[worker]
            self.parts[worker] = None
            try:
                work(worker, lo, hi)
            except BaseException as error:  # handed to split()'s caller
                self.errors[worker] = error
            work = None  # it holds its op's buffers: not kept while this thread waits
            done += 1
            self.finished[worker] = done
            self._wake(0)

    def run(self, work, bounds: list[int]) -> None:
        helpers = range(1, len(bounds) - 1)
        posted = []
        try:
            for worker in helpers:
                self.parts[worker] = (work, bounds[worker], bounds[worker + 1])
                self.posted[worker] += 1
                posted.append(worker)
                self._wake(worker)
            work(0, bounds[0], bounds[1])
        finally:  # the helpers' parts write into the caller's buffers: wait for them, even
            interrupted = None  # through a Ctrl+C, which is raised once they are done
            for worker in posted:
                while True:
                    try:
                        self._wait(0, self.finished, worker, self.posted[worker])
                        break
                    except KeyboardInterrupt as interrupt:
                        interrupted = interrupt
            errors = [self.errors[worker] for worker in posted
                      if self.errors[worker] is not None]
            self.errors = [None] * len(self.errors)
            if interrupted is not None:
                raise interrupted
        if errors:
            raise errors[0]


_pool: _Pool | None = None
_pool_made = threading.Lock()


def _after_fork() -> None:  # a fork while another thread held the lock would leave it held
    global _pool_made
    _pool_made = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _the_pool() -> _Pool:
    """The process's pool, made on first use (by one thread) and again after a fork."""
    global _pool
    with _pool_made:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool(max(1, numba.config.NUMBA_NUM_THREADS - 1))
        return _pool


def split(work, n: int, workers: int | None = None) -> int:
    """Run work(worker, lo, hi) over [0, n) cut into `workers` (default worker_count(n)) equal
    parts, the first in the calling thread; returns the number of parts. A split while another
    runs (another thread's) runs its parts one after another in the calling thread."""
    workers = min(workers or worker_count(n), n, numba.config.NUMBA_NUM_THREADS) or 1
    hold_blas_to_one_thread()
    bounds = [n * w // workers for w in range(workers + 1)]
    pool = _the_pool() if workers > 1 else None
    if pool is None or not pool.busy.acquire(blocking=False):
        for w in range(workers):
            work(w, bounds[w], bounds[w + 1])
        return workers
    try:
        pool.run(work, bounds)
    finally:
        pool.busy.release()
    return workers
