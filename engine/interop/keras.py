"""Keras import: models saved by Keras 2 or 3 as .h5 (`model.save("x.h5")`) or as .keras archives,
read with h5py, zipfile and json only (no Keras at run time).

Channels-last models become channels-first: kernels are transposed, and a Dense after a Flatten
has its weight columns permuted to convdesigner's [C, ..] flattening order (Keras flattens channels
last whatever the data_format). A Rescaling right after the Input becomes the model's stored input
normalisation. LAYERS is keyed by Keras class name.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import InteropError


@dataclass
class _Value:
    node: str
    flat_from: tuple | None = None  # (channels, spatial): a Flatten of channels-last data
    raw_input: bool = False  # the Input itself, before any layer (where Rescaling may go)


class _Layer:
    def __init__(self, raw: dict):
        self.sources: list[str] = []
        self.class_name = raw.get("class_name", "?")
        self.config = raw.get("config", {})
        self.name = self.config.get("name") or raw.get("name") or self.class_name.lower()


class _Importer:
    def __init__(self, builder, weights, channels_last: bool):
        self.b, self.read_weights, self.channels_last = builder, weights, channels_last
        self.layer: _Layer | None = None
        self.readers: dict[str, int] = {}  # layer name -> how many layers read its output

    def refuse(self, what: str | None, why: str):
        detail = f" {what}:" if what else ""
        raise InteropError(f"layer {self.layer.name!r} ({self.layer.class_name}):{detail} {why}")

    def get(self, key: str, default=None):
        return self.layer.config.get(key, default)

    def weights(self, count: int) -> list[np.ndarray]:
        arrays = self.read_weights(self.layer.name)
        if len(arrays) != count:
            self.refuse(None, f"the file holds {len(arrays)} weight arrays, expected {count}")
        return arrays

    def shape(self, value: _Value) -> tuple[int, ...]:
        return self.b.shapes[value.node]

    def add(self, type_name: str, params: dict, sources: list[_Value], arrays=None,
            suffix: str = "", flat_from=None) -> _Value:
        where = f"layer {self.layer.name!r} ({self.layer.class_name})"
        node = self.b.add(where, self.layer.name + suffix, type_name, params,
                          [v.node for v in sources], arrays)
        return _Value(node, flat_from)

    def activation(self, value: _Value, name, argument: bool = False) -> _Value:
        """Keras' activation by name; argument: the `activation` argument of a Conv or Dense,
        which becomes a node of its own ("conv1_relu")."""
        if isinstance(name, dict):  # Keras 3 may serialise it as an object
            name = name.get("config", name.get("class_name"))
        if name in (None, "linear"):
            return value
        suffix = f"_{name}" if argument else ""
        if name == "softmax":
            return self.add("Softmax", {}, [self.unflatten(value)], suffix=suffix)
        if name not in _ACTIVATIONS:
            self.refuse("activation", f"{name!r} is not one of convdesigner's "
                                      f"({', '.join(['linear', 'softmax', *_ACTIVATIONS])})")
        function, alpha = _ACTIVATIONS[name]
        params = {"function": function, **({"alpha": alpha} if alpha is not None else {})}
        return self.add("Activation", params, [value], suffix=suffix, flat_from=value.flat_from)

    def unflatten(self, value: _Value) -> _Value:
        if value.flat_from and value.flat_from[0] > 1 and value.flat_from[1]:
            self.refuse(None, "reads flattened channels-last features other than through Dense, "
                              "BatchNormalization, Dropout or an activation")
        return value

    def channel_axis(self, value: _Value, axis, what: str) -> None:
        rank = len(self.shape(value)) + 1  # with the batch axis
        axes = [axis] if isinstance(axis, int) else list(axis)
        channel = rank - 1 if self.channels_last or rank == 2 else 1
        if len(axes) != 1 or axes[0] % rank != channel:
            self.refuse(what, f"{axis}: convdesigner works on the channel axis only")

    def padding(self, value: _Value, kernel, strides, dilation, conv: bool):
        mode = self.get("padding", "valid")
        if mode == "valid":
            return [0] * len(kernel)
        if mode != "same":
            self.refuse("padding", f"{mode!r}: convdesigner pads 'valid' or 'same'")
        spatial = self.shape(value)[1:]
        totals = [max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                  for n, k, s, d in zip(spatial, kernel, strides, dilation)]
        if conv and set(strides) == {1}:
            return "same"
        if not conv and self.layer.class_name.startswith("Average") and any(totals):
            self.refuse("padding", "'same' averages only the cells inside the input; "
                                   "convdesigner's average counts padded cells")
        if any(t % 2 for t in totals):
            self.refuse("padding", f"'same' with strides {list(strides)} pads {totals} cells in "
                                   f"total, more at the end; convdesigner pads both sides equally")
        return [t // 2 for t in totals]

    def permute_flat(self, array: np.ndarray, flat_from, axis: int) -> np.ndarray:
        """Reorder features from channels-last flattening (.., C) to convdesigner's (C, ..)."""
        if not flat_from:
            return array
        channels, spatial = flat_from
        moved = np.moveaxis(array, axis, -1)
        moved = moved.reshape(*moved.shape[:-1], *spatial, channels)
        moved = np.moveaxis(moved, -1, moved.ndim - len(spatial) - 1)
        return np.moveaxis(moved.reshape(*moved.shape[:-len(spatial) - 1], -1), -1, axis)


