"""The confusion matrix on the validation set at each epoch end; clicking a cell shows the samples
that fell in it, each beside its saliency for the predicted class."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QSplitter, QStackedWidget, QVBoxLayout, QWidget

from .common import (
    BACKGROUND,
    ImageView,
    SnapshotPanel,
    display_image,
    grid_columns,
    normalise,
    rgb_from_nan,
    status_label,
    tile,
)
from .saliency import overlay, saliency_map

CELL_SAMPLES = 12


class ConfusionPanel(SnapshotPanel):
    kind = "confusion"
    refresh_during_run = False   # the worker sends one at each epoch end while this is shown

    def __init__(self, controller, parent=None):
        super().__init__(controller, parent)
        self.matrix_view = ImageView()
        self.matrix_view.clicked.connect(self._clicked)
        self.matrix_view.box.setMouseEnabled(False, False)
        self.matrix_view.box.sigResized.connect(lambda _box: self._fit_labels())
        self.cell_view = ImageView()
        self.cell_plots = pg.GraphicsLayoutWidget()
        self.cell_plots.setBackground(BACKGROUND)
        self.cell_stack = QStackedWidget()
        self.cell_stack.addWidget(self.cell_view)
        self.cell_stack.addWidget(self.cell_plots)
        self.cell_info = status_label("click a cell to see its samples and their saliency")
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.cell_info)
        column.addWidget(self.cell_stack, 1)
        splitter = QSplitter()
        splitter.addWidget(self.matrix_view)
        splitter.addWidget(right)
        splitter.setSizes([450, 450])
        self.info = status_label()
        self.layout_.addWidget(splitter, 1)
        self.layout_.addWidget(self.info)
        self.layout_.addWidget(self.message)
        self.matrix: np.ndarray | None = None
        self.cell: dict | None = None
        self._texts: list[pg.TextItem] = []
        self._cells: list[list[pg.TextItem]] = []   # the counts, updated in place each epoch
        self._layout = None
        controller.snapshot_ready.connect(self._cell_ready)

    def seen_changed(self, seen: bool) -> None:
        self.controller.confusion_at_epoch_end = seen
        super().seen_changed(seen)

    def clear_view(self) -> None:
        self.matrix_view.clear_image()
        self._remove_labels()
        self.cell_view.clear_image()
        self.cell_plots.clear()
        self.info.clear()
        self.matrix = self.cell = None

    def _remove_labels(self) -> None:
        for text in self._texts:
            self.matrix_view.box.removeItem(text)
        self._texts, self._cells, self._layout = [], [], None

    def _label(self, class_names, predicted_names) -> None:
        """The class names and a text item per cell (about 120 of them for 10 classes: built
        once per set of classes, since building them takes a tenth of a second)."""
        self._remove_labels()

        def label(text, x, y, anchor, colour="#d0d3d8", angle=0):
            item = pg.TextItem(text, color=colour, anchor=anchor, angle=angle)
            item.setPos(x, y)
            self.matrix_view.box.addItem(item)
            self._texts.append(item)
            return item
        for r, name in enumerate(class_names):
            label(name, -0.1, r + 0.5, (1, 0.5))
            self._cells.append([label("", c + 0.5, r + 0.5, (0.5, 0.5))
                                for c in range(len(predicted_names))])
        for c, name in enumerate(predicted_names):
            label(name, c + 0.5, -0.1, (0, 0.5), angle=45)
        label("true \u2193  predicted \u2192", -0.1, -0.1, (1, 1), "#8a8f98")
        self._layout = (class_names, predicted_names)
        self._fit_labels()

    def _fit_labels(self) -> None:
        """Range the matrix so that the names around it fit: the names are drawn at a fixed
        size in pixels, so the margins in cells depend on the view's size (at the dock's
        default height the slanted column names were cut off)."""
        if self._layout is None:
            return
        class_names, predicted_names = self._layout
        metrics = QFontMetrics(self._texts[0].textItem.font())
        slant = max(map(metrics.horizontalAdvance, predicted_names), default=0) * 0.71
        top = slant + metrics.height() + 6
        left = max(metrics.horizontalAdvance("true \u2193  predicted \u2192"),
                   *map(metrics.horizontalAdvance, class_names)) + 10
        box = self.matrix_view.box
        rows, cols = len(class_names), len(predicted_names)
        scale = max(1.0, min((box.height() - top) / (rows + 0.1),
                             (box.width() - left) / (cols + 0.1)))   # pixels per cell
        box.setRange(xRange=(-left / scale, cols + 0.1), yRange=(-top / scale, rows + 0.1),
                     padding=0)

    def show_snapshot(self, payload: dict) -> None:
        self.message.clear()
        matrix = payload["matrix"]
        self.matrix = matrix
        self._names = payload["class_names"]
        rows = matrix.sum(axis=1, keepdims=True)
        recall = matrix / np.maximum(rows, 1)
        self.matrix_view.set_image(recall.astype(np.float32), colormap="viridis")
        layout = (tuple(payload["class_names"]), tuple(payload["predicted_names"]))
        if layout != self._layout:
            self._label(*layout)
        for r, row in enumerate(self._cells):
            for c, item in enumerate(row):
                item.setText(str(matrix[r, c]), "#111" if recall[r, c] > 0.6 else "#eee")
        total = int(matrix.sum())
        correct = int(np.trace(matrix[:, :matrix.shape[0]]))
        epoch, batch = payload["epoch"], payload.get("batch", 0)
        when = (f"with the weights at epoch {epoch + 1}, batch {batch}" if batch
                else f"after epoch {epoch}")   # a run stopped mid-epoch predicts from there
        self.info.setText(f"validation {when}: {correct}/{total} right "
                          f"({correct / max(total, 1):.1%}); colour: share of the true class")
        if self.cell is not None:
            self.controller.request("cell_samples", true=self.cell["true"],
                                    predicted=self.cell["predicted"], limit=CELL_SAMPLES)

    def select_cell(self, true: int, predicted: int) -> None:
        """Ask for the samples of class `true` predicted as `predicted`."""
        self.controller.request("cell_samples", true=true, predicted=predicted,
                                limit=CELL_SAMPLES)

    def _clicked(self, x: float, y: float) -> None:
        if self.matrix is None:
            return
        row, col = int(np.floor(y)), int(np.floor(x))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            self.select_cell(row, col)

    def _cell_ready(self, kind: str, payload: dict) -> None:
        if kind != "cell_samples":
            return
        if "error" in payload:
            self.cell_info.setText(payload["error"])
            return
        self.cell = payload
        names = payload["class_names"]

        def name(k):
            return names[k] if k < len(names) else f"output {k}"
        inputs, maps = payload["inputs"], payload["saliency"]
        count = int(self.matrix[payload["true"], payload["predicted"]]) \
            if self.matrix is not None else len(inputs)
        self.cell_info.setText(
            f"true <b>{name(payload['true'])}</b>, predicted <b>{name(payload['predicted'])}"
            f"</b>: {count} samples, first {len(inputs)} shown, each beside its saliency for "
            f"<b>{name(payload['predicted'])}</b>")
        if len(inputs) == 0:
            self.cell_view.clear_image()
            self.cell_stack.setCurrentWidget(self.cell_view)
            return
        if inputs.ndim == 3:
            self._show_signals(inputs, maps)
            return
        self.cell_stack.setCurrentWidget(self.cell_view)
        pairs = []
        for x, s in zip(inputs, maps, strict=True):
            image = display_image(x)
            heat = saliency_map(s if x.ndim == 3 else s[:, x.shape[1] // 2])
            shown = image if image.ndim == 3 else np.repeat(normalise(image)[..., None], 3, -1)
            pairs += [shown, overlay(image, heat)]
        self.cell_view.set_image(rgb_from_nan(tile(pairs, 2 * grid_columns(len(inputs)))))

    def _show_signals(self, inputs: np.ndarray, maps: np.ndarray) -> None:
        self.cell_stack.setCurrentWidget(self.cell_plots)
        self.cell_plots.clear()
        for k, (x, s) in enumerate(zip(inputs, maps, strict=True)):
            plot = self.cell_plots.addPlot(row=k // 2, col=k % 2)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.setMouseEnabled(False, False)
            heat = s.max(axis=0)
            plot.plot(heat / max(float(heat.max()), 1e-12) * float(np.ptp(x[0]) or 1)
                      + float(x[0].min()), pen=None, fillLevel=float(x[0].min()),
                      brush=(255, 159, 67, 90))
            plot.plot(x[0], pen=pg.mkPen("#4fa3ff", width=1))
