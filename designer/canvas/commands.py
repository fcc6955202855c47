"""Undo commands over a GraphDocument, Orange-canvas style: each step's do() adds to the model and
its undo() takes it back out; a command is a list of steps applied as one undoable edit.
"""
from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

from engine.graph import Edge, Node


class AddNode:
    def __init__(self, node: Node, index: int | None = None):
        self.node, self.index = copy.deepcopy(node), index

    def do(self, doc) -> None:
        doc._insert_node(copy.deepcopy(self.node), self.index)

    def undo(self, doc) -> None:
        doc._delete_node(self.node.id)


class RemoveNode:
    def __init__(self, node_id: str):
        self.node_id = node_id

    def do(self, doc) -> None:
        self.node, self.index = doc._delete_node(self.node_id)

    def undo(self, doc) -> None:
        doc._insert_node(self.node, self.index)


class AddEdge:
    def __init__(self, edge: Edge):
        self.edge = edge

    def do(self, doc) -> None:
        self.index = doc._insert_edge(self.edge, None)

    def undo(self, doc) -> None:
        doc._delete_edge(self.index)


class RemoveEdge:
    def __init__(self, edge: Edge):
        self.edge = edge

    def do(self, doc) -> None:
        self.index = doc.graph.edges.index(self.edge)
        doc._delete_edge(self.index)

    def undo(self, doc) -> None:
        doc._insert_edge(self.edge, self.index)


class ReplaceEdge:
    """Renumber a wire's port in place (keeps the edge list order, so undo restores it exactly)."""

    def __init__(self, old: Edge, new: Edge):
        self.old, self.new = old, new

    def do(self, doc) -> None:
        index = doc.graph.edges.index(self.old)
        doc._delete_edge(index)
        doc._insert_edge(self.new, index)

    def undo(self, doc) -> None:
        index = doc.graph.edges.index(self.new)
        doc._delete_edge(index)
        doc._insert_edge(self.old, index)


class MoveNodes:
    def __init__(self, moves: dict[str, tuple[list | None, list]]):
        self.moves = copy.deepcopy(moves)

    def do(self, doc) -> None:
        for node_id, (_, new) in self.moves.items():
            doc._set_pos(node_id, new)

    def undo(self, doc) -> None:
        for node_id, (old, _) in self.moves.items():
            doc._set_pos(node_id, old)


class SetParams:
    def __init__(self, node_id: str, old: dict, new: dict):
        self.node_id, self.old, self.new = node_id, copy.deepcopy(old), copy.deepcopy(new)

    def do(self, doc) -> None:
        doc._set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self, doc) -> None:
        doc._set_params(self.node_id, copy.deepcopy(self.old))


class RenameNode:
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def do(self, doc) -> None:
        doc._rename(self.old, self.new)

    def undo(self, doc) -> None:
        doc._rename(self.new, self.old)


class SetGroups:
    def __init__(self, old: list, new: list):
        self.old, self.new = list(old), list(new)

    def do(self, doc) -> None:
        doc._set_groups(self.new)

    def undo(self, doc) -> None:
        doc._set_groups(self.old)


class EditCommand(QUndoCommand):
    """One entry of the undo stack: its steps run in order on redo and in reverse on undo, with
    shape inference once at the end instead of after every step."""

    def __init__(self, doc, text: str, steps: list):
        super().__init__(text)
        self.doc, self.steps = doc, steps

    def redo(self) -> None:
        with self.doc.batch():
            for step in self.steps:
                step.do(self.doc)

    def undo(self) -> None:
        with self.doc.batch():
            for step in reversed(self.steps):
                step.undo(self.doc)
