"""Cut, copy, paste and duplicate through the clipboard as graph-JSON fragments."""
import json

from PySide6.QtCore import Qt
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
