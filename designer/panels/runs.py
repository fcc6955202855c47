"""Runs: every training run of the open model (and of model files the user adds) in a sortable
table; selected runs' loss curves overlaid, and for two runs their architecture and settings
differences."""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.modelfile import ModelFileError, load_model
from engine.runs import final, graph_diff, settings_diff

from .common import BACKGROUND, MUTED, status_label

COLUMNS = ("Model", "Run", "Started", "Ended", "Epochs", "Optimizer", "LR", "Batch",
           "Weight decay", "Train loss", "Val loss", "Val acc")
PALETTE = ("#4fa3ff", "#ff9f43", "#7bd88f", "#e06c75", "#c678dd", "#e5c07b", "#56b6c2",
           "#d19a66")
DIFF_COLOURS = {"+": "#7bd88f", "-": "#e06c75", "~": "#e5c07b"}


def _number(value) -> QTableWidgetItem:
    """A cell that sorts by its number ("-" when unmeasured sorts first), to 4 significant
    digits (a loss showed as 1.303315944990802)."""
    item = QTableWidgetItem()
    if value is None:
        item.setText("-")
    else:
        item.setData(Qt.DisplayRole, float(f"{value:.4g}") if isinstance(value, float) else value)
    return item


class RunsPanel(QWidget):
    """The runs table, the overlay plot and the differences list."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.files: dict[str, list[dict]] = {}   # added model files: path -> runs
        self.entries: list[tuple[str, int, dict]] = []  # (model label, run index, run)

        self.add_button = QPushButton("Add model file…")
        self.add_button.setToolTip("Compare with the runs kept in another model file")
        self.add_button.clicked.connect(self._ask_file)
        self.status = status_label()
        self.status.setStyleSheet(f"color: {MUTED};")
        top = QHBoxLayout()
        top.addWidget(self.add_button)
        top.addWidget(self.status, 1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._show_selection)

        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(labelTextSize="8pt")
        self.diff_title = QLabel("Select two runs to see their differences")
        self.diff = QListWidget()
        # the runs and their differences on the left, the curves the dock's whole height on
        # the right (under the differences they were 30 px tall at the default window size)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table, 3)
        column.addWidget(self.diff_title)
        column.addWidget(self.diff, 2)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.plot)
        splitter.setSizes([600, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        controller.session_changed.connect(self.refresh)
        controller.finished.connect(lambda _reason: self.refresh())
        self.refresh()

    # -- the table ------------------------------------------------------------------------------
    def add_file(self, path) -> None:
        """Add the runs kept in another model file (a one-line status if it cannot be read)."""
        try:
            self.files[str(path)] = load_model(path).runs
        except ModelFileError as err:
            self.status.setText(str(err))
            return
        self.refresh()

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model file's runs", "",
                                              "Model files (*.h5 *.hdf5)")
        if path:
            self.add_file(path)

    def refresh(self) -> None:
        session = self.controller.session
        own = list(session.runs) if session is not None else []
        label = Path(session.path).name if session is not None and session.path else "this model"
        self.entries = [(label, i, run) for i, run in enumerate(own)]
        open_file = Path(session.path).resolve() if session is not None and session.path else None
        for path, runs in self.files.items():
            if Path(path).resolve() != open_file:   # the open model's runs are listed above
                self.entries += [(Path(path).name, i, run) for i, run in enumerate(runs)]
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.entries))
        for row, (model, index, run) in enumerate(self.entries):
            s = run["settings"]
            started = run["started"][:16].replace("T", " ")
            cells = [QTableWidgetItem(model), _number(index), QTableWidgetItem(started),
                     QTableWidgetItem(run["ended_how"]), _number(len(run["history"]["epoch"])),
                     QTableWidgetItem(s.get("optimizer", "")), _number(s.get("lr")),
                     _number(s.get("batch_size")), _number(s.get("weight_decay")),
                     _number(final(run, "train_loss")), _number(final(run, "val_loss")),
                     _number(final(run, "val_acc"))]
            cells[0].setData(Qt.UserRole, row)
            for col, cell in enumerate(cells):
                self.table.setItem(row, col, cell)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        self.status.setText(f"{len(self.entries)} run(s); select several to overlay their "
                            f"curves, two to compare them")
        self._show_selection()

    def selected(self) -> list[tuple[str, int, dict]]:
        """The selected runs, in table order."""
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self.entries[self.table.item(r, 0).data(Qt.UserRole)] for r in rows]

    # -- the overlay and the differences --------------------------------------------------------
    def _show_selection(self) -> None:
        chosen = self.selected()
        self.plot.clear()
        self.legend.clear()
        for n, (model, index, run) in enumerate(chosen):
            colour = PALETTE[n % len(PALETTE)]
            history = run["history"]
            for key, style, kind in (("train_loss", Qt.DashLine, "train"),
                                     ("val_loss", Qt.SolidLine, "val")):
                points = [(e, v) for e, v in zip(history["epoch"], history.get(key, []))
                          if v is not None]
                if points:
                    xs, ys = zip(*points)
                    self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2, style=style),
                                   symbol="o" if kind == "val" else None, symbolSize=5,
                                   symbolBrush=colour, name=f"{model} #{index} {kind}")
        self.diff.clear()
        if len(chosen) != 2:
            self.diff_title.setText("Select two runs to see their differences")
            return
        (ma, ia, a), (mb, ib, b) = chosen
        self.diff_title.setText(f"From {ma} #{ia} to {mb} #{ib}")
        lines = graph_diff(a["graph"], b["graph"]).lines() or ["same architecture"]
        lines += [f"~ {k}: {va} -> {vb}" for k, (va, vb) in
                  settings_diff(a["settings"], b["settings"]).items()] or ["same settings"]
        for line in lines:
            self.diff.addItem(line)
            colour = DIFF_COLOURS.get(line[:1])
            if colour:
                self.diff.item(self.diff.count() - 1).setForeground(pg.mkColor(colour))
