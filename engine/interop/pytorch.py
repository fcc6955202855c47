"""PyTorch: the graph as model.py (a readable torch.nn.Module `Net`, one line per layer) and
model.safetensors (written from numpy; torch is needed only to run the code).

LAYERS is keyed by module type. The benchmarks' PyTorch reference (build_torch_model) runs this same
generated code, so the export and the reference cannot drift apart.
"""
from __future__ import annotations

import builtins
import keyword
import re
from pathlib import Path

import numpy as np

from . import InteropError, Model, write_atomic


def _size(values) -> str:
    """An int where every axis agrees (as one writes nn.Conv2d(..., 3)), else a tuple."""
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else str(values)


def _conv(p, ins, args, layer):
    dims = len(p["kernel_size"])
    kwargs = [f"kernel_size={_size(p['kernel_size'])}"]
    kwargs += [f"{k}={_size(p[k])}" for k in ("stride", "dilation") if set(p[k]) != {1}]
    if p["padding"] == "same":
        kwargs.append('padding="same"')
    elif any(p["padding"]):
        kwargs.append(f"padding={_size(p['padding'])}")
    kwargs += [f"groups={p['groups']}"] * (p["groups"] != 1) + ["bias=False"] * (not p["bias"])
    return (f"nn.Conv{dims}d({ins[0][0]}, {p['filters']}, {', '.join(kwargs)})",
            f"{layer}({args[0]})")


def _pool(p, ins, args, layer):
    dims, size = len(p["size"]), _size(p["size"])
    stride = "" if p["stride"] == p["size"] else f", stride={_size(p['stride'])}"
    padding = f", padding={_size(p['padding'])}" if any(p["padding"]) else ""
    if p["mode"] != "l2":
        name = {"max": "MaxPool", "avg": "AvgPool"}[p["mode"]]  # AvgPool counts the padding
        return f"nn.{name}{dims}d({size}{stride}{padding})", f"{layer}({args[0]})"
    pool = f"nn.LPPool{dims}d(2, {size}{stride})"
    if any(p["padding"]):  # LPPool has no padding: zeros first (L2 pooling pads with zeros)
        pads = tuple(v for q in reversed(p["padding"]) for v in (q, q))
        pool = f"nn.Sequential(nn.ZeroPad{dims}d({_size(pads)}), {pool})"
    return pool, f"{layer}({args[0]})"


def _channel_pool(p, ins, args, layer):
    grouped = f"{args[0]}.unflatten(1, (-1, {p['size']}))"
    return None, {"max": f"{grouped}.amax(2)", "avg": f"{grouped}.mean(2)",
                  "l2": f"torch.linalg.vector_norm({grouped}, dim=2)"}[p["mode"]]


def _global_pool(p, ins, args, layer):
    axes = tuple(range(2, len(ins[0]) + 1))
    return None, f"{args[0]}.{'mean' if p['mode'] == 'avg' else 'amax'}(dim={axes})"


_ACTIVATIONS = {"relu": "F.relu({x})", "leaky_relu": "F.leaky_relu({x}, {alpha!r})",
                "elu": "F.elu({x}, alpha={alpha!r})", "tanh": "torch.tanh({x})",
                "sigmoid": "torch.sigmoid({x})", "softplus": "F.softplus({x})"}


def _batch_norm(p, ins, args, layer):
    dims = max(1, len(ins[0]) - 1)
    kwargs = "".join(f", {k}={p[k]!r}" for k, default in (("eps", 1e-5), ("momentum", 0.1))
                     if p[k] != default)
    return f"nn.BatchNorm{dims}d({ins[0][0]}{kwargs})", f"{layer}({args[0]})"


LAYERS = {
    **{f"Conv{d}D": _conv for d in (1, 2, 3)},
    **{f"Pool{d}D": _pool for d in (1, 2, 3)},
    "ChannelPool": _channel_pool,
    "GlobalPool": _global_pool,
    "Dense": lambda p, ins, args, layer: (
        f"nn.Linear({ins[0][0]}, {p['units']}{', bias=False' * (not p['bias'])})",
        f"{layer}({args[0]})"),
    "Flatten": lambda p, ins, args, layer: (None, f"torch.flatten({args[0]}, 1)"),
    "Activation": lambda p, ins, args, layer: (
        None, _ACTIVATIONS[p["function"]].format(x=args[0], alpha=p["alpha"])),
    "Softmax": lambda p, ins, args, layer: (None, f"F.softmax({args[0]}, dim=1)"),
    "Dropout": lambda p, ins, args, layer: (f"nn.Dropout({p['rate']!r})", f"{layer}({args[0]})"),
    "BatchNorm": _batch_norm,
    "Add": lambda p, ins, args, layer: (None, " + ".join(args)),
    "Concat": lambda p, ins, args, layer: (None, f"torch.cat([{', '.join(args)}], dim=1)"),
}
"""Module type -> (params, input shapes, argument expressions, "self.<name>") -> (the layer's
constructor in __init__ or None, the forward expression)."""

_RESERVED = {"x", "self", "torch", "nn", "F", "mean", "std", "load_file", "load_model", "Net",
             "Path", "path", "training"}
# torch.nn.Module's public attributes (tests/test_interop_pytorch.py checks this against torch)
MODULE_ATTRS = frozenset("""T_destination add_module apply bfloat16 buffers call_super_init children
    compile cpu cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers named_children
    named_modules named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train type xpu zero_grad""".split())


