"""Scene items: nodes with their ports, and wires with a shape label. They draw what the scene
tells them and keep nothing that saving needs (the GraphDocument holds all of it)."""
from __future__ import annotations

from functools import cache
from html import escape

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyle

from engine.modules import REGISTRY

from ..icons import category_colour
from ..layout import NODE_SIZE, route

NODE_WIDTH, MIN_HEIGHT = NODE_SIZE
HEADER = 22.0
PORT_STEP = 18.0
PORT_RADIUS = 5.5
ERROR = QColor("#d32f2f")
SELECTED = QColor("#1565c0")
HEALTH = {"ok": QColor("#2e7d32"), "warn": QColor("#f9a825"), "bad": QColor("#d32f2f")}
WIRE = QColor("#78828c")


@cache
def font(size: float, bold: bool = False) -> QFont:
    result = QFont()
    result.setPointSizeF(size)
    result.setBold(bold)
    return result


def node_height(ports: int, direction: str = "LR") -> float:
    """LR stacks input ports down the left edge; TB spreads them along the top."""
    if direction == "TB":
        return MIN_HEIGHT
    return max(MIN_HEIGHT, HEADER + 14 + (ports - 1) * PORT_STEP + 16)


def wire_path(start: QPointF, end: QPointF, direction: str = "TB",
              bends: list | None = None) -> QPainterPath:
    """A wire from an output port to an input port, leaving and entering along direction: one
    cubic, or, through bends (a detour's corner points), straight runs with rounded corners."""
    if bends:
        return _rounded(start, [QPointF(*p) for p in bends], end)
    path = QPainterPath(start)
    if direction == "TB":
        bend = max(abs(end.y() - start.y()) * 0.5, 30.0)
        path.cubicTo(QPointF(start.x(), start.y() + bend), QPointF(end.x(), end.y() - bend), end)
    else:
        bend = max(abs(end.x() - start.x()) * 0.5, 40.0)
        path.cubicTo(QPointF(start.x() + bend, start.y()), QPointF(end.x() - bend, end.y()), end)
    return path


def _rounded(start: QPointF, bends: list[QPointF], end: QPointF, radius: float = 10.0
             ) -> QPainterPath:
    """A polyline through bends whose corners are quadratic arcs of up to radius."""
    points = [start, *bends, end]
    path = QPainterPath(start)
    for before, corner, after in zip(points, points[1:], points[2:]):
        into, out = corner - before, after - corner
        r_in = min(radius, _length(into) / 2)
        r_out = min(radius, _length(out) / 2)
        path.lineTo(corner - into * (r_in / max(_length(into), 1e-9)))
        path.quadTo(corner, corner + out * (r_out / max(_length(out), 1e-9)))
    path.lineTo(end)
    return path


def _length(v: QPointF) -> float:
    return (v.x() ** 2 + v.y() ** 2) ** 0.5


def draw_health_badge(painter: QPainter, centre: QPointF, level: str) -> None:
    """A white disc with a dark rim and the level's symbol in its colour (a tick, "!", a cross):
    as readable on a green or orange header as on a grey one."""
    painter.save()
    painter.setPen(QPen(QColor("#1f2933"), 1.2))
    painter.setBrush(QColor("white"))
    painter.drawEllipse(centre, 7.5, 7.5)
    painter.setPen(QPen(HEALTH[level], 2.2, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
    x, y = centre.x(), centre.y()
    if level == "ok":
        painter.drawPolyline([QPointF(x - 3.5, y), QPointF(x - 1, y + 3), QPointF(x + 3.5, y - 3)])
    elif level == "warn":
        painter.drawLine(QPointF(x, y - 4), QPointF(x, y + 1))
        painter.drawPoint(QPointF(x, y + 3.8))
    else:
        painter.drawLine(QPointF(x - 3, y - 3), QPointF(x + 3, y + 3))
        painter.drawLine(QPointF(x - 3, y + 3), QPointF(x + 3, y - 3))
    painter.restore()


class PortItem(QGraphicsItem):
    """An input (left, with its index) or the output (right) of a node."""

    def __init__(self, node: NodeItem, kind: str, index: int = 0):
        super().__init__(node)
        self.node, self.kind, self.index = node, kind, index
        self.connected = False
        self.highlight: str | None = None  # "ok" or "bad" while a wire is dragged near
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CrossCursor)
        self.setZValue(1)

    def boundingRect(self) -> QRectF:
        return QRectF(-10, -10, 20, 20)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), 10, 10)  # a generous target, larger than the dot
        return path

    def set_highlight(self, state: str | None) -> None:
        if state != self.highlight:
            self.highlight = state
            self.update()

    def hoverEnterEvent(self, event) -> None:
        self.set_highlight(self.highlight or "hover")

    def hoverLeaveEvent(self, event) -> None:
        if self.highlight == "hover":
            self.set_highlight(None)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        colour = category_colour(self.node.category)
        radius = PORT_RADIUS
        if self.highlight == "ok":
            colour, radius = QColor("#2e7d32"), PORT_RADIUS + 2.5
        elif self.highlight == "bad":
            colour, radius = ERROR, PORT_RADIUS + 2.5
        elif self.highlight == "hover":
            radius = PORT_RADIUS + 1.5
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(colour, 2))
        painter.setBrush(colour if self.connected or self.highlight else QColor("white"))
        painter.drawEllipse(QPointF(0, 0), radius, radius)


