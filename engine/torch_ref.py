"""The same graph in PyTorch, for benchmarks and cross-checks (torch comes from the bench extra)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .graph import Graph


def build_torch_model(graph: Graph, weights: dict[str, np.ndarray] | None = None):
    """A torch.nn.Module that runs the graph with PyTorch's layers (weights copied if given)."""
    import torch
    from torch import nn

    analysis = graph.check()
    used = graph.ancestors(graph.output_node.id)
    order = [n for n in analysis.order if n in used]
    layers = nn.ModuleDict()
    for node_id in order:
        node, p = graph.nodes[node_id], analysis.params[node_id]
        ins = analysis.in_shapes.get(node_id, [])
        layer = _layer(nn, node.type, p, ins)
        if layer is not None:
            layers[node_id] = layer
    if weights:
        with torch.no_grad():
            for key, value in weights.items():
                node_id, name = key.split("/")
                getattr(layers[node_id], name).copy_(torch.from_numpy(np.asarray(value)))

    sources = {n: [e.src for e in graph.inputs_of(n)] for n in order}
    input_id, output_id = graph.input_node.id, graph.output_node.id

    class GraphModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            values = {input_id: x}
            for node_id in order:
                if node_id in (input_id, output_id):
                    continue
                args = [values[s] for s in sources[node_id]]
                node_type = graph.nodes[node_id].type
                if node_type == "Add":
                    out = args[0]
                    for other in args[1:]:
                        out = out + other
                elif node_type == "Concat":
                    out = torch.cat(args, dim=1)
                else:
                    out = self.layers[node_id](args[0])
                values[node_id] = out
            return values[sources[output_id][0]]

    return GraphModule()


def _layer(nn, node_type: str, p: dict, ins: list):
    if node_type.startswith("Conv"):
        dims = int(node_type[4])
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
        padding = p["padding"] if p["padding"] == "same" else tuple(p["padding"])
        return conv(ins[0][0], p["filters"], tuple(p["kernel_size"]), tuple(p["stride"]), padding,
                    tuple(p["dilation"]), p["groups"], p["bias"])
    if node_type.startswith("Pool"):
        dims = int(node_type[4])
        args = (tuple(p["size"]), tuple(p["stride"]), tuple(p["padding"]))
        if p["mode"] == "max":
            return (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[dims - 1](*args)
        if p["mode"] == "avg":
            return (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[dims - 1](*args)
        return _custom_layers()[0](dims, *args)
    if node_type == "Dense":
        return nn.Linear(ins[0][0], p["units"], p["bias"])
    if node_type == "Flatten":
        return nn.Flatten()
    if node_type == "Activation":
        return {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(p["alpha"]),
                "elu": lambda: nn.ELU(p["alpha"]), "tanh": lambda: nn.Tanh(),
                "sigmoid": lambda: nn.Sigmoid(), "softplus": lambda: nn.Softplus()}[
                    p["function"]]()
    if node_type == "Softmax":
        return nn.Softmax(dim=1)
    if node_type == "Dropout":
        return nn.Dropout(p["rate"])
    if node_type == "BatchNorm":
        norm = (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[len(ins[0]) - 1]
        return norm(ins[0][0], eps=p["eps"], momentum=p["momentum"])
    if node_type == "GlobalPool":
        return _custom_layers()[1](p["mode"])
    if node_type == "ChannelPool":
        return _custom_layers()[2](p["mode"], p["size"])
    return None


@lru_cache(maxsize=1)
def _custom_layers():
    """The layers PyTorch lacks as modules: L2 pooling as DESIGN.md defines it (sqrt of the sum
    of squares, zero padding), global pooling to [C], and channel pooling."""
    import math

    import torch.nn.functional as F
    from torch import nn

    class L2Pool(nn.Module):
        def __init__(self, dims, size, stride, padding):
            super().__init__()
            self.pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[dims - 1]
            self.size, self.stride, self.padding = size, stride, padding

        def forward(self, x):
            return (self.pool(x * x, self.size, self.stride, self.padding)
                    * math.prod(self.size)).sqrt()

    class GlobalPool(nn.Module):
        def __init__(self, mode):
            super().__init__()
            self.mode = mode

        def forward(self, x):
            flat = x.flatten(2)
            return flat.amax(2) if self.mode == "max" else flat.mean(2)

    class ChannelPool(nn.Module):
        def __init__(self, mode, size):
            super().__init__()
            self.mode, self.size = mode, size

        def forward(self, x):
            grouped = x.unflatten(1, (x.shape[1] // self.size, self.size))
            if self.mode == "max":
                return grouped.amax(2)
            if self.mode == "avg":
                return grouped.mean(2)
            return (grouped * grouped).sum(2).sqrt()

    return L2Pool, GlobalPool, ChannelPool
