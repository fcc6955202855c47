"""ONNX: export (a table keyed by module type) and import (a table keyed by ONNX operation).

Export writes opset 17 with a dynamic batch axis; every node and initializer is named after the
graph's node ids ("c1", "c1/weight"). Import reads the operations PyTorch's exporter writes and
refuses, in one line naming the node and the attribute, anything convdesigner cannot express.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..modules._common import window_padding
from . import InteropError, Model, _proto, write_atomic

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
    e.node(op_type, args, nid, **_window(p, p["size"], (1,) * len(p["size"])), **attrs)


_REDUCE = {"max": "ReduceMax", "avg": "ReduceMean", "l2": "ReduceL2"}


def _channel_pool(e, nid, p, ins, out, args, w):
    shape = [0, out[0], p["size"], *ins[0][1:]]  # 0: keep the batch axis
    grouped = e.node("Reshape", [args[0], e.const(f"{nid}/groups", np.array(shape, np.int64))],
                     f"{nid}/grouped", f"{nid}/group")
    e.node(_REDUCE[p["mode"]], [grouped], nid, axes=[2], keepdims=0)


def _global_pool(e, nid, p, ins, out, args, w):
    op_type = {"avg": "GlobalAveragePool", "max": "GlobalMaxPool"}[p["mode"]]
    e.node("Flatten", [e.node(op_type, args, f"{nid}/pooled", nid)], nid, f"{nid}/flatten",
           axis=1)


def _dropout(e, nid, p, ins, out, args, w):
    e.node("Dropout", [args[0], e.const(f"{nid}/ratio", np.array(p["rate"], np.float32))], nid)


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
    "Dropout": _dropout,  # the identity in inference
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
        if type_name not in EXPORTERS:
            raise InteropError(f"node {nid!r}: module type {type_name} has no ONNX mapping")
        EXPORTERS[type_name](e, nid, p, ins, out, [names[s] for s in sources], arrays)
        names[nid] = nid
        if type_name == "Output":
            graph_output = _proto.value_info(nid, ["batch", *out])
    return _proto.model(model.graph.name, e.nodes, e.initializers, [graph_input], [graph_output],
                        OPSET, IR_VERSION, "convdesigner", __version__)


def export_onnx(model: Model, path: str | Path, raw_inputs: bool = False) -> None:
    write_atomic(path, to_onnx(model, raw_inputs))


# -- import ---------------------------------------------------------------------------------------

@dataclass
class _Value:
    """A data tensor of the source: the node that computes it and the rank ONNX gives it
    (without the batch axis); a global pool's [C, 1, 1] is convdesigner's [C]."""

    node: str
    rank: int
    stage: str = "data"  # "input", "centred" (input - mean): the normalisation
    group: int = 0  # channels reshaped into groups of this size (a ChannelPool's first half)


class _Importer:
    def __init__(self, onnx, proto, builder):
        self.onnx, self.b = onnx, builder
        self.opsets = {o.domain or "": o.version for o in proto.opset_import}
        self.values: dict[str, _Value] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.uses: dict[str, int] = {}
        self.node = None
        self.batch = 1  # the batch size a Shape of the data reads

    # helpers the op table uses
    def where(self, node=None) -> str:
        node = node or self.node
        return f"node {node.name or node.output[0]!r} ({node.op_type})"

    def refuse(self, attribute: str | None, why: str):
        detail = f" attribute {attribute}:" if attribute else ""
        raise InteropError(f"{self.where()}:{detail} {why}")

    def attr(self, name: str, default=None):
        for a in self.node.attribute:
            if a.name == name:
                value = self.onnx.helper.get_attribute_value(a)
                # a float attribute is float32: 1e-5 rather than 9.999999747378752e-06
                return float(str(np.float32(value))) if isinstance(value, float) else value
        return default

    def data(self, i: int = 0) -> _Value:
        name = self.node.input[i]
        if name not in self.values:
            self.refuse(None, f"input {i} ({name!r}) must be the data flowing through the network, "
                              "not a constant")
        value = self.values[name]
        if value.stage != "data" and self.node.op_type not in ("Sub", "Div"):
            value = self.normalized(value)
        if value.group and self.node.op_type not in _REDUCE.values():
            self.refuse(None, "reads channels reshaped into groups; convdesigner only reduces "
                              "them over the group (ChannelPool)")
        return value

    def const(self, i: int, what: str, required: bool = True) -> np.ndarray | None:
        if i >= len(self.node.input) or not self.node.input[i]:
            if required:
                self.refuse(None, f"{what} is missing")
            return None
        name = self.node.input[i]
        if name not in self.consts:
            self.refuse(None, f"{what} ({name!r}) must be a constant (an initializer or a "
                              "constant subgraph)")
        return self.consts[name]

    def add(self, type_name: str, params: dict, sources: list[_Value], arrays=None,
            rank: int | None = None) -> _Value:
        name = self.node.name or self.node.output[0]
        if name.endswith("/" + self.node.op_type):  # PyTorch's "/conv1/Conv" -> "conv1"
            name = name[:-len(self.node.op_type) - 1]
        node_id = self.b.add(self.where(), name, type_name, params, [v.node for v in sources],
                             arrays)
        return _Value(node_id, len(self.b.shapes[node_id]) if rank is None else rank)

    def shape(self, value: _Value) -> tuple[int, ...]:
        return self.b.shapes[value.node]

    def normalized(self, value: _Value) -> _Value:
        """The input once the source's normalisation (Sub, Div) is over."""
        return _Value(value.node, value.rank)

    def channelwise(self, array: np.ndarray, value: _Value, what: str) -> np.ndarray:
        """The constant's value per channel (it broadcasts as [1, C, 1, ...]), or refused."""
        shape = self.shape(value)
        try:
            return np.broadcast_to(array, (1, shape[0]) + (1,) * (len(shape) - 1)).reshape(-1)
        except ValueError:
            self.refuse(None, f"{what} of shape {list(np.shape(array))} is not one value per "
                              f"channel of {list(shape)}")