def identifiers(node_ids) -> dict[str, str]:
    """A Python name per node id, safe as a local variable and as a Module attribute."""
    names, taken = {}, set(_RESERVED)
    for nid in node_ids:
        name = re.sub(r"\W", "_", nid).lstrip("_")
        if not name or name[0].isdigit():
            name = f"n{name}"
        while name in taken or name in MODULE_ATTRS or keyword.iskeyword(name) \
                or hasattr(builtins, name):
            name += "_"
        taken.add(name)
        names[nid] = name
    return names


def _consumers(nodes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for nid, *_, sources in nodes:
        for src in sources:
            found.setdefault(src, []).append(nid)
    return found


def module_source(model: Model, origin: str = "") -> str:
    """model.py: imports, class Net, load_model()."""
    from .. import __version__

    nodes = list(model.nodes())
    names = identifiers(nid for nid, *_ in nodes)
    consumers = _consumers(nodes)
    # a value that only the next line reads stays in x; others keep their node's name
    var = {nid: "x" if len(consumers.get(nid, [])) == 1 and i + 1 < len(nodes)
           and consumers[nid][0] == nodes[i + 1][0] else names[nid]
           for i, (nid, *_) in enumerate(nodes)}
    init, forward = [], []
    in_shape = out_shape = None
    for nid, type_name, p, ins, out, sources in nodes:
        args = [var[s] for s in sources]
        if type_name == "Input":
            in_shape = out
            view = ", ".join(["1", str(out[0])] + ["1"] * (len(out) - 1))
            if model.normalization is not None:
                init += [f'self.register_buffer("mean", torch.zeros({view}))  '
                         "# input normalisation (predict's)",
                         f'self.register_buffer("std", torch.ones({view}))']
                forward.append(f"{var[nid]} = (x - self.mean) / self.std")
            elif var[nid] != "x":
                forward.append(f"{var[nid]} = x")
            continue
        if type_name == "Output":
            out_shape = out
            forward.append(f"return {args[0]}")
            continue
        if type_name not in LAYERS:
            raise InteropError(f"node {nid!r}: module type {type_name} has no PyTorch mapping")
        layer, expression = LAYERS[type_name](p, ins, args, f"self.{names[nid]}")
        if layer is not None:
            init.append(f"self.{names[nid]} = {layer}")
        forward.append(f"{var[nid]} = {expression}")
    body = "\n".join(init + forward)
    source = f" from {origin}" if origin else ""
    lines = [
        f'"""{model.graph.name}: written by convdesigner {__version__}{source}.',
        "",
        f"Input: [N, {', '.join(map(str, in_shape))}] in the units convdesigner's predict reads"
        + ("" if model.normalization is None else " (forward normalises them)") + ".",
        f"Output: [N, {', '.join(map(str, out_shape))}], what predict writes.",
        "    net = load_model()  # in eval mode, with the weights of model.safetensors",
        '"""',
        "from pathlib import Path",
        "",
        *["import torch"] * bool(re.search(r"(?<![\w.])torch\.", body)),
        *["import torch.nn.functional as F"] * bool(re.search(r"(?<![\w.])F\.", body)),
        "from safetensors.torch import load_file",
        "from torch import nn",
        "",
        "",
        "class Net(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        *(f"        {line}" for line in init),
        "",
        "    def forward(self, x):",
        *(f"        {line}" for line in forward),
        "",
        "",
        'def load_model(path=Path(__file__).with_name("model.safetensors")):',
        "    net = Net()",
        "    net.load_state_dict(load_file(path))",
        "    return net.eval()",
        "",
    ]
    return "\n".join(lines)


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """Net's state_dict as numpy arrays: "<attribute>.<array>" from the "node/array" weights."""
    nodes = list(model.nodes())
    names = identifiers(nid for nid, *_ in nodes)
    arrays: dict[str, np.ndarray] = {}
    if model.normalization is not None:
        shape = (1, -1) + (1,) * (len(nodes[0][4]) - 1)
        for key, value in zip(("mean", "std"), model.normalization):
            arrays[key] = np.asarray(value, np.float32).reshape(shape)
    for nid, type_name, *_ in nodes:
        prefix = f"{nid}/"
        for key, value in model.weights.items():
            if key.startswith(prefix):
                arrays[f"{names[nid]}.{key[len(prefix):]}"] = np.asarray(value, np.float32)
        if type_name == "BatchNorm":
            arrays[f"{names[nid]}.num_batches_tracked"] = np.array(0, np.int64)
    return arrays


def export_pytorch(model: Model, folder: str | Path, origin: str = "") -> None:
    """Write folder/model.py and folder/model.safetensors."""
    from safetensors.numpy import save

    folder = Path(folder)
    source = module_source(model, origin)
    weights = save({k: np.ascontiguousarray(v) for k, v in state_dict(model).items()})
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InteropError(f"{folder}: cannot create the folder ({err.strerror})") from None
    write_atomic(folder / "model.safetensors", weights)
    write_atomic(folder / "model.py", source.encode())


def build_torch_model(graph, weights: dict[str, np.ndarray] | None = None):
    """The graph as a torch.nn.Module (weights copied if given): the exported model.py's Net,
    for the benchmarks and the parity tests."""
    import torch

    model = Model(graph, weights or {})
    namespace: dict = {"__file__": "model.py", "__name__": "convdesigner_net"}
    exec(compile(module_source(model), f"<convdesigner Net of {graph.name}>", "exec"), namespace)
    net = namespace["Net"]()
    if weights:
        net.load_state_dict({k: torch.from_numpy(np.array(v))
                             for k, v in state_dict(model).items()})
    return net
