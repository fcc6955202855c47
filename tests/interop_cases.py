"""Networks for the interop tests: every template plus graphs that use every module type and
parameter (odd "same" padding, dilation, groups, every pool mode, 1D/3D), saved as trained-looking
model files (random BatchNorm statistics, a stored normalisation), and predict's output on them."""
from __future__ import annotations

import numpy as np

from engine.cli import main as cli
from engine.graph import Graph
from engine.modelfile import save_model
from engine.network import compile_network
from engine.templates import load_template, template_names


def graph(name: str, shape: list[int], layers: list[tuple], loss: str = "cross_entropy") -> Graph:
    """layers: (id, type, params[, sources]); sources default to the layer before."""
    nodes = [{"id": "in", "type": "Input", "params": {"shape": shape}}]
    edges, previous = [], "in"
    for node_id, type_name, params, *sources in layers:
        nodes.append({"id": node_id, "type": type_name, "params": params})
        for port, src in enumerate(sources[0] if sources else [previous]):
            edges.append({"from": src, "to": node_id, "port": port})
        previous = node_id
    nodes.append({"id": "out", "type": "Output", "params": {"loss": loss}})
    edges.append({"from": previous, "to": "out", "port": 0})
    return Graph.from_dict({"format": "convdesigner.graph", "version": 1, "name": name,
                            "nodes": nodes, "edges": edges})


CASES = {
    "every-2d": lambda: graph("every-2d", [3, 12, 12], [
        ("c1", "Conv2D", {"filters": 8, "kernel_size": 4, "padding": "same"}),
        ("a1", "Activation", {"function": "leaky_relu", "alpha": 0.2}),
        ("c2", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": [1, 2], "dilation": [1, 2],
                          "groups": 2}),
        ("bn", "BatchNorm", {"eps": 1e-3, "momentum": 0.2}),
        ("a2", "Activation", {"function": "elu", "alpha": 0.7}),
        ("p1", "Pool2D", {"mode": "l2", "size": 3, "stride": 2, "padding": 1}),
        ("b1", "Conv2D", {"filters": 8, "kernel_size": 1, "bias": False}),
        ("a3", "Activation", {"function": "tanh"}),
        ("add", "Add", {}, ["p1", "a3", "p1"]),
        ("p2", "Pool2D", {"mode": "avg", "size": 3, "stride": 1, "padding": 1}),
        ("cp1", "ChannelPool", {"mode": "avg", "size": 2}),
        ("cp2", "ChannelPool", {"mode": "max", "size": 2}, ["add"]),
        ("cat", "Concat", {}, ["cp1", "cp2"]),
        ("cp3", "ChannelPool", {"mode": "l2", "size": 4}),
        ("drop", "Dropout", {"rate": 0.3}),
        ("pm", "Pool2D", {"mode": "max", "size": 2, "padding": 1}),
        ("flat", "Flatten", {}),
        ("d1", "Dense", {"units": 16}),
        ("a4", "Activation", {"function": "sigmoid"}),
        ("d2", "Dense", {"units": 10, "bias": False}),
        ("a5", "Activation", {"function": "softplus"}),
        ("soft", "Softmax", {}),
    ]),
    "every-1d": lambda: graph("every-1d", [2, 40], [
        ("c1", "Conv1D", {"filters": 6, "kernel_size": 5, "stride": 2}),
        ("p1", "Pool1D", {"mode": "max", "size": 3, "stride": 2, "padding": 1}),
        ("bn1", "BatchNorm", {}),
        ("a1", "Activation", {"function": "relu"}),
        ("p2", "Pool1D", {"mode": "l2", "size": 2}),
        ("p3", "Pool1D", {"mode": "avg", "size": 2, "padding": 1}),
        ("g", "GlobalPool", {"mode": "max"}),
        ("d", "Dense", {"units": 4, "bias": False}),
        ("bn2", "BatchNorm", {}),
    ], loss="mse"),
    "every-3d": lambda: graph("every-3d", [2, 6, 6, 6], [
        ("c1", "Conv3D", {"filters": 4, "kernel_size": 2, "padding": "same"}),
        ("p1", "Pool3D", {"mode": "l2", "size": 2, "stride": 1, "padding": 1}),
        ("c2", "Conv3D", {"filters": 4, "kernel_size": 2, "stride": 2, "dilation": 1}),
        ("p2", "Pool3D", {"mode": "avg", "size": 3, "stride": 1, "padding": 1}),
        ("p3", "Pool3D", {"mode": "max", "size": 2, "stride": 1}),
        ("g", "GlobalPool", {"mode": "avg"}),
        ("d", "Dense", {"units": 3}),
    ]),
}
NAMES = [*template_names(), *CASES]


def case_graph(name: str) -> Graph:
    return CASES[name]() if name in CASES else load_template(name)


def trained_like(name: str, path, seed: int = 1) -> Graph:
    """Save `name` as a model file with random weights, BatchNorm statistics and normalisation."""
    g = case_graph(name)
    rng = np.random.default_rng(seed)
    weights = compile_network(g, seed=seed).weights()
    for key, value in weights.items():
        if key.endswith(("running_var", "bn/weight")):
            weights[key] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif key.endswith(("running_mean", "/bias")):
            weights[key] = rng.normal(0, 0.3, value.shape).astype(np.float32)
    channels = g.input_node.params["shape"][0]
    norm = {"mean": rng.uniform(0.2, 0.6, channels).tolist(),
            "std": rng.uniform(0.5, 2.0, channels).tolist()}
    save_model(path, g, weights, data_spec={"normalization": norm})
    return g


def inputs(g: Graph, n: int = 4, seed: int = 0) -> np.ndarray:
    shape = g.input_node.params["shape"]
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def predict(model, x: np.ndarray, tmp_path) -> np.ndarray:
    """What `convdesigner predict` writes for x."""
    np.save(tmp_path / "x.npy", x)
    assert cli(["predict", str(model), "--input", str(tmp_path / "x.npy"),
                "--output", str(tmp_path / "y.npy")]) == 0
    return np.load(tmp_path / "y.npy")
