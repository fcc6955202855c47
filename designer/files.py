"""Reading and writing documents: graph JSON, and HDF5 model files through engine.modelfile
(imported when first needed), keeping trained weights only while they fit the graph."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine import Graph, GraphFormatError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MODEL_SUFFIXES = (".h5", ".hdf5")


class FileProblem(Exception):
    """A file could not be read or written; the message is for the user."""


@dataclass
class Trained:
    """What a model file holds besides the graph, and the structure of the graph it fits."""

    structure: str
    weights: dict = field(default_factory=dict)
    optimizer: dict | None = None
    history: dict | None = None
    data_spec: dict | None = None
    training: dict | None = None


def structure_key(graph: Graph) -> str:
    """The graph without positions or name: trained weights fit a graph while this is equal."""
    doc = graph.to_dict()
    nodes = [{k: v for k, v in node.items() if k != "pos"} for node in doc["nodes"]]
    return json.dumps({"nodes": nodes, "edges": doc["edges"]}, sort_keys=True)


def is_model_file(path: Path) -> bool:
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def load_document(path: str | Path) -> tuple[Graph, Trained | None]:
    """The graph in path (.json graph or .h5 model) and, for a model, its trained state."""
    path = Path(path)
    if not path.is_file():
        raise FileProblem(f"{path}: no such file")
    if is_model_file(path):
        try:
            from engine.modelfile import load_model
        except ImportError as err:
            raise FileProblem(f"{path.name}: model files cannot be read here ({err})") from None
        try:
            model = load_model(path)
        except Exception as err:  # a foreign or damaged file can fail a reader in any way
            raise FileProblem(f"{path.name}: {err}") from None
        return model.graph, Trained(structure_key(model.graph), dict(model.weights),
                                    model.optimizer, model.history, model.data_spec,
                                    model.training)
    try:
        return Graph.load_json(path), None
    except (GraphFormatError, OSError, UnicodeDecodeError) as err:
        raise FileProblem(str(err)) from None


def weights_fit(trained: Trained | None, graph: Graph) -> bool:
    return trained is not None and trained.structure == structure_key(graph)


def fresh_weights(graph: Graph, data_spec: dict | None = None) -> Trained:
    """Newly initialised (untrained) weights for graph, as a model file needs every array."""
    from engine import compile_network

    return Trained(structure_key(graph), compile_network(graph).weights(), data_spec=data_spec)


def save_document(path: str | Path, graph: Graph, trained: Trained | None) -> Trained | None:
    """Write graph to path, as JSON or as a model file; a model file gets the trained state when
    it still fits the graph, else fresh weights. Returns the trained state the file now holds."""
    path = Path(path)
    try:
        if path.suffix.lower() not in MODEL_SUFFIXES:
            graph.save_json(path)
            return trained
        from engine.modelfile import save_model

        if not weights_fit(trained, graph):
            trained = fresh_weights(graph, trained.data_spec if trained else None)
        save_model(path, graph, trained.weights, optimizer=trained.optimizer,
                   history=trained.history, data_spec=trained.data_spec,
                   training=trained.training)
        return trained
    except Exception as err:  # disk full, permissions, an invalid graph: all for the user
        raise FileProblem(f"{path.name}: {err}") from None
