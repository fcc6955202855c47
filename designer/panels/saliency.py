"""Saliency: |d class score / d input| over a sample, shown beside the sample and over it, for the
predicted class or any class chosen."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QStackedWidget,
)

from .common import (
    BACKGROUND,
    CHANNEL_COLOURS,
    ImageView,
    SamplePicker,
    SnapshotPanel,
    display_image,
    lut,
    normalise,
    status_label,
)


def saliency_map(saliency: np.ndarray) -> np.ndarray:
    """Per input cell, the largest saliency over the channels, scaled to [0, 1]."""
    return normalise(saliency.max(axis=0))


def overlay(image: np.ndarray, heat: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """The sample in grey with the heat map blended over it where it is strong."""
    grey = image.mean(axis=-1) if image.ndim == 3 else normalise(image)
    colours = lut(colormap)[np.clip((heat * 255).astype(int), 0, 255)] / 255.0
    alpha = np.clip(heat * 1.5, 0, 1)[..., None]
    return grey[..., None] * (1 - alpha) + colours[..., :3] * alpha


class SaliencyPanel(SnapshotPanel):
    kind = "saliency"
    interval = 2.0   # a forward and a backward pass on the worker each time

    def __init__(self, controller, parent=None):
        super().__init__(controller, parent)
        self.sample = SamplePicker(controller)
        self.target = QComboBox()
        self.target.setToolTip("Class whose score the map explains")
        self.target.addItem("predicted class", None)
        self.target.activated.connect(lambda _: self.invalidate())
        self.depth = QSlider(Qt.Horizontal)
        self.depth_label = QLabel("Depth")
        self.depth.setToolTip("Depth slice of a 3-D sample")
        self.depth.valueChanged.connect(self._redraw)
        top = QHBoxLayout()
        for widget in (QLabel("Sample"), self.sample, QLabel("Class"), self.target,
                       self.depth_label, self.depth):
            top.addWidget(widget)
        top.addStretch(1)
        self.input_view = ImageView(title="input")
        self.heat_view = ImageView(title="saliency")
        self.overlay_view = ImageView(title="overlay")
        images = QSplitter()
        for view in (self.input_view, self.heat_view, self.overlay_view):
            images.addWidget(view)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(BACKGROUND)
        self.stack = QStackedWidget()
        self.stack.addWidget(images)
        self.stack.addWidget(self.plots)
        self.info = status_label()
        self.layout_.addLayout(top)
        self.layout_.addWidget(self.stack, 1)
        self.layout_.addWidget(self.info)
        self.layout_.addWidget(self.message)
        self.payload: dict | None = None
        controller.sample_selected.connect(lambda _: self.invalidate())
        controller.data_loaded.connect(self._data_loaded)

    def clear_view(self) -> None:
        for view in (self.input_view, self.heat_view, self.overlay_view):
            view.clear_image()
        self.plots.clear()
        self.info.clear()
        self.payload = None

    def params(self) -> dict:
        return {"sample": self.sample.value(), "class_index": self.target.currentData()}

    def _data_loaded(self, info) -> None:
        chosen = self.target.currentData()
        self.target.clear()
        self.target.addItem("predicted class", None)
        for k, name in enumerate(info.dataset.class_names):
            self.target.addItem(name, k)
        self.target.setCurrentIndex(max(0, self.target.findData(chosen)))
        self.invalidate()

    @property
    def shown_saliency(self) -> np.ndarray | None:
        return None if self.payload is None else self.payload["saliency"]

    def show_snapshot(self, payload: dict) -> None:
        self.message.clear()
        self.payload = payload
        x = payload["input"]
        self.depth.setVisible(x.ndim == 4)
        self.depth_label.setVisible(x.ndim == 4)
        if x.ndim == 4 and self.depth.maximum() != x.shape[1] - 1:
            self.depth.blockSignals(True)
            self.depth.setMaximum(x.shape[1] - 1)
            self.depth.setValue(x.shape[1] // 2)
            self.depth.blockSignals(False)
        logits = payload["logits"]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        names = payload["class_names"]

        def name(k):
            return names[k] if k < len(names) else f"output {k}"
        predicted = int(np.argmax(logits))
        self.info.setText(
            f"sample {payload['sample']}: true <b>{name(payload['label'])}</b>, predicted "
            f"<b>{name(predicted)}</b> (p = {probs[predicted]:.2f}) · saliency of the "
            f"<b>{name(payload['class_index'])}</b> score (p = "
            f"{probs[payload['class_index']]:.2f}): bright cells change it most")
        self._redraw()

    def _redraw(self) -> None:
        if self.payload is None:
            return
        x, saliency = self.payload["input"], self.payload["saliency"]
        if x.ndim == 2:
            self._draw_signal(x, saliency)
            return
        self.stack.setCurrentIndex(0)
        depth = self.depth.value() if x.ndim == 4 else None
        heat = saliency_map(saliency if x.ndim == 3 else saliency[:, depth])
        image = display_image(x, depth)
        self.input_view.set_image(image if image.ndim == 3 else normalise(image))
        self.heat_view.set_image(heat, colormap="inferno")
        self.overlay_view.set_image(overlay(image, heat))

    def _draw_signal(self, x: np.ndarray, saliency: np.ndarray) -> None:
        self.stack.setCurrentIndex(1)
        self.plots.clear()
        top = self.plots.addPlot(row=0, col=0, title="input")
        for c in range(min(3, x.shape[0])):
            top.plot(x[c], pen=pg.mkPen(CHANNEL_COLOURS[c], width=1))
        bottom = self.plots.addPlot(row=1, col=0, title="saliency")
        bottom.setXLink(top)
        bottom.plot(saliency.max(axis=0), pen=pg.mkPen("#ff9f43", width=1.2),
                    fillLevel=0, brush=(255, 159, 67, 80))