_ACTIVATIONS = {"relu": ("relu", None), "elu": ("elu", 1.0), "leaky_relu": ("leaky_relu", 0.2),
                "tanh": ("tanh", None), "sigmoid": ("sigmoid", None),
                "softplus": ("softplus", None)}


def _tuple(value, dims: int) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)] * dims


def _conv(dims: int):
    def convert(im: _Importer, inputs):
        (x,) = inputs
        kernel = _tuple(im.get("kernel_size"), dims)
        strides = _tuple(im.get("strides", 1), dims)
        dilation = _tuple(im.get("dilation_rate", 1), dims)
        bias = bool(im.get("use_bias", True))
        arrays = im.weights(1 + bias)
        weight = np.transpose(arrays[0], (dims + 1, dims, *range(dims)))  # [*k, in, out]
        params = {"filters": int(im.get("filters")), "kernel_size": kernel, "stride": strides,
                  "padding": im.padding(x, kernel, strides, dilation, conv=True),
                  "dilation": dilation, "groups": int(im.get("groups", 1)), "bias": bias}
        out = im.add(f"Conv{dims}D", params, [x],
                     {"weight": weight, **({"bias": arrays[1]} if bias else {})})
        return im.activation(out, im.get("activation"), argument=True)
    return convert


def _pool(dims: int, mode: str):
    def convert(im: _Importer, inputs):
        (x,) = inputs
        size = _tuple(im.get("pool_size", 2), dims)
        strides = _tuple(im.get("strides") or size, dims)
        params = {"mode": mode, "size": size, "stride": strides,
                  "padding": im.padding(x, size, strides, [1] * dims, conv=False)}
        return im.add(f"Pool{dims}D", params, [x])
    return convert


def _global_pool(mode: str):
    def convert(im: _Importer, inputs):
        if im.get("keepdims", False):
            im.refuse("keepdims", "True: convdesigner's GlobalPool gives [C]")
        return im.add("GlobalPool", {"mode": mode}, inputs)
    return convert


def _dense(im: _Importer, inputs):
    (x,) = inputs
    bias = bool(im.get("use_bias", True))
    arrays = im.weights(1 + bias)
    weight = im.permute_flat(arrays[0].T, x.flat_from, axis=1)
    out = im.add("Dense", {"units": int(im.get("units")), "bias": bias}, [_Value(x.node)],
                 {"weight": weight, **({"bias": arrays[1]} if bias else {})})
    return im.activation(out, im.get("activation"), argument=True)


def _flatten(im: _Importer, inputs):
    (x,) = inputs
    shape = im.shape(x)
    if len(shape) == 1:
        return x
    # Keras flattens channels last whatever the data_format (channels_first is moved there first)
    return im.add("Flatten", {}, [x], flat_from=(shape[0], shape[1:]))


def _batch_norm(im: _Importer, inputs):
    (x,) = inputs
    im.channel_axis(x, im.get("axis", -1), "axis")
    scale, center = bool(im.get("scale", True)), bool(im.get("center", True))
    arrays = im.weights(2 + scale + center)
    channels = len(arrays[-1])
    gamma = arrays.pop(0) if scale else np.ones(channels, np.float32)
    beta = arrays.pop(0) if center else np.zeros(channels, np.float32)
    named = dict(zip(("weight", "bias", "running_mean", "running_var"), (gamma, beta, *arrays)))
    named = {k: im.permute_flat(v, x.flat_from, axis=0) for k, v in named.items()}
    momentum = float(str(np.float32(1.0 - im.get("momentum", 0.99))))
    return im.add("BatchNorm", {"eps": float(im.get("epsilon", 1e-3)), "momentum": momentum},
                  [_Value(x.node)], named, flat_from=x.flat_from)


