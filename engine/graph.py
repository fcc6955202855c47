"""The Graph document (DESIGN.md 3.1): nodes, edges, validation and shape inference.

Validation and shape inference are pure functions of the document; analyze() reports every
problem at once, each naming its node and what it received.
"""
from __future__ import annotations

import copy
import json
import math
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .modules import REGISTRY, ParamError, ShapeError, resolve_params

FORMAT = "convdesigner.graph"
VERSION = 1
Shape = tuple[int, ...]
MAX_ID_LENGTH = 64
# Path separators and what Windows file names cannot hold; ids name HDF5 groups and files.
_ID_FORBIDDEN = '/\\:*?"<>|'


class GraphFormatError(ValueError):
    """The document is not a well-formed graph (wrong format, duplicate ids, dangling edges)."""


def node_id_problem(node_id: object) -> str | None:
    """Why node_id cannot name a node (an HDF5 group and a file name), or None when it can."""
    if not isinstance(node_id, str) or not node_id:
        return f"a node id is a non-empty string. Received: {node_id!r}"
    return _id_problem(node_id)


@lru_cache(maxsize=1 << 16)   # a graph is checked as it is built, read and analysed
def _id_problem(node_id: str) -> str | None:
    if len(node_id) > MAX_ID_LENGTH:
        return (f"a node id has at most {MAX_ID_LENGTH} characters. Received: {len(node_id)} "
                f"characters ({node_id[:20]!r}...)")
    if node_id in (".", ".."):
        return f"a node id cannot be '.' or '..'. Received: {node_id!r}"
    if node_id != node_id.strip():
        return f"a node id cannot start or end with whitespace. Received: {node_id!r}"
    for char in node_id:
        if char in _ID_FORBIDDEN or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn",
                                                                 "Zl", "Zp"):
            name = unicodedata.name(char, "a control character")
            return (f"a node id cannot hold {char!r} (U+{ord(char):04X}, {name}). "
                    f"Received: {node_id!r}")
    return None


@dataclass(frozen=True)
class GraphError:
    node_id: str | None
    message: str

    def __str__(self) -> str:
        return f"node {self.node_id!r}: {self.message}" if self.node_id else self.message