def _padding(im: _Importer, value: _Value, kernel, strides, dilations, conv: bool):
    """convdesigner's padding for the node's pads/auto_pad: a list, or "same"; else refused."""
    dims = len(kernel)
    auto_pad = im.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad == "VALID":
        return [0] * dims
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        spatial = im.shape(value)[1:]
        totals = [max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                  for n, k, s, d in zip(spatial, kernel, strides, dilations)]
        if all(t % 2 == 0 for t in totals):
            return [t // 2 for t in totals]
        if conv and auto_pad == "SAME_UPPER" and set(strides) == {1}:
            return "same"
        im.refuse("auto_pad", f"{auto_pad} pads {totals} cells in total, unevenly; convdesigner "
                              f"pads evenly, or \"same\" (extra cell at the end, stride 1)")
    pads = list(im.attr("pads", [0] * 2 * dims))
    begin, end = pads[:dims], pads[dims:]
    if begin == end:
        return begin
    totals = [d * (k - 1) for k, d in zip(kernel, dilations)]
    if conv and set(strides) == {1} and totals == [b + e for b, e in zip(begin, end)] \
            and begin == [t // 2 for t in totals]:
        return "same"
    im.refuse("pads", f"asymmetric padding {pads} (begin {begin}, end {end}); convdesigner pads "
                      "both sides equally, or \"same\"")


def _conv_in(im: _Importer):
    x, weight = im.data(), im.const(1, "the weight")
    bias = im.const(2, "the bias", required=False)
    dims = weight.ndim - 2
    if dims not in (1, 2, 3):
        im.refuse(None, f"a weight of shape {list(weight.shape)} is not a 1D, 2D or 3D conv's")
    kernel = list(im.attr("kernel_shape", weight.shape[2:]))
    strides, dilations = list(im.attr("strides", [1] * dims)), list(im.attr("dilations",
                                                                            [1] * dims))
    params = {"filters": int(weight.shape[0]), "kernel_size": kernel, "stride": strides,
              "padding": _padding(im, x, kernel, strides, dilations, conv=True),
              "dilation": dilations, "groups": int(im.attr("group", 1)), "bias": bias is not None}
    arrays = {"weight": weight, **({"bias": bias} if bias is not None else {})}
    return im.add(f"Conv{dims}D", params, [x], arrays)


def _pool_in(mode: str):
    def convert(im: _Importer):
        x = im.data()
        if len(im.node.output) > 1 and im.uses.get(im.node.output[1]):
            im.refuse(None, "its second output (the argmax indices) is used")
        kernel = list(im.attr("kernel_shape"))
        dims = len(kernel)
        strides = list(im.attr("strides", [1] * dims))
        if any(d != 1 for d in im.attr("dilations", [1] * dims)):
            im.refuse("dilations", "dilated pooling; convdesigner pools contiguous windows")
        if mode == "l2" and im.attr("p", 2) != 2:
            im.refuse("p", f"p={im.attr('p')}; convdesigner's l2 pooling is p=2")
        padding = _padding(im, x, kernel, strides, [1] * dims, conv=False)
        if mode == "avg" and any(padding) and not im.attr("count_include_pad", 0):
            im.refuse("count_include_pad", "0 with padding: the divisor leaves padded cells out; "
                                           "convdesigner counts them (count_include_pad=1)")
        if im.attr("ceil_mode", 0):
            spatial = im.shape(x)[1:]
            floor = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(spatial, padding, kernel,
                                                                     strides)]
            ceil = [-(-(n + 2 * p - k) // s) + 1 for n, p, k, s in zip(spatial, padding, kernel,
                                                                       strides)]
            if floor != ceil:
                im.refuse("ceil_mode", f"1 gives {ceil} positions where convdesigner's floor "
                                       f"gives {floor}")
        params = {"mode": mode, "size": kernel, "stride": strides, "padding": padding}
        return im.add(f"Pool{dims}D", params, [x])
    return convert


def _global_pool_in(mode: str):
    def convert(im: _Importer):
        x = im.data()
        return im.add("GlobalPool", {"mode": mode}, [x], rank=x.rank)
    return convert


def _flat(im: _Importer, x: _Value) -> _Value:
    if len(im.shape(x)) == 1:
        return _Value(x.node, 1)
    return im.add("Flatten", {}, [x])


def _flatten_in(im: _Importer):
    x = im.data()
    if im.attr("axis", 1) not in (1, 1 - (x.rank + 1)):
        im.refuse("axis", f"{im.attr('axis')}: convdesigner flattens everything but the batch "
                          "axis (axis=1)")
    return _flat(im, x)


def _reshape_in(im: _Importer):
    x, target = im.data(), [int(v) for v in im.const(1, "the target shape")]
    features = int(np.prod(im.shape(x)))
    if len(target) == 2 and target[0] in (0, -1, im.batch) and target[1] in (-1, features) \
            and target != [-1, -1]:
        return _flat(im, x)
    shape = im.shape(x)
    if len(target) == len(shape) + 2 and target[0] in (0, im.batch) and target[3:] == \
            list(shape[1:]) and target[1] * target[2] == shape[0] and target[2] > 0:
        return _Value(x.node, x.rank, group=target[2])
    im.refuse("shape", f"reshapes to {target}; convdesigner reshapes only to a flat "
                       f"[batch, {features}]")


def _squeeze_in(im: _Importer):
    x = im.data()
    axes = im.attr("axes")
    if axes is None and len(im.node.input) > 1:
        axes = im.const(1, "the axes")
    if x.rank > len(im.shape(x)) and axes is not None \
            and sorted(a % (x.rank + 1) for a in axes) == list(range(2, x.rank + 1)):
        return _Value(x.node, 1)
    im.refuse("axes", "convdesigner squeezes only a global pool's spatial axes")


def _reduce_in(mode: str):
    def convert(im: _Importer):
        x = im.data()
        axes = im.attr("axes")
        if axes is None and len(im.node.input) > 1:
            axes = im.const(1, "the axes")
        if not x.group or axes is None or [a % (x.rank + 2) for a in axes] != [2] \
                or im.attr("keepdims", 1):
            im.refuse("axes", "convdesigner reduces only over channel groups: Reshape to "
                              "[batch, C/size, size, ...] then reduce axis 2 with keepdims=0")
        return im.add("ChannelPool", {"mode": mode, "size": x.group}, [_Value(x.node, x.rank)])
    return convert


def _gemm_in(im: _Importer):
    x, b = im.data(), im.const(1, "B")
    c = im.const(2, "C", required=False)
    if im.attr("transA", 0):
        im.refuse("transA", "1: the data must be the left operand as it is")
    weight = im.attr("alpha", 1.0) * (b if im.attr("transB", 0) else b.T)
    arrays = {"weight": weight}
    if c is not None:
        arrays["bias"] = np.broadcast_to(im.attr("beta", 1.0) * c, (weight.shape[0],))
    return im.add("Dense", {"units": int(weight.shape[0]), "bias": c is not None},
                  [_flat_input(im, x)], arrays)


def _flat_input(im: _Importer, x: _Value) -> _Value:
    if len(im.shape(x)) != 1:
        im.refuse(None, f"a matrix product of a [{', '.join(map(str, im.shape(x)))}] input; "
                        "convdesigner's Dense takes a flat input (Flatten first)")
    return x


def _matmul_in(im: _Importer):
    x, w = im.data(), im.const(1, "the right operand")
    if w.ndim != 2:
        im.refuse(None, f"a right operand of shape {list(w.shape)} is not a matrix")
    return im.add("Dense", {"units": int(w.shape[1]), "bias": False}, [_flat_input(im, x)],
                  {"weight": w.T})


def _add_in(im: _Importer):
    consts = [i for i, name in enumerate(im.node.input) if name in im.consts]
    if not consts:
        return _sum_in(im)
    x = im.data(1 - consts[0])
    node = im.b.nodes[x.node]
    if node["type"] != "Dense" or node["params"]["bias"] or im.uses[im.node.input[1 - consts[0]]] \
            != 1:
        im.refuse(None, "adds a constant; convdesigner takes that only as the bias of a "
                        "MatMul's Dense")
    units = im.shape(x)[0]
    node["params"]["bias"] = True
    im.b.weights[f"{x.node}/bias"] = np.broadcast_to(im.consts[im.node.input[consts[0]]],
                                                     (units,)).astype(np.float32)
    return x


def _sum_in(im: _Importer):
    values = [im.data(i) for i in range(len(im.node.input))]
    return values[0] if len(values) == 1 else im.add("Add", {}, values, rank=values[0].rank)


def _concat_in(im: _Importer):
    values = [im.data(i) for i in range(len(im.node.input))]
    if im.attr("axis") % (values[0].rank + 1) != 1:
        im.refuse("axis", f"{im.attr('axis')}: convdesigner concatenates channels (axis 1)")
    return im.add("Concat", {}, values, rank=values[0].rank)


def _batch_norm_in(im: _Importer):
    x = im.data()
    if im.attr("training_mode", 0) or any(im.uses.get(o) for o in im.node.output[1:]):
        im.refuse("training_mode", "1: only the inference form is imported")
    if im.attr("spatial", 1) != 1:
        im.refuse("spatial", "0 normalises every position on its own; convdesigner's BatchNorm "
                             "is per channel")
    arrays = {key: im.const(i + 1, key) for i, key in enumerate(
        ("weight", "bias", "running_mean", "running_var"))}
    momentum = min(max(float(str(np.float32(1.0 - im.attr("momentum", 0.9)))), 0.0), 1.0)
    return im.add("BatchNorm", {"eps": float(im.attr("epsilon", 1e-5)), "momentum": momentum},
                  [x], arrays, rank=x.rank)


def _activation_in(function: str, alpha: float | None = None):
    def convert(im: _Importer):
        x = im.data()
        params = {"function": function}
        if alpha is not None:
            params["alpha"] = float(im.attr("alpha", alpha))
        return im.add("Activation", params, [x], rank=x.rank)
    return convert


def _softmax_in(im: _Importer):
    x = im.data()
    axis = im.attr("axis", -1 if im.opsets.get("", OPSET) >= 13 else 1)
    if axis % (x.rank + 1) != 1:
        im.refuse("axis", f"{axis}: convdesigner's Softmax is over the channels (axis 1)")
    return im.add("Softmax", {}, [x], rank=x.rank)


def _dropout_in(im: _Importer):
    x = im.data()
    if any(im.uses.get(o) for o in im.node.output[1:]):
        im.refuse(None, "its mask output is used")
    ratio = im.attr("ratio")
    if ratio is None:
        given = im.const(1, "the ratio", required=False)
        ratio = 0.5 if given is None else float(str(given.reshape(-1)[0].astype(np.float32)))
    return im.add("Dropout", {"rate": min(float(ratio), 0.99)}, [x], rank=x.rank)


def _normalize_in(im: _Importer):
    """Sub then Div of constants straight on the input: the source's input normalisation."""
    stage = {"Sub": "input", "Div": ("input", "centred")}[im.node.op_type]
    name = next((n for n in im.node.input[:1] if n in im.values), None)
    if name is None or im.values[name].stage not in stage or im.uses[name] != 1 \
            or im.node.input[1] not in im.consts:
        im.refuse(None, "convdesigner takes Sub and Div of a constant only as the input "
                        "normalisation, right after the input")
    x = im.values[name]
    per_channel = im.channelwise(im.consts[im.node.input[1]], x, "the constant")
    channels = im.shape(x)[0]
    mean, std = im.b.normalization or (np.zeros(channels), np.ones(channels))
    if im.node.op_type == "Sub":
        mean = per_channel
    else:
        if not (per_channel > 0).all():
            im.refuse(None, "divides by a value <= 0; a normalisation's std is positive")
        std = per_channel
    im.b.normalization = (mean, std)
    return _Value(x.node, x.rank, "centred" if im.node.op_type == "Sub" else "data")


IMPORTERS = {
    "Conv": _conv_in,
    "MaxPool": _pool_in("max"), "AveragePool": _pool_in("avg"), "LpPool": _pool_in("l2"),
    "GlobalAveragePool": _global_pool_in("avg"), "GlobalMaxPool": _global_pool_in("max"),
    "Gemm": _gemm_in, "MatMul": _matmul_in, "Add": _add_in, "Sum": _sum_in,
    "Flatten": _flatten_in, "Reshape": _reshape_in, "Squeeze": _squeeze_in,
    **{op_type: _reduce_in(mode) for mode, op_type in _REDUCE.items()},
    "BatchNormalization": _batch_norm_in,
    "Relu": _activation_in("relu"), "LeakyRelu": _activation_in("leaky_relu", 0.01),
    "Elu": _activation_in("elu", 1.0), "Tanh": _activation_in("tanh"),
    "Sigmoid": _activation_in("sigmoid"), "Softplus": _activation_in("softplus"),
    "Softmax": _softmax_in, "Dropout": _dropout_in, "Concat": _concat_in,
    "Identity": lambda im: im.data(),
    "Sub": _normalize_in, "Div": _normalize_in,
}
"""ONNX operation -> converter(importer) that adds nodes for im.node and returns its output."""


def _require_onnx():
    try:
        import onnx
        import onnx.numpy_helper
        import onnx.reference
    except ImportError:
        raise InteropError("importing ONNX needs the onnx package: pip install onnx") from None
    return onnx


def import_onnx(path: str | Path, builder_cls):
    """The source's graph as a Builder (see _build.py), or InteropError."""
    onnx = _require_onnx()
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends
        raise InteropError(f"{path}: not a readable ONNX model ({err})") from None
    g = proto.graph
    external = [t.name for t in g.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise InteropError(f"{path}: initializer {external[0]!r} is stored in another file "
                           "(external data); convdesigner reads one file")
    im = _Importer(onnx, proto, builder_cls(g.name or Path(path).stem))
    im.consts = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in im.consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise InteropError(f"{path}: the graph has {len(inputs)} inputs and {len(g.output)} "
                           "outputs; convdesigner networks have one of each")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not 2 <= len(shape) <= 5 or not all(v and v > 0 for v in shape[1:]):
        raise InteropError(f"{path}: input {inputs[0].name!r} has shape {shape}; convdesigner "
                           "needs [batch, C], [batch, C, L], [batch, C, H, W] or "
                           "[batch, C, D, H, W] with fixed sizes after the batch axis")
    im.batch = shape[0] or 1
    node_id = im.b.add_input(inputs[0].name, shape[1:])
    im.values[inputs[0].name] = _Value(node_id, len(shape) - 1, "input")

    needed = {g.output[0].name}
    for node in reversed(g.node):
        if needed & set(node.output):
            needed.update(i for i in node.input if i)
    for node in g.node:
        for name in node.input:
            im.uses[name] = im.uses.get(name, 0) + 1
    for node in g.node:
        if not needed & set(node.output):
            continue
        im.node = node
        if node.op_type == "Erf":   # refused here, not at the Div before it (GELU's x / sqrt 2)
            im.refuse(None, "an error function, as in GELU: convdesigner's activations are "
                            "relu, leaky_relu, elu, tanh, sigmoid and softplus")
    for node in g.node:
        if not needed & set(node.output):
            continue
        im.node = node
        if node.domain not in ("", "ai.onnx"):
            im.refuse(None, f"operations of domain {node.domain!r} are not supported")
        if all(i in im.consts or not i for i in node.input) or (
                node.op_type == "Shape" and node.input[0] in im.values):
            _fold(im, node)
            continue
        if node.op_type not in IMPORTERS:
            im.refuse(None, f"unsupported operation (convdesigner imports "
                            f"{', '.join(sorted(IMPORTERS))})")
        im.values[node.output[0]] = IMPORTERS[node.op_type](im)
    out = g.output[0].name
    if out not in im.values:
        raise InteropError(f"{path}: the output {out!r} does not depend on the input")
    result = im.values[out]
    if result.stage != "data":
        result = im.normalized(result)
    return im.b, result.node, out


def _fold(im: _Importer, node) -> None:
    """Evaluate a node whose inputs are constants (a Shape reads the data's known shape, the
    batch axis as the source declares it) with onnx's reference evaluator."""
    if node.op_type == "Shape" and node.input[0] in im.values:
        value = im.values[node.input[0]]
        shape = im.shape(value) + (1,) * (value.rank - len(im.shape(value)))
        im.consts[node.output[0]] = np.array([im.batch, *shape], np.int64)[
            im.attr("start", 0):im.attr("end")]
        return
    from onnx.reference import ReferenceEvaluator

    try:
        feeds = {name: im.consts[name] for name in node.input if name}
        results = ReferenceEvaluator(node, opsets=im.opsets).run(None, feeds)
    except Exception as err:  # the evaluator raises whatever the operation's code raises
        im.refuse(None, f"cannot evaluate this constant subgraph ({type(err).__name__}: {err})")
    im.consts.update(zip(node.output, (np.asarray(r) for r in results)))
