"""Renders a sweep's trials.csv as one scatter per parameter against the validation loss
(complete trials filled, pruned ones hollow at the loss where they were stopped).
Run: PYTHONPATH=. QT_QPA_PLATFORM=offscreen python docs/sweep_plot.py DIR/trials.csv OUT.png"""
from __future__ import annotations

import csv
import sys

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

FIXED = {"trial", "state", "val_loss", "val_acc", "epochs", "seconds", "file", "note"}


def main(source: str, target: str) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    rows = [r for r in csv.DictReader(open(source)) if r["val_loss"]]
    params = [c for c in rows[0] if c not in FIXED]
    view = pg.GraphicsLayoutWidget()
    view.setBackground("w")
    view.resize(520 * len(params), 420)
    for col, name in enumerate(params):
        values = [float(r[name]) for r in rows]
        log = name.endswith("lr") and min(values) > 0
        plot = view.addPlot(row=0, col=col, title=f"{name} vs validation loss")
        plot.setLabel("bottom", name)
        plot.setLabel("left", "validation loss (last epoch)")
        plot.setLogMode(x=log, y=False)
        plot.showGrid(x=True, y=True, alpha=0.3)
        for state, brush in (("complete", "#1f77b4"), ("pruned", None)):
            xs = [v for v, r in zip(values, rows) if r["state"] == state]
            ys = [float(r["val_loss"]) for r in rows if r["state"] == state]
            plot.plot(xs, ys, pen=None, symbol="o", symbolSize=10, symbolPen="#1f77b4",
                      symbolBrush=brush, name=state)
    view.show()
    app.processEvents()
    view.grab().save(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
