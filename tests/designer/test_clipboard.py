"""Cut, copy, paste and duplicate through the clipboard as graph-JSON fragments."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import designer.app
from designer.app import MainWindow
from designer.document import CLIPBOARD_MIME
from engine.modules import REGISTRY, resolve_params
from engine.templates import load_template

BLOCK = ["conv2", "relu2", "pool2"]
ROOT = Path(__file__).resolve().parents[2]


def test_copy_paste_keeps_inner_wires_only(window):
    doc = window.document
    doc.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key_C, Qt.ControlModifier)
    fragment = json.loads(bytes(QApplication.clipboard().mimeData().data(CLIPBOARD_MIME)))
    assert [n["id"] for n in fragment["nodes"]] == BLOCK
    assert len(fragment["edges"]) == 2
    QTest.keyClick(window.view, Qt.Key_V, Qt.ControlModifier)
    pasted = window.selected_node_ids()
    assert pasted == ["conv3", "relu5", "pool3"]
    assert [(e.src, e.dst) for e in doc.graph.edges[-2:]] == [("conv3", "relu5"),
                                                              ("relu5", "pool3")]
    assert not doc.graph.inputs_of("conv3") and not doc.graph.consumers_of("pool3")
    assert doc.graph.nodes["conv3"].params == doc.graph.nodes["conv2"].params
    assert doc.undo_stack.undoText() == "Paste 3 nodes"
    doc.undo_stack.undo()
    assert doc.graph == load_template("lenet5")


def test_paste_into_another_window_and_cut_and_duplicate(window, qtbot):
    window.document.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.copy()
    other = MainWindow()
    qtbot.addWidget(other)
    other.show()
    other.paste()
    assert list(other.document.graph.nodes) == BLOCK  # ids are free there: kept
    assert len(other.document.graph.edges) == 2
    other.document.undo_stack.setClean()

    window.scene.select_nodes(["dense3", "output"])
    window.cut()
    assert "dense3" not in window.document.graph.nodes
    assert window.document.undo_stack.undoText() == "Cut 2 nodes"
    window.paste()
    assert {"dense3", "output"} <= set(window.document.graph.nodes)
    window.scene.select_nodes(["flatten1"])
    window.duplicate()
    assert window.selected_node_ids() == ["flatten2"]


def test_paste_of_foreign_text_is_refused_politely(window):
    QApplication.clipboard().setText("hello, not a graph")
    window.paste()
    assert window.document.graph.nodes == {}
    assert "no convdesigner nodes" in window.statusBar().currentMessage()


def test_pasted_params_stay_valid(window):
    window.document.reset(load_template("resnet-mini"))
    window.select_all()
    window.duplicate()
    graph = window.document.graph
    assert len(graph.nodes) == 48
    for node in graph.nodes.values():
        resolve_params(REGISTRY[node.type], node.params)


def positions(doc, ids):
    return [tuple(doc.graph.nodes[i].pos) for i in ids]


def put_mouse(monkeypatch, window, x, y):
    """The pointer at (x, y) of the canvas, as paste() reads it (without moving the real one)."""
    spot = window.view.viewport().mapToGlobal(QPoint(x, y))
    monkeypatch.setattr(designer.app, "QCursor", SimpleNamespace(pos=lambda: spot))


def test_pasting_twice_does_not_stack_the_copies(window, monkeypatch):
    doc = window.document
    doc.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.copy()
    put_mouse(monkeypatch, window, -50, -50)  # off the canvas
    window.paste()
    first = positions(doc, window.selected_node_ids())
    window.paste()
    pasted = window.selected_node_ids()
    second = positions(doc, pasted)
    assert second == [(x + 30, y + 30) for x, y in first]
    doc.undo_stack.undo()
    assert not set(pasted) & set(doc.graph.nodes)
    assert len(doc.graph.nodes) == len(load_template("lenet5").nodes) + 3
    doc.undo_stack.redo()
    assert positions(doc, pasted) == second

    window.scene.select_nodes(["flatten1"])  # a new copy starts again at the usual offset
    window.copy()
    window.paste()
    x, y = doc.graph.nodes["flatten1"].pos
    assert positions(doc, window.selected_node_ids()) == [(x + 40, y + 40)]


def test_pasting_twice_at_the_same_mouse_point_does_not_stack(window, monkeypatch):
    doc = window.document
    doc.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.copy()
    put_mouse(monkeypatch, window, 100, 100)
    window.paste()
    first = positions(doc, window.selected_node_ids())
    window.paste()
    assert positions(doc, window.selected_node_ids()) == [(x + 30, y + 30) for x, y in first]
    put_mouse(monkeypatch, window, 300, 200)
    window.paste()
    point = window.view.mapToScene(QPoint(300, 200))
    left, top = min(p[0] for p in first), min(p[1] for p in first)
    assert positions(doc, window.selected_node_ids()) == [
        (x - left + point.x(), y - top + point.y()) for x, y in first]


def test_quitting_after_a_copy_ends_cleanly(tmp_path):
    """Qt deletes the clipboard's data after the interpreter: the designer used to end with a
    segmentation fault after nodes were copied; the copied graph-JSON stays as plain text."""
    script = tmp_path / "copy_and_quit.py"
    script.write_text(
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from designer import app\n"
        "offer_recovery = app.MainWindow.offer_recovery\n"
        "def offer_then_copy(window):\n"   # main() calls it last, before the event loop
        "    offer_recovery(window)\n"
        "    window.select_all()\n"
        "    window.copy()\n"
        "    QTimer.singleShot(0, lambda: QApplication.instance().exit(0))\n"
        "app.MainWindow.offer_recovery = offer_then_copy\n"
        "raise SystemExit(app.main([]))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
