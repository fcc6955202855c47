"""Driving the designer as a person would: drops from the palette, mouse drags between ports."""
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.palette import module_mime


def drop_module(window, type_name: str, scene_pos=None) -> str:
    """Drag type_name from the palette onto the canvas at scene_pos; return the new node's id."""
    view = window.view
    if scene_pos is not None:
        view.centerOn(*scene_pos)
        point = view.mapFromScene(QPointF(*scene_pos))
    else:
        point = view.viewport().rect().center()
    mime = module_mime(type_name)
    before = set(window.document.graph.nodes)
    enter = drag_event(QDragEnterEvent, point, mime)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    QApplication.sendEvent(view.viewport(), drag_event(QDragMoveEvent, point, mime))
    drop = QDropEvent(QPointF(point), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), drop)
    (added,) = set(window.document.graph.nodes) - before
    return added


def drag_event(kind, point: QPoint, mime):
    try:  # Qt 6.12 takes a QPointF (its QPoint form is deprecated); earlier ones a QPoint
        return kind(QPointF(point), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    except TypeError:
        return kind(point, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)


def port_point(window, node_id: str, kind: str, index: int = 0) -> QPoint:
    item = window.scene.node_items[node_id]
    port = item.output if kind == "out" else item.inputs[index]
    return window.view.mapFromScene(port.scenePos())


def mouse_drag(window, start: QPoint, end: QPoint) -> None:
    viewport = window.view.viewport()
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, start)
    for step in (1, 2, 3):
        QTest.mouseMove(viewport, start + (end - start) * step / 4)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, end)


def wire(window, src: str, dst: str, port: int = 0) -> None:
    """Drag a wire from src's output port to dst's input port (both brought into view)."""
    a = window.scene.node_items[src].sceneBoundingRect().center()
    b = window.scene.node_items[dst].sceneBoundingRect().center()
    window.view.centerOn((a + b) / 2)
    mouse_drag(window, port_point(window, src, "out"), port_point(window, dst, "in", port))


def path_points(path, samples: int = 200) -> list[QPointF]:
    """Points along a QPainterPath, evenly spaced by length."""
    return [path.pointAtPercent(i / samples) for i in range(samples + 1)]
