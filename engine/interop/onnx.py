"""ONNX: export (a table keyed by module type) and import (a table keyed by ONNX operation).

Export writes opset 17 with a dynamic batch axis; every node and initializer is named after the
graph's node ids ("c1", "c1/weight"). Import reads the operations PyTorch's exporter writes and
refuses, in one line naming the node and the attribute, anything convdesigner cannot express.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..modules._common import window_padding
from . import InteropError, Model, _proto

OPSET, IR_VERSION = 17, 8


class _Emitter:
    """Collects the nodes and initializers of the graph being written."""

    def __init__(self):
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []

    def node(self, op_type: str, inputs: list[str], output: str, name: str | None = None,
             **attrs) -> str:
        self.nodes.append(_proto.node(op_type, inputs, [output], name or output, **attrs))
        return output

    def const(self, name: str, array) -> str:
        self.initializers.append(_proto.tensor(name, np.asarray(array)))
        return name


def _window(p: dict, kernel, dilation) -> dict:
    begin, total = window_padding(p["padding"], kernel, dilation, p["stride"])
    return {"kernel_shape": list(kernel), "strides": list(p["stride"]),
            "pads": [*begin, *(t - b for b, t in zip(begin, total))]}


def _conv(e, nid, p, ins, out, args, w):
    inputs = [args[0]] + [e.const(f"{nid}/{k}", w[k]) for k in ("weight", "bias") if k in w]
    e.node("Conv", inputs, nid, dilations=list(p["dilation"]), group=p["groups"],
           **_window(p, p["kernel_size"], p["dilation"]))


_POOL_OPS = {"max": ("MaxPool", {}), "avg": ("AveragePool", {"count_include_pad": 1}),
             "l2": ("LpPool", {"p": 2})}


def _pool(e, nid, p, ins, out, args, w):
    op_type, attrs = _POOL_OPS[p["mode"]]
    window = _window({**p, "padding": p["padding"]}, p["size"], (1,) * len(p["size"]))
    e.node(op_type, args, nid, **window, **attrs)


def _channel_pool(e, nid, p, ins, out, args, w):
    shape = [0, out[0], p["size"], *ins[0][1:]]  # 0: keep the batch axis
    grouped = e.node("Reshape", [args[0], e.const(f"{nid}/shape", np.array(shape, np.int64))],
                     f"{nid}/grouped")
    reduce = {"max": "ReduceMax", "avg": "ReduceMean", "l2": "ReduceL2"}[p["mode"]]
    e.node(reduce, [grouped], nid, axes=[2], keepdims=0)


def _global_pool(e, nid, p, ins, out, args, w):
    op_type = {"avg": "GlobalAveragePool", "max": "GlobalMaxPool"}[p["mode"]]
    e.node("Flatten", [e.node(op_type, args, f"{nid}/pooled")], nid, axis=1)


def _dense(e, nid, p, ins, out, args, w):
    inputs = [args[0]] + [e.const(f"{nid}/{k}", w[k]) for k in ("weight", "bias") if k in w]
    e.node("Gemm", inputs, nid, transB=1)


_ACTIVATIONS = {"relu": ("Relu", False), "leaky_relu": ("LeakyRelu", True),
                "elu": ("Elu", True), "tanh": ("Tanh", False), "sigmoid": ("Sigmoid", False),
                "softplus": ("Softplus", False)}


def _activation(e, nid, p, ins, out, args, w):
    op_type, has_alpha = _ACTIVATIONS[p["function"]]
    e.node(op_type, args, nid, **({"alpha": float(p["alpha"])} if has_alpha else {}))


def _batch_norm(e, nid, p, ins, out, args, w):
    inputs = [e.const(f"{nid}/{k}", w[k]) for k in ("weight", "bias", "running_mean",
                                                      "running_var")]
    e.node("BatchNormalization", [args[0], *inputs], nid, epsilon=float(p["eps"]),
           momentum=float(1.0 - p["momentum"]))  # ONNX's momentum weighs the old statistics


EXPORTERS = {
    **{f"Conv{d}D": _conv for d in (1, 2, 3)},
    **{f"Pool{d}D": _pool for d in (1, 2, 3)},
    "ChannelPool": _channel_pool,
    "GlobalPool": _global_pool,
    "Dense": _dense,
    "Flatten": lambda e, nid, p, ins, out, args, w: e.node("Flatten", args, nid, axis=1),
    "Activation": _activation,
    "Softmax": lambda e, nid, p, ins, out, args, w: e.node("Softmax", args, nid, axis=1),
    "Dropout": lambda e, nid, p, ins, out, args, w: e.node("Identity", args, nid),
    "BatchNorm": _batch_norm,
    "Add": lambda e, nid, p, ins, out, args, w: e.node("Add" if len(args) == 2 else "Sum",
                                                       args, nid),
    "Concat": lambda e, nid, p, ins, out, args, w: e.node("Concat", args, nid, axis=1),
    "Output": lambda e, nid, p, ins, out, args, w: e.node("Identity", args, nid),
}
"""Module type -> writer(emitter, node id, params, input shapes, output shape, input tensor
names, the node's arrays) that emits nodes ending in a tensor named after the node id."""


def to_onnx(model: Model, raw_inputs: bool = False) -> bytes:
    """The serialized ONNX model: input in predict's units (normalised by its first nodes unless
    raw_inputs), output the input of the Output node, batch axis named "batch"."""
    from .. import __version__

    e = _Emitter()
    names: dict[str, str] = {}
    graph_input = graph_output = None
    for nid, type_name, p, ins, out, sources, in model.nodes():
        if type_name == "Input":
            graph_input = _proto.value_info(nid, ["batch", *out])
            names[nid] = nid
            if model.normalization is not None and not raw_inputs:
                view = (-1,) + (1,) * (len(out) - 1)
                mean, std = (np.asarray(a, np.float32).reshape(view) for a in model.normalization)
                centred = e.node("Sub", [nid, e.const(f"{nid}/mean", mean)], f"{nid}/centred")
                names[nid] = e.node("Div", [centred, e.const(f"{nid}/std", std)],
                                    f"{nid}/normalized")
            continue
        prefix = f"{nid}/"
        arrays = {k[len(prefix):]: np.asarray(v, np.float32) for k, v in model.weights.items()
                  if k.startswith(prefix)}
        EXPORTERS[type_name](e, nid, p, ins, out, [names[s] for s in sources], arrays)
        names[nid] = nid
        if type_name == "Output":
            graph_output = _proto.value_info(nid, ["batch", *out])
    return _proto.model(model.graph.name, e.nodes, e.initializers, [graph_input], [graph_output],
                        OPSET, IR_VERSION, "convdesigner", __version__)


def export_onnx(model: Model, path: str | Path, raw_inputs: bool = False) -> None:
    from ..modelfile import _atomic_replace

    data = to_onnx(model, raw_inputs)
    try:
        _atomic_replace(Path(path), lambda tmp: Path(tmp).write_bytes(data))
    except OSError as err:
        raise InteropError(f"{path}: cannot write ({err.strerror})") from None