def _relu(im: _Importer, inputs):
    (x,) = inputs
    if im.get("max_value") is not None or im.get("threshold", 0.0):
        im.refuse("max_value", "a capped or thresholded ReLU is not convdesigner's")
    slope = float(im.get("negative_slope", 0.0))
    params = {"function": "leaky_relu", "alpha": slope} if slope else {"function": "relu"}
    return im.add("Activation", params, [x], flat_from=x.flat_from)


def _leaky_relu(im: _Importer, inputs):
    (x,) = inputs
    slope = im.get("negative_slope", im.get("alpha", 0.3))  # Keras 3, Keras 2
    return im.add("Activation", {"function": "leaky_relu", "alpha": float(slope)}, [x],
                  flat_from=x.flat_from)


def _rescaling(im: _Importer, inputs):
    """x * scale + offset right after the Input: the model's stored input normalisation."""
    (x,) = inputs
    if not x.raw_input or im.readers[im.layer.sources[0]] != 1:
        im.refuse(None, "convdesigner takes Rescaling only as the input normalisation, right "
                        "after the Input and read by nothing else")
    channels = im.shape(x)[0]
    try:
        scale, offset = (np.broadcast_to(np.asarray(im.get(k, d), np.float64).reshape(-1),
                                         (channels,)) for k, d in (("scale", 1.0), ("offset", 0.0)))
    except ValueError:
        im.refuse("scale", "needs one value, or one per channel")
    if not (scale > 0).all():
        im.refuse("scale", f"{im.get('scale')}: a normalisation's scale is positive")
    im.b.normalization = (-offset / scale, 1.0 / scale)
    return _Value(x.node)


def _merge(type_name: str):
    def convert(im: _Importer, inputs):
        if type_name == "Concat":
            im.channel_axis(inputs[0], im.get("axis", -1), "axis")
        if len({v.flat_from for v in inputs}) != 1:
            im.refuse(None, "merges flattened channels-last features with others")
        values = inputs if type_name == "Add" else [im.unflatten(v) for v in inputs]
        return im.add(type_name, {}, values, flat_from=inputs[0].flat_from)
    return convert


LAYERS = {
    **{f"Conv{d}D": _conv(d) for d in (1, 2, 3)},
    **{f"MaxPooling{d}D": _pool(d, "max") for d in (1, 2, 3)},
    **{f"AveragePooling{d}D": _pool(d, "avg") for d in (1, 2, 3)},
    **{f"GlobalAveragePooling{d}D": _global_pool("avg") for d in (1, 2, 3)},
    **{f"GlobalMaxPooling{d}D": _global_pool("max") for d in (1, 2, 3)},
    "Dense": _dense, "Flatten": _flatten, "BatchNormalization": _batch_norm,
    "Activation": lambda im, inputs: im.activation(inputs[0], im.get("activation")),
    "ReLU": _relu, "LeakyReLU": _leaky_relu,
    "ELU": lambda im, inputs: im.add("Activation", {"function": "elu",
                                                    "alpha": float(im.get("alpha", 1.0))},
                                     inputs, flat_from=inputs[0].flat_from),
    "Softmax": lambda im, inputs: im.activation(inputs[0], "softmax"),
    "Dropout": lambda im, inputs: im.add("Dropout", {"rate": min(float(im.get("rate")), 0.99)},
                                         inputs, flat_from=inputs[0].flat_from),
    "Add": _merge("Add"), "Concatenate": _merge("Concat"), "Rescaling": _rescaling,
}
"""Keras class name -> converter(importer, input values) returning the layer's output value."""


