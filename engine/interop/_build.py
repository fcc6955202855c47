"""Build a convdesigner graph and its weights node by node while importing, inferring each node's
shape as it is added."""
from __future__ import annotations

import re

import numpy as np

from ..graph import Graph
from ..modules import REGISTRY, ParamError, ShapeError, resolve_params
from . import InteropError


class Builder:
    def __init__(self, name: str):
        self.name = name
        self.nodes: dict[str, dict] = {}
        self.edges: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.normalization: tuple[np.ndarray, np.ndarray] | None = None

    def unique_id(self, name: str, fallback: str) -> str:
        base = re.sub(r"[/\s]+", ".", name).strip(".") or fallback
        node_id, n = base, 1
        while node_id in self.nodes:
            n += 1
            node_id = f"{base}_{n}"
        return node_id

    def add(self, where: str, name: str, type_name: str, params: dict, sources: list[str],
            arrays: dict[str, np.ndarray] | None = None) -> str:
        """Add a node fed by sources (node ids, in port order); return its id. where names the
        source's node in errors."""
        node_id = self.unique_id(name, type_name.lower())
        mt = REGISTRY[type_name]
        ins = [self.shapes[s] for s in sources]
        try:
            resolved = resolve_params(mt, params)
            shape = tuple(mt.infer(resolved, ins))
        except (ParamError, ShapeError) as err:
            raise InteropError(f"{where}: as a {type_name}: {err}") from None
        arrays = {k: np.asarray(v, np.float32) for k, v in (arrays or {}).items()}
        expected = {**mt.arrays(resolved, ins), **mt.state(resolved, ins)}
        for key, want in expected.items():
            if key not in arrays or arrays[key].shape != tuple(want):
                got = list(arrays[key].shape) if key in arrays else "none"
                raise InteropError(f"{where}: {key} has shape {got}; a {type_name} on input "
                                   f"{list(ins[0])} needs {list(want)}")
            if not np.isfinite(arrays[key]).all():
                raise InteropError(f"{where}: {key} holds NaN or Inf")
            self.weights[f"{node_id}/{key}"] = arrays[key]
        self.nodes[node_id] = {"id": node_id, "type": type_name, "params": params}
        self.edges += [{"from": s, "to": node_id, "port": i} for i, s in enumerate(sources)]
        self.shapes[node_id] = shape
        return node_id

    def add_input(self, name: str, shape) -> str:
        return self.add(name, name, "Input", {"shape": [int(v) for v in shape]}, [])

    def finish(self, source: str, name: str = "output") -> Graph:
        """Add the Output (cross_entropy for a flat result, mse otherwise), lay the nodes out."""
        loss = "cross_entropy" if len(self.shapes[source]) == 1 else "mse"
        self.add(name, name, "Output", {"loss": loss}, [source])
        depth: dict[str, int] = {}
        rows: dict[int, int] = {}
        for node_id in self.nodes:  # added in execution order
            sources = [e["from"] for e in self.edges if e["to"] == node_id]
            depth[node_id] = 1 + max((depth[s] for s in sources), default=-1)
            row = rows[depth[node_id]] = rows.get(depth[node_id], -1) + 1
            self.nodes[node_id]["pos"] = [220 * depth[node_id], 110 * row]
        return Graph.from_dict({"format": "convdesigner.graph", "version": 1, "name": self.name,
                                "nodes": list(self.nodes.values()), "edges": self.edges})

    def data_spec(self, graph: Graph) -> dict:
        """The model file's /data spec: no data source (the imported file is not one), and the
        input normalisation the source applied (the identity when it applied none, so that
        predict and train feed it raw inputs)."""
        channels = graph.input_node.params["shape"][0]
        mean, std = self.normalization or (np.zeros(channels), np.ones(channels))
        return {"source": "", "input_shape": list(graph.input_node.params["shape"]),
                "class_names": [], "train_range": None, "val_range": None,
                "normalization": {"mean": [float(v) for v in mean],
                                  "std": [float(v) for v in std]}}
