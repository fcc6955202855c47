"""Loss, accuracy and learning-rate curves: training per batch (raw and smoothed) and per epoch,
validation per epoch; x is the epoch, fractional within one."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout

from .common import BACKGROUND, MUTED, DockedPanel, status_label

SMOOTHING = 0.9   # exponential moving average of the per-batch values, debiased at the start
REDRAW_MS = 500   # the curves redraw at most twice a second during a run, a new epoch's points
# with the batches' (MNIST's epochs end twice a second): painting is the GUI's main cost during a
# run, and it competes with training for the cores
TRAIN, VAL, RAW = "#4fa3ff", "#ff9f43", (79, 163, 255, 70)


class _Smoother:
    def __init__(self):
        self.value, self.count = 0.0, 0

    def __call__(self, v: float) -> float:
        self.value = SMOOTHING * self.value + (1 - SMOOTHING) * v
        self.count += 1
        return self.value / (1 - SMOOTHING ** self.count)


class CurvesPanel(DockedPanel):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(BACKGROUND)
        self.summary = status_label()
        self.summary.setStyleSheet(f"color: {MUTED};")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)

        # the legend is a row of its own above the plots: it never covers a curve or an axis
        self.legend = pg.LegendItem(colCount=4, labelTextSize="8pt", verSpacing=-6)
        self.loss_plot = self._plot("loss")
        self.acc_plot = self._plot("accuracy")
        self.lr_plot = self._plot("learning rate")
        self.acc_plot.setYRange(0, 1, padding=0.02)
        for plot in (self.acc_plot, self.lr_plot):
            plot.setXLink(self.loss_plot)
        # the rate is a flat or falling line: the axis title carries its range, not ticks
        self.lr_plot.getAxis("left").setStyle(showValues=False)
        self._side_by_side: bool | None = None
        self._arrange(side_by_side=False)

        self._named: list[tuple] = []   # (curve, legend name) of the loss plot, in order
        self._legend_shows: tuple = ()

        def curve(plot, colour, name=None, width=1.5, symbol=None, style=None):
            pen = pg.mkPen(colour, width=width, style=style) if colour else None
            item = plot.plot([], [], pen=pen, symbol=symbol, symbolSize=6,
                             symbolBrush=colour, symbolPen=None)
            if name and plot is self.loss_plot:   # the accuracy curves look the same
                self._named.append((item, name))
            return item

        self.loss_raw = curve(self.loss_plot, RAW, width=1)
        self.loss_smooth = curve(self.loss_plot, TRAIN, "train (per batch, smoothed)")
        self.loss_epoch = curve(self.loss_plot, TRAIN, "train (epoch)", 1, "o", Qt.DashLine)
        self.loss_val = curve(self.loss_plot, VAL, "validation (epoch)", 2, "s")
        self.acc_raw = curve(self.acc_plot, RAW, width=1)
        self.acc_smooth = curve(self.acc_plot, TRAIN, "train (per batch, smoothed)")
        self.acc_epoch = curve(self.acc_plot, TRAIN, "train (epoch)", 1, "o", Qt.DashLine)
        self.acc_val = curve(self.acc_plot, VAL, "validation (epoch)", 2, "s")
        self.lr_curve = curve(self.lr_plot, "#b4e08c")
        self.lr_epochs = curve(self.lr_plot, "#b4e08c")
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#7ee07e", width=1,
                                                                style=Qt.DashLine),
                                         label="best", labelOpts={"position": 0.85,
                                                                  "color": "#7ee07e"})
        self.loss_plot.addItem(self.best_line, ignoreBounds=True)
        self._redraw_timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw_timer.timeout.connect(self._redraw)
        self.clear()

        controller.batch_done.connect(self.add_batches)
        controller.epoch_done.connect(self.add_epoch)
        controller.history_changed.connect(self.set_history)

    def _plot(self, title: str) -> pg.PlotItem:
        plot = pg.PlotItem()
        plot.setLabel("left", title)
        plot.getAxis("left").setWidth(56)   # the x axes line up
        plot.showGrid(x=True, y=True, alpha=0.15)
        for name in ("left", "bottom"):
            # replaying an axis (ticks, labels, grid) is most of a repaint; cached, an axis is
            # drawn again only when its range changes
            plot.getAxis(name).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.getAxis("left").enableAutoSIPrefix(False)   # "loss (x0.001)" reads badly
        return plot

    def _arrange(self, side_by_side: bool) -> None:
        """Loss, accuracy and rate side by side in a wide, short panel (a bottom dock), one
        above the other in a tall one, so that no axis title or tick label is squeezed."""
        if side_by_side == self._side_by_side:
            return
        self._side_by_side = side_by_side
        layout = self.view.ci
        plots = (self.loss_plot, self.acc_plot, self.lr_plot)
        for item in (self.legend, *plots):
            if item.scene() is not None:
                layout.removeItem(item)
        layout.addItem(self.legend, row=0, col=0, colspan=3 if side_by_side else 1)
        for index, plot in enumerate(plots):
            layout.addItem(plot, row=1 if side_by_side else 1 + index,
                           col=index if side_by_side else 0)
            last = side_by_side or plot is self.lr_plot
            plot.getAxis("bottom").setStyle(showValues=last)
            plot.setLabel("bottom", "epoch" if last else None)
        grid = layout.layout
        stretching = (1,) if side_by_side else (1, 2)
        for row in range(4):
            grid.setRowStretchFactor(row, int(row in stretching))
        grid.setRowMaximumHeight(0, 24)
        self.lr_plot.setMaximumHeight(16_777_215 if side_by_side else 90)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(side_by_side=self.width() > 2.2 * self.height())

    def clear(self) -> None:
        self.batch = {k: [] for k in ("x", "loss", "acc", "lr", "loss_s", "acc_s")}
        self.epochs = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                       "lr")}
        self.best_epoch: int | None = None
        self._smooth_loss, self._smooth_acc = _Smoother(), _Smoother()
        self._x_end = None
        # an empty panel shows the default axes, not the last model's range
        self.loss_plot.setXRange(0, 1, padding=0)
        self.loss_plot.setYRange(0, 1, padding=0)
        self.loss_plot.enableAutoRange()
        self._redraw_batches()
        self._redraw_epochs()

    @property
    def batch_count(self) -> int:
        return len(self.batch["x"])

    @property
    def epoch_count(self) -> int:
        return len(self.epochs["epoch"])

    def add_batches(self, payload: dict) -> None:
        b = self.batch
        if payload.get("epochs", self._x_end) != self._x_end:
            self._x_end = payload["epochs"]
            self._fix_x_range(self._x_end)
        for x, loss, acc, lr, _step in payload["points"]:
            b["x"].append(x)
            b["loss"].append(loss)
            b["acc"].append(acc)
            b["lr"].append(lr)
            b["loss_s"].append(self._smooth_loss(loss))
            b["acc_s"].append(self._smooth_acc(acc))
        self._schedule_redraw()

    def _schedule_redraw(self) -> None:
        if self.seen() and not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _redraw(self) -> None:
        self._redraw_batches()
        if self._epochs_stale:
            self._redraw_epochs()

    def seen_changed(self, seen: bool) -> None:
        if seen:   # the points that came while behind another tab
            self._redraw()

    def _fix_x_range(self, end: float) -> None:
        """The whole history and the run to its last epoch on the x axis: the axes then stay as
        they are while it grows (re-laying out the ticks at every update costs more than the
        curves)."""
        self.loss_plot.setXRange(0.0, max(1.0, end), padding=0.01)

    def add_epoch(self, row: dict) -> None:
        for key, values in self.epochs.items():
            values.append(row[key])
        self.best_epoch = row.get("best_epoch")
        self._epochs_stale = True
        self._schedule_redraw()

    def set_history(self, history: dict) -> None:
        """Start over from a model's stored history (per-epoch values only), all of it in view,
        the best epoch marked."""
        self.clear()
        epochs = history.get("epoch", [])
        for key, values in self.epochs.items():
            values.extend(history.get(key, [math.nan] * len(epochs)))
        self.best_epoch = history.get("best_epoch")
        self._redraw_epochs()
        self._fix_x_range(len(epochs))
        finite = [v for key in ("train_loss", "val_loss") for v in self.epochs[key]
                  if math.isfinite(v)]
        if finite:
            self.loss_plot.setYRange(min(finite), max(finite), padding=0.08)
        else:
            self.loss_plot.enableAutoRange(axis=pg.ViewBox.YAxis)

    def _redraw_batches(self) -> None:
        b = self.batch
        x = np.asarray(b["x"], float)
        self.loss_plot.vb.disableAutoRange()
        self.loss_raw.setData(x, np.asarray(b["loss"], float))
        self.loss_smooth.setData(x, np.asarray(b["loss_s"], float))
        self._fit_loss_range()
        self.acc_raw.setData(x, np.asarray(b["acc"], float))
        self.acc_smooth.setData(x, np.asarray(b["acc_s"], float))
        if len(x):   # the rate changes only between epochs: a run resumed mid-epoch ran its
            # epoch's rate from the epoch's start
            self.lr_curve.setData(np.r_[math.floor(x[0]), x], np.r_[b["lr"][0], b["lr"]])
        else:
            self.lr_curve.setData([], [])
        top = max(b["lr"] + self.epochs["lr"], default=0.0)
        if top and top * 1.1 != self.lr_plot.vb.viewRange()[1][1]:
            # from zero, so a constant rate reads as a flat line at its value
            self.lr_plot.setYRange(0, top * 1.1, padding=0)
            self.lr_plot.setLabel("left", f"lr 0..{top:.3g}")
        self._sync_legend()

    def _sync_legend(self) -> None:
        """Name only the curves that have points (a reopened model has no per-batch curve, a
        run without validation data no validation curve)."""
        shows = tuple(name for item, name in self._named if item.xData is not None
                      and len(item.xData))
        if shows != self._legend_shows:
            # every entry is made once and only faded in or out: a legend that changes its
            # size lays the plots out again, a 40 ms stall of the window while training; the
            # per-batch entry comes last, so a reopened model's legend has no gap
            self._legend_shows = shows
            if not self.legend.items:
                for item, name in sorted(self._named, key=lambda named: "batch" in named[1]):
                    self.legend.addItem(item, name)
            for sample, label in self.legend.items:
                for part in (sample, label):
                    part.setOpacity(1.0 if label.text in shows else 0.0)

    def _fit_loss_range(self) -> None:
        """Re-range the loss axis only when the curves leave it or fill less than half of it:
        repainting an axis (ticks, labels, grid) costs the window more than the curves, and
        following every batch's range repainted it twice a second."""
        values = np.asarray(self.batch["loss"] + self.epochs["train_loss"]
                            + self.epochs["val_loss"], float)
        values = values[np.isfinite(values)]
        if not values.size:
            return
        low, high = float(values.min()), float(values.max())
        view_low, view_high = self.loss_plot.vb.viewRange()[1]
        if low < view_low or high > view_high or high - low < 0.5 * (view_high - view_low):
            self.loss_plot.setYRange(low, high, padding=0.08)

    def _redraw_epochs(self) -> None:
        self._epochs_stale = False
        e = {k: np.asarray(v, float) for k, v in self.epochs.items()}
        self.loss_epoch.setData(e["epoch"], e["train_loss"])
        self.acc_epoch.setData(e["epoch"], e["train_acc"])
        seen = np.isfinite(e["val_loss"])
        self.loss_val.setData(e["epoch"][seen], e["val_loss"][seen])
        self.acc_val.setData(e["epoch"][seen], e["val_acc"][seen])
        rates = e["lr"][np.isfinite(e["lr"])]
        # the stored per-epoch rate of the epochs before this session's batches, one level per
        # epoch (the batches' line goes on from the next epoch's start)
        shown = rates[:int(self.batch["x"][0])] if self.batch["x"] else rates
        steps = np.repeat(np.arange(len(shown) + 1.0), 2)[1:-1]
        self.lr_epochs.setData(steps, np.repeat(shown, 2))
        if len(shown) and not self.batch["x"]:
            self.lr_plot.setYRange(0, shown.max() * 1.1, padding=0)
            self.lr_plot.setLabel("left", f"lr 0..{shown.max():.3g}")
        self._fit_loss_range()   # a validation loss may lie outside the batches' range
        self._sync_legend()
        self.best_line.setVisible(self.best_epoch is not None)
        if self.best_epoch is not None:
            self.best_line.setValue(self.best_epoch)
        if len(e["epoch"]):
            text = (f"epoch {int(e['epoch'][-1])}: train loss {e['train_loss'][-1]:.4f}, "
                    f"accuracy {e['train_acc'][-1]:.1%}")
            if seen.any():
                best = (int(np.flatnonzero(e["epoch"] == self.best_epoch)[0])
                        if self.best_epoch in e["epoch"]
                        else int(np.nanargmin(np.where(seen, e["val_loss"], np.inf))))
                text += (f" · validation loss {e['val_loss'][-1]:.4f}, accuracy "
                         f"{e['val_acc'][-1]:.1%} (best {e['val_acc'][best]:.1%} at epoch "
                         f"{int(e['epoch'][best])})")
            self.summary.setText(text)
        else:
            self.summary.setText("no epochs yet")
