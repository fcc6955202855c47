"""Automatic left-to-right layout: nodes layered by topological depth (pure; no Qt)."""
from __future__ import annotations

from collections import deque

NODE_SIZE = (130.0, 66.0)  # the canvas draws nodes this size (taller with many input ports)
GAP = (90.0, 40.0)  # room between layers for a wire's shape label


def layered_layout(graph, node_ids=None, origin=(0.0, 0.0), sizes: dict | None = None
                   ) -> dict[str, list[float]]:
    """Top-left positions for node_ids (default: all): x by longest path from a source within the
    chosen nodes, y stacked per layer in an order that follows the layer before (barycentres),
    each layer centred on the same horizontal line. sizes maps id -> (width, height)."""
    ids = list(graph.nodes) if node_ids is None else [i for i in graph.nodes if i in set(node_ids)]
    if not ids:
        return {}
    inside = set(ids)
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph.edges:
        if edge.src in inside and edge.dst in inside:
            preds[edge.dst].append(edge.src)
            succs[edge.src].append(edge.dst)

    indegree = {i: len(preds[i]) for i in ids}
    ready = deque(i for i in ids if indegree[i] == 0)
    depth: dict[str, int] = {}
    while ready:
        node_id = ready.popleft()
        depth[node_id] = max((depth[p] + 1 for p in preds[node_id]), default=0)
        for nxt in succs[node_id]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    for node_id in ids:  # nodes on a cycle have no depth; put them after the rest
        depth.setdefault(node_id, max(depth.values(), default=-1) + 1)

    layers: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node_id in ids:
        layers[depth[node_id]].append(node_id)
    rank: dict[str, int] = {}
    for layer in layers:
        layer.sort(key=lambda node_id: _barycentre(preds[node_id], rank))  # stable sort
        rank.update((node_id, i) for i, node_id in enumerate(layer))

    sizes = sizes or {}
    width = max(sizes.get(i, NODE_SIZE)[0] for i in ids)
    positions = {}
    for column, layer in enumerate(layers):
        heights = [sizes.get(i, NODE_SIZE)[1] for i in layer]
        y = -(sum(heights) + GAP[1] * (len(layer) - 1)) / 2
        for node_id, height in zip(layer, heights, strict=True):
            positions[node_id] = [column * (width + GAP[0]), y]
            y += height + GAP[1]
    left = min(p[0] for p in positions.values())
    top = min(p[1] for p in positions.values())
    return {i: [coord(p[0] - left + origin[0]), coord(p[1] - top + origin[1])]
            for i, p in positions.items()}


def coord(value: float) -> float | int:
    """A position as saved: whole numbers stay ints so the JSON reads [240, 0]."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def _barycentre(preds: list[str], rank: dict[str, int]) -> float:
    """Mean rank of a node's placed predecessors; nodes without any go last, in document order."""
    placed = [rank[p] for p in preds if p in rank]
    return sum(placed) / len(placed) if placed else float("inf")
