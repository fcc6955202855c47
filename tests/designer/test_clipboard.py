"""Cut, copy, paste and duplicate through the clipboard as graph-JSON fragments."""
import json

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.app import MainWindow
from designer.document import CLIPBOARD_MIME
from engine.modules import REGISTRY, resolve_params
from engine.templates import load_template

BLOCK = ["conv2", "relu2", "pool2"]


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


def test_pasting_twice_does_not_stack_the_copies(window):
    doc = window.document
    doc.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.copy()
    QCursor.setPos(window.view.viewport().mapToGlobal(QPoint(-50, -50)))  # off the canvas
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


def test_pasting_twice_at_the_same_mouse_point_does_not_stack(window):
    doc = window.document
    doc.reset(load_template("lenet5"))
    window.scene.select_nodes(BLOCK)
    window.copy()
    QCursor.setPos(window.view.viewport().mapToGlobal(QPoint(100, 100)))
    window.paste()
    first = positions(doc, window.selected_node_ids())
    window.paste()
    assert positions(doc, window.selected_node_ids()) == [(x + 30, y + 30) for x, y in first]
    QCursor.setPos(window.view.viewport().mapToGlobal(QPoint(300, 200)))
    window.paste()
    point = window.view.mapToScene(QPoint(300, 200))
    left, top = min(p[0] for p in first), min(p[1] for p in first)
    assert positions(doc, window.selected_node_ids()) == [
        (x - left + point.x(), y - top + point.y()) for x, y in first]
