"""Blocks: the selection grouped into a named block that collapses to one box and expands again,
stored in the graph JSON as "groups" (which the engine ignores), each change one undo step."""
import json

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from ui_driver import drag_event, path_points

from designer.app import MainWindow, unplaced
from engine import Graph, compile_network
from engine.graph import GraphFormatError
from engine.templates import load_template

BLOCK = ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2", "block1_bn2"]


@pytest.fixture
def resnet(window):
    window.load_graph(unplaced(load_template("resnet-mini")), None, None)
    return window


def test_groups_round_trip_through_the_json_and_the_engine_ignores_them():
    doc = load_template("lenet5").to_dict()
    assert "groups" not in doc
    doc["groups"] = [{"id": "block1", "name": "features", "nodes": ["conv1", "relu1"],
                      "collapsed": True}]
    graph = Graph.from_dict(doc)
    assert graph.to_dict() == doc and graph.copy() == graph
    compile_network(graph)  # trains as before
    doc["groups"][0]["nodes"].append("nowhere")
    with pytest.raises(GraphFormatError, match="nowhere"):
        Graph.from_dict(doc)


def test_group_collapse_expand_each_one_step_and_undo_restores_the_file(resnet):
    doc = resnet.document
    before = doc.graph.to_dict()
    resnet.scene.select_nodes(BLOCK)
    resnet.view.setFocus()
    QTest.keyClick(resnet.view, Qt.Key_G, Qt.ControlModifier)
    (group,) = doc.graph.groups
    assert group.nodes == tuple(BLOCK) and not group.collapsed
    assert group.id in resnet.scene.frames
    grouped = doc.graph.to_dict()

    centre = resnet.scene.node_items["block1_conv1"].sceneBoundingRect().center()
    menu = resnet.view.context_menu(centre)
    (collapse,) = [a for a in menu.actions() if a.text().startswith("Collapse Block")]
    collapse.trigger()
    scene = resnet.scene
    block = scene.blocks[group.id]
    assert all(not scene.node_items[n].isVisible() for n in BLOCK)
    inside = [w for e, w in scene.wire_items.items() if e.src in BLOCK and e.dst in BLOCK]
    assert inside and not any(w.isVisible() for w in inside)
    entering = scene.wire_items[next(e for e in doc.graph.edges if e.dst == "block1_conv1")]
    assert entering.path().pointAtPercent(1) == block.inputs[0].scenePos()
    leaving = scene.wire_items[next(e for e in doc.graph.edges if e.src == "block1_bn2")]
    assert leaving.path().pointAtPercent(0) == block.output.scenePos()
    boxes = scene.node_boxes()
    for wire in scene.wire_items.values():
        if wire.isVisible():
            ends = scene.wire_ends(wire)[2]
            for point in path_points(wire.path()):
                for key, (left, top, right, bottom) in boxes.items():
                    if key not in ends:
                        assert not (left < point.x() < right and top < point.y() < bottom)

    QTest.mouseDClick(resnet.view.viewport(), Qt.LeftButton, Qt.NoModifier,
                      resnet.view.mapFromScene(block.sceneBoundingRect().center()))
    assert not doc.graph.groups[0].collapsed and scene.node_items["block1_bn1"].isVisible()
    assert doc.undo_stack.count() == 3
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == grouped
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before and not scene.frames


def test_a_collapsed_block_reopens_collapsed(resnet, tmp_path):
    doc = resnet.document
    doc.set_collapsed(doc.group(BLOCK, "residual"), True)
    path = tmp_path / "blocks.json"
    path.write_text(json.dumps(doc.graph.to_dict()))
    resnet.document.undo_stack.setClean()
    assert resnet.open_file(path)
    (group,) = resnet.document.graph.groups
    assert group.name == "residual" and group.collapsed
    assert group.id in resnet.scene.blocks


def test_deleting_or_renaming_a_member_keeps_the_block_right(resnet):
    doc = resnet.document
    doc.group(BLOCK)
    before = doc.graph.to_dict()
    doc.rename_node("block1_bn1", "bn_a")
    assert "bn_a" in doc.graph.groups[0].nodes
    doc.remove(["bn_a"])
    assert doc.graph.groups[0].nodes == ("block1_conv1", "block1_relu1", "block1_conv2",
                                         "block1_bn2")
    Graph.from_dict(doc.graph.to_dict())  # still a valid file
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before


def test_duplicating_a_block_copies_it_whole(resnet):
    doc = resnet.document
    group_id = doc.group(BLOCK, "residual")
    doc.set_collapsed(group_id, True)
    before = doc.graph.to_dict()
    resnet.scene.clearSelection()
    resnet.scene.blocks[group_id].setSelected(True)
    resnet.view.setFocus()
    QTest.keyClick(resnet.view, Qt.Key_D, Qt.ControlModifier)
    first, copy = doc.graph.groups
    assert copy.name == "residual" and copy.collapsed and copy.id != first.id
    assert set(copy.nodes).isdisjoint(first.nodes) and len(copy.nodes) == len(BLOCK)
    assert [e for e in doc.graph.edges if e.src in copy.nodes and e.dst in copy.nodes]
    assert set(resnet.scene.blocks) == {first.id, copy.id}
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before


def test_a_block_saved_to_the_palette_adds_itself_again_in_any_window(resnet, qtbot):
    doc = resnet.document
    group_id = doc.group(BLOCK, "residual")
    centre = resnet.scene.node_items["block1_conv1"].sceneBoundingRect().center()
    (save,) = [a for a in resnet.view.context_menu(centre).actions()
               if a.text() == "Save residual to the Palette"]
    save.trigger()
    item = resnet.palette_panel.blocks["residual"]
    tree = resnet.palette_panel.tree
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    QTest.mouseClick(tree.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    QTest.mouseDClick(tree.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    first, copy = doc.graph.groups
    assert first.id == group_id and copy.name == "residual" and len(copy.nodes) == len(BLOCK)
    assert doc.undo_stack.undoText() == "Paste 5 nodes"

    other = MainWindow()
    qtbot.addWidget(other)
    other.palette_panel.search.setText("resid")
    assert not other.palette_panel.blocks["residual"].isHidden()
    mime = other.palette_panel.tree.mimeData([other.palette_panel.blocks["residual"]])
    point = other.view.viewport().rect().center()
    for kind in (QDragEnterEvent, QDragMoveEvent):
        QApplication.sendEvent(other.view.viewport(), drag_event(kind, point, mime))
    drop = QDropEvent(QPointF(point), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(other.view.viewport(), drop)
    assert [g.name for g in other.document.graph.groups] == ["residual"]
    assert len(other.document.graph.nodes) == len(BLOCK)