class NodeItem(QGraphicsItem):
    """A node: coloured header with its type, then its id and compact parameter line."""

    def __init__(self, node_id: str, type_name: str, direction: str = "TB"):
        super().__init__()
        self.node_id, self.type_name, self.direction = node_id, type_name, direction
        mt = REGISTRY.get(type_name)
        self.category = mt.category if mt else "Unknown"
        self.summary = mt.summary if mt else f"unknown module type {type_name!r}"
        self.label = ""
        self.errors: list[str] = []
        self.fixes: list[str] = []
        self.health: tuple[str, str] | None = None  # (level, tooltip) while training
        self.shape_text = ""
        self.source: tuple | None = None  # what the scene last drew this from (to skip repeats)
        self.detailed = True
        self.height = MIN_HEIGHT
        self.inputs: list[PortItem] = []
        self.output = PortItem(self, "out") if type_name != "Output" else None
        self.wires: set = set()
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(2)
        self._place_ports()

    def set_port_count(self, count: int) -> None:
        if count == len(self.inputs):
            return
        self.prepareGeometryChange()
        while len(self.inputs) < count:
            self.inputs.append(PortItem(self, "in", len(self.inputs)))
            self.inputs[-1].setVisible(self.detailed)
        while len(self.inputs) > count:
            port = self.inputs.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self._place_ports()

    def set_direction(self, direction: str) -> None:
        if direction != self.direction:
            self.prepareGeometryChange()
            self.direction = direction
            self._place_ports()

    def _place_ports(self) -> None:
        count = len(self.inputs)
        self.height = node_height(count, self.direction)
        for port in self.inputs:
            if self.direction == "TB":
                port.setPos(NODE_WIDTH * (port.index + 1) / (count + 1), 0)
            else:
                port.setPos(0, self._port_y(port.index, count))
        if self.output is not None:
            self.output.setPos(*((NODE_WIDTH / 2, self.height) if self.direction == "TB"
                                 else (NODE_WIDTH, self._port_y(0, 1))))
        for wire in self.wires:
            wire.update_path()

    def box(self) -> tuple[float, float, float, float]:
        """left, top, right, bottom in the scene."""
        x, y = self.pos().x(), self.pos().y()
        return (x, y, x + NODE_WIDTH, y + self.height)

    def _port_y(self, index: int, count: int) -> float:
        if count <= 1:
            return HEADER + (self.height - HEADER) / 2
        return HEADER + 14 + index * PORT_STEP

    def input_port(self, index: int) -> PortItem | None:
        return self.inputs[index] if index < len(self.inputs) else None

    def set_state(self, label: str, errors: list[str], shape_text: str,
                  fixes: list[str] = ()) -> None:
        """What the node shows; fixes: the texts of the one-click fixes for its errors."""
        if (label, errors, shape_text, list(fixes)) == \
                (self.label, self.errors, self.shape_text, self.fixes):
            return
        self.label, self.errors, self.shape_text = label, list(errors), shape_text
        self.fixes = list(fixes)
        self._update_tooltip()

    def set_detail(self, detailed: bool) -> None:
        self.detailed = detailed
        for port in [*self.inputs, self.output]:
            if port is not None:
                port.setVisible(detailed)
        self.update()

    def set_health(self, health: tuple[str, str] | None) -> None:
        """A training-health badge: level ok/warn/bad and the statistics behind it."""
        if health != self.health:
            self.health = health
            self._update_tooltip()

    def rename(self, node_id: str) -> None:
        self.node_id = node_id
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        lines = [f"<b>{escape(self.type_name)}</b> {escape(self.node_id)}", escape(self.summary)]
        if self.shape_text:
            lines.append(f"output: {self.shape_text}")
        lines += [f"<span style='color:{ERROR.name()}'>&#9888; {escape(e)}</span>"
                  for e in self.errors]
        if self.fixes:
            lines.append("<i>Right-click to fix:</i> " + "; ".join(escape(f) for f in self.fixes))
        if self.health is not None:
            lines.append(f"<span style='color:{HEALTH[self.health[0]].name()}'>"
                         f"{escape(self.health[1]).replace(chr(10), '<br>')}</span>")
        self.setToolTip("<br>".join(lines))
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_WIDTH + 4, self.height + 4)

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged:
            for wire in self.wires:
                wire.update_path()
        return super().itemChange(change, value)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        rect = QRectF(0, 0, NODE_WIDTH, self.height)
        colour = category_colour(self.category)
        body = QPainterPath()
        body.addRoundedRect(rect, 6, 6)
        painter.fillPath(body, QColor("white"))
        header = QPainterPath()
        header.addRoundedRect(QRectF(0, 0, NODE_WIDTH, HEADER + 6), 6, 6)
        painter.save()
        painter.setClipRect(QRectF(0, 0, NODE_WIDTH, HEADER))
        painter.fillPath(header, colour)
        painter.restore()

        selected = bool(option.state & QStyle.State_Selected)
        if self.errors:
            painter.setPen(QPen(ERROR, 2.5))
        elif selected:
            painter.setPen(QPen(SELECTED, 2.5))
        else:
            painter.setPen(QPen(colour.darker(115), 1.2))
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(rect, 6, 6)
        if self.errors and selected:
            painter.setPen(QPen(SELECTED, 1.2, Qt.DashLine))
            painter.drawRoundedRect(rect.adjusted(3, 3, -3, -3), 4, 4)
        if not self.detailed:
            self._paint_face(painter)
            return

        badge = 0.0
        if self.errors:
            badge = 18.0
            centre = QPointF(NODE_WIDTH - 12, HEADER / 2)
            painter.setPen(Qt.NoPen)
            painter.setBrush(QColor("white"))
            painter.drawEllipse(centre, 7.5, 7.5)
            painter.setPen(QPen(ERROR))
            painter.setFont(font(8.5, True))
            painter.drawText(QRectF(centre.x() - 7.5, centre.y() - 7.5, 15, 15), Qt.AlignCenter,
                             "!")
        if self.health is not None:
            draw_health_badge(painter, QPointF(NODE_WIDTH - 12 - badge, HEADER / 2),
                              self.health[0])
            badge += 18.0
        painter.setPen(QColor("white"))
        painter.setFont(font(9, True))
        painter.drawText(QRectF(10, 0, NODE_WIDTH - 18 - badge, HEADER),
                         Qt.AlignVCenter | Qt.AlignLeft, self.type_name)

        text_width = NODE_WIDTH - 22
        painter.setFont(font(8.5))
        painter.setPen(QColor("#5f6b76"))
        metrics = QFontMetricsF(font(8.5))
        painter.drawText(QRectF(12, HEADER + 3, text_width, 18), Qt.AlignVCenter | Qt.AlignLeft,
                         metrics.elidedText(self.node_id, Qt.ElideRight, text_width))
        if self.label:
            painter.setFont(font(9.5, True))
            painter.setPen(QColor("#1f2933"))
            metrics = QFontMetricsF(font(9.5, True))
            painter.drawText(QRectF(12, HEADER + 21, text_width, 20),
                             Qt.AlignVCenter | Qt.AlignLeft,
                             metrics.elidedText(self.label, Qt.ElideRight, text_width))


    def _paint_face(self, painter: QPainter) -> None:
        """Far out: the type and its key parameters in large type, readable at a third of the
        size (the view draws this face below its detail zoom)."""
        painter.setPen(QColor("#1f2933"))
        for text, rect, size in ((self.type_name, QRectF(4, HEADER - 4, NODE_WIDTH - 8, 24), 17),
                                 (self.label, QRectF(4, HEADER + 18, NODE_WIDTH - 8, 24), 13)):
            if text:
                painter.setFont(font(size, True))
                metrics = QFontMetricsF(font(size, True))
                painter.drawText(rect, Qt.AlignCenter,
                                 metrics.elidedText(text, Qt.ElideRight, rect.width()))


