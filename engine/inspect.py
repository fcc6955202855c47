"""What the inspection panels show, as plain arrays: filters, activations, saliency, receptive
fields, confusion matrices and per-layer health statistics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph
from .modules import REGISTRY
from .network import Network


@dataclass(frozen=True)
class ReceptiveField:
    """Unit i of a node sees input cells [offset + i*jump, offset + i*jump + size) per axis."""

    size: tuple[int, ...]
    jump: tuple[int, ...]
    offset: tuple[int, ...]

    def region(self, index, input_spatial) -> tuple[slice, ...]:
        """The input cells one unit sees, clipped to the input."""
        return tuple(slice(max(0, o + i * j), min(n, o + i * j + s))
                     for o, i, j, s, n in zip(self.offset, index, self.jump, self.size,
                                              input_spatial))


def receptive_fields(graph: Graph) -> dict[str, ReceptiveField | None]:
    """Per node, its receptive field on the input; None once spatial layout is gone (Flatten,
    Dense, GlobalPool: each unit sees the whole input). Where paths join, the widest wins."""
    analysis = graph.analyze()
    fields: dict[str, ReceptiveField | None] = {}
    for node_id in analysis.order:
        node = graph.nodes[node_id]
        mt = REGISTRY[node.type]
        if node.type == "Input":
            dims = len(analysis.shapes[node_id]) - 1
            fields[node_id] = ReceptiveField((1,) * dims, (1,) * dims, (0,) * dims) \
                if dims else None
            continue
        sources = [fields.get(e.src) for e in graph.inputs_of(node_id)]
        if any(f is None for f in sources) or len(analysis.shapes[node_id]) < 2:
            fields[node_id] = None
            continue
        field = max(sources, key=lambda f: np.prod(f.size))
        if mt.kernel_geometry is not None:
            kernel, stride, pad_begin, dilation = mt.kernel_geometry(analysis.params[node_id])
            span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
            field = ReceptiveField(
                tuple(s + (k - 1) * j for s, k, j in zip(field.size, span, field.jump)),
                tuple(j * s for j, s in zip(field.jump, stride)),
                tuple(o - p * j for o, p, j in zip(field.offset, pad_begin, field.jump)))
        fields[node_id] = field
    return fields


def filters(net: Network, node_id: str) -> np.ndarray:
    """A conv node's weights [filters, C/groups, *k], each filter scaled to [0, 1] on its own."""
    weight = net.backend.to_host(net.params[f"{node_id}/weight"]).astype(np.float32)
    flat = weight.reshape(weight.shape[0], -1)
    low, high = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    scaled = (flat - low) / np.maximum(high - low, 1e-12)
    return scaled.reshape(weight.shape)


def activations(net: Network, x: np.ndarray, node_ids: list[str]) -> dict[str, np.ndarray]:
    """The outputs of the given nodes for one sample x (no batch axis), in evaluation mode."""
    net.forward(x[None], training=False)
    return {node_id: net.activation(node_id)[0] for node_id in node_ids}


def saliency(net: Network, x: np.ndarray, class_index: int) -> np.ndarray:
    """|d score[class] / d input| for one sample: which input cells the class score is
    sensitive to. Same shape as x."""
    logits = net.forward(x[None], training=False)
    dy = np.zeros_like(logits)
    dy[0, class_index] = 1.0
    return np.abs(net.backward(dy)[0])


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def predict_classes(net: Network, x: np.ndarray, batch_size: int = 256,
                    normalization=None) -> np.ndarray:
    from .train import normalize_into

    mean, std = (normalization.mean, normalization.std) if normalization else (None, None)
    buffer = np.empty((min(batch_size, len(x)), *x.shape[1:]), net.dtype)
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        inputs = normalize_into(buffer[:len(chunk)], chunk, mean, std)
        out.append(np.argmax(net.forward(inputs), axis=1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def layer_health(net: Network) -> dict[str, dict[str, float]]:
    """From the last training forward/backward: activation mean/std, share of dead (zero) ReLU
    outputs, and for layers with weights, gradient norm and update-to-weight ratio scale."""
    health: dict[str, dict[str, float]] = {}
    for node_id in net.order:
        act = net.backend.to_host(net._acts[node_id])
        stats = {"mean": float(act.mean()), "std": float(act.std())}
        node = net.graph.nodes[node_id]
        if node.type == "Activation" and net.analysis.params[node_id]["function"] == "relu":
            per_unit_alive = (act > 0).any(axis=0)
            stats["dead"] = float(1.0 - per_unit_alive.mean())
        key = f"{node_id}/weight"
        if key in net.params:
            weight = net.backend.to_host(net.params[key])
            grad = net.backend.to_host(net.grads[key])
            stats["grad_norm"] = float(np.linalg.norm(grad))
            stats["grad_to_weight"] = float(np.linalg.norm(grad) /
                                            max(np.linalg.norm(weight), 1e-12))
        health[node_id] = stats
    return health
