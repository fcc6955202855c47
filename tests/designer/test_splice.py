"""Splicing: a module dropped onto a wire or Tab-added after a node with a consumer goes into the
wire; a wire dropped onto a taken input replaces it; each is one undo step."""
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import drop_module, wire

from engine import Graph


def chain(window, *types):
    """Lay out and wire a chain of new nodes through the document; returns their ids."""
    doc = window.document
    ids = [doc.add_node(types[0], (0, 0))]
    for type_name in types[1:]:
        ids.append(doc.add_node(type_name, (0, 0), connect_from=ids[-1]))
    doc.arrange()
    doc.undo_stack.clear()
    window.view.fit_all()
    return ids


def pairs(window):
    return [(e.src, e.dst, e.port) for e in window.document.graph.edges]


def test_module_dropped_on_a_wire_goes_into_it(window):
    chain(window, "Input", "Dense")
    before = window.document.graph.to_dict()
    middle = window.scene.wire_items[window.document.graph.edges[0]].path().pointAtPercent(0.5)
    assert drop_module(window, "Flatten", (middle.x(), middle.y())) == "flatten1"
    assert sorted(pairs(window)) == [("flatten1", "dense1", 0), ("input", "flatten1", 0)]
    assert window.document.analysis.shapes["dense1"] == (10,)
    boxes = [item.sceneBoundingRect() for item in window.scene.node_items.values()]
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    window.document.undo_stack.undo()
    assert window.document.graph.to_dict() == before


def test_module_dropped_beside_a_wire_stays_unwired(window):
    chain(window, "Input", "Dense")
    box = window.scene.node_items["dense1"].sceneBoundingRect()
    drop_module(window, "Flatten", (box.right() + 200, box.center().y()))
    assert pairs(window) == [("input", "dense1", 0)]


def test_tab_after_a_node_with_a_consumer_splices_and_makes_room(window):
    chain(window, "Input", "Conv2D", "Dense")
    before = window.document.graph.to_dict()
    dense_y = window.document.graph.nodes["dense1"].pos[1]
    window.scene.select_nodes(["conv1"])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key_Tab)
    QTest.keyClicks(window.view.quick_add.search, "flatten")
    QTest.keyClick(window.view.quick_add.search, Qt.Key_Return)
    graph = window.document.graph
    assert sorted(pairs(window)) == [("conv1", "flatten1", 0), ("flatten1", "dense1", 0),
                                     ("input", "conv1", 0)]
    assert graph.nodes["conv1"].pos[1] < graph.nodes["flatten1"].pos[1] < \
        graph.nodes["dense1"].pos[1]
    assert graph.nodes["dense1"].pos[1] > dense_y  # moved down to make room
    assert window.document.analysis.ok or "Output" in str(window.document.analysis.errors)
    assert window.document.undo_stack.count() == 1
    window.document.undo_stack.undo()
    assert graph.to_dict() == before


def test_wire_dropped_on_a_taken_input_replaces_the_old_one(window):
    chain(window, "Input", "Dense")
    window.document.add_node("Flatten", (400, 0), connect_from="input")
    window.document.undo_stack.clear()
    before = window.document.graph.to_dict()
    wire(window, "flatten1", "dense1")
    assert sorted(pairs(window)) == [("flatten1", "dense1", 0), ("input", "flatten1", 0)]
    assert window.document.undo_stack.count() == 1
    window.document.undo_stack.undo()
    assert window.document.graph.to_dict() == before


def test_palette_double_click_wires_after_the_selected_node(window):
    chain(window, "Input")
    window.scene.select_nodes(["input"])
    item = window.palette_panel.items["Flatten"]
    window.palette_panel.tree.scrollToItem(item)
    rect = window.palette_panel.tree.visualItemRect(item)
    viewport = window.palette_panel.tree.viewport()
    QTest.mouseClick(viewport, Qt.LeftButton, Qt.NoModifier, rect.center())
    QTest.mouseDClick(viewport, Qt.LeftButton, Qt.NoModifier, rect.center())
    assert pairs(window) == [("input", "flatten1", 0)]
    assert window.selected_node_id() == "flatten1"


def test_splice_undo_restores_the_file_exactly(qapp):
    from designer.document import GraphDocument

    doc = GraphDocument(Graph.from_dict({
        "format": "convdesigner.graph", "version": 1, "name": "t",
        "nodes": [{"id": "a", "type": "Input", "params": {"shape": [3, 8, 8]}, "pos": [0, 0]},
                  {"id": "b", "type": "Conv2D", "params": {"filters": 4, "kernel_size": 3},
                   "pos": [0, 120]},
                  {"id": "c", "type": "Add", "pos": [0, 240]}],
        "edges": [{"from": "a", "to": "b", "port": 0}, {"from": "b", "to": "c", "port": 0},
                  {"from": "a", "to": "c", "port": 1}]}))
    before = doc.graph.to_dict()
    doc.splice("BatchNorm", doc.graph.edges[2], (100, 120), shift=(0, 100))
    assert ("bn1", "c", 1) in [(e.src, e.dst, e.port) for e in doc.graph.edges]
    assert doc.graph.nodes["c"].pos == [0, 340]
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
