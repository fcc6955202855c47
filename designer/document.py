"""GraphDocument: the Graph being edited, its undo stack, and the past-tense signals that every view
redraws from. Public methods push one undoable command each; only commands call the _underscored
primitives that change the Graph.
"""
from __future__ import annotations

import copy
import json
import re
from contextlib import contextmanager

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine import Graph
from engine.graph import Edge, Group, Node, node_id_problem
from engine.inspect import ReceptiveField, receptive_fields
from engine.modules import REGISTRY, resolve_params

from .canvas.commands import (
    AddEdge,
    AddNode,
    EditCommand,
    MoveNodes,
    RemoveEdge,
    RemoveNode,
    RenameNode,
    ReplaceEdge,
    SetGroups,
    SetParams,
)
from .layout import coord, layered_layout

CLIPBOARD_MIME = "application/x-convdesigner-graph"
PASTE_STEP = 30.0  # how much further right and down a paste goes than one already there
_PREFIXES = {"Activation": "act", "BatchNorm": "bn", "Dropout": "drop", "ChannelPool": "chpool",
             "GlobalPool": "gpool"}
_SINGLETONS = ("Input", "Output")


class ConnectionRefused(ValueError):
    """A wire the graph cannot take; the message says why, in words for the status bar."""


def id_prefix(type_name: str) -> str:
    """Readable id stem for a type: Conv2D -> conv, Pool3D -> pool, BatchNorm -> bn."""
    if type_name in _PREFIXES:
        return _PREFIXES[type_name]
    return re.sub(r"[123]D$", "", type_name).lower()


def unique_id(taken, type_name: str) -> str:
    """The first free id of the form conv1, conv2, ... ("input"/"output" when free)."""
    prefix = id_prefix(type_name)
    if type_name in _SINGLETONS and prefix not in taken:
        return prefix
    number = 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def renumbered(taken, node_id: str, type_name: str) -> str:
    """A free id for a copy of node_id that keeps its stem: relu2 -> relu5, block1_conv1 ->
    block1_conv3 (the type's stem when the id is all digits)."""
    stem = node_id.rstrip("0123456789")
    if not stem:
        return unique_id(taken, type_name)
    number = 1
    while f"{stem}{number}" in taken:
        number += 1
    return f"{stem}{number}"


def required_defaults(type_name: str) -> dict:
    """A new node's params: its required params filled with their spec defaults, as JSON values."""
    params = {}
    for spec in REGISTRY[type_name].params:
        if spec.required and spec.default is not None and not callable(spec.default):
            params[spec.name] = copy.deepcopy(spec.default)
    return params


def many_inputs(type_name: str) -> bool:
    mt = REGISTRY.get(type_name)
    return mt is not None and mt.max_inputs is None


