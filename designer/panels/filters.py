"""The filter grid of a conv layer: each filter scaled to its own range; RGB where the layer sees
three channels; per-channel kernels side by side otherwise; 1-D kernels as small line plots."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget

from .common import (
    CHANNEL_COLOURS,
    ImageView,
    PlotGrid,
    SnapshotPanel,
    grid_columns,
    rgb_from_nan,
    status_label,
    tile,
)

MAX_FILTERS = 64
MAX_CHANNELS = 16   # input channels shown per filter
MAX_PLOTS = 32


def filter_tiles(filters: np.ndarray) -> list[np.ndarray]:
    """One image per filter from normalised weights [F, C, *k] (2-D or 3-D kernels): RGB for
    three channels, else its channels (or depth slices of channel 0) tiled in a small grid."""
    tiles = []
    for f in filters[:MAX_FILTERS]:
        if f.ndim == 4:   # [C, kd, kh, kw]: the depth slices of the first channel, or RGB
            slices = ([np.transpose(f[:, d], (1, 2, 0)) for d in range(f.shape[1])]
                      if f.shape[0] == 3 else list(f[0]))
            tiles.append(tile(slices, len(slices)))
        elif f.shape[0] == 3:
            tiles.append(np.transpose(f, (1, 2, 0)))
        elif f.shape[0] == 1:
            tiles.append(f[0])
        else:
            channels = list(f[:MAX_CHANNELS])
            tiles.append(tile(channels, grid_columns(len(channels))))
    return tiles


class FiltersPanel(SnapshotPanel):
    kind = "filters"

    def __init__(self, controller, parent=None):
        super().__init__(controller, parent)
        self.node = QComboBox()
        self.node.setToolTip("Conv layer to show (click one on the canvas to pick it)")
        self.node.activated.connect(lambda _: self.invalidate())
        top = QHBoxLayout()
        top.addWidget(QLabel("Layer"))
        top.addWidget(self.node, 1)
        self.info = status_label()
        self.images = ImageView()
        self.plots = PlotGrid(aspect=1.6, zero_line=True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.images)
        self.stack.addWidget(self.plots)
        self.layout_.addLayout(top)
        self.layout_.addWidget(self.stack, 1)
        self.layout_.addWidget(self.info)
        self.layout_.addWidget(self.message)
        self.shown: np.ndarray | None = None
        self.shown_node: str | None = None
        self._picked: str | None = None   # picked on the canvas before the list was filled
        controller.node_selected.connect(self._node_selected)

    def params(self) -> dict:
        return {"node": self.node.currentText() or self._picked}

    def clear_view(self) -> None:
        self.node.clear()
        self.images.clear_image()
        self.plots.clear_plots()
        self.info.clear()
        self.shown = self.shown_node = self._picked = None

    def _node_selected(self, node_id: str) -> None:
        if self.node.findText(node_id) >= 0:
            self.node.setCurrentText(node_id)
            self.invalidate()
        elif not self.node.count():   # the first snapshot shows it (the first conv if it is none)
            self._picked = node_id
            self.invalidate()

    def show_snapshot(self, payload: dict) -> None:
        self.message.clear()
        convs = payload["conv_nodes"]
        if [self.node.itemText(i) for i in range(self.node.count())] != convs:
            self.node.clear()
            self.node.addItems(convs)
        picked, self._picked = self._picked, None
        if picked in convs and picked != payload["node"]:   # an answer asked before the pick
            self.node.setCurrentText(picked)
            self.invalidate()
            return
        self.node.setCurrentText(payload["node"])
        filters, weight = payload["filters"], payload["weight"]
        self.shown, self.shown_node = filters, payload["node"]
        count = len(filters)
        kernel = "x".join(str(v) for v in weight.shape[1:])
        shown = f" (first {MAX_FILTERS} shown)" if count > MAX_FILTERS else ""
        self.info.setText(f"{payload['node']}: {count} filters of {kernel}{shown} · step "
                          f"{payload['step']} · each filter scaled to its own min..max")
        if filters.ndim == 3:
            self._show_1d(weight)
            return
        self.stack.setCurrentWidget(self.images)
        tiles = filter_tiles(filters)
        h, w = tiles[0].shape[:2]
        composite = filters.ndim == 5 or filters.shape[1] not in (1, 3)
        # a filter made of several small tiles gets a wider gap around it than inside it
        mosaic = tile(tiles, grid_columns(len(tiles), w / h), pad=3 if composite else 1)
        self.images.set_image(rgb_from_nan(mosaic) if mosaic.ndim == 3 else mosaic,
                              colormap=None)

    def _show_1d(self, weight: np.ndarray) -> None:
        """Raw weights, so the sign shows: one small plot per filter, up to three channels."""
        self.stack.setCurrentWidget(self.plots)
        channels = min(3, weight.shape[1])
        self.plots.show_lines([list(w[:channels]) for w in weight[:MAX_PLOTS]],
                              [pg.mkPen(CHANNEL_COLOURS[c], width=1.5) for c in range(channels)])
