"""Learner aids as pure functions of a Graph and its Analysis: receptive fields on the input and
what a conv layer's weight sharing saves against a dense layer between the same shapes."""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.modules import REGISTRY


@dataclass(frozen=True)
class ReceptiveField:
    """size: input cells per spatial axis that one output unit sees (None: the whole input);
    jump: input cells between neighbouring output units, per axis."""

    size: tuple[int, ...] | None
    jump: tuple[int, ...]

    def text(self) -> str:
        if self.size is None:
            return "whole input"
        return "x".join(str(v) for v in self.size) if self.size else "-"


def receptive_fields(graph, analysis) -> dict[str, ReceptiveField]:
    """Receptive field of every node whose shape is known, propagated from the Input with
    r_out = r_in + (k - 1) * d * j_in and j_out = j_in * s for conv and pool windows. Once the
    spatial axes are gone (a flat output: Flatten, Dense, GlobalPool) a unit sees the whole input;
    where paths join, the widest field wins. The same rules as engine.inspect.receptive_fields,
    computed from an Analysis the designer already has instead of a fresh one."""
    wired: dict[str, list] = {}
    for edge in sorted(graph.edges, key=lambda e: e.port):
        wired.setdefault(edge.dst, []).append(edge.src)
    fields: dict[str, ReceptiveField] = {}
    for node_id in analysis.order:
        mt = REGISTRY[graph.nodes[node_id].type]
        sources = [fields.get(src) for src in wired.get(node_id, ())]
        if not sources:
            axes = len(analysis.shapes[node_id]) - 1
            fields[node_id] = ReceptiveField((1,) * axes, (1,) * axes)
            continue
        if any(field is None for field in sources):
            continue
        if sources[0].size == ():  # a flat Input has no spatial axes to speak of
            fields[node_id] = sources[0]
        elif len(analysis.shapes[node_id]) < 2 or any(f.size is None for f in sources):
            fields[node_id] = ReceptiveField(None, sources[0].jump)
        elif mt.kernel_geometry is not None:
            (field,) = sources
            kernel, stride, _, dilation = mt.kernel_geometry(analysis.params[node_id])
            fields[node_id] = ReceptiveField(
                tuple(r + (k - 1) * d * j for r, k, d, j in
                      zip(field.size, kernel, dilation, field.jump, strict=True)),
                tuple(j * s for j, s in zip(field.jump, stride, strict=True)))
        else:
            fields[node_id] = max(sources, key=lambda f: math.prod(f.size))
    return fields


def dense_equivalent(in_shape, out_shape, bias: bool = True) -> int:
    """Weights a dense layer mapping in_shape to out_shape would need (one per pair of units)."""
    outputs = math.prod(out_shape)
    return math.prod(in_shape) * outputs + (outputs if bias else 0)
