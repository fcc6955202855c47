"""Per-layer health during training (activation mean/std, dead ReLUs, gradient norm,
update-to-weight ratio, graded ok/amber/red) and the weight and gradient histograms of a layer."""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
)

from .common import BACKGROUND, LEVEL_COLOURS, SnapshotPanel

COLUMNS = ("layer", "act. mean", "act. std", "dead ReLU", "grad norm", "update/weight", "status")


def number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0%}" if percent else f"{value:.3g}"


class LayersPanel(SnapshotPanel):
    kind = "histograms"
    interval = 1.0   # histograms of big layers cost a few milliseconds on the worker

    def __init__(self, controller, parent=None):
        super().__init__(controller, parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(BACKGROUND)
        self.weight_plot = self.plots.addPlot(row=0, col=0, title="weights")
        self.grad_plot = self.plots.addPlot(row=0, col=1, title="gradients")
        for plot in (self.weight_plot, self.grad_plot):
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setLabel("left", "count")
        self.weight_bars = self.weight_plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                                 brush=(79, 163, 255, 150), pen="#4fa3ff")
        self.grad_bars = self.grad_plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                             brush=(255, 159, 67, 150), pen="#ff9f43")
        # side by side, each histogram as tall as the dock (stacked under the table they were
        # flat lines at the dock's default height)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self.plots)
        splitter.setSizes([500, 500])
        self.layout_.addWidget(splitter, 1)
        self.layout_.addWidget(self.message)
        self.message.setText("health appears during training, about once a second")
        self.health: dict = {}
        self.layer: str | None = None
        controller.node_health.connect(self.show_health)
        controller.node_selected.connect(self._node_selected)

    def clear_view(self) -> None:
        self.health, self.layer = {}, None
        self.table.setRowCount(0)
        self.weight_bars.setData([0, 1], [0])
        self.grad_bars.setData([0, 1], [0])
        for plot in (self.weight_plot, self.grad_plot):
            plot.setTitle("")

    def show_health(self, report: dict) -> None:
        if not report or not any(entry["stats"] for entry in report.values()):
            return   # smoke-test problems carry no statistics; the Train panel lists them
        self.health = report
        if self.seen():
            self._fill_table()

    def seen_changed(self, seen: bool) -> None:
        super().seen_changed(seen)
        if seen and self.health:
            self._fill_table()

    def _fill_table(self) -> None:
        report = self.health
        self.message.clear()
        self.table.setRowCount(len(report))
        for row, (node_id, entry) in enumerate(report.items()):
            stats = entry["stats"]
            values = (node_id, number(stats.get("mean")), number(stats.get("std")),
                      number(stats.get("dead"), True), number(stats.get("grad_norm")),
                      number(stats.get("update_ratio")),
                      "; ".join(entry["reasons"]) or "ok")
            colour = QColor(LEVEL_COLOURS[entry["level"]])
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(entry["tooltip"])
                if col == len(values) - 1 or entry["level"] != "ok":
                    item.setForeground(QBrush(colour))
                self.table.setItem(row, col, item)
            if node_id == self.layer and not self.table.selectedItems():
                self.table.selectRow(row)

    def params(self) -> dict:
        return {"node": self.layer}

    def _node_selected(self, node_id: str) -> None:
        if node_id:
            self.layer = node_id
            self.invalidate()

    def _row_selected(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.layer = self.table.item(items[0].row(), 0).text()
            self.invalidate()

    def show_snapshot(self, payload: dict) -> None:
        """Histograms of one layer: the one picked, or the first with weights."""
        layer, entry = payload["node"], payload["histograms"]
        for plot, bars, kind in ((self.weight_plot, self.weight_bars, "weight"),
                                 (self.grad_plot, self.grad_bars, "grad")):
            counts, edges = entry[kind]
            bars.setData(edges, counts.astype(float))
            name = "weights" if kind == "weight" else "gradients"
            plot.setTitle(f"{layer}: {name}: all {int(counts.sum()):,} are 0 (before the "
                          f"first batch, or a dead layer)" if kind in entry["zero"] else
                          f"{layer}: {name}: none is finite" if not counts.sum() else
                          f"{layer}: {name} ({int(counts.sum()):,} values, {edges[0]:.3g} .. "
                          f"{edges[-1]:.3g})", size="9pt")