class GraphValidationError(ValueError):
    """The graph has one or more problems; .errors lists all of them."""

    def __init__(self, errors: list[GraphError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class Node:
    id: str
    type: str
    params: dict = field(default_factory=dict)
    pos: list[float] | None = None

    def to_dict(self) -> dict:
        data = {"id": self.id, "type": self.type, "params": copy.deepcopy(self.params)}
        if self.pos is not None:
            data["pos"] = list(self.pos)
        return data


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    port: int = 0

    def to_dict(self) -> dict:
        return {"from": self.src, "to": self.dst, "port": self.port}


@dataclass
class Analysis:
    """What validation and shape inference found: per-node results and every error."""

    order: list[str]
    params: dict[str, dict]
    in_shapes: dict[str, list[Shape]]
    shapes: dict[str, Shape]
    param_counts: dict[str, int]
    flops: dict[str, int]
    errors: list[GraphError]
    unused: list[str] = field(default_factory=list)
    """Nodes whose output reaches no Output: never trained or run (a dead-end branch)."""

    @property
    def ok(self) -> bool:
        return not self.errors

    def totals(self) -> tuple[int, int]:
        """(parameters, FLOPs) of the nodes the network runs (unused ones left out)."""
        skip = set(self.unused)
        return (sum(v for k, v in self.param_counts.items() if k not in skip),
                sum(v for k, v in self.flops.items() if k not in skip))

    def errors_by_node(self) -> dict[str | None, list[str]]:
        grouped: dict[str | None, list[str]] = {}
        for error in self.errors:
            grouped.setdefault(error.node_id, []).append(error.message)
        return grouped


@dataclass(frozen=True)
class Group:
    """A named block of nodes the designer draws together (collapsed: as one box). The engine
    ignores groups; they travel with the graph so that the file reopens as it was."""

    id: str
    name: str
    nodes: tuple[str, ...]
    collapsed: bool = False

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "nodes": list(self.nodes),
                "collapsed": self.collapsed}


class Graph:
    def __init__(self, nodes: list[Node] | None = None, edges: list[Edge] | None = None,
                 name: str = "untitled", groups: list[Group] | None = None):
        self.name = name
        self.nodes: dict[str, Node] = {}
        for node in nodes or []:
            problem = node_id_problem(node.id)
            if problem:
                raise GraphFormatError(problem)
            if node.id in self.nodes:
                raise GraphFormatError(f"duplicate node id {node.id!r}")
            self.nodes[node.id] = node
        self.edges: list[Edge] = list(edges or [])
        for edge in self.edges:
            for end in (edge.src, edge.dst):
                if end not in self.nodes:
                    raise GraphFormatError(f"edge {edge.src!r} -> {edge.dst!r} names a node "
                                           f"that does not exist: {end!r}")
        self.groups: list[Group] = list(groups or [])
        grouped: set[str] = set()
        if len({group.id for group in self.groups}) != len(self.groups):
            raise GraphFormatError("two groups have the same id")
        for group in self.groups:
            for node_id in group.nodes:
                if node_id not in self.nodes or node_id in grouped:
                    raise GraphFormatError(f"group {group.id!r} names a node that does not "
                                           f"exist or is in another group: {node_id!r}")
                grouped.add(node_id)

    # -- document -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Any) -> Graph:
        if not isinstance(doc, dict):
            raise GraphFormatError(f"a graph document is a JSON object. Received: "
                                   f"{type(doc).__name__}")
        if doc.get("format") != FORMAT:
            raise GraphFormatError(f'format must be "{FORMAT}". Received: {doc.get("format")!r}')
        if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
            raise GraphFormatError(f"version must be an integer up to {VERSION}. "
                                   f"Received: {doc.get('version')!r}")
        unknown = set(doc) - {"format", "version", "name", "nodes", "edges", "groups"}
        if unknown:
            raise GraphFormatError(f"unknown graph fields: {', '.join(sorted(unknown))}")
        nodes = [_node_from_dict(i, raw) for i, raw in enumerate(_list(doc, "nodes"))]
        edges = [_edge_from_dict(i, raw) for i, raw in enumerate(_list(doc, "edges"))]
        groups = [_group_from_dict(i, raw) for i, raw in enumerate(_list(doc, "groups"))]
        return cls(nodes, edges, name=str(doc.get("name", "untitled")), groups=groups)

    def to_dict(self) -> dict:
        """The graph JSON; "groups" only when there are some (the engine ignores them)."""
        data = {"format": FORMAT, "version": VERSION, "name": self.name,
                "nodes": [node.to_dict() for node in self.nodes.values()],
                "edges": [edge.to_dict() for edge in self.edges]}
        if self.groups:
            data["groups"] = [group.to_dict() for group in self.groups]
        return data

    @classmethod
    def from_json(cls, text: str | bytes) -> Graph:
        """Parse a document; text that is not UTF-8 or not JSON, nests too deeply, or holds a
        number no graph can (NaN, Infinity, over 4300 digits) is a GraphFormatError."""
        try:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except UnicodeDecodeError as err:
            raise GraphFormatError(f"not UTF-8 text: byte {err.object[err.start]:#04x} at "
                                   f"position {err.start}") from None
        except json.JSONDecodeError as err:
            raise GraphFormatError(f"not valid JSON: {err}") from None
        except RecursionError:
            raise GraphFormatError("not a graph: JSON nested too deeply") from None
        except GraphFormatError:
            raise
        except ValueError as err:  # an integer beyond int()'s digit limit
            raise GraphFormatError(f"not valid JSON: {err}".split("; use sys.")[0]) from None
        try:
            return cls.from_dict(doc)
        except RecursionError:
            raise GraphFormatError("not a graph: a value is nested too deeply") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def load_json(cls, path: str | Path) -> Graph:
        try:
            return cls.from_json(Path(path).read_bytes())
        except OSError as err:
            raise GraphFormatError(f"{path}: cannot read ({err.strerror or err})") from None
        except GraphFormatError as err:
            raise GraphFormatError(f"{path}: {err}") from None

    def save_json(self, path: str | Path) -> None:
        atomic_write_text(Path(path), self.to_json() + "\n")

    def copy(self) -> Graph:
        return Graph.from_dict(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and self.to_dict() == other.to_dict()

    # -- structure ------------------------------------------------------------------------
    def inputs_of(self, node_id: str) -> list[Edge]:
        return sorted((e for e in self.edges if e.dst == node_id), key=lambda e: e.port)

    def consumers_of(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def inputs_by_node(self) -> dict[str, list[Edge]]:
        """inputs_of for every node at once, in one pass over the edges."""
        wired: dict[str, list[Edge]] = {node_id: [] for node_id in self.nodes}
        for edge in sorted(self.edges, key=lambda e: e.port):
            wired[edge.dst].append(edge)
        return wired

    def ancestors(self, node_id: str) -> set[str]:
        """node_id and every node that feeds it, directly or not."""
        wired = self.inputs_by_node()
        seen, stack = set(), [node_id]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(e.src for e in wired[current])
        return seen

    def nodes_of_type(self, type_name: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == type_name]

    def topological_order(self, against_wires: bool = False) -> list[str]:
        """Kahn's order (stable in document order); nodes on a cycle, and after one (before one,
        against_wires), are left out."""
        indegree = {node_id: 0 for node_id in self.nodes}
        targets: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for edge in self.edges:
            src, dst = (edge.dst, edge.src) if against_wires else (edge.src, edge.dst)
            indegree[dst] += 1
            targets[src].append(dst)
        ready = deque(node_id for node_id, d in indegree.items() if d == 0)
        order = []
        while ready:
            node_id = ready.popleft()
            order.append(node_id)
            for dst in targets[node_id]:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
        return order

    # -- validation and shapes ------------------------------------------------------------
    def analyze(self) -> Analysis:
        return analyze(self)

    def validate(self) -> list[GraphError]:
        return analyze(self).errors

    def check(self) -> Analysis:
        """The analysis, or GraphValidationError listing every problem."""
        result = analyze(self)
        if result.errors:
            raise GraphValidationError(result.errors)
        return result

    def infer_shapes(self) -> dict[str, Shape]:
        return self.check().shapes

    @property
    def input_node(self) -> Node:
        return self.nodes_of_type("Input")[0]

    @property
    def output_node(self) -> Node:
        return self.nodes_of_type("Output")[0]


def _list(doc: dict, key: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise GraphFormatError(f"{key} must be a list. Received: {type(value).__name__}")
    return value


def _refuse_constant(name: str):
    raise GraphFormatError(f"{name} is not a number a graph can hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise GraphFormatError(f"{text} is out of range for a number a graph can hold")
    return value


def _group_from_dict(index: int, raw: Any) -> Group:
    where = f"groups[{index}]"
    if not isinstance(raw, dict) or set(raw) - {"id", "name", "nodes", "collapsed"}:
        raise GraphFormatError(f"{where} must be an object with id, name, nodes and collapsed. "
                               f"Received: {raw!r}")
    group_id, name, nodes = raw.get("id"), raw.get("name", raw.get("id")), raw.get("nodes")
    collapsed = raw.get("collapsed", False)
    if not isinstance(group_id, str) or not isinstance(name, str) \
            or not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes) \
            or not isinstance(collapsed, bool):
        raise GraphFormatError(f"{where}: id and name are strings, nodes a list of node ids, "
                               f"collapsed true or false. Received: {raw!r}")
    return Group(group_id, name, tuple(nodes), collapsed)


def _node_from_dict(index: int, raw: Any) -> Node:
    where = f"nodes[{index}]"
    if not isinstance(raw, dict):
        raise GraphFormatError(f"{where} must be an object. Received: {raw!r}")
    unknown = set(raw) - {"id", "type", "params", "pos"}
    if unknown:
        raise GraphFormatError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    node_id, type_name = raw.get("id"), raw.get("type")
    problem = node_id_problem(node_id)
    if problem:
        raise GraphFormatError(f"{where}: {problem}")
    if not isinstance(type_name, str):
        raise GraphFormatError(f"node {node_id!r} needs a string type. Received: {type_name!r}")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise GraphFormatError(f"node {node_id!r}: params must be an object. Received: {params!r}")
    pos = raw.get("pos")
    if pos is not None and not (isinstance(pos, list) and len(pos) == 2
                                and all(isinstance(v, (int, float)) for v in pos)):
        raise GraphFormatError(f"node {node_id!r}: pos must be [x, y]. Received: {pos!r}")
    return Node(node_id, type_name, copy.deepcopy(params), list(pos) if pos is not None else None)


def _edge_from_dict(index: int, raw: Any) -> Edge:
    if not isinstance(raw, dict) or set(raw) - {"from", "to", "port"} \
            or not isinstance(raw.get("from"), str) or not isinstance(raw.get("to"), str):
        raise GraphFormatError(f'edges[{index}] must be {{"from": id, "to": id, "port": n}}. '
                               f"Received: {raw!r}")
    port = raw.get("port", 0)
    if not isinstance(port, int) or isinstance(port, bool) or port < 0:
        raise GraphFormatError(f"edges[{index}] port must be a non-negative integer. "
                               f"Received: {port!r}")
    return Edge(raw["from"], raw["to"], port)


def analyze(graph: Graph) -> Analysis:
    """Validate every node and infer shapes where the inputs allow; collect all errors."""
    errors: list[GraphError] = []
    resolved: dict[str, dict] = {}

    def fail(node_id: str | None, message: str) -> None:
        errors.append(GraphError(node_id, message))

    for node in graph.nodes.values():
        problem = node_id_problem(node.id)
        if problem:
            fail(node.id, problem)
        mt = REGISTRY.get(node.type)
        if mt is None:
            fail(node.id, f"unknown module type {node.type!r} (known: {', '.join(REGISTRY)})")
            continue
        try:
            resolved[node.id] = resolve_params(mt, node.params)
        except ParamError as err:
            for problem in err.problems:
                fail(node.id, problem)

    wired = graph.inputs_by_node()
    wiring_ok: set[str] = set()
    for node in graph.nodes.values():
        mt = REGISTRY.get(node.type)
        if mt is None:
            continue
        edges = wired[node.id]
        ports = [e.port for e in edges]
        count = len(edges)
        if len(set(ports)) != len(ports):
            fail(node.id, f"an input port has more than one wire. Received ports: {ports}")
        elif mt.max_inputs is not None and count > mt.max_inputs:
            fail(node.id, f"too many inputs: {node.type} takes "
                          f"{mt.max_inputs or 'no'} input{'s' * (mt.max_inputs != 1)}. "
                          f"Received: {count}")
        elif count < mt.min_inputs:
            fail(node.id, f"unconnected input: {node.type} needs "
                          f"{'at least ' * (mt.max_inputs is None)}{mt.min_inputs} "
                          f"input{'s' * (mt.min_inputs != 1)}. Received: {count}")
        elif ports != list(range(count)):
            fail(node.id, f"unconnected input port {min(set(range(count)) - set(ports))}. "
                          f"Received ports: {ports}")
        else:
            wiring_ok.add(node.id)

    for type_name in ("Input", "Output"):
        found = graph.nodes_of_type(type_name)
        if not found:
            fail(None, f"the graph has no {type_name} node")
        for node in found[1:]:
            fail(node.id, f"the graph has several {type_name} nodes ({len(found)}, the first "
                          f"{found[0].id!r}); it takes one")

    order = graph.topological_order()
    ordered = set(order)
    looped = set() if len(ordered) == len(graph.nodes) else (
        set(graph.nodes) - ordered - set(graph.topological_order(against_wires=True)))
    for node_id in graph.nodes:
        if node_id in looped:
            fail(node_id, "is part of a cycle (a wire loops back to it)")
        elif node_id not in ordered:
            fail(node_id, "follows a cycle (its input waits on the loop)")

    shapes: dict[str, Shape] = {}
    in_shapes: dict[str, list[Shape]] = {}
    counts: dict[str, int] = {}
    flops: dict[str, int] = {}
    for node_id in order:
        if node_id not in resolved or node_id not in wiring_ok:
            continue
        sources = [e.src for e in wired[node_id]]
        if not all(src in shapes for src in sources):
            continue
        mt, params = REGISTRY[graph.nodes[node_id].type], resolved[node_id]
        ins = [shapes[src] for src in sources]
        try:
            out = tuple(mt.infer(params, ins))
        except ShapeError as err:
            message = str(err)
            upstream = sources[0] if len(sources) == 1 else None
            if "larger than the padded input" in message and upstream is not None \
                    and graph.nodes[upstream].type != "Input":   # point back at the cause
                message += (f"; its input comes from {upstream} "
                            f"({'x'.join(map(str, shapes[upstream]))})")
            fail(node_id, message)
            continue
        shapes[node_id], in_shapes[node_id] = out, ins
        counts[node_id] = sum(math.prod(s) for s in mt.arrays(params, ins).values())
        flops[node_id] = int(mt.flops(params, ins, out))

    outputs = graph.nodes_of_type("Output")
    used = graph.ancestors(outputs[0].id) | {outputs[0].id} if len(outputs) == 1 else set(order)
    unused = [n for n in order if n not in used]
    return Analysis([n for n in order if n in shapes], resolved, in_shapes, shapes, counts,
                    flops, errors, unused)
