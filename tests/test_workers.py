"""split(): the CPU ops' worker threads (engine/kernels/cpu/workers.py)."""
import gc
import signal
import sys
import threading
import time
import weakref

import numpy as np
import pytest

from engine.kernels.cpu import workers
from engine.kernels.cpu.workers import split


@pytest.mark.parametrize("n, parts", [(1, 2), (7, 2), (64, 2), (5, 3)])
def test_every_index_once_each_part_its_worker(n, parts):
    seen = np.zeros(n, np.int64)
    owners = {}

    def work(worker, lo, hi):
        seen[lo:hi] += 1
        owners[worker] = threading.get_ident()

    used = split(work, n, parts)
    assert seen.tolist() == [1] * n
    assert sorted(owners) == list(range(used))


def test_a_helpers_error_reaches_the_caller_once():
    def work(worker, lo, hi):
        if worker == 1:
            raise ValueError("part 1 failed")

    if split(lambda worker, lo, hi: None, 2, 2) < 2:
        pytest.skip("one thread")
    with pytest.raises(ValueError, match="part 1 failed"):
        split(work, 10, 2)
    assert split(lambda worker, lo, hi: None, 10, 2) == 2  # nothing left over


def test_the_callers_error_waits_for_the_helpers():
    """The helpers write into the caller's buffers: split() returns only after they finish."""
    finished = []

    def work(worker, lo, hi):
        if worker == 0:
            raise KeyboardInterrupt
        time.sleep(0.05)
        finished.append(worker)

    with pytest.raises(KeyboardInterrupt):
        split(work, 10, 2)
    assert finished == [1] or split(lambda worker, lo, hi: None, 2, 2) < 2


def test_helpers_asleep_wake_for_the_next_part(monkeypatch):
    monkeypatch.setattr(workers, "LOOKS", 1)  # they sleep at once
    seen = np.zeros(100, np.int64)
    for pause in (0.0, 0.01, 0.0):
        time.sleep(pause)
        split(lambda worker, lo, hi: seen[lo:hi].__iadd__(1), 100, 2)
    assert seen.tolist() == [3] * 100


def test_two_threads_split_at_once(monkeypatch):
    """A split while another thread's runs takes its parts in its own thread: both exact (the
    first two also race to make the pool)."""
    class SlowPool(workers._Pool):  # a wide window for both threads to make one
        def __init__(self, count):
            time.sleep(0.02)
            super().__init__(count)

    monkeypatch.setattr(workers, "_pool", None)
    monkeypatch.setattr(workers, "_Pool", SlowPool)
    results, errors = {}, []
    together = threading.Barrier(2)

    def job(name):
        try:
            out = np.zeros(50)
            together.wait()
            for _ in range(200):
                out[:] = 0
                split(lambda worker, lo, hi: out[lo:hi].__iadd__(1), 50, 2)
                assert out.tolist() == [1] * 50
            results[name] = True
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=job, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == {"a": True, "b": True}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM")
def test_a_ctrl_c_while_waiting_waits_for_the_helpers_then_stops():
    """Ctrl+C while the caller waits: split() still returns only once the helpers are done, and
    a helper's error from that split does not come out of the next one."""
    if split(lambda worker, lo, hi: None, 2, 2) < 2:
        pytest.skip("one thread")
    finished = []

    def work(worker, lo, hi):
        if worker:
            time.sleep(0.3)
            finished.append(worker)
            raise ValueError("from the interrupted split")

    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            split(work, 10, 2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert finished == [1]
    assert split(lambda worker, lo, hi: None, 10, 2) == 2


def test_a_finished_part_is_not_kept():
    """The pool drops each part once run (a part's work holds its op's buffers)."""
    class Buffers:
        pass

    buffers = Buffers()
    split(lambda worker, lo, hi, held=buffers: None, 10, 2)
    gone = weakref.ref(buffers)
    del buffers
    gc.collect()
    assert gone() is None
