"""Shared pieces of the training panels: sample-to-image conversion, tiling maps into one image,
a pyqtgraph image view with hover and click, and the base class of snapshot-driven panels."""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsRectItem,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

BACKGROUND = "#2b2d31"
MUTED = "#8a8f98"
LEVEL_COLOURS = {"ok": "#2e7d32", "warn": "#e69500", "bad": "#d32f2f"}
CHANNEL_COLOURS = ("#4fa3ff", "#ff9f43", "#7bd88f")   # line plots of up to three channels
REFRESH_INTERVAL = 0.5    # a visible panel asks for a new snapshot at most twice a second


def lut(name: str) -> np.ndarray:
    return pg.colormap.get(name).getLookupTable(0.0, 1.0, 256)


def normalise(a: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] over its finite values (a constant array becomes 0.5)."""
    a = np.asarray(a, np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.full(a.shape, 0.5, np.float32)
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12:
        return np.full(a.shape, 0.5, np.float32)
    return (a - low) / (high - low)


def spatial_dims(sample_shape) -> int:
    return len(sample_shape) - 1


def display_image(x: np.ndarray, depth: int | None = None) -> np.ndarray:
    """A 2-D sample [C, H, W] (or one depth slice of [C, D, H, W]) as an image for display:
    (H, W, 3) for three channels, else (H, W) of the first channel."""
    if x.ndim == 4:
        x = x[:, x.shape[1] // 2 if depth is None else depth]
    if x.shape[0] == 3:
        return np.transpose(np.clip(x, 0, 1), (1, 2, 0))
    return x[0]


def tile(images: list[np.ndarray], columns: int, pad: int = 1) -> np.ndarray:
    """Images of one size, (h, w) or (h, w, 3), side by side in rows of `columns`, separated by
    `pad` cells of NaN (drawn as background)."""
    if not images:
        return np.full((1, 1), np.nan, np.float32)
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    shape = (rows * (h + pad) - pad, columns * (w + pad) - pad) + images[0].shape[2:]
    out = np.full(shape, np.nan, np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = image
    return out


def tile_cell(x: float, y: float, cell: tuple[int, int], columns: int, count: int,
              pad: int = 1) -> tuple[int, int, int] | None:
    """Which image (index) and which of its pixels (row, col) a tile() coordinate falls on."""
    if x < 0 or y < 0:
        return None
    h, w = cell
    c, col = divmod(int(x), w + pad)
    r, row = divmod(int(y), h + pad)
    index = r * columns + c
    if col >= w or row >= h or c >= columns or index >= count:
        return None
    return index, row, col


def grid_columns(count: int, aspect: float = 1.0) -> int:
    """Columns for a roughly square grid of count tiles of width/height `aspect`."""
    return max(1, min(count, math.ceil(math.sqrt(count / max(aspect, 1e-6)))))


def rgb_from_nan(image: np.ndarray, background=(0.17, 0.18, 0.19)) -> np.ndarray:
    """An RGB tile image with its NaN padding painted in the background colour."""
    out = image.copy()
    mask = np.isnan(out).any(axis=-1)
    out[mask] = background
    return out


class PlotGrid(pg.GraphicsLayoutWidget):
    """Small line plots in a grid (one per channel or filter), built once per layout and then
    updated in place: a PlotItem takes about 10 ms to build, and rebuilding 32 of them on every
    snapshot held the window for 300 ms at a time while a 1-D network trained."""

    def __init__(self, aspect: float = 1.0, zero_line: bool = False, parent=None):
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.aspect, self.zero_line = aspect, zero_line
        self.plots: list[pg.PlotItem] = []
        self._curves: list[list[pg.PlotDataItem]] = []
        self._layout = None

    def show_lines(self, series: list[list[np.ndarray]], pens: list, titles: bool = False) -> None:
        """series[k]: plot k's lines, line j drawn with pens[j]; titles numbers the plots."""
        layout = ([len(lines) for lines in series], titles)
        if layout != self._layout:
            self.clear_plots()
            columns = grid_columns(len(series), self.aspect)
            for k, lines in enumerate(series):
                plot = self.addPlot(row=k // columns, col=k % columns)
                if titles:
                    plot.setTitle(str(k), size="7pt", color="#aaa")
                plot.hideAxis("bottom")
                plot.hideAxis("left")
                plot.setMouseEnabled(False, False)
                if self.zero_line:
                    plot.addLine(y=0, pen=pg.mkPen("#555", width=1))
                self.plots.append(plot)
                self._curves.append([plot.plot(pen=pens[j]) for j in range(len(lines))])
            self._layout = layout
        for curves, lines in zip(self._curves, series, strict=True):
            for curve, line in zip(curves, lines, strict=True):
                curve.setData(line)

    def clear_plots(self) -> None:
        self.clear()
        self.plots, self._curves, self._layout = [], [], None


class SamplePicker(QSpinBox):
    """The validation sample the panels look at, shared through the controller: choosing one
    here selects it everywhere, and its range follows the loaded data."""

    def __init__(self, controller, parent=None):
        super().__init__(parent, minimum=0, maximum=0)
        self.setToolTip("Sample of the validation set")
        self.valueChanged.connect(controller.select_sample)
        controller.sample_selected.connect(self.setValue)   # no signal when already there
        controller.data_loaded.connect(self._data_loaded)

    def _data_loaded(self, info) -> None:
        val = info.val_range[1] - info.val_range[0]
        count = val if val > 0 else info.train_range[1] - info.train_range[0]
        self.setMaximum(max(0, count - 1))


def status_label(text: str = "") -> QLabel:
    """A word-wrapped label whose changing text never widens the panel: a relayout would
    resize and repaint every plot beside it."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label


class _HoverImage(pg.ImageItem):
    def __init__(self, view: ImageView):
        super().__init__(axisOrder="row-major")
        self._view = view
        self.setAcceptHoverEvents(True)

    def hoverEvent(self, event):
        if event.isExit():
            self._view.hovered.emit(-1.0, -1.0)
        else:
            self._view.hovered.emit(event.pos().x(), event.pos().y())

    def mouseClickEvent(self, event):
        if event.button() == Qt.LeftButton:
            event.accept()
            self._view.clicked.emit(event.pos().x(), event.pos().y())


class ImageView(pg.GraphicsLayoutWidget):
    """One image, aspect kept, row 0 at the top; hovered/clicked give image pixel coordinates
    (x = column, y = row; -1, -1 when the pointer leaves)."""

    hovered = Signal(float, float)
    clicked = Signal(float, float)

    def __init__(self, parent=None, title: str = ""):
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        if title:
            self.addLabel(title, color="#d0d3d8", size="9pt")
            self.nextRow()
        self.box = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.box.setMenuEnabled(False)
        self.image = _HoverImage(self)
        self.box.addItem(self.image)
        self.marks: list[QGraphicsRectItem] = []

    def set_image(self, image: np.ndarray, levels=(0.0, 1.0), colormap: str | None = None
                  ) -> None:
        shape = self.image.image.shape if self.image.image is not None else None
        self.image.setImage(image, levels=levels, autoLevels=False,
                            lut=lut(colormap) if colormap and image.ndim == 2 else None)
        if image.shape != shape:   # re-ranging re-lays the axes out: only for a new size
            self.box.autoRange(padding=0.02)

    def clear_image(self) -> None:
        self.image.clear()
        self.set_marks([])

    def set_marks(self, rects: list[tuple[float, float, float, float]], colour="#ffcc00"
                  ) -> None:
        """Outline rectangles (x, y, width, height) in image pixels over the image."""
        for item in self.marks:
            self.box.removeItem(item)
        self.marks = []
        for x, y, w, h in rects:
            item = QGraphicsRectItem(QRectF(QPointF(x, y), QPointF(x + w, y + h)))
            pen = QPen(QColor(colour), 2)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(10)
            self.box.addItem(item)
            self.marks.append(item)


class DockedPanel(QWidget):
    """A panel that knows whether it can be seen. Qt keeps a dock that lies behind another's
    tab visible (moved off-screen), so panel_dock tells the panel when its tab comes to the
    front or goes behind; seen() counts both, and seen_changed() is called when it changes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._in_front = True
        self._seen = False

    def seen(self) -> bool:
        return self._seen

    def seen_changed(self, seen: bool) -> None:
        """The panel came into view or left it (subclasses react)."""

    def set_in_front(self, in_front: bool) -> None:
        self._in_front = in_front
        self._update_seen()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._update_seen()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self._update_seen()

    def _update_seen(self) -> None:
        seen = self._in_front and self.isVisible()
        if seen != self._seen:
            self._seen = seen
            self.seen_changed(seen)


def panel_dock(window, widget: QWidget, title: str) -> QDockWidget:
    """A dock for widget; a DockedPanel hears when its tab comes to the front or goes behind."""
    dock = QDockWidget(title, window)
    dock.setObjectName(f"dock-{title}")
    dock.setWidget(widget)
    if isinstance(widget, DockedPanel):
        dock.visibilityChanged.connect(widget.set_in_front)
    return dock


class SnapshotPanel(DockedPanel):
    """A panel that shows one kind of snapshot. While seen it asks the controller for a new
    one at most every REFRESH_INTERVAL seconds during a run, once when a run ends, and whenever
    its own settings change; only one request is outstanding at a time. A panel behind another
    dock's tab neither asks nor draws."""

    kind = ""
    interval = REFRESH_INTERVAL
    refresh_during_run = True

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.message = status_label()
        self.message.setStyleSheet(f"color: {MUTED};")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(4, 4, 4, 4)
        self._outstanding = False
        self._failed = False
        self._dirty = True
        self._last_request = 0.0
        self.snapshots = 0
        controller.snapshot_ready.connect(self._snapshot_ready)
        # bound methods, not lambdas: Qt drops those connections when the panel is deleted
        controller.batch_done.connect(self._batch_done)
        controller.state_changed.connect(self._state_changed)
        controller.graph_changed.connect(self.invalidate)
        controller.history_changed.connect(self._history_changed)
        controller.session_changed.connect(self.start_over)

    def start_over(self) -> None:
        """Another model: nothing of the previous one stays on show."""
        self.clear_view()
        self.message.clear()
        self.invalidate()

    def clear_view(self) -> None:
        """Forget what is shown (each panel clears its own views)."""

    def params(self) -> dict:
        return {}

    def show_snapshot(self, payload: dict) -> None:
        raise NotImplementedError

    def invalidate(self) -> None:
        """Settings or weights changed: fetch again (now if visible, else when shown)."""
        self._dirty = True
        self._maybe_refresh(force=True)

    def refresh(self) -> None:
        self._outstanding = True
        self._dirty = False
        self._last_request = time.perf_counter()
        self.controller.request(self.kind, **self.params())

    def _maybe_refresh(self, force: bool = False) -> None:
        if not self.seen() or self._outstanding:
            return
        if force or (self.refresh_during_run
                     and time.perf_counter() - self._last_request >= self.interval):
            self.refresh()

    def _batch_done(self, _payload) -> None:
        self._maybe_refresh()

    def _history_changed(self, _history) -> None:
        self.invalidate()

    def _state_changed(self, state: str) -> None:
        if state in ("idle", "paused"):
            self.invalidate()

    def seen_changed(self, seen: bool) -> None:
        if seen and self._dirty:
            self._maybe_refresh(force=True)

    def _snapshot_ready(self, kind: str, payload: dict) -> None:
        if kind != self.kind:
            return
        self._outstanding = False
        failed = "error" in payload
        if failed != self._failed:   # restyling is slow enough to show in a run's profile
            self._failed = failed
            self.message.setStyleSheet(f"color: {LEVEL_COLOURS['warn'] if failed else MUTED};")
        if failed:
            self.message.setText(payload["error"])
        else:
            self.snapshots += 1
            self.show_snapshot(payload)
        if self._dirty:
            self._maybe_refresh(force=True)
