"""GraphScene: draws a GraphDocument and turns mouse gestures (wire drags, node moves) into the
document's undoable edits. It redraws only from the document's signals."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsScene

from engine.graph import Edge
from engine.modules import REGISTRY, ParamError, resolve_params

from ..layout import GAP, TB_GAP
from ..problems import fixes_for
from .items import (
    MIN_HEIGHT,
    NODE_WIDTH,
    BlockItem,
    DraftWire,
    GroupFrame,
    NodeItem,
    PortItem,
    WireItem,
    wire_path,
)

SNAP = 28.0
GRID = 10.0


def shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def node_label(type_name: str, params: dict) -> str:
    mt = REGISTRY.get(type_name)
    if mt is None:
        return ""
    try:
        return mt.label(resolve_params(mt, params))
    except ParamError:
        return "invalid parameters"


@dataclass
class _WireDrag:
    anchor: PortItem          # the fixed end
    draft: DraftWire
    detached: Edge | None     # the wire picked up from an input port, if any
    target: PortItem | None = None
    problem: str | None = None


class GraphScene(QGraphicsScene):
    status = Signal(str)
    node_activated = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.node_items: dict[str, NodeItem] = {}
        self.wire_items: dict[Edge, WireItem] = {}
        self.blocks: dict[str, BlockItem] = {}  # collapsed groups, by group id
        self.frames: dict[str, GroupFrame] = {}  # expanded ones
        self._collapsed: dict[str, str] = {}  # node id -> id of the collapsed group hiding it
        self._drag: _WireDrag | None = None
        self._pressed: dict[str, QPointF] = {}
        self.detailed = True
        self.setSceneRect(-50000, -50000, 100000, 100000)
        doc.node_added.connect(self._add_node)
        doc.node_removed.connect(self._remove_node)
        doc.node_renamed.connect(self._rename_node)
        doc.edge_added.connect(self._add_edge)
        doc.edge_removed.connect(self._remove_edge)
        doc.node_moved.connect(self._move_node)
        doc.shapes_changed.connect(self.refresh)
        doc.graph_reset.connect(self.rebuild)
        doc.groups_changed.connect(self.draw_groups)
        self.rebuild()

    # -- redraw from the document ---------------------------------------------------------
    def rebuild(self) -> None:
        self._drag = None
        self.clear()
        self.node_items.clear()
        self.wire_items.clear()
        self.blocks.clear()
        self.frames.clear()
        self._collapsed.clear()
        for node_id in self.doc.graph.nodes:
            self._add_node(node_id)
        for edge in self.doc.graph.edges:
            self._add_edge(edge)
        self.draw_groups()
        self.refresh()

    def _add_node(self, node_id: str) -> None:
        node = self.doc.graph.nodes[node_id]
        item = NodeItem(node_id, node.type, self.doc.direction)
        item.set_port_count(self.doc.input_port_count(node_id))
        item.setPos(*(node.pos or (0, 0)))
        item.set_state(node_label(node.type, node.params), [], "")
        item.set_detail(self.detailed)
        self.node_items[node_id] = item
        self.addItem(item)

    def _remove_node(self, node_id: str) -> None:
        self.removeItem(self.node_items.pop(node_id))

    def _rename_node(self, old: str, new: str) -> None:
        item = self.node_items.pop(old)
        self.node_items[new] = item
        item.rename(new)
        item.source = None  # its params and errors are reported under the new id
        for edge, wire in list(self.wire_items.items()):
            if old in (edge.src, edge.dst):
                del self.wire_items[edge]
                wire.edge = Edge(new if edge.src == old else edge.src,
                                 new if edge.dst == old else edge.dst, edge.port)
                self.wire_items[wire.edge] = wire
        if self.doc.graph.groups:
            self.draw_groups()

    def _add_edge(self, edge: Edge) -> None:
        src, dst = self.node_items[edge.src], self.node_items[edge.dst]
        dst.set_port_count(self.doc.input_port_count(edge.dst))
        wire = WireItem(edge, src, dst)
        src.wires.add(wire)
        dst.wires.add(wire)
        self.wire_items[edge] = wire
        wire.label.setVisible(False)  # until refresh() gives it a shape to show
        self.addItem(wire)
        wire.update_path()
        self._mark_ports(edge.src, edge.dst)
        if edge.src in self._collapsed or edge.dst in self._collapsed:
            self.draw_groups()

    def _remove_edge(self, edge: Edge) -> None:
        wire = self.wire_items.pop(edge)
        wire.src.wires.discard(wire)
        wire.dst.wires.discard(wire)
        self.removeItem(wire)
        if edge.src in self._collapsed or edge.dst in self._collapsed:
            self.draw_groups()
        if edge.dst in self.node_items:
            self.node_items[edge.dst].set_port_count(self.doc.input_port_count(edge.dst))
        self._mark_ports(edge.src, edge.dst)

    def _mark_ports(self, *node_ids: str) -> None:
        for node_id in node_ids:
            item = self.node_items.get(node_id)
            if item is None:
                continue
            wired = {w.edge.port for w in item.wires if w.edge.dst == node_id}
            for port in item.inputs:
                port.connected = port.index in wired
                port.update()
            if item.output is not None:
                item.output.connected = any(w.edge.src == node_id for w in item.wires)
                item.output.update()

    def _move_node(self, node_id: str) -> None:
        pos = self.doc.graph.nodes[node_id].pos or (0, 0)
        item = self.node_items[node_id]
        if item.pos() != QPointF(*pos):
            item.setPos(*pos)  # its own wires follow (NodeItem.itemChange)
        if self.doc.group_of(node_id) is not None:
            self.draw_groups()  # its frame, or its collapsed block, follows
            return
        box = QRectF(item.pos(), item.boundingRect().size())
        boxes = self.node_boxes()
        for wire in self.wire_items.values():
            if wire not in item.wires and wire.path().boundingRect().intersects(box):
                wire.update_path(boxes)

    def reroute(self) -> None:
        """Route every wire again: a moved node may now stand in the way of any of them."""
        boxes = self.node_boxes()
        for wire in self.wire_items.values():
            wire.update_path(boxes)

    def node_boxes(self) -> dict[str, tuple[float, float, float, float]]:
        """The boxes wires go round: shown nodes, and collapsed blocks (by group id)."""
        boxes = {node_id: item.box() for node_id, item in self.node_items.items()
                 if node_id not in self._collapsed}
        boxes.update((group_id, block.box()) for group_id, block in self.blocks.items())
        return boxes

    def wire_ends(self, wire: WireItem) -> tuple[QPointF, QPointF, set[str]] | None:
        """A wire's ends, moved onto the block that hides one of its nodes; None when the
        block hides both."""
        edge = wire.edge
        src, dst = self._collapsed.get(edge.src), self._collapsed.get(edge.dst)
        if src is None and dst is None:
            return wire.ends()
        if src == dst:
            return None
        start = self.blocks[src].output.scenePos() if src else wire.src.output.scenePos()
        if dst:
            block = self.blocks[dst]  # a wire just made waits for draw_groups to give it a port
            end = block.input_port(block.inlets.index(edge) if edge in block.inlets
                                   else 0).scenePos()
        else:
            end = wire.dst.input_port(edge.port).scenePos()
        return start, end, {src or edge.src, dst or edge.dst}

    def draw_groups(self) -> None:
        """Frames round expanded blocks; collapsed ones as one box hiding their nodes."""
        for item in [*self.blocks.values(), *self.frames.values()]:
            self.removeItem(item)
        self.blocks.clear()
        self.frames.clear()
        groups = self.doc.graph.groups
        self._collapsed = {n: g.id for g in groups if g.collapsed for n in g.nodes}
        for node_id, item in self.node_items.items():
            item.setVisible(node_id not in self._collapsed)
        for group in groups:
            members = [self.node_items[n] for n in group.nodes if n in self.node_items]
            if not members:
                continue
            if group.collapsed:
                inlets = [e for e in self.doc.graph.edges
                          if e.dst in group.nodes and e.src not in group.nodes]
                block = BlockItem(group, inlets, self.doc.direction)
                block.setPos(min(m.pos().x() for m in members),
                             min(m.pos().y() for m in members))
                block.set_detail(self.detailed)
                self.blocks[group.id] = block
                self.addItem(block)
            else:
                rect = members[0].sceneBoundingRect()
                for member in members[1:]:
                    rect = rect.united(member.sceneBoundingRect())
                self.frames[group.id] = GroupFrame(group, rect.adjusted(-12, -12, 12, 12))
                self.addItem(self.frames[group.id])
        self.reroute()

    def set_direction(self, direction: str) -> None:
        """Ports on top/bottom (TB) or left/right (LR); the document lays out new nodes so."""
        self.doc.direction = direction
        for item in self.node_items.values():
            item.set_direction(direction)
        self.draw_groups()
        for wire in self.wire_items.values():
            wire.label.set_text(wire.label.text, direction)

    def refresh(self) -> None:
        """Labels, errors and wire shapes from the document's latest analysis; items whose
        inputs did not change are left alone (cheap on big graphs)."""
        analysis, graph = self.doc.analysis, self.doc.graph
        errors = analysis.errors_by_node()
        for node_id, item in self.node_items.items():
            node = graph.nodes[node_id]
            params = analysis.params.get(node_id)
            shape = analysis.shapes.get(node_id)
            state = (params if params is not None else node.params, shape,
                     errors.get(node_id, []))
            if state == item.source:
                continue
            item.source = state
            mt = REGISTRY.get(node.type)
            label = mt.label(params) if mt and params is not None \
                else node_label(node.type, node.params)
            fixes = [fix.text for message in state[2]
                     for fix in fixes_for(self.doc, node_id, message)]
            item.set_state(label, state[2], shape_text(shape) if shape else "", fixes)
        for edge, wire in self.wire_items.items():
            shape = analysis.shapes.get(edge.src)
            if shape != wire.carried:
                wire.carried = shape
                wire.label.set_text(shape_text(shape) if shape else "", wire.src.direction)
        self._show_labels()

    def _show_labels(self) -> None:
        """One shape label per output: the wires fanning out of a node carry the same shape."""
        labelled: set[str] = set()
        for edge in self.doc.graph.edges:
            wire = self.wire_items.get(edge)
            if wire is not None:
                wire.label.setVisible(self.detailed and bool(wire.label.text)
                                      and edge.src not in labelled)
                labelled.add(edge.src)

    def set_detail(self, detailed: bool) -> None:
        """Far out (a big graph in view), hide ports and shape labels and draw nodes as plain
        boxes: unreadable there anyway, and it keeps repaints of hundreds of nodes fast."""
        if detailed == self.detailed:
            return
        self.detailed = detailed
        for item in self.node_items.values():
            item.set_detail(detailed)
        self._show_labels()

    # -- selection ------------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        """Selected nodes in document order; a selected block stands for its nodes."""
        chosen = {item.node_id for item in self.selectedItems() if isinstance(item, NodeItem)}
        chosen.update(n for item in self.selectedItems() if isinstance(item, BlockItem)
                      for n in item.group.nodes)
        return [node_id for node_id in self.doc.graph.nodes if node_id in chosen]

    def selected_edges(self) -> list[Edge]:
        return [item.edge for item in self.selectedItems() if isinstance(item, WireItem)]

    def select_nodes(self, node_ids) -> None:
        wanted = set(node_ids)
        self.blockSignals(True)
        self.clearSelection()
        for node_id in wanted:
            if node_id in self.node_items:
                self.node_items[node_id].setSelected(True)
        self.blockSignals(False)
        self.selectionChanged.emit()

    def node_at(self, pos: QPointF) -> str | None:
        """The node (or collapsed block's group id) under pos."""
        item = next((i for i in self.items(pos) if isinstance(i, NodeItem) and i.isVisible()),
                    None)
        return item.node_id if item is not None else None

    def node_sizes(self) -> dict[str, tuple[float, float]]:
        return {node_id: (NODE_WIDTH, item.height) for node_id, item in self.node_items.items()}

    def show_health(self, health: dict) -> None:
        """Training-health badges: {node_id: {"level", "tooltip", ...}}; other nodes lose theirs."""
        for node_id, item in self.node_items.items():
            entry = health.get(node_id)
            item.set_health((entry["level"], entry["tooltip"]) if entry else None)

    def add_module(self, type_name: str, scene_pos: QPointF, chain: bool = False) -> str:
        """Add a node centred at scene_pos and select it; dropped onto a wire, it goes into that
        wire. With chain, a single selected node feeds the new one, which goes after it (the
        type-to-add flow: Tab, type, Enter), into the wire to its one consumer if it has one."""
        selected = self.selected_node_ids()
        source = selected[0] if chain and len(selected) == 1 else None
        takes_input = REGISTRY[type_name].max_inputs != 0
        if source is not None and self.doc.has_output(source) and takes_input:
            node_id = self._add_after(type_name, source)
        else:
            pos = self._snap(scene_pos - QPointF(NODE_WIDTH / 2, MIN_HEIGHT / 2))
            wire = self.wire_at(scene_pos)
            problem = wire and self.doc.splice_problem(type_name, wire.edge)
            if wire is not None and not problem:
                node_id = self._insert_into(type_name, wire.edge)
            else:
                if problem:
                    self.status.emit(f"Added beside the wire: {problem}")
                node_id = self.doc.add_node(type_name, (pos.x(), pos.y()))
        self.select_nodes([node_id])
        return node_id

    def _add_after(self, type_name: str, source: str) -> str:
        """A new node fed by source, one step further along the flow; between source and its
        consumer when it has exactly one (which moves along, with all after it, to make room)."""
        item = self.node_items[source]
        step = QPointF(0, item.height + TB_GAP[1]) if self.doc.direction == "TB" \
            else QPointF(NODE_WIDTH + GAP[0], 0)
        consumers = [e for e in self.doc.graph.edges if e.src == source]
        if len(consumers) == 1 and not self.doc.splice_problem(type_name, consumers[0]):
            return self._insert_into(type_name, consumers[0])
        pos = self._free_spot(item.pos() + step)
        return self.doc.add_node(type_name, (pos.x(), pos.y()), connect_from=source)

    def _insert_into(self, type_name: str, edge: Edge) -> str:
        """Splice a new node into edge where its consumer stood; the consumer and all after it
        move one step along the flow to make room."""
        dst = self.node_items[edge.dst]
        step = (0, dst.height + TB_GAP[1]) if self.doc.direction == "TB" \
            else (NODE_WIDTH + GAP[0], 0)
        return self.doc.splice(type_name, edge, (dst.pos().x(), dst.pos().y()), shift=step)

    def wire_at(self, pos: QPointF) -> WireItem | None:
        """The wire under pos (within a few pixels), if any."""
        return next((item for item in self.items(pos) if isinstance(item, WireItem)
                     and item.isVisible()), None)

    def mark_drop(self, pos: QPointF | None) -> None:
        """Highlight the wire a module dropped at pos would go into (None: clear)."""
        target = self.wire_at(pos) if pos is not None else None
        for wire in self.wire_items.values():
            wire.set_hover(wire is target)

    def _free_spot(self, pos: QPointF) -> QPointF:
        """The first place at or beside pos (across the flow) where a new node overlaps none."""
        across = QPointF(NODE_WIDTH + TB_GAP[0], 0) if self.doc.direction == "TB" \
            else QPointF(0, MIN_HEIGHT + GAP[1])
        while any(isinstance(item, NodeItem) for item in
                  self.items(QRectF(pos.x(), pos.y(), NODE_WIDTH, MIN_HEIGHT))):
            pos += across
        return pos

    @staticmethod
    def _snap(pos: QPointF) -> QPointF:
        return QPointF(round(pos.x() / GRID) * GRID, round(pos.y() / GRID) * GRID)

    # -- gestures -------------------------------------------------------------------------
    def port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem):
                return item
        return None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            port = self.port_at(event.scenePos())
            if port is not None:
                self._start_wire(port)
                self._update_wire(event.scenePos())
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.LeftButton:
            self._pressed = {i.node_id: i.pos() for i in self.selectedItems()
                             if isinstance(i, NodeItem)}

    def mouseMoveEvent(self, event) -> None:
        if self._drag is not None:
            self._update_wire(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None and event.button() == Qt.LeftButton:
            self._finish_wire()
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.LeftButton and self._pressed:
            moved = {node_id: self._snap(self.node_items[node_id].pos())
                     for node_id, start in self._pressed.items()
                     if node_id in self.node_items and self.node_items[node_id].pos() != start}
            self._pressed = {}
            if moved:
                self.doc.move_nodes({i: (p.x(), p.y()) for i, p in moved.items()})

    def mouseDoubleClickEvent(self, event) -> None:
        item = self.itemAt(event.scenePos(), self.views()[0].transform()) if self.views() else None
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, BlockItem):
            self.doc.set_collapsed(item.group.id, False)
        elif item is not None:
            self.node_activated.emit(item.node_id)
        super().mouseDoubleClickEvent(event)

    def _start_wire(self, port: PortItem) -> None:
        """Drag from an output, from a free input (backwards), or pick up an input's wire."""
        detached = None
        anchor = port
        if port.kind == "in":
            detached = next((w.edge for w in port.node.wires
                             if w.edge.dst == port.node.node_id and w.edge.port == port.index),
                            None)
            if detached is not None:
                anchor = self.node_items[detached.src].output
                self.wire_items[detached].setVisible(False)
        draft = DraftWire()
        self.addItem(draft)
        self._drag = _WireDrag(anchor, draft, detached)

    @staticmethod
    def _ends(anchor: PortItem, port: PortItem) -> tuple[str, str, int]:
        """(src, dst, port) of a wire between a drag's anchor and port."""
        if anchor.kind == "out":
            return anchor.node.node_id, port.node.node_id, port.index
        return port.node.node_id, anchor.node.node_id, anchor.index

    def _update_wire(self, pos: QPointF) -> None:
        drag = self._drag
        want = "in" if drag.anchor.kind == "out" else "out"
        scale = self.views()[0].transform().m11() if self.views() else 1.0
        reach = SNAP / max(scale, 0.2)
        near = [item for item in self.items(QRectF(pos.x() - reach, pos.y() - reach,
                                                   2 * reach, 2 * reach))
                if isinstance(item, PortItem) and item.kind == want]
        near.sort(key=lambda p: (p.scenePos() - pos).manhattanLength())
        target, problem = None, None
        for port in near:
            reason = self.doc.connection_problem(*self._ends(drag.anchor, port),
                                                 ignoring=drag.detached, replace=True)
            if reason is None:
                target, problem = port, None
                break
            if problem is None and target is None:
                target, problem = port, reason
        if drag.target is not None and drag.target is not target:
            drag.target.set_highlight(None)
        if target is not None:
            target.set_highlight("bad" if problem else "ok")
        if problem != drag.problem or target is not drag.target:
            self.status.emit(f"Cannot connect: {problem}" if problem
                             else self._replace_note(drag, target))
        drag.problem, drag.target = problem, target
        end = target.scenePos() if target is not None and problem is None else pos
        start = drag.anchor.scenePos()
        direction = self.doc.direction
        drag.draft.setPath(wire_path(start, end, direction) if drag.anchor.kind == "out"
                           else wire_path(end, start, direction))

    def _replace_note(self, drag: _WireDrag, target: PortItem | None) -> str:
        """What dropping on target will do to the wire already there, if any."""
        if target is None:
            return ""
        src, dst, port = self._ends(drag.anchor, target)
        taken = self.doc.occupant(dst, port, ignoring=drag.detached)
        return f"Release to replace the wire from {taken.src} into {dst}" if taken else ""

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Escape and self._drag is not None:
            self._finish_wire(commit=False)
            self.status.emit("")
            event.accept()
            return
        super().keyPressEvent(event)

    def _finish_wire(self, commit: bool = True) -> None:
        """End a wire drag: connect, reconnect or disconnect as it ended (unless cancelled)."""
        drag, self._drag = self._drag, None
        self.removeItem(drag.draft)
        if drag.target is not None:
            drag.target.set_highlight(None)
        if drag.detached is not None and drag.detached in self.wire_items:
            self.wire_items[drag.detached].setVisible(True)
        if not commit:
            return
        if drag.target is not None and drag.problem is None:
            src, dst, port = self._ends(drag.anchor, drag.target)
            if drag.detached is None:
                self.doc.connect(src, dst, port)
            elif drag.detached != Edge(src, dst, port):
                self.doc.reconnect(drag.detached, src, dst, port)
        elif drag.detached is not None and drag.target is None:
            self.doc.disconnect(drag.detached)
        elif drag.problem:
            self.status.emit(f"Cannot connect: {drag.problem}")
