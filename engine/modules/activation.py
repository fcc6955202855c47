"""Element-wise activations and Softmax.

relu, leaky_relu (alpha: negative slope, 0.01), elu (alpha: scale, 1.0), tanh, sigmoid, softplus.
Softmax is over the channel axis of a flat [C] input.
"""
from __future__ import annotations

import math

from ._common import cpu_or_cuda
from .registry import ModuleType, ParamSpec, ShapeError, register

FUNCTIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "softplus")
RELU_FAMILY = ("relu", "leaky_relu", "elu")


def _softmax_infer(params, in_shapes):
    (shape,) = in_shapes
    if len(shape) != 1:
        raise ShapeError(f"Softmax needs a flat input [C]; insert Flatten or GlobalPool before it. "
                         f"Received: {list(shape)}")
    return shape


Activation = register(ModuleType(
    name="Activation", category="Activation",
    summary="element-wise non-linearity: relu, leaky_relu, elu, tanh, sigmoid, softplus",
    params=(
        ParamSpec("function", "choice", "relu", "the non-linearity", choices=FUNCTIONS),
        ParamSpec("alpha", "float", lambda p: 0.01 if p["function"] == "leaky_relu" else 1.0,
                  "negative slope (leaky_relu) or scale (elu)", 0.0, 100.0,
                  applies=lambda p: p["function"] in ("leaky_relu", "elu")),
    ),
    infer=lambda params, in_shapes: in_shapes[0],
    flops=lambda params, in_shapes, out: math.prod(out),
    label=lambda p: p["function"] + (f" {p['alpha']:g}" if p["function"] in ("leaky_relu", "elu")
                                     and p["alpha"] != (0.01 if p["function"] == "leaky_relu"
                                                        else 1.0) else ""),
    op=lambda spec: cpu_or_cuda(spec, "elementwise", "ActivationOp"),
))

Softmax = register(ModuleType(
    name="Softmax", category="Activation",
    summary="turn a flat vector of scores into probabilities that sum to 1",
    params=(), infer=_softmax_infer,
    flops=lambda params, in_shapes, out: 3 * math.prod(out),
    op=lambda spec: cpu_or_cuda(spec, "elementwise", "SoftmaxOp"),
))
