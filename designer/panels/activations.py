"""Activation maps of any node for one sample (2-D maps tiled, 1-D as line plots, 3-D as depth
slices), with the receptive field of the hovered unit lit up on the input."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
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
    PlotGrid,
    SamplePicker,
    SnapshotPanel,
    display_image,
    grid_columns,
    normalise,
    status_label,
    tile,
    tile_cell,
)

MAX_MAPS = 64
MAX_PLOTS = 24
FIELD_COLOUR = "#ffcc00"


def region_text(region: tuple[slice, ...]) -> str:
    axes = ("depth", "rows", "cols")[-len(region):] if len(region) > 1 else ("cells",)
    spans = ", ".join(f"{name} {s.start}-{s.stop - 1}" for name, s in zip(axes, region,
                                                                           strict=True))
    size = "x".join(str(s.stop - s.start) for s in region)
    return f"{spans} ({size})"


class ActivationsPanel(SnapshotPanel):
    kind = "activations"
    interval = 1.0

    def __init__(self, controller, parent=None):
        super().__init__(controller, parent)
        self.node = QComboBox()
        self.node.setToolTip("Node whose output to show (click one on the canvas to pick it)")
        self.node.activated.connect(self._node_chosen)
        self.sample = SamplePicker(controller)
        self.depth = QSlider(Qt.Horizontal)
        self.depth_label = QLabel("Depth")
        self.depth.setToolTip("Depth slice of 3-D maps")
        self.depth.valueChanged.connect(self._redraw)
        self.own_scale = QCheckBox("scale each map")
        self.own_scale.setToolTip("Off: one scale for all maps, so weak and dead maps look dark")
        self.own_scale.toggled.connect(self._redraw)
        top = QHBoxLayout()
        for widget in (QLabel("Node"), self.node, QLabel("Sample"), self.sample, self.own_scale,
                       self.depth_label, self.depth):
            top.addWidget(widget)
        top.setStretch(1, 1)

        self.input_view = ImageView(title="input")
        self.input_plot = pg.PlotWidget(background=BACKGROUND, title="input")
        self.input_region = pg.LinearRegionItem(movable=False, brush=(255, 204, 0, 60))
        self.input_plot.addItem(self.input_region)
        self.maps_view = ImageView()
        self.maps_view.hovered.connect(self._hover_map)
        self.maps_plots = PlotGrid(aspect=2.5)
        self.maps_plots.scene().sigMouseMoved.connect(self._hover_plot)
        self.inputs = QStackedWidget()
        self.inputs.addWidget(self.input_view)
        self.inputs.addWidget(self.input_plot)
        self.maps = QStackedWidget()
        self.maps.addWidget(self.maps_view)
        self.maps.addWidget(self.maps_plots)
        splitter = QSplitter()
        splitter.addWidget(self.inputs)
        splitter.addWidget(self.maps)
        splitter.setSizes([250, 550])
        self.info = status_label()
        self.layout_.addLayout(top)
        self.layout_.addWidget(splitter, 1)
        self.layout_.addWidget(self.info)
        self.layout_.addWidget(self.message)

        self.payload: dict | None = None
        self.maps_shown = 0
        self._hovered: tuple[int, tuple[int, ...]] | None = None
        self._hover_text = ""
        controller.node_selected.connect(self._node_selected)
        controller.sample_selected.connect(lambda _: self.invalidate())
        controller.data_loaded.connect(lambda _: self.invalidate())
        controller.graph_changed.connect(self._fill_nodes)
        self._fill_nodes()

    # -- settings ---------------------------------------------------------------------------
    def clear_view(self) -> None:
        self.node.clear()
        self.input_view.clear_image()
        self.maps_view.clear_image()
        self.maps_plots.clear_plots()
        self.info.clear()
        self.payload, self.maps_shown, self._hovered = None, 0, None

    def params(self) -> dict:
        return {"node": self.node.currentData(), "sample": self.sample.value()}

    def _fill_nodes(self) -> None:
        graph = self.controller.graph
        current = self.node.currentData() or self.controller.selected_node
        self.node.clear()
        if graph is None:
            return
        analysis = graph.analyze()
        for node_id in analysis.order:
            node = graph.nodes[node_id]
            if node.type != "Output":
                shape = "x".join(str(v) for v in analysis.shapes[node_id])
                self.node.addItem(f"{node_id}  ({node.type}, {shape})", node_id)
        index = self.node.findData(current)
        if index < 0:
            convs = [i for i in range(self.node.count())
                     if graph.nodes[self.node.itemData(i)].type.startswith("Conv")]
            index = convs[0] if convs else 0
        self.node.setCurrentIndex(index)

    def _node_chosen(self, _index: int) -> None:
        self.invalidate()

    def _node_selected(self, node_id: str) -> None:
        index = self.node.findData(node_id)
        if index >= 0:
            self.node.setCurrentIndex(index)
            self.invalidate()

    # -- drawing ----------------------------------------------------------------------------
    def show_snapshot(self, payload: dict) -> None:
        self.message.clear()
        self.payload = payload
        act = payload["activation"]
        self.depth.setVisible(act.ndim == 4)
        self.depth_label.setVisible(act.ndim == 4)
        if act.ndim == 4 and self.depth.maximum() != act.shape[1] - 1:
            self.depth.blockSignals(True)   # one redraw below, not one per change
            self.depth.setMaximum(act.shape[1] - 1)
            self.depth.setValue(act.shape[1] // 2)
            self.depth.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        payload = self.payload
        if payload is None:
            return
        x, act = payload["input"], payload["activation"]
        names = payload["class_names"]
        predicted = int(np.argmax(payload["logits"]))
        shape = "x".join(str(v) for v in act.shape[1:])
        count = act.shape[0] if act.ndim > 1 else 1
        more = f" (first {MAX_MAPS} shown)" if act.ndim > 1 and count > MAX_MAPS else ""
        what = f"{count} maps of {shape}{more}" if act.ndim > 1 else f"{act.shape[0]} values"
        field_ = payload["field"]
        rf = (f" · receptive field {'x'.join(map(str, field_.size))} on the input; hover a "
              f"unit to see it" if field_ is not None and field_.size is not None else "")
        self._header = (f"<b>{payload['node']}</b> ({payload['type']}): {what}{rf}<br>sample "
                        f"{payload['sample']}: true <b>{names[payload['label']]}</b>, predicted "
                        f"<b>{names[predicted] if predicted < len(names) else predicted}</b>")
        self.info.setText(self._header)
        self._draw_input(x)
        if act.ndim == 1:
            self._draw_vector(act)
        elif act.ndim == 2:
            self._draw_lines(act)
        else:
            self._draw_maps(act if act.ndim == 3 else act[:, self.depth.value()])
        hovered = self._hovered
        if hovered and hovered[0] < self.maps_shown and len(hovered[1]) == act.ndim - 1 and all(
                i < n for i, n in zip(hovered[1], act.shape[1:], strict=True)):
            # a fresh snapshot keeps the unit under the pointer lit up
            self.show_unit(*hovered)

    def _draw_input(self, x: np.ndarray, depth: int | None = None) -> None:
        if x.ndim == 2:
            self.inputs.setCurrentWidget(self.input_plot)
            self.input_plot.clear()
            self.input_plot.addItem(self.input_region)
            self.input_region.hide()
            for c in range(min(3, x.shape[0])):
                self.input_plot.plot(x[c], pen=pg.mkPen(CHANNEL_COLOURS[c], width=1))
            return
        self.inputs.setCurrentWidget(self.input_view)
        if depth is None and x.ndim == 4 and self.payload["activation"].ndim == 4:
            depth = int(round((self.depth.value() + 0.5) / self.payload["activation"].shape[1]
                              * x.shape[1] - 0.5))
        image = display_image(x, depth)
        self.input_view.set_image(image if image.ndim == 3 else normalise(image))
        self.input_view.set_marks([])

    def _draw_maps(self, maps: np.ndarray) -> None:
        self.maps.setCurrentWidget(self.maps_view)
        shown = maps[:MAX_MAPS]
        self.maps_shown = len(shown)
        if self.own_scale.isChecked():
            images = [normalise(m) for m in shown]
        else:
            low, high = float(shown.min()), float(shown.max())
            images = list((shown - low) / max(high - low, 1e-12))
        h, w = shown.shape[1:]
        self._columns = grid_columns(len(images), w / h)
        self._cell = (h, w)
        self.maps_view.set_image(tile(images, self._columns), colormap="viridis")
        self.maps_view.set_marks([])

    def _draw_lines(self, act: np.ndarray) -> None:
        self.maps.setCurrentWidget(self.maps_plots)
        shown = act[:MAX_PLOTS]
        self.maps_shown = len(shown)
        self.maps_plots.show_lines([[line] for line in shown], [pg.mkPen("#4fa3ff", width=1)],
                                   titles=True)

    def _draw_vector(self, act: np.ndarray) -> None:
        self.maps.setCurrentWidget(self.maps_plots)
        self.maps_plots.clear_plots()
        self.maps_shown = 1
        plot = self.maps_plots.addPlot()
        plot.setLabel("bottom", "unit")
        plot.addItem(pg.BarGraphItem(x=np.arange(len(act)), height=act, width=0.8,
                                     brush="#4fa3ff"))

    # -- receptive field --------------------------------------------------------------------
    def unit_region(self, index: tuple[int, ...]) -> tuple[slice, ...] | None:
        """The input cells a unit (spatial index into the shown node's output) sees."""
        payload = self.payload
        if payload is None or payload["field"] is None or payload["field"].size is None:
            return None
        return payload["field"].region(index, payload["input"].shape[1:])

    def show_unit(self, channel: int, index: tuple[int, ...]) -> tuple[slice, ...] | None:
        """Light up the receptive field of one unit on the input, as hovering it does."""
        region = self.unit_region(index)
        act = self.payload["activation"] if self.payload else None
        if region is None or act is None:
            return None
        self._hovered = (channel, tuple(index))
        value = act[(channel, *index)] if act.ndim == len(index) + 1 else act[
            (channel, self.depth.value(), *index)]
        unit = ", ".join(map(str, index))
        self.info.setText(f"{self._header}<br>unit ({unit}) of map {channel} = {value:.3g} "
                          f"sees input {region_text(region)}")
        if len(region) == 1:
            self.input_region.setRegion((region[0].start, region[0].stop - 1))
            self.input_region.show()
        else:
            if len(region) == 3:
                self._draw_input(self.payload["input"], (region[0].start + region[0].stop) // 2)
            rows, cols = region[-2], region[-1]
            self.input_view.set_marks([(cols.start, rows.start, cols.stop - cols.start,
                                        rows.stop - rows.start)], FIELD_COLOUR)
        return region

    def _hover_map(self, x: float, y: float) -> None:
        if self.payload is None or self.maps_shown == 0 or self.payload["activation"].ndim < 3:
            return
        hit = tile_cell(x, y, self._cell, self._columns, self.maps_shown)
        if hit is None:
            self._hovered = None
            self.input_view.set_marks([])
            self.maps_view.set_marks([])
            self.info.setText(self._header)
            return
        channel, row, col = hit
        h, w = self._cell
        r, c = divmod(channel, self._columns)
        self.maps_view.set_marks([(c * (w + 1) + col, r * (h + 1) + row, 1, 1)], FIELD_COLOUR)
        index = (row, col) if self.payload["activation"].ndim == 3 else (
            self.depth.value(), row, col)
        self.show_unit(channel, index)

    def _hover_plot(self, pos) -> None:
        for channel, plot in enumerate(self.maps_plots.plots):
            if plot.sceneBoundingRect().contains(pos):
                x = int(round(plot.vb.mapSceneToView(pos).x()))
                if 0 <= x < self.payload["activation"].shape[1]:
                    self.show_unit(channel, (x,))
                return
