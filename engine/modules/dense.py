"""Dense (fully connected) layer: y = x W^T + b over a flat [features] input."""
from __future__ import annotations

from ._common import cpu_or_cuda, uniform_fan_in
from .registry import ModuleType, ParamSpec, ShapeError, register


def _infer(params, in_shapes):
    (shape,) = in_shapes
    if len(shape) != 1:
        raise ShapeError(f"Dense needs a flat input [features]; insert Flatten before it. "
                         f"Received: {list(shape)}")
    return (params["units"],)


def _arrays(params, in_shapes):
    shapes = {"weight": (params["units"], in_shapes[0][0])}
    if params["bias"]:
        shapes["bias"] = (params["units"],)
    return shapes


def _init(params, in_shapes, rng):
    units, features = params["units"], in_shapes[0][0]
    values = {"weight": uniform_fan_in((units, features), features, rng)}
    if params["bias"]:
        values["bias"] = uniform_fan_in(units, features, rng)
    return values


Dense = register(ModuleType(
    name="Dense", category="Dense",
    summary="fully connected layer: every output unit sees every input feature",
    params=(
        ParamSpec("units", "int", 10, "number of output units", 1, 1 << 20, required=True),
        ParamSpec("bias", "bool", True, "add a learnable bias per unit"),
    ),
    infer=_infer, arrays=_arrays, init=_init,
    flops=lambda params, in_shapes, out: out[0] * (2 * in_shapes[0][0] + int(params["bias"])),
    label=lambda p: str(p["units"]),
    op=lambda spec: cpu_or_cuda(spec, "dense", "DenseOp"),
))
