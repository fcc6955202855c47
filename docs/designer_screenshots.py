"""Renders docs/designer-lenet5.png, designer-resnet.png and designer-error.png from the real
main window.
Run: PYTHONPATH=. QT_QPA_PLATFORM=offscreen python docs/designer_screenshots.py"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import QApplication

DOCS = Path(__file__).resolve().parent


def settle(app, window) -> None:
    for _ in range(5):
        app.processEvents()
    window.view.viewport().repaint()


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("convdesigner-screenshots")
    settings = tempfile.mkdtemp()  # the default layout, not one a previous run left
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, settings)
    from designer.app import MainWindow, unplaced
    from engine.templates import load_template

    window = MainWindow()
    window.resize(1680, 1050)
    window.show()
    window.resizeDocks([window.docks["Summary"]], [390], Qt.Vertical)
    window.load_graph(unplaced(load_template("lenet5")), None, None)
    window.file_path = Path("lenet5.json")
    window.scene.select_nodes(["conv2"])
    window.view.fit_all()
    settle(app, window)
    window.grab().save(str(DOCS / "designer-lenet5.png"))

    # branches side by side, skip wires routed round the main path
    window.load_graph(unplaced(load_template("resnet-mini")), None, None)
    window.file_path = Path("resnet-mini.json")
    window.view.set_zoom(0.8)
    window.view.centerOn(window.scene.node_items["block1_add"].sceneBoundingRect().center())
    settle(app, window)
    window.grab().save(str(DOCS / "designer-resnet.png"))

    # the classic mistake: Dense straight after pooling, without Flatten, and its fixes
    window.load_graph(unplaced(load_template("lenet5")), None, None)
    window.file_path = Path("lenet5.json")
    doc = window.document
    doc.remove(["flatten1"])
    doc.connect("pool2", "dense1")
    window.focus_node("dense1")
    window.docks["Problems"].raise_()
    window.resizeDocks([window.docks["Problems"]], [230], Qt.Vertical)
    window.view.set_zoom(0.8)
    window.view.centerOn(window.scene.node_items["pool2"].sceneBoundingRect().center())
    settle(app, window)
    window.grab().save(str(DOCS / "designer-error.png"))
    doc.undo_stack.setClean()
    window.close()
    shutil.rmtree(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
