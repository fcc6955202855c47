"""Models in and out (DESIGN.md 3.3 `export` and `import`): ONNX, PyTorch code, Keras.

Each format is one file holding a table keyed by module type (export) or by the source's
operation or layer name (import); there are no if-chains by type name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..graph import Graph


class InteropError(ValueError):
    """A model cannot be exported or imported: one line naming the node and what is wrong."""


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write a temporary file beside path (created with the user's umask, unlike mkstemp's 0600),
    then rename it over path; a one-line InteropError if that fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InteropError(f"{path}: cannot write ({err.strerror})") from None


@dataclass
class Model:
    """What the exporters read: a valid graph, its weights ("node/name" -> array, state included)
    and the input normalisation (per-channel mean and std) or None."""

    graph: Graph
    weights: dict[str, np.ndarray]
    normalization: tuple[np.ndarray, np.ndarray] | None = None
    best: bool = False   # the weights are a best epoch's
    initial: bool = False  # a graph or template: freshly initialised weights

    @classmethod
    def from_session(cls, session) -> Model:
        """The model open in a Session (the designer's): its graph, the best epoch's weights
        where it keeps them (else the current ones) and its stored normalisation."""
        weights = session.best.weights if session.best else session.weights()
        return cls(session.graph, dict(weights), _normalization(session.data_spec))

    def nodes(self):
        """(node id, type, resolved params, input shapes, output shape, input node ids) of every
        node the Output depends on, in execution order."""
        graph = self.graph
        analysis = graph.check()
        used = graph.ancestors(graph.output_node.id)
        for node_id in analysis.order:
            if node_id in used:
                yield (node_id, graph.nodes[node_id].type, analysis.params[node_id],
                       analysis.in_shapes.get(node_id, []), analysis.shapes[node_id],
                       [e.src for e in graph.inputs_of(node_id)])


def open_model(source: str | Path, weights: str = "best") -> Model:
    """MODEL of the command line (model file, graph JSON or template) as export sees it: the
    file's /best weights unless weights="last" (or the file has none), its normalisation;
    a graph or template gets the initial weights `predict` would use."""
    from ..network import compile_network
    from ..session import load_source

    graph, model = load_source(source)
    if model is None:
        return Model(graph, compile_network(graph, seed=0).weights(), initial=True)
    best = getattr(model, "best", None) if weights != "last" else None
    return Model(graph, dict(best["weights"] if best else model.weights),
                 _normalization(model.data_spec), best=bool(best))


def _normalization(spec: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    from ..data import Normalization

    if not spec or "normalization" not in spec:
        return None
    norm = Normalization.from_dict(spec["normalization"])
    return norm.mean, norm.std
