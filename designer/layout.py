"""Layered (Sugiyama) layout with grandalf, and wire routes around node boxes (pure; no Qt).

Directions: "TB" (top to bottom: inputs on a node's top edge, its output at the bottom) and "LR"
(left to right). Positions are top-left corners, as the Graph stores them.
"""
from __future__ import annotations

from grandalf.graphs import Edge as GEdge
from grandalf.graphs import Graph as GGraph
from grandalf.graphs import Vertex
from grandalf.layouts import SugiyamaLayout

NODE_SIZE = (130.0, 66.0)  # the canvas draws nodes this size (taller with many inputs in LR)
GAP = (90.0, 40.0)  # LR: room between layers for a wire's shape label, and between rows
TB_GAP = (40.0, 46.0)  # TB: between nodes of a layer, and between layers
LANE = 24.0  # the width a long wire's lane takes in the layout, and its clearance from boxes
DIRECTIONS = ("TB", "LR")


class _View:
    def __init__(self, w: float, h: float):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


def layered_layout(graph, node_ids=None, origin=(0.0, 0.0), sizes: dict | None = None,
                   direction: str = "TB") -> dict[str, list[float]]:
    """Top-left positions for node_ids (default: all) laid out in layers along direction,
    parallel branches side by side, each long wire given a lane of its own; separate pieces
    of the graph sit side by side. sizes maps id -> (width, height)."""
    ids = list(graph.nodes) if node_ids is None else [i for i in graph.nodes if i in set(node_ids)]
    if not ids:
        return {}
    sizes = sizes or {}
    across = direction == "TB"  # grandalf lays layers top to bottom; LR swaps the axes

    def extent(node_id):
        w, h = sizes.get(node_id, NODE_SIZE)
        return (w, h) if across else (h, w)

    vertices = {i: Vertex(i) for i in ids}
    for node_id, vertex in vertices.items():
        vertex.view = _View(*extent(node_id))
    edges = [GEdge(vertices[e.src], vertices[e.dst]) for e in graph.edges
             if e.src in vertices and e.dst in vertices and e.src != e.dst]
    ggraph = GGraph(list(vertices.values()), edges)
    spaces = TB_GAP if across else (GAP[1], GAP[0])
    centres: dict[str, tuple[float, float]] = {}
    shift = 0.0
    for component in ggraph.C:
        layout = SugiyamaLayout(component)
        layout.xspace, layout.yspace = spaces
        layout.dw, layout.dh = LANE, spaces[1]
        roots = [v for v in component.sV if not v.e_in()]
        layout.init_all(roots=roots or [component.sV[0]])
        layout.draw()
        placed = [v for v in component.sV if v.data in vertices]
        left = min(v.view.xy[0] - v.view.w / 2 for v in placed)
        right = max(v.view.xy[0] + v.view.w / 2 for v in placed)
        for v in placed:
            centres[v.data] = (v.view.xy[0] - left + shift, v.view.xy[1])
        shift += right - left + spaces[0] * 2
    positions = {}
    for node_id, (x, y) in centres.items():
        w, h = extent(node_id)
        positions[node_id] = (x - w / 2, y - h / 2) if across else (y - h / 2, x - w / 2)
    left = min(p[0] for p in positions.values())
    top = min(p[1] for p in positions.values())
    return {i: [coord(p[0] - left + origin[0]), coord(p[1] - top + origin[1])]
            for i in ids for p in [positions[i]]}


def guess_direction(graph) -> str | None:
    """How a saved layout runs: "LR" when its wires go more across than down, "TB" when more
    down, None when no wire has both ends placed."""
    across = down = 0.0
    for edge in graph.edges:
        a, b = graph.nodes[edge.src].pos, graph.nodes[edge.dst].pos
        if a is not None and b is not None:
            across += abs(b[0] - a[0])
            down += abs(b[1] - a[1])
    if not across and not down:
        return None
    return "LR" if across > down else "TB"


def coord(value: float) -> float | int:
    """A position as saved: whole numbers stay ints so the JSON reads [240, 0]."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


Rect = tuple[float, float, float, float]  # left, top, right, bottom


def route(start: tuple[float, float], end: tuple[float, float], boxes: list[Rect],
          direction: str = "TB") -> list[tuple[float, float]]:
    """The bend points of a wire from an output port at start to an input port at end that
    passes no box: [start, end] when the straight corridor between them is clear, otherwise a
    detour along the nearest free lane beside the boxes in the way."""
    if direction == "LR":  # route in the transposed plane
        points = route(start[::-1], end[::-1], [(t, lf, b, r) for lf, t, r, b in boxes])
        return [p[::-1] for p in points]
    (sx, sy), (ex, ey) = start, end
    top, bottom = sy + LANE / 2, ey - LANE / 2
    if top >= bottom:  # the wire runs upwards: leave and enter by short stubs, go round
        top, bottom = sy + LANE, ey - LANE
    band = [b for b in boxes if b[1] < max(top, bottom) and b[3] > min(top, bottom)]
    low, high = min(sx, ex) - LANE / 2, max(sx, ex) + LANE / 2
    if sy < ey and not any(b[0] < high and b[2] > low for b in band):
        return [start, end]
    lane = min(_free_lanes(band, top, bottom, (sx + ex) / 2), key=lambda x: abs(x - (sx + ex) / 2))
    return [start, (sx, top), (lane, top), (lane, bottom), (ex, bottom), end]


def _free_lanes(band: list[Rect], top: float, bottom: float, middle: float) -> list[float]:
    """x positions of vertical lanes from top to bottom that keep LANE/2 clear of every box."""
    candidates = [middle] + [b[0] - LANE for b in band] + [b[2] + LANE for b in band]
    free = [x for x in candidates
            if not any(b[0] - LANE / 2 < x < b[2] + LANE / 2 for b in band)]
    return free or [max(b[2] for b in band) + LANE]
