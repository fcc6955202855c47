"""Comparing training runs: the architecture diff of two graphs and the diff of two settings."""
from __future__ import annotations

from dataclasses import dataclass, field

from .modules import REGISTRY
from .modules.registry import resolve_params


@dataclass
class GraphDiff:
    """How graph b differs from graph a: node ids added and removed, parameters changed
    ({node: {param: (in a, in b)}}, a changed type under "type") and edges rewired."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, tuple]] = field(default_factory=dict)
    edges_added: list[tuple] = field(default_factory=list)
    edges_removed: list[tuple] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.edges_added
                    or self.edges_removed)

    def lines(self) -> list[str]:
        """One line per difference, for a list or a terminal."""
        out = [f"+ {n}" for n in self.added] + [f"- {n}" for n in self.removed]
        for node, params in self.changed.items():
            out += [f"~ {node}.{p}: {a} -> {b}" for p, (a, b) in params.items()]
        out += [f"+ edge {a} -> {b}:{port}" for a, b, port in self.edges_added]
        out += [f"- edge {a} -> {b}:{port}" for a, b, port in self.edges_removed]
        return out

    def summary(self) -> str:
        parts = [f"{len(self.added)} added" * bool(self.added),
                 f"{len(self.removed)} removed" * bool(self.removed),
                 f"{len(self.changed)} changed" * bool(self.changed)]
        return ", ".join(p for p in parts if p) or "rewired"


def _params(node: dict) -> dict:
    """A node's params with its type's defaults filled in, as the graph reads them."""
    try:
        return resolve_params(REGISTRY[node["type"]], node.get("params", {}))
    except (KeyError, ValueError):
        return dict(node.get("params", {}))


def graph_diff(a: dict, b: dict) -> GraphDiff:
    """The difference from graph JSON a to graph JSON b, nodes matched by id."""
    nodes_a = {n["id"]: n for n in a["nodes"]}
    nodes_b = {n["id"]: n for n in b["nodes"]}
    diff = GraphDiff(added=[n for n in nodes_b if n not in nodes_a],
                     removed=[n for n in nodes_a if n not in nodes_b])
    for node_id in (n for n in nodes_a if n in nodes_b):
        na, nb = nodes_a[node_id], nodes_b[node_id]
        if na["type"] != nb["type"]:
            diff.changed[node_id] = {"type": (na["type"], nb["type"])}
            continue
        pa, pb = _params(na), _params(nb)
        changed = {k: (pa.get(k), pb.get(k)) for k in sorted(pa.keys() | pb.keys())
                   if pa.get(k) != pb.get(k)}
        if changed:
            diff.changed[node_id] = changed
    edges = [{(e["from"], e["to"], e.get("port", 0)) for e in g["edges"]} for g in (a, b)]
    diff.edges_added = sorted(edges[1] - edges[0])
    diff.edges_removed = sorted(edges[0] - edges[1])
    return diff


def settings_diff(a: dict, b: dict) -> dict[str, tuple]:
    """{setting: (in a, in b)} for every training setting that differs."""
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def final(run: dict, key: str) -> float | None:
    """The last measured value of a history column of a run (None if never measured)."""
    values = [v for v in run["history"].get(key, []) if v is not None]
    return values[-1] if values else None
