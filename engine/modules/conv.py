"""Conv1D, Conv2D, Conv3D: cross-correlation with stride, padding ("same" too), dilation, groups.

Shape: input [C, *n], weight [filters, C/groups, *k], output [filters, *o] with
o = floor((n + p_total - d(k-1) - 1) / s) + 1 per axis (PyTorch's Conv semantics).
"""
from __future__ import annotations

import math

from ._common import cpu_or_cuda, expect_rank, fmt, uniform_fan_in, window_output, window_padding
from .registry import ModuleType, ParamSpec, ShapeError, register


def conv_geometry(params: dict, in_shape) -> dict:
    """Everything a conv kernel needs: padding before/total, output spatial size."""
    kernel, stride, dilation = params["kernel_size"], params["stride"], params["dilation"]
    pad_begin, pad_total = window_padding(params["padding"], kernel, dilation, stride)
    out = window_output("Conv", in_shape[1:], kernel, stride, pad_total, dilation)
    return {"kernel": kernel, "stride": stride, "dilation": dilation, "pad_begin": pad_begin,
            "pad_total": pad_total, "out": out, "groups": params["groups"]}


def _make(dims: int) -> ModuleType:
    name = f"Conv{dims}D"

    def infer(params, in_shapes):
        (shape,) = in_shapes
        expect_rank(name, shape, dims)
        channels, filters, groups = shape[0], params["filters"], params["groups"]
        if channels % groups:
            raise ShapeError(f"groups must divide the input channels. "
                             f"Received: groups={groups}, channels={channels}")
        if filters % groups:
            raise ShapeError(f"groups must divide filters. Received: groups={groups}, "
                             f"filters={filters}")
        try:
            out = conv_geometry(params, shape)["out"]
        except ShapeError as err:
            raise ShapeError(str(err).replace("Conv kernel", f"{name} kernel")) from None
        return (filters, *out)

    def arrays(params, in_shapes):
        shapes = {"weight": (params["filters"], in_shapes[0][0] // params["groups"],
                             *params["kernel_size"])}
        if params["bias"]:
            shapes["bias"] = (params["filters"],)
        return shapes

    def init(params, in_shapes, rng):
        weight_shape = arrays(params, in_shapes)["weight"]
        fan_in = weight_shape[1] * math.prod(params["kernel_size"])
        values = {"weight": uniform_fan_in(weight_shape, fan_in, rng)}
        if params["bias"]:
            values["bias"] = uniform_fan_in(params["filters"], fan_in, rng)
        return values

    def flops(params, in_shapes, out_shape):
        per_output = 2 * in_shapes[0][0] // params["groups"] * math.prod(params["kernel_size"])
        return math.prod(out_shape) * (per_output + int(params["bias"]))

    def label(params):
        text = f"{params['filters']}@{fmt(params['kernel_size'])}"
        padding = params["padding"]
        if padding == "same":
            text += " same"
        elif any(padding):
            text += f" p{padding[0] if len(set(padding)) == 1 else fmt(padding)}"
        for key, short in (("stride", "s"), ("dilation", "d")):
            if any(v != 1 for v in params[key]):
                values = params[key]
                text += f" {short}{values[0] if len(set(values)) == 1 else fmt(values)}"
        if params["groups"] != 1:
            text += f" g{params['groups']}"
        return text

    def geometry(params):
        pad_begin, _ = window_padding(params["padding"], params["kernel_size"],
                                      params["dilation"], params["stride"])
        return params["kernel_size"], params["stride"], pad_begin, params["dilation"]

    return register(ModuleType(
        name=name, category="Convolution",
        summary=f"{dims}D convolution: learnable filters slid over the input "
                f"({'a signal' if dims == 1 else 'an image' if dims == 2 else 'a volume'})",
        params=(
            ParamSpec("filters", "int", 16, "number of output channels (filters)", 1, 4096,
                      required=True),
            ParamSpec("kernel_size", "size", 3, "window size per spatial axis", 1, 63,
                      required=True),
            ParamSpec("stride", "size", 1, "step between windows", 1, 64),
            ParamSpec("padding", "padding", 0, 'zeros added on each side, or "same"', 0, 64),
            ParamSpec("dilation", "size", 1, "spacing between kernel taps", 1, 64),
            ParamSpec("groups", "int", 1, "split channels into independent groups", 1, 4096),
            ParamSpec("bias", "bool", True, "add a learnable bias per filter"),
        ),
        infer=infer, arrays=arrays, init=init, flops=flops, label=label, spatial_dims=dims,
        kernel_geometry=geometry, op=lambda spec: cpu_or_cuda(spec, "conv", "ConvOp"),
    ))


Conv1D, Conv2D, Conv3D = (_make(d) for d in (1, 2, 3))
