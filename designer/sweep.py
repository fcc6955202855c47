"""The Sweep dialog: pick training options and graph parameters with their values, run
`engine.sweep` on a local Dask cluster in the background, watch the trials arrive (a table and each
parameter against the validation loss) and open the best trial's model."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.session import Session, TrainingSettings
from engine.sweep import SpaceError, check_folder, parse_space, run_sweep

from .panels.common import BACKGROUND, MUTED

SIZE_PARAMS = ("filters", "units")   # the graph parameters offered: each layer's width


def suggestions(session) -> list[tuple[str, str]]:
    """(name, values) rows the dialog offers: the main training options around the model's
    settings, and the width of every layer that has one."""
    s = session.settings
    rows = [("lr", f"{s.lr / 10:.2g}..{s.lr * 10:.2g}:log"), ("batch_size", "32,64,128"),
            ("weight_decay", "0..0.001"), ("optimizer", "sgd,momentum,adam")]
    graph = session.graph
    try:
        params = graph.check().params
    except ValueError:
        return rows
    for node_id in graph.nodes:
        for name in SIZE_PARAMS:
            value = params.get(node_id, {}).get(name)
            if isinstance(value, int):
                rows.append((f"{node_id}.{name}", f"{max(1, value // 2)},{value},{value * 2}"))
    return rows


def _takes_a_sweep(folder: str) -> bool:
    try:
        check_folder(folder)
    except SpaceError:
        return False
    return True


class SweepDialog(QDialog):
    trial_file = Signal(str)       # a finished trial's model file
    open_requested = Signal(str)   # the best trial's model file, to open
    _row = Signal(object, int)
    _done = Signal(str)            # "" or the error

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.resize(1100, 700)
        self.controller = controller
        self.rows = []
        self.space = []
        self.out: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["parameter", "values (a,b,c or low..high[:log])"])
        self.table.verticalHeader().hide()
        self.trials = QSpinBox(minimum=1, maximum=10_000, value=12)
        self.epochs = QSpinBox(minimum=1, maximum=100_000)
        self.workers = QSpinBox(minimum=1, maximum=256, value=2)
        self.folder = QLineEdit()
        self._shown_session = None
        self.refresh()
        form = QFormLayout()
        form.addRow("Trials", self.trials)
        form.addRow("Epochs per trial", self.epochs)
        form.addRow("Workers (local Dask cluster)", self.workers)
        form.addRow("Folder", self.folder)
        self.start_button = QPushButton("Start sweep")
        self.stop_button = QPushButton("Stop after running trials")
        self.best_button = QPushButton("Open best trial")
        self.stop_button.setEnabled(False)
        self.best_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self._stop.set)
        self.best_button.clicked.connect(
            lambda: self.open_requested.emit(str(self.out / "best.h5")))
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.best_button):
            buttons.addWidget(button)
        self.progress = QProgressBar()
        self.status = QLabel("Check the parameters to vary; the Train panel's data is used.")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {MUTED};")
        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.table, 1)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.status)

        self.results = QTableWidget(0, 0)
        self.results.verticalHeader().hide()
        self.results.setSortingEnabled(True)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(BACKGROUND)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.results)
        right.addWidget(self.plots)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([450, 650])
        QVBoxLayout(self).addWidget(splitter)
        self._row.connect(self._add_row)
        self._done.connect(self._finished)

    def refresh(self) -> None:
        """Before the dialog shows (no sweep running): another model's parameters and epochs
        where another model is open, and a new folder where the last one holds a sweep."""
        session = self.controller.session
        if session is not self._shown_session:
            self._shown_session = session
            self.table.setRowCount(0)
            for name, values in suggestions(session):
                self._add_term(name, values, checked=name == "lr")
            self.table.resizeColumnsToContents()
            self.epochs.setValue(session.settings.epochs)
        if not self.folder.text() or not _takes_a_sweep(self.folder.text()):
            base = (QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
                    or str(Path.home()))
            self.folder.setText(str(Path(base) / "convdesigner-sweeps" /
                                    time.strftime("sweep-%Y%m%d-%H%M%S")))

    def _add_term(self, name: str, values: str, checked: bool) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(name)
        item.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled)
        item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
        self.table.setItem(row, 0, item)
        self.table.setItem(row, 1, QTableWidgetItem(values))

    def space_text(self) -> str:
        return ";".join(f"{self.table.item(r, 0).text()}={self.table.item(r, 1).text()}"
                        for r in range(self.table.rowCount())
                        if self.table.item(r, 0).checkState() == Qt.Checked)

    # -- running ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the sweep on the Train panel's data (one line in the status when it cannot)."""
        info = self.controller.data
        if info is None or info.problem is not None:
            self.status.setText(info.problem.message if info else
                                "Load the data in the Train panel first.")
            return
        session = self.controller.session
        settings = TrainingSettings.from_dict(session.settings.to_dict())
        settings.epochs = self.epochs.value()
        base = Session(self.controller.graph or session.graph, settings)
        try:
            self.space = parse_space(self.space_text(), base.graph, settings)
        except SpaceError as err:
            self.status.setText(str(err))
            return
        self.out = Path(self.folder.text())
        self.rows = []
        self.results.setRowCount(0)
        self.results.setColumnCount(4 + len(self.space))
        self.results.setHorizontalHeaderLabels(["trial", "state", "val_loss", "val_acc",
                                                *(t.name for t in self.space)])
        self._stop.clear()
        self.progress.setRange(0, self.trials.value())
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.best_button.setEnabled(False)
        self.status.setText("starting the Dask cluster…")
        args = (base, info.dataset, self.space, self.trials.value(), self.out)
        kwargs = {"train_range": info.train_range, "val_range": info.val_range,
                  "workers": self.workers.value(), "stop": self._stop,
                  "on_row": lambda row, done: self._row.emit(row, done)}
        self._thread = threading.Thread(target=self._work, args=args, kwargs=kwargs,
                                        daemon=True)
        self._thread.start()

    def _work(self, *args, **kwargs) -> None:
        try:
            run_sweep(*args, **kwargs)
            self._done.emit("")
        except Exception as err:  # noqa: BLE001 - shown in the dialog, in one line
            self._done.emit(" ".join(str(err).split()) or type(err).__name__)

    def _add_row(self, row, done: int) -> None:
        self.rows.append(row)
        self.progress.setValue(done)
        self.status.setText(f"{done} of {self.trials.value()} trials done")
        self.results.setSortingEnabled(False)
        r = self.results.rowCount()
        self.results.insertRow(r)
        values = [row.number, row.state, row.value, row.val_acc,
                  *(row.params.get(t.name) for t in self.space)]
        for col, value in enumerate(values):
            item = QTableWidgetItem()
            item.setData(Qt.DisplayRole, "-" if value is None else value)
            self.results.setItem(r, col, item)
        self.results.setSortingEnabled(True)
        self._plot()
        if row.file:
            self.trial_file.emit(str(self.out / row.file))

    def _plot(self) -> None:
        """Each parameter against the validation loss: complete trials filled, pruned hollow."""
        self.plots.clear()
        for col, term in enumerate(self.space):
            plot = self.plots.addPlot(row=0, col=col, title=term.name)
            plot.setLabel("left", "val loss")
            numeric = all(isinstance(r.params.get(term.name), (int, float)) for r in self.rows)
            plot.setLogMode(x=term.log and numeric, y=False)
            labels = sorted({str(r.params.get(term.name)) for r in self.rows})
            for state, brush in (("complete", "#4fa3ff"), ("pruned", None)):
                done = [r for r in self.rows if r.state == state and r.value is not None]
                xs = [r.params[term.name] if numeric else labels.index(str(r.params[term.name]))
                      for r in done]
                plot.plot(xs, [r.value for r in done], pen=None, symbol="o", symbolSize=9,
                          symbolPen="#4fa3ff", symbolBrush=brush)
            if not numeric:
                plot.getAxis("bottom").setTicks([list(enumerate(labels))])

    def _finished(self, error: str) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        best = self.out / "best.h5"
        self.best_button.setEnabled(best.exists())
        done = [r for r in self.rows if r.state == "complete" and r.value is not None]
        self.refresh()   # a folder holds one sweep: the next Start writes a new one
        if error:
            self.status.setText(f"the sweep failed: {error}")
        elif done:
            top = min(done, key=lambda r: r.value)
            self.status.setText(f"best: trial {top.number}, val_loss {top.value:.4f} "
                                f"({', '.join(f'{k}={v}' for k, v in top.params.items())}); "
                                f"{self.out}")
        else:
            self.status.setText("no trial completed")