class BlockItem(NodeItem):
    """A collapsed block: one box in place of its nodes, an input port per wire coming in and
    the output its wires leave from. Double-click expands it."""

    def __init__(self, group, inlets: list, direction: str):
        super().__init__(group.id, "Block", direction)
        self.group, self.inlets = group, inlets
        self.setFlag(QGraphicsItem.ItemIsMovable, False)
        self.summary = f"block {group.name}: {', '.join(group.nodes)}; double-click to expand"
        self.set_port_count(len(inlets))
        for port in [*self.inputs, self.output]:
            port.connected = True
        self.set_state(f"{len(group.nodes)} nodes", [], "")

    def paint(self, painter: QPainter, option, widget=None) -> None:
        type_name, self.type_name = self.type_name, f"\u25a3 {self.group.name}"
        super().paint(painter, option, widget)
        self.type_name = type_name
        painter.setPen(QPen(category_colour(self.category).darker(130), 1, Qt.DashLine))
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(QRectF(3, 3, NODE_WIDTH - 6, self.height - 6), 5, 5)


class GroupFrame(QGraphicsItem):
    """An expanded block: a tinted frame round its nodes with the block's name on top."""

    def __init__(self, group, rect: QRectF):
        super().__init__()
        self.group, self.rect = group, rect
        self.setZValue(0)
        self.setToolTip(f"block {group.name}: right-click a node in it to collapse or ungroup")

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -22, 2, 2)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(QColor("#9aa5b1"), 1.2, Qt.DashLine))
        painter.setBrush(QColor(120, 140, 170, 28))
        painter.drawRoundedRect(self.rect, 10, 10)
        painter.setPen(QColor("#52606d"))
        painter.setFont(font(9, True))
        painter.drawText(QRectF(self.rect.left() + 6, self.rect.top() - 20, self.rect.width(),
                                18), Qt.AlignLeft | Qt.AlignVCenter, f"\u25a3 {self.group.name}")


