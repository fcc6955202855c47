"""The Train panel's preview of the data: a few training samples of every class."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QStackedWidget

from .common import BACKGROUND, CHANNEL_COLOURS, ImageView, display_image, tile

PREVIEW_PER_CLASS = 8


class SamplePreview(QStackedWidget):
    """A few training samples of every class: an image grid with one row per class, or for 1-D
    data one small plot per class."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.images = ImageView()
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(BACKGROUND)
        self.addWidget(self.images)
        self.addWidget(self.plots)
        self._labels: list[pg.TextItem] = []
        self.setMinimumHeight(100)
        self.setMaximumHeight(320)
        self._aspect = 0.0

    def show_samples(self, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
        picks = [np.flatnonzero(y == k)[:PREVIEW_PER_CLASS] for k in range(len(names))]
        if x.ndim == 3:
            self._show_signals(x, picks, names)
            return
        self.setCurrentWidget(self.images)
        images, rows = [], 0
        for chosen in picks:
            row = [display_image(x[i]) for i in chosen]
            blank = np.full_like(display_image(x[0]), np.nan)
            images += row + [blank] * (PREVIEW_PER_CLASS - len(row))
            rows += 1
        mosaic = tile(images, PREVIEW_PER_CLASS, pad=2)
        self.images.set_image(mosaic)
        for label in self._labels:
            self.images.box.removeItem(label)
        height = images[0].shape[0] + 2
        self._labels = []
        for k, name in enumerate(names):
            label = pg.TextItem(name, color="#d0d3d8", anchor=(1.0, 0.5))
            label.setPos(-1, k * height + height / 2 - 1)
            self.images.box.addItem(label)
            self._labels.append(label)
        # room on the left for the class names (text items do not count in auto-ranging)
        rows_h, width = mosaic.shape[:2]
        self.images.box.setRange(xRange=(-0.3 * width, width), yRange=(0, rows_h),
                                 padding=0.02)
        # as tall as the mosaic is at this width, so no band of empty view sits above it
        self._aspect = rows_h / (1.3 * width)
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        if self._aspect and self.currentWidget() is self.images:
            self.setFixedHeight(int(min(320, max(100, self.width() * self._aspect * 1.05))))

    def _show_signals(self, x, picks, names) -> None:
        self.setCurrentWidget(self.plots)
        self.setMinimumHeight(100)
        self.setMaximumHeight(320)
        self.plots.clear()
        for k, chosen in enumerate(picks):
            plot = self.plots.addPlot(row=k, col=0)
            plot.hideAxis("bottom")
            plot.hideAxis("left")
            plot.setTitle(names[k], size="8pt", color="#d0d3d8")
            plot.setMouseEnabled(False, False)
            for j, i in enumerate(chosen[:3]):
                plot.plot(x[i, 0] + 2.5 * j, pen=pg.mkPen(CHANNEL_COLOURS[j], width=1))
