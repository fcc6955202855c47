"""Cyclic garbage is collected in the GUI thread while a window is open (designer/collector.py):
a Qt object in a reference cycle is destroyed there, never in a worker thread."""
import gc
import threading

from PySide6.QtCore import QObject


def test_cycles_are_collected_in_the_gui_thread_while_a_window_is_open(qtbot, window):
    assert not gc.isenabled()
    destroyed_in = []
    holder = {"object": QObject()}
    holder["cycle"] = holder
    holder["object"].destroyed.connect(lambda: destroyed_in.append(threading.current_thread()))
    del holder

    def allocate():  # a worker thread allocating: with automatic collection it could collect
        junk = [[] for _ in range(5000)]
        return len(junk)

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert destroyed_in == []
    kept = [[] for _ in range(2000)]  # past the youngest generation's threshold
    qtbot.waitUntil(lambda: bool(destroyed_in), timeout=10_000)
    assert destroyed_in == [threading.main_thread()] and len(kept) == 2000
    window.close()
    assert gc.isenabled()