def _read(path: Path):
    """(model config, function: layer name -> its weight arrays in Keras' order)."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
            groups = {}
            if "layers" in weights:
                for group in weights["layers"].values():
                    if "vars" in group:
                        groups[str(group["vars"].attrs.get("name", ""))] = group["vars"]

            def read(name):
                group = groups.get(name)
                return [] if group is None else [np.array(group[k], np.float32)
                                                 for k in sorted(group, key=int)]
            return config, read
        f = h5py.File(path, "r")
        raw = f.attrs.get("model_config")
        if raw is None:
            raise InteropError(f"{path}: not a Keras model (no model_config attribute; a "
                               "convdesigner model opens directly, and weights-only Keras "
                               "files lack the architecture)")
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        root = f["model_weights"] if "model_weights" in f else f

        def read(name):
            if name not in root:
                return []
            group = root[name]
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in group.attrs.get("weight_names", [])]
            return [np.array(group[n], np.float32) for n in names]
        return config, read
    except InteropError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise InteropError(f"{path}: not a readable Keras model ({err})") from None


def _history(node) -> list[str]:
    """The layer names an inbound node reads (Keras 2 lists, Keras 3 keras_history)."""
    if isinstance(node, dict):
        if "keras_history" in node.get("config", {}):
            return [node["config"]["keras_history"][0]]
        return [n for value in node.values() for n in _history(value)]
    if isinstance(node, list):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
            return [node[0]]
        return [n for item in node for n in _history(item)]
    return []


def _graph(config: dict, path: Path) -> tuple[list[tuple[_Layer, list[str]]], str]:
    """[(layer, names of the layers it reads)] in order, and the output layer's name."""
    kind, body = config.get("class_name"), config.get("config", {})
    raw_layers = body.get("layers") if isinstance(body, dict) else body
    if kind not in ("Sequential", "Functional", "Model") or not isinstance(raw_layers, list):
        raise InteropError(f"{path}: a {kind!r} model; convdesigner imports Sequential and "
                           "functional models")
    layers = [_Layer(raw) for raw in raw_layers]
    if kind == "Sequential":
        if not layers or layers[0].class_name != "InputLayer":
            first = layers[0].config if layers else {}
            shape = (first.get("batch_input_shape") or first.get("batch_shape")
                     or (config.get("build_config") or {}).get("input_shape"))
            if shape is None:
                raise InteropError(f"{path}: the Sequential model has no input shape (build it "
                                   "or start it with keras.Input before saving)")
            layers.insert(0, _Layer({"class_name": "InputLayer",
                                     "config": {"name": "input", "batch_shape": shape}}))
        return [(layer, [prev.name] if prev else []) for prev, layer in
                zip([None, *layers[:-1]], layers)], layers[-1].name
    wired = []
    for raw, layer in zip(raw_layers, layers):
        nodes = raw.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise InteropError(f"{path}: layer {layer.name!r} is called {len(nodes)} times "
                               "(shared layers are not supported)")
        wired.append((layer, _history(nodes[0]) if nodes else []))
    outputs = _history(body.get("output_layers", []))
    if len(outputs) != 1 or len(_history(body.get("input_layers", []))) != 1:
        raise InteropError(f"{path}: convdesigner networks have one input and one output")
    return wired, outputs[0]


def import_keras(path: str | Path, builder_cls):
    path = Path(path)
    config, read = _read(path)
    wired, output = _graph(config, path)
    formats = {layer.config.get("data_format") for layer, _ in wired} - {None}
    if len(formats) > 1:
        raise InteropError(f"{path}: layers mix channels_last and channels_first")
    im = _Importer(builder_cls(config.get("config", {}).get("name") or path.stem), read,
                   formats != {"channels_first"})
    values: dict[str, _Value] = {}
    for source in (s for _, sources in wired for s in sources):
        im.readers[source] = im.readers.get(source, 0) + 1
    for layer, sources in wired:
        im.layer, layer.sources = layer, sources
        if layer.class_name == "InputLayer":
            shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
            dims = list(shape or [])[1:]
            if not 1 <= len(dims) <= 4 or not all(isinstance(d, int) and d > 0 for d in dims):
                im.refuse("batch_shape", f"{shape}: convdesigner needs fixed sizes after the "
                                         "batch axis, 1 to 4 of them")
            if im.channels_last and len(dims) > 1:
                dims = [dims[-1], *dims[:-1]]
            values[layer.name] = _Value(im.b.add_input(layer.name, dims), raw_input=True)
            continue
        if layer.class_name not in LAYERS:
            im.refuse(None, f"unsupported layer (convdesigner imports "
                            f"{', '.join(sorted(LAYERS))})")
        missing = [s for s in sources if s not in values]
        if missing or not sources:
            im.refuse(None, f"reads {missing or 'nothing'}, which comes before no input")
        values[layer.name] = LAYERS[layer.class_name](im, [values[s] for s in sources])
    result = values[output]
    if result.flat_from and result.flat_from[0] > 1 and result.flat_from[1]:
        im.refuse(None, "the output is flattened channels-last features; convdesigner's order "
                        "differs")
    return im.b, result.node, "output"
