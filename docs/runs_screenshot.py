"""Renders docs/designer-runs.png: LeNet-5 trained twice on the MNIST files (the second run with
conv1 at 12 filters, a Dropout after flatten1 and lr 0.003), both runs selected in the Runs panel.
Run: PYTHONPATH=. QT_QPA_PLATFORM=offscreen python docs/runs_screenshot.py"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QItemSelectionModel, QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import QApplication

from engine.data import load_dataset
from engine.graph import Graph
from engine.session import Session

DOCS = Path(__file__).resolve().parent
MNIST = DOCS.parent.parent / "shared" / "data" / "mnist-10k"


def two_runs(path: Path) -> None:
    data = load_dataset(str(MNIST))
    session = Session.open("lenet5")
    session.settings.epochs = 2
    trainer = session.trainer(data, (0, 8000), (8000, 10000))
    trainer.run()
    session.finish(trainer)
    doc = session.graph.to_dict()
    next(n for n in doc["nodes"] if n["id"] == "conv1")["params"]["filters"] = 12
    next(e for e in doc["edges"] if e["from"] == "flatten1")["from"] = "drop1"
    doc["nodes"].append({"id": "drop1", "type": "Dropout", "params": {"rate": 0.25}})
    doc["edges"].append({"from": "flatten1", "to": "drop1", "port": 0})
    session.adopt(Graph.from_dict(doc))
    session.reset()
    session.settings.lr = 0.003
    trainer = session.trainer(data, (0, 8000), (8000, 10000))
    trainer.run()
    session.finish(trainer)
    session.save(path)


def main() -> int:
    path = Path(tempfile.mkdtemp()) / "lenet-runs.h5"
    two_runs(path)
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("convdesigner-screenshots")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tempfile.mkdtemp())
    from designer.app import MainWindow

    window = MainWindow()
    window.resize(1680, 1050)
    window.show()
    window.open_file(path)
    for _ in range(200):   # the file opens in the background
        app.processEvents()
        if window.training.session is not None and window.training.session.runs:
            break
        time.sleep(0.05)
    window.docks["Runs"].raise_()
    window.resizeDocks([window.docks["Runs"]], [420], Qt.Vertical)
    panel = window.training_panels["Runs"]
    for row in range(panel.table.rowCount()):
        panel.table.selectionModel().select(panel.table.model().index(row, 0),
                                            QItemSelectionModel.Select | QItemSelectionModel.Rows)
    for _ in range(10):
        app.processEvents()
    window.grab().save(str(DOCS / "designer-runs.png"))
    window.training.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
