"""The canvas driven with the mouse and keyboard: palette drops, wires, refusals, shortcuts."""
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from ui_driver import drop_module, mouse_drag, port_point, wire

from designer.canvas.items import NODE_WIDTH
from designer.canvas.view import FIT_ZOOM
from engine.modules import REGISTRY


def test_palette_lists_every_type_with_summary_and_filters(window):
    palette = window.palette_panel
    assert set(palette.items) == set(REGISTRY)
    assert palette.items["Conv2D"].toolTip(0) == REGISTRY["Conv2D"].summary
    palette.search.setText("pool")
    assert set(palette.visible_types()) >= {"Pool1D", "Pool2D", "Pool3D", "GlobalPool"}
    assert "Dense" not in palette.visible_types()
    palette.search.setText("")
    assert len(palette.visible_types()) == len(REGISTRY)


def test_drop_from_palette_adds_node_at_drop_point(window):
    node_id = drop_module(window, "Conv2D", (300, 200))
    node = window.document.graph.nodes[node_id]
    assert node_id == "conv1"
    assert node.params == {"filters": 16, "kernel_size": 3}  # required params, spec defaults
    centre = window.scene.node_items[node_id].sceneBoundingRect().center()
    assert abs(centre.x() - 300) <= 10 and abs(centre.y() - 200) <= 10
    assert window.selected_node_id() == "conv1"
    assert drop_module(window, "Conv2D", (600, 200)) == "conv2"
    window.document.undo_stack.undo()
    assert list(window.document.graph.nodes) == ["conv1"]


def test_double_click_in_palette_adds_at_view_centre(window, qtbot):
    item = window.palette_panel.items["Dense"]
    window.palette_panel.tree.scrollToItem(item)
    rect = window.palette_panel.tree.visualItemRect(item)
    viewport = window.palette_panel.tree.viewport()
    QTest.mouseClick(viewport, Qt.LeftButton, Qt.NoModifier, rect.center())  # press, then...
    QTest.mouseDClick(viewport, Qt.LeftButton, Qt.NoModifier, rect.center())  # ...the double
    assert list(window.document.graph.nodes) == ["dense1"]
    centre = window.scene.node_items["dense1"].sceneBoundingRect().center()
    assert (centre - window.view.centre_scene_pos()).manhattanLength() < 20


