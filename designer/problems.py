"""Every problem the analysis reports, with one-click fixes (each one undo step), and the Problems
table that lists them: problem, node, fixes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from engine.graph import Edge
from engine.modules import REGISTRY

from .layout import GAP, NODE_SIZE, TB_GAP


@dataclass(frozen=True)
class Fix:
    text: str
    apply: Callable  # apply(doc): pushes exactly one undo command


@dataclass
class Problem:
    node_id: str | None
    message: str
    fixes: list[Fix] = field(default_factory=list)


def find_problems(doc) -> list[Problem]:
    """The document's analysis errors, each with the fixes that apply to it, then the nodes
    that reach no Output (a dead-end branch: never trained, left out of the totals)."""
    return [Problem(e.node_id, e.message, fixes_for(doc, e.node_id, e.message))
            for e in doc.analysis.errors] + [
        Problem(node_id, "its output reaches no Output, so it is neither trained nor counted "
                         "in the totals: wire it on, or delete it", [_delete(node_id)])
        for node_id in doc.analysis.unused]


def _delete(node_id: str) -> Fix:
    return Fix(f"delete {node_id}", lambda doc: doc.remove([node_id]))


def fixes_for(doc, node_id: str | None, message: str) -> list[Fix]:
    graph, shapes = doc.graph, doc.analysis.shapes
    if node_id is None:
        return _add_output(doc) if "no Output node" in message else []
    node = graph.nodes[node_id]
    edges = graph.inputs_of(node_id)
    ins = [shapes.get(e.src) for e in edges]
    if None in ins or not ins:
        return []
    if "flat input" in message or "flat logits" in message:
        fixes = [_insert(doc, "Flatten", edges[0])]
        if len(ins[0]) >= 2:
            fixes.append(_insert(doc, "GlobalPool", edges[0]))
        if node.type == "Output":
            fixes.append(_set(node_id, "loss", "mse", "use the mse loss"))
        return fixes
    if "larger than the padded input" in message:
        return _kernel_fixes(doc, node_id, ins[0])
    if node.type == "Add":
        return _add_fixes(doc, node_id, edges, ins)
    if node.type == "Concat":
        return _concat_fixes(doc, edges, ins)
    return []


def _insert(doc, type_name: str, edge: Edge, params: dict | None = None,
            text: str | None = None) -> Fix:
    """Splice a new node into edge where its consumer was; the consumer and what follows move
    one layer on."""
    return Fix(text or f"Insert {type_name} before {edge.dst}",
               lambda d: d.splice(type_name, edge, d.graph.nodes[edge.dst].pos or [0, 0],
                                  params, shift=_step(d)))


def _step(doc) -> tuple[float, float]:
    """One layer further along the flow."""
    return (0, NODE_SIZE[1] + TB_GAP[1]) if doc.direction == "TB" else (NODE_SIZE[0] + GAP[0], 0)


def _set(node_id: str, name: str, value, text: str) -> Fix:
    return Fix(f"{text[0].upper()}{text[1:]} on {node_id}",
               lambda d: d.set_param(node_id, name, value))


def _kernel_fixes(doc, node_id: str, shape) -> list[Fix]:
    """A kernel that fits the padded input, or padding "same" (convolutions with stride 1)."""
    node = doc.graph.nodes[node_id]
    mt = REGISTRY[node.type]
    params = doc.analysis.params[node_id]
    kernel, stride, pad, dilation = mt.kernel_geometry(params)
    fitting = min((n + 2 * p - 1) // d + 1 for n, p, d in zip(shape[1:], pad, dilation))
    name = "kernel_size" if "kernel_size" in params else "size"
    fixes = [_set(node_id, name, fitting, f"set {name} to {fitting}")] if fitting >= 1 else []
    if node.type.startswith("Conv") and all(s == 1 for s in stride):
        fixes.append(_set(node_id, "padding", "same", 'set padding to "same"'))
    return fixes


def _add_fixes(doc, node_id: str, edges: list[Edge], ins: list) -> list[Fix]:
    """Bring each input unlike the first to its shape: a 1x1 convolution (strided when the
    spatial size shrinks by a whole factor) on that path, or the filters of the convolution
    that feeds it."""
    target, fixes = ins[0], []
    for edge, shape in zip(edges[1:], ins[1:]):
        if shape == target or len(shape) != len(target):
            continue
        dims = len(shape) - 1
        if dims and all(n % t == 0 for n, t in zip(shape[1:], target[1:])) \
                and len({n // t for n, t in zip(shape[1:], target[1:])}) == 1:
            stride = shape[1] // target[1]
            params = {"filters": target[0], "kernel_size": 1, "stride": stride}
            fixes.append(_insert(doc, f"Conv{dims}D", edge, params,
                                 f"Insert a 1x1 Conv{dims}D ({target[0]} filters, stride "
                                 f"{stride}) on the {edge.src} path"))
        if shape[1:] == target[1:] and doc.graph.nodes[edge.src].type.startswith("Conv"):
            fixes.append(_set(edge.src, "filters", target[0],
                              f"set filters to {target[0]} to match"))
    return fixes


def _concat_fixes(doc, edges: list[Edge], ins: list) -> list[Fix]:
    """Pool the larger inputs down to the smallest spatial size, when it divides them."""
    smallest = min(ins, key=lambda s: s[1:] if len(s) > 1 else ())
    fixes = []
    for edge, shape in zip(edges, ins):
        if len(shape) != len(smallest) or len(shape) < 2 or shape[1:] == smallest[1:]:
            continue
        size = shape[1] // max(smallest[1], 1)
        if size >= 2 and all(n // size == t for n, t in zip(shape[1:], smallest[1:])):
            dims = len(shape) - 1
            fixes.append(_insert(doc, f"Pool{dims}D", edge, {"size": size},
                                 f"Insert Pool{dims}D (size {size}) on the {edge.src} path"))
    return fixes


def _add_output(doc) -> list[Fix]:
    """Wire an Output after the last node that feeds nothing (cross_entropy for a flat output)."""
    graph, shapes = doc.graph, doc.analysis.shapes
    feeding = {e.src for e in graph.edges}
    ends = [i for i in reversed(doc.analysis.order) if i not in feeding and doc.has_output(i)]
    if not ends:
        return []
    last = ends[0]
    loss = "cross_entropy" if len(shapes[last]) == 1 else "mse"

    def apply(d):
        pos, step = d.graph.nodes[last].pos or [0, 0], _step(d)
        d.add_node("Output", (pos[0] + step[0], pos[1] + step[1]), {"loss": loss},
                   connect_from=last)
    return [Fix(f"Add an Output ({loss}) after {last}", apply)]


class ProblemsPanel(QTableWidget):
    """Problem, node and fix buttons, one row per problem; clicking a row shows its node."""

    node_activated = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(0, 3, parent)
        self.doc = doc
        self.problems: list[Problem] = []
        self.setHorizontalHeaderLabels(["Problem", "Node", "Fix"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setWordWrap(False)  # one line a problem; the whole message is its tooltip
        self.cellClicked.connect(self._clicked)
        doc.shapes_changed.connect(self.refresh)
        doc.graph_reset.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.problems = find_problems(self.doc)
        for row in range(self.rowCount()):
            old = self.cellWidget(row, 2)
            if old is not None:
                old.hide()  # Qt deletes it later; it must not linger on screen until then
        self.setRowCount(len(self.problems))
        for row, problem in enumerate(self.problems):
            message = QTableWidgetItem(problem.message)
            message.setToolTip(problem.message)
            self.setItem(row, 0, message)
            self.setItem(row, 1, QTableWidgetItem(problem.node_id or "(network)"))
            buttons = QWidget()
            layout = QHBoxLayout(buttons)
            layout.setContentsMargins(2, 1, 2, 1)
            for fix in problem.fixes:
                button = QPushButton(fix.text)
                button.clicked.connect(lambda _=False, f=fix: f.apply(self.doc))
                layout.addWidget(button)
            if not problem.fixes:
                layout.addWidget(QPushButton("no automatic fix", enabled=False))
            self.setCellWidget(row, 2, buttons)
        self.resizeRowsToContents()

    def _clicked(self, row: int, column: int) -> None:
        node_id = self.problems[row].node_id
        if node_id is not None and column != 2:
            self.node_activated.emit(node_id)

    def fix_buttons(self, row: int) -> list[QPushButton]:
        return self.cellWidget(row, 2).findChildren(QPushButton)