class WireLabel(QGraphicsItem):
    """The tensor shape a wire carries, on a small rounded tag at the wire's midpoint."""

    def __init__(self, wire: WireItem):
        super().__init__(wire)
        self.text, self.direction = "", "TB"
        self._rect = QRectF()

    def set_text(self, text: str, direction: str = "TB") -> None:
        if (text, direction) != (self.text, self.direction):
            self.prepareGeometryChange()
            self.text, self.direction = text, direction
            width = QFontMetricsF(font(8.5)).horizontalAdvance(text) + 8 if text else 0.0
            # beside the wire (right of it in TB, above it in LR), clear of its ports
            self._rect = QRectF(6, -8, width, 16) if direction == "TB" \
                else QRectF(-width / 2, -21, width, 16)
            self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(QColor("#c5cbd3"), 1))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(self._rect, 7, 7)
        painter.setPen(QColor("#37424d"))
        painter.setFont(font(8.5))
        painter.drawText(self._rect, Qt.AlignCenter, self.text)


class WireItem(QGraphicsPathItem):
    """A wire from src's output to one input port of dst; follows the nodes as they move."""

    def __init__(self, edge, src: NodeItem, dst: NodeItem):
        super().__init__()
        self.edge, self.src, self.dst = edge, src, dst
        self.carried: tuple | None = None  # the shape on the label (not `shape`: a Qt method)
        self.label = WireLabel(self)
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setZValue(1)
        self.setAcceptHoverEvents(True)
        self._hover = False
        self.update_path()

    def ends(self) -> tuple[QPointF, QPointF, set[str]] | None:
        """Where the wire starts and ends, and the boxes it may touch (its own nodes')."""
        port = self.dst.input_port(self.edge.port)
        if self.src.output is None or port is None:
            return None
        return self.src.output.scenePos(), port.scenePos(), {self.edge.src, self.edge.dst}

    def update_path(self, boxes: dict | None = None) -> None:
        """Route from src's output to dst's input around the other boxes (default: every node
        and collapsed block in the scene); a wire inside a collapsed block is hidden."""
        scene = self.scene()
        ends = scene.wire_ends(self) if scene is not None else self.ends()
        self.setVisible(ends is not None)
        if ends is None:
            return
        start, end, own = ends
        if boxes is None:
            boxes = scene.node_boxes() if scene is not None else {}
        others = [b for key, b in boxes.items() if key not in own]
        direction = self.src.direction
        points = route((start.x(), start.y()), (end.x(), end.y()), others, direction)
        path = wire_path(start, end, direction, points[1:-1])
        self.setPath(path)
        self.label.setPos(path.pointAtPercent(0.5))
        self.label.set_text(self.label.text, direction)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-4, -4, 4, 4)

    def set_hover(self, hover: bool) -> None:
        if hover != self._hover:
            self._hover = hover
            self.update()

    def hoverEnterEvent(self, event) -> None:
        self.set_hover(True)

    def hoverLeaveEvent(self, event) -> None:
        self.set_hover(False)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        selected = bool(option.state & QStyle.State_Selected)
        colour = SELECTED if selected else WIRE.darker(150) if self._hover else WIRE
        width = 3.0 if selected or self._hover else 2.0
        painter.setPen(QPen(colour, width, Qt.SolidLine, Qt.RoundCap))
        painter.setBrush(QBrush())
        painter.drawPath(self.path())


class DraftWire(QGraphicsPathItem):
    """The wire being drawn: dashed, ends at the cursor or the port it snapped to."""

    def __init__(self):
        super().__init__()
        self.setPen(QPen(SELECTED, 2, Qt.DashLine, Qt.RoundCap))
        self.setZValue(10)