def test_wire_drawn_with_mouse_shows_shape_label(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Conv2D", (260, 0))
    wire(window, "input", "conv1")
    edges = [(e.src, e.dst, e.port) for e in window.document.graph.edges]
    assert edges == [("input", "conv1", 0)]
    assert window.scene.wire_items[window.document.graph.edges[0]].label.text == "1x28x28"
    drop_module(window, "Activation", (520, 0))
    wire(window, "conv1", "act1")
    labels = sorted(w.label.text for w in window.scene.wire_items.values())
    assert labels == ["16x26x26", "1x28x28"]


def test_wire_dragged_backwards_from_an_input(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Flatten", (260, 0))
    mouse_drag(window, port_point(window, "flatten1", "in"), port_point(window, "input", "out"))
    assert [(e.src, e.dst) for e in window.document.graph.edges] == [("input", "flatten1")]


def test_incompatible_wires_are_refused_with_a_reason(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Conv2D", (260, 0))
    drop_module(window, "Dense", (520, 0))
    wire(window, "input", "conv1")
    before = window.document.graph.to_dict()

    mouse_drag(window, port_point(window, "conv1", "out"), port_point(window, "conv1", "in"))
    assert "conv1 cannot be wired to itself" in window.statusBar().currentMessage()
    wire(window, "conv1", "dense1")
    wire(window, "dense1", "conv1")  # would replace input -> conv1, but makes a loop
    assert "would make a cycle" in window.statusBar().currentMessage()
    assert window.document.graph.to_dict()["edges"][-1] == {"from": "conv1", "to": "dense1",
                                                           "port": 0}
    assert "taken" in window.document.connection_problem("dense1", "conv1", 0)
    window.document.undo_stack.undo()
    assert window.document.graph.to_dict() == before


def test_dragging_a_wire_off_an_input_disconnects_it(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Flatten", (260, 0))
    wire(window, "input", "flatten1")
    start = port_point(window, "flatten1", "in")
    mouse_drag(window, start, start + (start - port_point(window, "input", "out")) / 2)
    assert window.document.graph.edges == []
    assert window.document.undo_stack.undoText() == "Disconnect input from flatten1"


def test_add_grows_a_port_for_each_wire(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Activation", (260, -120))
    drop_module(window, "Activation", (260, 120))
    drop_module(window, "Add", (520, 0))
    add = window.scene.node_items["add1"]
    assert len(add.inputs) == 2
    for source in ("input", "act1", "act2"):
        wire(window, source, "add1", len(window.document.graph.inputs_of("add1")))
    assert [e.port for e in window.document.graph.inputs_of("add1")] == [0, 1, 2]
    assert len(add.inputs) == 4
    window.document.remove(["act1"])  # the inputs after it close up
    assert [(e.src, e.port) for e in window.document.graph.inputs_of("add1")] == [
        ("input", 0), ("act2", 1)]
    assert len(add.inputs) == 3


def test_type_to_add_chains_from_the_selected_node(window, qtbot):
    drop_module(window, "Input", (0, 0))
    window.view.setFocus()
    for typed in ("conv2d", "act", "pool2d"):
        QTest.keyClick(window.view, Qt.Key_Tab)
        assert window.view.quick_add.isVisible()
        QTest.keyClicks(window.view.quick_add.search, typed)
        QTest.keyClick(window.view.quick_add.search, Qt.Key_Return)
    graph = window.document.graph
    assert [n.type for n in graph.nodes.values()] == ["Input", "Conv2D", "Activation", "Pool2D"]
    assert [(e.src, e.dst) for e in graph.edges] == [("input", "conv1"), ("conv1", "act1"),
                                                     ("act1", "pool1")]
    ys = [graph.nodes[i].pos[1] for i in graph.nodes]
    assert ys == sorted(ys)  # each below the one before
    assert window.document.analysis.shapes["pool1"] == (16, 13, 13)
    window.view.set_zoom(1.0)
    for typed in ("conv2d", "act", "pool2d", "flatten", "dense", "output"):
        QTest.keyClick(window.view, Qt.Key_Tab)
        QTest.keyClicks(window.view.quick_add.search, typed)
        QTest.keyClick(window.view.quick_add.search, Qt.Key_Return)
    last = window.view.mapFromScene(window.scene.node_items["output"].sceneBoundingRect())
    assert window.view.viewport().rect().contains(last.boundingRect())  # the view followed


def test_delete_key_undo_and_redo_shortcuts(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Flatten", (260, 0))
    wire(window, "input", "flatten1")
    window.view.setFocus()
    window.scene.select_nodes(["flatten1"])
    QTest.keyClick(window.view, Qt.Key_Delete)
    assert list(window.document.graph.nodes) == ["input"]
    assert window.undo_action.text() == "&Undo Delete flatten1"
    QTest.keyClick(window.view, Qt.Key_Z, Qt.ControlModifier)
    assert len(window.document.graph.edges) == 1
    QTest.keyClick(window.view, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert list(window.document.graph.nodes) == ["input"]


def test_moving_a_node_is_one_undoable_step(window):
    drop_module(window, "Input", (0, 0))
    item = window.scene.node_items["input"]
    start = window.view.mapFromScene(item.sceneBoundingRect().center() + QPointF(0, 10))
    mouse_drag(window, start, start + (start * 0 + window.view.mapFromScene(QPointF(100, 40))
                                       - window.view.mapFromScene(QPointF(0, 0))))
    pos = window.document.graph.nodes["input"].pos
    assert pos[0] % 10 == 0 and pos[1] % 10 == 0 and pos != [-65, -33]
    assert window.document.undo_stack.undoText() == "Move input"
    window.document.undo_stack.undo()
    assert item.pos() == QPointF(*window.document.graph.nodes["input"].pos)


def test_zoom_fit_and_arrange(window):
    window.document.reset(window.document.graph.from_dict(_chain(3)))
    window.view.set_zoom(1.0)
    window.view.fit_all()
    rect = window.view.mapFromScene(window.scene.itemsBoundingRect()).boundingRect()
    assert window.view.viewport().rect().contains(rect)
    window.view.setFocus()
    window.scene.select_nodes([])
    QTest.keyClick(window.view, Qt.Key_L)
    xs = {n.pos[0] for n in window.document.graph.nodes.values()}
    assert len(xs) == 1  # a chain is one column, top to bottom
    assert window.document.undo_stack.undoText() == "Arrange"
    QTest.keyClick(window.view, Qt.Key_L, Qt.ControlModifier)
    ys = {n.pos[1] for n in window.document.graph.nodes.values()}
    assert len(ys) == 1  # and one row, left to right
    assert window.scene.node_items["in"].output.pos().x() == NODE_WIDTH  # ports on the sides


def test_fit_stops_at_a_readable_zoom_and_shows_the_input(window):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window.document.reset(window.document.graph.from_dict(_chain(40)))
    window.view.fit_all()
    assert window.view.zoom() == pytest.approx(FIT_ZOOM)
    seen = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    assert seen.contains(window.scene.node_items["in"].sceneBoundingRect())
    spot = QPoint(100, 100)
    wheel = QWheelEvent(QPointF(spot), QPointF(window.view.viewport().mapToGlobal(spot)),
                        QPoint(), QPoint(0, -360), Qt.NoButton, Qt.ShiftModifier,
                        Qt.NoScrollPhase, False)
    QApplication.sendEvent(window.view.viewport(), wheel)  # Shift+wheel scrolls down
    assert window.view.zoom() == pytest.approx(FIT_ZOOM)
    after = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    assert after.top() > seen.top() + 100 and after.left() == pytest.approx(seen.left())


def test_a_fitted_view_stays_fitted_as_the_window_grows_until_the_user_zooms(qtbot, window):
    window.document.reset(window.document.graph.from_dict(_chain(12)))
    window.resize(700, 500)
    window.view.fit_all()
    small = window.view.zoom()
    window.resize(1500, 950)
    qtbot.waitUntil(lambda: window.view.zoom() > small * 1.2)
    window.view.set_zoom(0.5)
    window.resize(900, 600)
    qtbot.wait(50)
    assert window.view.zoom() == pytest.approx(0.5)


def _chain(n):
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [1, 8, 8]}, "pos": [0, 0]}]
    edges = []
    for i in range(n):
        nodes.append({"id": f"a{i}", "type": "Activation", "pos": [37 * i, 91 * (i % 3)]})
        edges.append({"from": nodes[-2]["id"], "to": f"a{i}"})
    return {"format": "convdesigner.graph", "version": 1, "nodes": nodes, "edges": edges}


def test_rubber_band_selects_the_nodes_inside(window):
    for step, type_name in enumerate(("Input", "Flatten", "Dense")):
        drop_module(window, type_name, (step * 220, 0))
    window.view.set_zoom(0.5)
    window.view.centerOn(220, 0)
    corner = window.view.mapFromScene(QPointF(-120, -80))
    mouse_drag(window, corner, window.view.mapFromScene(QPointF(330, 80)))
    assert window.selected_node_ids() == ["input", "flatten1"]


def test_wheel_zooms_at_the_cursor_and_middle_drag_pans(window):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    drop_module(window, "Input", (0, 0))
    view = window.view
    view.set_zoom(1.0)
    spot = QPoint(200, 150)
    under = view.mapToScene(spot)
    wheel = QWheelEvent(QPointF(spot), QPointF(view.viewport().mapToGlobal(spot)), QPoint(),
                        QPoint(0, 240), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(1.44)
    assert (view.mapToScene(spot) - under).manhattanLength() < 2  # the point stays put
    before = view.mapToScene(view.viewport().rect().center())
    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MiddleButton, Qt.NoModifier, QPoint(300, 300))
    QTest.mouseMove(viewport, QPoint(250, 260))
    QTest.mouseRelease(viewport, Qt.MiddleButton, Qt.NoModifier, QPoint(250, 260))
    moved = view.mapToScene(view.viewport().rect().center()) - before
    assert moved.x() == pytest.approx(50 / 1.44, abs=1) and moved.y() == pytest.approx(
        40 / 1.44, abs=1)
    assert window.document.undo_stack.count() == 1  # panning edits nothing


def test_space_tap_opens_type_to_add_and_space_drag_pans(window):
    from PySide6.QtCore import QPoint

    view = window.view
    view.setFocus()
    QTest.keyPress(view, Qt.Key_Space)
    QTest.keyRelease(view, Qt.Key_Space)
    assert view.quick_add.isVisible()
    view.quick_add.close()
    before = view.mapToScene(view.viewport().rect().center())
    QTest.keyPress(view, Qt.Key_Space)
    mouse_drag(window, QPoint(300, 300), QPoint(200, 300))
    QTest.keyRelease(view, Qt.Key_Space)
    assert not view.quick_add.isVisible()
    assert view.mapToScene(view.viewport().rect().center()).x() > before.x() + 50


def test_escape_cancels_a_wire_being_drawn(window):
    drop_module(window, "Input", (0, 0))
    drop_module(window, "Flatten", (260, 0))
    wire(window, "input", "flatten1")
    viewport = window.view.viewport()
    start = port_point(window, "flatten1", "in")
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, start)
    QTest.mouseMove(viewport, start + (start - port_point(window, "input", "out")) / 2)
    QTest.keyClick(window.view, Qt.Key_Escape)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, start)
    assert len(window.document.graph.edges) == 1
    assert all(w.isVisible() for w in window.scene.wire_items.values())
