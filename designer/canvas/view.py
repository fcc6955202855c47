"""GraphView: the canvas widget. Zoom at the cursor, pan (middle drag or Space+drag), a grid,
fit to view, drops from the palette, and Tab/Space for type-to-add."""
from __future__ import annotations

import json
import math

from PySide6.QtCore import QLineF, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsView, QMenu

from ..palette import BLOCK_MIME, MODULE_MIME
from ..problems import fixes_for
from .items import font
from .quickadd import QuickAddPopup

MIN_ZOOM, MAX_ZOOM = 0.02, 3.0
DETAIL_ZOOM = 0.3  # below this, text is too small to read: nodes become plain boxes
FIT_ZOOM = 0.7  # Fit goes no further out: node text and wire shapes stay readable


def network_dims(graph) -> int | None:
    """Spatial axes of the network's input (2 for [C, H, W]), None without one."""
    shape = next((n.params.get("shape") for n in graph.nodes.values() if n.type == "Input"),
                 None)
    return len(shape) - 1 if isinstance(shape, list) and len(shape) > 1 else None


class GraphView(QGraphicsView):
    zoom_changed = Signal(float)
    save_block_requested = Signal(str)  # a group id

    def __init__(self, scene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ContainsItemShape)
        self.setTransformationAnchor(QGraphicsView.NoAnchor)  # set_zoom anchors itself
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.quick_add = QuickAddPopup(self)
        self.quick_add.chosen.connect(self._quick_add_chosen)
        self._quick_add_pos = QPointF()
        self._space_down = False
        self._space_panned = False
        self._pan_from: QPointF | None = None
        self._fitted = False  # the view was last framed by fit_all: resizing frames it again
        # the empty-canvas hint covers the whole view: repaint it all when it comes or goes
        for signal in (scene.doc.node_added, scene.doc.node_removed, scene.doc.graph_reset):
            signal.connect(self.viewport().update)

    # -- zoom and pan ---------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to factor keeping the scene point under anchor (viewport coordinates; default
        the centre) where it is: the wheel zooms at the cursor."""
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        fixed = self.mapToScene(anchor.toPoint())
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        self.scale(factor / self.zoom(), factor / self.zoom())
        drift = fixed - self.mapToScene(anchor.toPoint())
        self.centerOn(self.mapToScene(self.viewport().rect().center()) + drift)
        self._fitted = False
        self._zoomed()

    def _zoomed(self) -> None:
        self.scene().set_detail(self.zoom() >= DETAIL_ZOOM)
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event) -> None:
        """The wheel zooms at the cursor; with Shift it scrolls (a network taller than the view
        at Fit's zoom), and a sideways wheel or swipe scrolls sideways."""
        delta = event.angleDelta()
        bars = self.horizontalScrollBar(), self.verticalScrollBar()
        if event.modifiers() & Qt.ShiftModifier or delta.x():
            self._fitted = False
            # Qt may report a Shift+wheel as a horizontal turn: either way it scrolls down
            down = delta.y() or (delta.x() if event.modifiers() & Qt.ShiftModifier else 0)
            across = delta.x() if not event.modifiers() & Qt.ShiftModifier else 0
            bars[1].setValue(bars[1].value() - round(down / 120 * 80))
            bars[0].setValue(bars[0].value() - round(across / 120 * 80))
        elif delta.y():
            self.set_zoom(self.zoom() * math.pow(1.2, delta.y() / 120.0), event.position())
        event.accept()

    def fit_all(self) -> None:
        """Frame every node, between 100 % and FIT_ZOOM; a graph too big for that shows its
        start (top or left, where the Input is) and the rest is a pan away."""
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            self.setTransform(QTransform())
            self.centerOn(0, 0)
        else:
            self.scene().set_detail(True)  # measure the full-detail items
            rect.adjust(-40, -40, 40, 40)
            self.fitInView(rect, Qt.KeepAspectRatio)
            zoom = min(1.0, max(FIT_ZOOM, self.zoom()))
            self.setTransform(QTransform.fromScale(zoom, zoom))
            seen = self.viewport().rect()
            half_w, half_h = seen.width() / zoom / 2, seen.height() / zoom / 2
            centre = rect.center()
            if rect.width() > 2 * half_w:
                centre.setX(rect.left() + half_w)
            if rect.height() > 2 * half_h:
                centre.setY(rect.top() + half_h)
            self.centerOn(centre)
        self._fitted = True
        self._zoomed()

    def resizeEvent(self, event) -> None:
        """A graph framed by fit_all stays framed as the window settles or is resized (the
        first fit runs before the window's layout gives the view its size), until the user
        zooms or pans."""
        super().resizeEvent(event)
        if self._fitted:
            self.fit_all()

    def centre_scene_pos(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    def _start_pan(self, pos: QPointF) -> None:
        self._pan_from = pos
        self._fitted = False
        self.viewport().setCursor(Qt.ClosedHandCursor)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton
                                                 and self._space_down):
            self._space_panned = self._space_down
            self._start_pan(event.position())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            bars = self.horizontalScrollBar(), self.verticalScrollBar()
            bars[0].setValue(bars[0].value() - round(delta.x()))
            bars[1].setValue(bars[1].value() - round(delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MiddleButton, Qt.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.OpenHandCursor if self._space_down else Qt.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # -- keys: Tab opens type-to-add; Space opens it too unless it was held to pan -------
    def event(self, event) -> bool:
        if event.type() == event.Type.KeyPress and event.key() == Qt.Key_Tab \
                and not event.modifiers():
            self.open_quick_add()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space_down, self._space_panned = True, False
            self.viewport().setCursor(Qt.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat() and self._space_down:
            self._space_down = False
            self.viewport().setCursor(Qt.ArrowCursor)
            if not self._space_panned:
                self.open_quick_add()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def open_quick_add(self) -> None:
        cursor = self.viewport().mapFromGlobal(QCursor.pos())
        if not self.viewport().rect().contains(cursor):
            cursor = self.viewport().rect().center()
        self._quick_add_pos = self.mapToScene(cursor)
        selected = self.scene().selected_node_ids()
        hint = f"wired after {selected[0]}" if len(selected) == 1 \
            and self.scene().doc.has_output(selected[0]) else ""
        self.quick_add.open_at(self.viewport().mapToGlobal(cursor), hint,
                               network_dims(self.scene().doc.graph))

    def _quick_add_chosen(self, type_name: str) -> None:
        self.reveal(self.scene().add_module(type_name, self._quick_add_pos, chain=True))
        self.setFocus()

    def reveal(self, node_id: str) -> None:
        """Scroll just enough to show node_id (a chain grown by Tab runs off the view)."""
        self.ensureVisible(self.scene().node_items[node_id].sceneBoundingRect(), 40, 40)

    def contextMenuEvent(self, event) -> None:
        """The fixes for the problems of the node under the cursor, then the canvas actions."""
        menu = self.context_menu(self.mapToScene(event.pos()))
        menu.exec(event.globalPos())

    def context_menu(self, scene_pos: QPointF) -> QMenu:
        menu = QMenu(self)
        scene = self.scene()
        doc = scene.doc
        node_id = scene.node_at(scene_pos)
        if node_id is not None:
            errors = doc.analysis.errors_by_node().get(node_id, [])
            for fix in (f for message in errors for f in fixes_for(doc, node_id, message)):
                menu.addAction(f"Fix: {fix.text}", lambda f=fix: f.apply(doc))
            group = scene.blocks[node_id].group if node_id in scene.blocks \
                else doc.group_of(node_id)
            if group is not None:
                menu.addAction(f"{'Expand' if group.collapsed else 'Collapse'} Block "
                               f"{group.name}",
                               lambda: doc.set_collapsed(group.id, not group.collapsed))
                menu.addAction(f"Ungroup {group.name}", lambda: doc.ungroup(group.id))
                menu.addAction(f"Save {group.name} to the Palette",
                               lambda: self.save_block_requested.emit(group.id))
            if not menu.isEmpty():
                menu.addSeparator()
        menu.addActions(self.actions())
        return menu

    # -- drops from the palette -----------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(MODULE_MIME) or event.mimeData().hasFormat(BLOCK_MIME):
            event.acceptProposedAction()
        else:
            self.scene().status.emit("Only modules from the palette can be dropped on the "
                                     "canvas (open files with File \u203a Open)")
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(MODULE_MIME):
            event.acceptProposedAction()
            self.scene().mark_drop(self.mapToScene(event.position().toPoint()))
        elif event.mimeData().hasFormat(BLOCK_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self.scene().mark_drop(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event) -> None:
        self.scene().mark_drop(None)
        if event.mimeData().hasFormat(MODULE_MIME):
            type_name = bytes(event.mimeData().data(MODULE_MIME)).decode()
            self.scene().add_module(type_name, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
            self.setFocus()
        elif event.mimeData().hasFormat(BLOCK_MIME):
            self.paste_block(json.loads(bytes(event.mimeData().data(BLOCK_MIME)).decode()),
                             self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
            self.setFocus()
        else:
            super().dropEvent(event)

    def paste_block(self, fragment: dict, at: QPointF | None = None) -> None:
        """A saved block's nodes, top-left at `at` (default: the view's centre), selected."""
        at = self.centre_scene_pos() if at is None else at
        scene = self.scene()
        scene.select_nodes(scene.doc.paste(fragment, at=(at.x(), at.y())))

    # -- grid, and a hint on an empty canvas -----------------------------------------------
    def drawForeground(self, painter: QPainter, rect) -> None:
        if self.scene().node_items:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor("#8a949e"))
        painter.setFont(font(11))
        painter.drawText(self.viewport().rect(), Qt.AlignCenter,
                         "Drag modules here from the palette, or press Tab and type a name.\n"
                         "File \u203a New starts from an example network.")
        painter.restore()

    def drawBackground(self, painter: QPainter, rect) -> None:
        painter.setRenderHint(QPainter.Antialiasing, False)  # crisp and several times faster
        painter.fillRect(rect, QColor("#f4f5f7"))
        zoom = self.zoom()
        for step, colour, visible in ((20, "#e7e9ed", zoom >= 0.6), (100, "#d8dce2", zoom >= 0.15)):
            if not visible:
                continue
            painter.setPen(QPen(QColor(colour), 0))
            left = math.floor(rect.left() / step) * step
            top = math.floor(rect.top() / step) * step
            lines = [QLineF(x, rect.top(), x, rect.bottom())
                     for x in range(int(left), int(rect.right()) + 1, step)]
            lines += [QLineF(rect.left(), y, rect.right(), y)
                      for y in range(int(top), int(rect.bottom()) + 1, step)]
            painter.drawLines(lines)
