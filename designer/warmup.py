"""Kernel warm-up in the designer: once a network is opened or its structure changes, load (or, the
first time, compile) the numba kernels its training needs on a background thread, and show the
progress in the status bar instead of stalling the first training step."""
from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from engine.graph import Graph
from engine.warmup import kernel_key, warm_up

SETTLE_MS = 200   # a burst of edits (or a half-wired graph) settles before anything is warmed
POLL_MS = 100     # how often the window reads the thread's progress

log = logging.getLogger("convdesigner.warmup")


class KernelWarmup(QObject):
    """Warms the kernels of the graph last given to request(), SETTLE_MS later, on a thread of
    its own, for the engine's default optimizer (Adam: the smoke test's and the Train panel's);
    each distinct engine.warmup.kernel_key is warmed once, invalid graphs never.

    The thread never touches Qt: it records its progress, which this object polls and re-emits
    in the GUI thread as started(), progress(done, total, label) and finished(). A training run
    started meanwhile shares the work: numba compiles each kernel once, under its own lock, for
    whichever thread calls it first.
    """

    started = Signal()
    progress = Signal(int, int, str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._graph: Graph | None = None
        self._warmed: set[frozenset] = set()
        self._thread: threading.Thread | None = None
        self._key: frozenset | None = None
        self._lock = threading.Lock()
        self._report = (0, 0, "")
        self._shown = self._report
        self._ok = False
        self._stop = threading.Event()
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS, timeout=self._start)
        self._poll = QTimer(self, interval=POLL_MS, timeout=self._check)

    @property
    def busy(self) -> bool:
        """A warm-up is waiting to start or running."""
        return self._settle.isActive() or self._thread is not None

    def request(self, graph: Graph) -> None:
        """Warm graph's kernels once the edits settle (graph is read then, not now)."""
        self._graph = graph
        self._settle.start()

    def stop(self) -> None:
        """Drop what is waiting and end the running warm-up after its current step."""
        self._settle.stop()
        self._graph = None
        self._stop.set()

    def _start(self) -> None:
        if self._thread is not None or self._graph is None:
            return   # _check starts it when the running one ends
        graph, self._graph = self._graph.copy(), None
        key = kernel_key(graph)
        if key is None or key in self._warmed:
            return
        self._key, self._report, self._ok = key, (0, 0, ""), False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(graph,), name="kernel-warmup",
                                        daemon=True)
        self._thread.start()
        self.started.emit()
        self._poll.start()

    def _run(self, graph: Graph) -> None:
        try:
            self._ok = warm_up(graph, progress=self._record, stop=self._stop)
        except Exception:  # noqa: BLE001 - an odd graph fails again where training reports it
            log.debug("kernel warm-up failed", exc_info=True)

    def _record(self, done: int, total: int, label: str) -> None:
        with self._lock:
            self._report = (done, total, label)

    def _check(self) -> None:
        alive = self._thread.is_alive()   # first: once it has ended, its last report is in
        with self._lock:
            report = self._report
        if report != self._shown:
            self._shown = report
            self.progress.emit(*report)
        if alive:
            return
        self._thread = None
        self._poll.stop()
        if self._ok:
            self._warmed.add(self._key)
        if self._graph is not None and not self._settle.isActive():
            self._start()
        if self._thread is None:
            self.finished.emit()


class WarmupIndicator(QWidget):
    """Status-bar progress of a KernelWarmup ("Preparing kernels: conv2 (Conv2D) backward" and a
    bar counting the steps), shown while it runs."""

    def __init__(self, warmup: KernelWarmup, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel(alignment=Qt.AlignRight | Qt.AlignVCenter)
        self.bar = QProgressBar(maximumWidth=140, maximumHeight=16, format="%v/%m")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.setToolTip("Loading the numba kernels that training this network runs; the first "
                        "time they are compiled, which takes a while, and then kept on disk.")
        self.setVisible(False)
        warmup.started.connect(self._started)
        warmup.progress.connect(self._progress)
        warmup.finished.connect(self.hide)

    def _started(self) -> None:
        self.label.setText("Preparing kernels…")
        self.bar.setRange(0, 0)   # busy until the network is compiled and the steps are counted
        self.show()

    def _progress(self, done: int, total: int, label: str) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self.label.setText(f"Preparing kernels: {label}" if label else "Kernels ready")
