"""Python's cyclic garbage collection in the GUI thread only, while a window is open.

A reference cycle that holds a Qt object (a closed window, a panel's closures) is freed by whichever
thread happens to trigger the collector: the training worker or the kernel warm-up, if it
allocates at the wrong moment. Destroying a Qt object there is illegal, and it deadlocked the
warm-up thread (the destructor waited for the GIL). While a window is open, automatic collection
is off and a timer in the GUI thread collects instead, as often as the collector's own thresholds
would have.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500

_collector: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    def __init__(self):
        super().__init__()
        self.timer = QTimer(self, interval=INTERVAL_MS, timeout=self.collect)
        self.windows = 0

    def window_opened(self) -> None:
        if self.windows == 0:
            gc.disable()
            self.timer.start()
        self.windows += 1

    def window_closed(self) -> None:
        self.windows -= 1
        if self.windows == 0:
            self.timer.stop()
            gc.collect()
            gc.enable()

    def collect(self) -> None:
        """Collect the oldest generation whose count is past its threshold."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return


def collector() -> GuiThreadCollector:
    """The process's collector (made in the GUI thread, with the first window)."""
    global _collector
    if _collector is None:
        _collector = GuiThreadCollector()
    return _collector
