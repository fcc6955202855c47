"""Cyclic garbage is collected in the GUI thread while a window is open (designer/collector.py),
never in a worker thread that happens to allocate."""
import gc
import threading

from designer.collector import collector


class Marker:
    """Records the thread that frees it."""

    def __init__(self, record):
        self.record = record
        self.cycle = self

    def __del__(self):
        self.record.append(threading.current_thread())


def test_cycles_are_collected_in_the_gui_thread_while_a_window_is_open(qtbot, window):
    assert not gc.isenabled()
    collector().timer.setInterval(20)
    freed_in: list = []
    Marker(freed_in)

    def allocate():  # a worker allocating: with automatic collection, it would free the marker
        junk = [[] for _ in range(50_000)]
        return len(junk)

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert freed_in == []
    garbage: list = []

    def freed() -> bool:  # the GUI thread keeps allocating, so the youngest generation fills
        garbage.append([[] for _ in range(1000)])
        return bool(freed_in)

    qtbot.waitUntil(freed, timeout=20_000)
    assert freed_in == [threading.main_thread()]
    collector().timer.setInterval(500)
    window.close()
    assert gc.isenabled()