class GraphDocument(QObject):
    node_added = Signal(str)
    node_removed = Signal(str)
    node_renamed = Signal(str, str)
    edge_added = Signal(object)
    edge_removed = Signal(object)
    node_moved = Signal(str)
    param_changed = Signal(str)
    shapes_changed = Signal()
    graph_reset = Signal()
    groups_changed = Signal()

    def __init__(self, graph: Graph | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._graph = graph if graph is not None else Graph()
        self.direction = "TB"  # how layouts run (a view preference, not saved in the graph)
        self._batch_depth = 0
        self._stale = False
        self.analysis = self._graph.analyze()
        self._fields: tuple = (None, {})

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def busy(self) -> bool:
        """True while a command runs: self.analysis may not match the graph until it ends (and
        shapes_changed is emitted)."""
        return self._batch_depth > 0

    # -- whole document -------------------------------------------------------------------
    def reset(self, graph: Graph) -> None:
        """Replace the graph (open, new): positions filled where missing, undo history cleared."""
        missing = [node_id for node_id, node in graph.nodes.items() if node.pos is None]
        if missing:
            for node_id, pos in layered_layout(graph, missing, direction=self.direction).items():
                graph.nodes[node_id].pos = pos
        self._graph = graph
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.analysis = graph.analyze()
        self.graph_reset.emit()
        self.shapes_changed.emit()

    @contextmanager
    def batch(self):
        """Group primitive changes so shape inference runs once, when the outermost batch ends."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._stale:
                self._stale = False
                self.analysis = self._graph.analyze()
                self.shapes_changed.emit()

    # -- primitives: only commands call these ---------------------------------------------
    def _insert_node(self, node: Node, index: int | None) -> None:
        items = list(self._graph.nodes.items())
        items.insert(len(items) if index is None else index, (node.id, node))
        self._graph.nodes = dict(items)
        self._stale = True
        self.node_added.emit(node.id)

    def _delete_node(self, node_id: str) -> tuple[Node, int]:
        index = list(self._graph.nodes).index(node_id)
        node = self._graph.nodes.pop(node_id)
        self._stale = True
        self.node_removed.emit(node_id)
        return node, index

    def _insert_edge(self, edge: Edge, index: int | None) -> int:
        index = len(self._graph.edges) if index is None else index
        self._graph.edges.insert(index, edge)
        self._stale = True
        self.edge_added.emit(edge)
        return index

    def _delete_edge(self, index: int) -> None:
        edge = self._graph.edges.pop(index)
        self._stale = True
        self.edge_removed.emit(edge)

    def _set_pos(self, node_id: str, pos: list | None) -> None:
        self._graph.nodes[node_id].pos = None if pos is None else list(pos)
        self.node_moved.emit(node_id)

    def _set_params(self, node_id: str, params: dict) -> None:
        self._graph.nodes[node_id].params = params
        self._stale = True
        self.param_changed.emit(node_id)

    def _set_groups(self, groups: list[Group]) -> None:
        self._graph.groups = list(groups)
        self.groups_changed.emit()

    def _rename(self, old: str, new: str) -> None:
        nodes = {}
        for node_id, node in self._graph.nodes.items():
            if node_id == old:
                node.id = new
            nodes[node.id] = node
        self._graph.nodes = nodes
        self._graph.edges = [Edge(new if e.src == old else e.src, new if e.dst == old else e.dst,
                                  e.port) for e in self._graph.edges]
        self._graph.groups = [Group(g.id, g.name, tuple(new if n == old else n for n in g.nodes),
                                    g.collapsed) for g in self._graph.groups]
        self._stale = True
        self.node_renamed.emit(old, new)

    # -- queries --------------------------------------------------------------------------
    def receptive_fields(self) -> dict[str, ReceptiveField]:
        """Receptive fields for the current analysis (computed once per analysis)."""
        if self._fields[0] is not self.analysis:
            self._fields = (self.analysis, receptive_fields(self._graph, self.analysis))
        return self._fields[1]

    def input_port_count(self, node_id: str) -> int:
        """Ports a node shows: Add/Concat keep one free port after their highest wired one."""
        mt = REGISTRY.get(self._graph.nodes[node_id].type)
        if mt is None:
            return 1
        if mt.max_inputs is not None:
            return mt.max_inputs
        ports = [e.port for e in self._graph.edges if e.dst == node_id]
        return max(mt.min_inputs, max(ports, default=-1) + 2)

    def has_output(self, node_id: str) -> bool:
        return self._graph.nodes[node_id].type != "Output"

    def occupant(self, dst: str, port: int, ignoring: Edge | None = None) -> Edge | None:
        """The wire already on input port of dst, if any."""
        return next((e for e in self._graph.edges
                     if e.dst == dst and e.port == port and e != ignoring), None)

    def splice_problem(self, type_name: str, edge: Edge) -> str | None:
        """Why a new type_name node cannot go into the wire edge (None when it can)."""
        if REGISTRY[type_name].max_inputs == 0:
            return f"{type_name} cannot go into a wire: it has no input"
        if type_name == "Output":
            return "Output cannot go into a wire: nothing can follow it"
        if edge not in self._graph.edges:
            return "that wire is gone"
        return None

    def connection_problem(self, src: str, dst: str, port: int,
                           ignoring: Edge | None = None, replace: bool = False) -> str | None:
        """Why a wire src -> dst:port cannot be made (None when it can); with replace, a wire
        already on that input does not stand in the way (it is to be replaced)."""
        graph = self._graph
        if src == dst:
            return f"{src} cannot be wired to itself"
        source, target = graph.nodes[src], graph.nodes[dst]
        if source.type == "Output":
            return "Output ends the network: nothing can follow it"
        mt = REGISTRY.get(target.type)
        if mt is None:
            return f"{dst} has an unknown type {target.type!r}"
        if mt.max_inputs == 0:
            return f"{target.type} has no inputs: samples enter the network there"
        if mt.max_inputs is not None and port >= mt.max_inputs:
            return f"{target.type} takes {mt.max_inputs} input{'s' * (mt.max_inputs != 1)}"
        taken = self.occupant(dst, port, ignoring)
        if taken is not None and not (replace and self._replaceable(taken, ignoring)):
            return (f"input {port} of {dst} is taken (wired from {taken.src}); drag that wire "
                    f"off first")
        if self._reaches(dst, src, ignoring):
            return f"that wire would make a cycle: {dst} already feeds {src}"
        return None

    def _replaceable(self, taken: Edge, moving: Edge | None) -> bool:
        """A wire can replace taken unless it is an end moved between inputs of one Add/Concat
        (their ports renumber as wires leave)."""
        return moving is None or not many_inputs(self._graph.nodes[taken.dst].type)

    def _reaches(self, start: str, goal: str, ignoring: Edge | None) -> bool:
        targets: dict[str, list[str]] = {}
        for edge in self._graph.edges:
            if edge != ignoring:
                targets.setdefault(edge.src, []).append(edge.dst)
        seen, todo = {start}, [start]
        while todo:
            for nxt in targets.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    def fragment(self, node_ids) -> dict:
        """Graph JSON of the given nodes and the wires between them (for the clipboard)."""
        chosen = set(node_ids)
        fragment = {"format": "convdesigner.graph", "version": 1, "name": "fragment",
                    "nodes": [n.to_dict() for i, n in self._graph.nodes.items() if i in chosen],
                    "edges": [e.to_dict() for e in self._graph.edges
                              if e.src in chosen and e.dst in chosen]}
        groups = [g.to_dict() for g in self._graph.groups if set(g.nodes) <= chosen]
        if groups:  # blocks copied whole come along
            fragment["groups"] = groups
        return fragment

    # -- edits: one undoable command each -------------------------------------------------
    def push(self, text: str, steps: list) -> None:
        if steps:
            self.undo_stack.push(EditCommand(self, text, steps))

    def add_node(self, type_name: str, pos, params: dict | None = None,
                 connect_from: str | None = None) -> str:
        """Add a node of type_name at pos; wire connect_from's output into it when given."""
        if type_name not in REGISTRY:
            raise KeyError(f"unknown module type {type_name!r}")
        node_id = unique_id(self._graph.nodes, type_name)
        node = Node(node_id, type_name, required_defaults(type_name) if params is None
                    else copy.deepcopy(params), [coord(pos[0]), coord(pos[1])])
        steps = [AddNode(node)]
        if connect_from is not None and self.has_output(connect_from) \
                and REGISTRY[type_name].max_inputs != 0:
            steps.append(AddEdge(Edge(connect_from, node_id, 0)))
        self.push(f"Add {type_name} {node_id}", steps)
        return node_id

    def splice(self, type_name: str, edge: Edge, pos, params: dict | None = None,
               shift: tuple[float, float] | None = None) -> str:
        """Insert a new type_name node at pos into the wire edge (src -> new -> dst, on the
        same input of dst), as one step; shift moves dst and everything after it to make room."""
        problem = self.splice_problem(type_name, edge)
        if problem:
            raise ConnectionRefused(problem)
        node_id = unique_id(self._graph.nodes, type_name)
        node = Node(node_id, type_name, required_defaults(type_name) if params is None
                    else copy.deepcopy(params), [coord(pos[0]), coord(pos[1])])
        steps = [AddNode(node), ReplaceEdge(edge, Edge(node_id, edge.dst, edge.port)),
                 AddEdge(Edge(edge.src, node_id, 0))]
        if shift is not None:
            moves = {}
            for i in self.downstream(edge.dst):
                old = self._graph.nodes[i].pos
                if old is not None:
                    moves[i] = (old, [coord(old[0] + shift[0]), coord(old[1] + shift[1])])
            steps.append(MoveNodes(moves))
        self.push(f"Insert {type_name} {node_id} between {edge.src} and {edge.dst}", steps)
        return node_id

    def downstream(self, node_id: str) -> list[str]:
        """node_id and every node its output reaches, in document order."""
        seen, todo = {node_id}, [node_id]
        while todo:
            current = todo.pop()
            for edge in self._graph.edges:
                if edge.src == current and edge.dst not in seen:
                    seen.add(edge.dst)
                    todo.append(edge.dst)
        return [i for i in self._graph.nodes if i in seen]

    def remove(self, node_ids=(), edges=(), text: str | None = None) -> None:
        """Delete nodes (with their wires) and wires; Add/Concat inputs close up the gaps."""
        node_ids = [i for i in self._graph.nodes if i in set(node_ids)]
        doomed = {e for e in self._graph.edges if e.src in node_ids or e.dst in node_ids}
        doomed.update(edges)
        steps = self._edge_removal_steps(doomed, deleted=set(node_ids))
        groups = self._graph.groups
        kept = [Group(g.id, g.name, tuple(n for n in g.nodes if n not in node_ids), g.collapsed)
                for g in groups]
        kept = [g for g in kept if g.nodes]
        if kept != groups:
            steps.append(SetGroups(groups, kept))
        steps += [RemoveNode(node_id) for node_id in reversed(node_ids)]
        if text is None:
            loose = sum(1 for e in doomed if e.src not in node_ids and e.dst not in node_ids)
            parts = [f"{len(node_ids)} node{'s' * (len(node_ids) != 1)}"] if node_ids else []
            parts += [f"{loose} wire{'s' * (loose != 1)}"] if loose else []
            text = f"Delete {node_ids[0]}" if len(node_ids) == 1 and not loose \
                else "Delete " + " and ".join(parts)
        self.push(text, steps)

    def _edge_removal_steps(self, doomed: set[Edge], deleted: set[str]) -> list:
        """Remove wires, then renumber the remaining inputs of surviving Add/Concat nodes."""
        edges = self._graph.edges
        steps: list = [RemoveEdge(e) for e in sorted(doomed, key=edges.index, reverse=True)]
        for dst in {e.dst for e in doomed} - deleted:
            if not many_inputs(self._graph.nodes[dst].type):
                continue
            kept = sorted((e for e in edges if e.dst == dst and e not in doomed),
                          key=lambda e: e.port)
            steps += [ReplaceEdge(e, Edge(e.src, e.dst, rank)) for rank, e in enumerate(kept)
                      if e.port != rank]
        return steps

    def connect(self, src: str, dst: str, port: int = 0) -> Edge:
        """Wire src into input port of dst, replacing the wire already there (one step)."""
        problem = self.connection_problem(src, dst, port, replace=True)
        if problem:
            raise ConnectionRefused(problem)
        edge, taken = Edge(src, dst, port), self.occupant(dst, port)
        if taken is None:
            self.push(f"Connect {src} to {dst}", [AddEdge(edge)])
        else:
            self.push(f"Replace {taken.src} by {src} into {dst}", [ReplaceEdge(taken, edge)])
        return edge

    def disconnect(self, edge: Edge) -> None:
        self.push(f"Disconnect {edge.src} from {edge.dst}",
                  self._edge_removal_steps({edge}, deleted=set()))

    def reconnect(self, old: Edge, src: str, dst: str, port: int) -> Edge:
        """Move one end of a wire: one command that disconnects old and connects src -> dst."""
        problem = self.connection_problem(src, dst, port, ignoring=old, replace=True)
        if problem:
            raise ConnectionRefused(problem)
        taken = self.occupant(dst, port, ignoring=old)
        steps = self._edge_removal_steps({old}, deleted=set())
        if many_inputs(self._graph.nodes[dst].type) and dst == old.dst and port > old.port:
            port -= 1
        edge = Edge(src, dst, port)
        steps.append(AddEdge(edge) if taken is None else ReplaceEdge(taken, edge))
        self.push(f"Reconnect {src} to {dst}", steps)
        return edge

    def move_nodes(self, positions: dict[str, list], text: str = "Move") -> None:
        nodes = self._graph.nodes
        wanted = {i: [coord(p[0]), coord(p[1])] for i, p in positions.items()}
        moves = {i: (nodes[i].pos, pos) for i, pos in wanted.items() if nodes[i].pos != pos}
        if moves:
            if text == "Move":
                text = f"Move {next(iter(moves))}" if len(moves) == 1 \
                    else f"Move {len(moves)} nodes"
            self.push(text, [MoveNodes(moves)])

    def set_params(self, node_id: str, params: dict) -> None:
        """Replace a node's params; raise ParamError (with every problem) and change nothing if
        they are invalid."""
        node = self._graph.nodes[node_id]
        resolve_params(REGISTRY[node.type], params)
        if params != node.params:
            changed = sorted(k for k in set(params) | set(node.params)
                             if params.get(k) != node.params.get(k))
            self.push(f"Set {node_id} {', '.join(changed)}",
                      [SetParams(node_id, node.params, params)])

    def set_param(self, node_id: str, name: str, value) -> None:
        """Set one param; value None removes it so that it takes its default."""
        params = copy.deepcopy(self._graph.nodes[node_id].params)
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
        self.set_params(node_id, params)

    def rename_node(self, old: str, new: str) -> None:
        new = new.strip()
        if new == old:
            return
        problem = node_id_problem(new)
        if problem:
            raise ValueError(problem)
        if new in self._graph.nodes:
            raise ValueError(f"the id {new!r} is taken by another node")
        self.push(f"Rename {old} to {new}", [RenameNode(old, new)])

    def paste(self, fragment: dict, offset=(40.0, 40.0), at=None) -> list[str]:
        """Add a graph-JSON fragment as new nodes (ids renamed where taken) with its inner wires;
        placed at `at` (its top-left) when given, else shifted by offset, and PASTE_STEP further
        while a node would land on an existing one's spot. Returns the new ids."""
        piece = Graph.from_dict(fragment)
        if not piece.nodes:
            return []
        laid = layered_layout(piece, [i for i, n in piece.nodes.items() if n.pos is None],
                              direction=self.direction)
        positions = {i: list(n.pos) if n.pos is not None else laid[i]
                     for i, n in piece.nodes.items()}
        if at is not None:
            left = min(p[0] for p in positions.values())
            top = min(p[1] for p in positions.values())
            offset = (at[0] - left, at[1] - top)
        spots = {tuple(n.pos) for n in self._graph.nodes.values() if n.pos is not None}
        while any((coord(x + offset[0]), coord(y + offset[1])) in spots
                  for x, y in positions.values()):
            offset = (offset[0] + PASTE_STEP, offset[1] + PASTE_STEP)
        taken, renamed, steps = set(self._graph.nodes), {}, []
        for old_id, node in piece.nodes.items():
            new_id = old_id if old_id not in taken else renumbered(taken, old_id, node.type)
            taken.add(new_id)
            renamed[old_id] = new_id
            pos = [coord(positions[old_id][0] + offset[0]), coord(positions[old_id][1] + offset[1])]
            steps.append(AddNode(Node(new_id, node.type, node.params, pos)))
        steps += [AddEdge(Edge(renamed[e.src], renamed[e.dst], e.port)) for e in piece.edges]
        if piece.groups:
            groups = list(self._graph.groups)
            for group in piece.groups:
                groups.append(Group(free_group_id(groups), group.name,
                                    tuple(renamed[n] for n in group.nodes), group.collapsed))
            steps.append(SetGroups(self._graph.groups, groups))
        self.push(f"Paste {len(renamed)} node{'s' * (len(renamed) != 1)}", steps)
        return list(renamed.values())

    # -- blocks -----------------------------------------------------------------------------
    def group_of(self, node_id: str) -> Group | None:
        return next((g for g in self._graph.groups if node_id in g.nodes), None)

    def group(self, node_ids, name: str | None = None) -> str:
        """Make the nodes (none of them in a block yet) one named block; returns its id."""
        ids = [i for i in self._graph.nodes if i in set(node_ids)]
        taken = [i for i in ids if self.group_of(i) is not None]
        if not ids or taken:
            raise ValueError(f"{taken[0]} is in block {self.group_of(taken[0]).name} already"
                             if taken else "select the nodes to put in a block")
        group_id, old = free_group_id(self._graph.groups), self._graph.groups
        self.push(f"Group {len(ids)} nodes as {name or group_id}",
                  [SetGroups(old, [*old, Group(group_id, name or group_id, tuple(ids))])])
        return group_id

    def ungroup(self, group_id: str) -> None:
        old = self._graph.groups
        self.push(f"Ungroup {group_id}", [SetGroups(old, [g for g in old if g.id != group_id])])

    def set_collapsed(self, group_id: str, collapsed: bool) -> None:
        old = self._graph.groups
        new = [Group(g.id, g.name, g.nodes, collapsed) if g.id == group_id else g for g in old]
        if new != old:
            self.push(f"{'Collapse' if collapsed else 'Expand'} {group_id}",
                      [SetGroups(old, new)])

    def arrange(self, node_ids=None, sizes: dict | None = None) -> None:
        """Layered layout (along self.direction) of the whole graph or of the given nodes, kept
        where the nodes were (their top-left corner stays put)."""
        nodes = self._graph.nodes
        ids = list(nodes) if node_ids is None else [i for i in nodes if i in set(node_ids)]
        if not ids:
            return
        placed = [nodes[i].pos for i in ids if nodes[i].pos is not None]
        origin = (min(p[0] for p in placed), min(p[1] for p in placed)) if placed else (0.0, 0.0)
        self.move_nodes(layered_layout(self._graph, ids, origin=origin, sizes=sizes,
                                       direction=self.direction),
                        text="Arrange" if node_ids is None else f"Arrange {len(ids)} nodes")


def free_group_id(groups) -> str:
    """The first of block1, block2, ... that no group has."""
    taken = {g.id for g in groups}
    return next(f"block{n}" for n in range(1, len(taken) + 2) if f"block{n}" not in taken)


def parse_fragment(text: str) -> dict | None:
    """A graph-JSON fragment from clipboard text, or None when the text is not one."""
    try:
        doc = json.loads(text)
        Graph.from_dict(doc)
    except ValueError:
        return None
    return doc
