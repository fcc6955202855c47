"""Input, Output, Flatten, Add and Concat: the modules that route tensors."""
from __future__ import annotations

import math

from ._common import cpu_or_cuda, fmt
from .registry import ModuleType, ParamSpec, ShapeError, register


def _add_infer(params, in_shapes):
    if any(shape != in_shapes[0] for shape in in_shapes):
        raise ShapeError("Add needs inputs of the same shape. Received: "
                         + ", ".join(fmt(shape) for shape in in_shapes))
    return in_shapes[0]


def _concat_infer(params, in_shapes):
    if any(len(shape) != len(in_shapes[0]) or shape[1:] != in_shapes[0][1:]
           for shape in in_shapes):
        raise ShapeError("Concat needs inputs with the same spatial size (it joins channels). "
                         "Received: " + ", ".join(fmt(shape) for shape in in_shapes))
    return (sum(shape[0] for shape in in_shapes), *in_shapes[0][1:])


def _output_infer(params, in_shapes):
    if params["loss"] == "cross_entropy" and len(in_shapes[0]) != 1:
        raise ShapeError("cross_entropy needs flat logits [classes]; insert Flatten, GlobalPool or "
                         f"Dense before Output. Received: {list(in_shapes[0])}")
    return in_shapes[0]


Input = register(ModuleType(
    name="Input", category="Input/Output",
    summary="where samples enter: their shape without the batch axis, channels first",
    params=(ParamSpec("shape", "shape", [1, 28, 28], "[C], [C, L], [C, H, W] or [C, D, H, W]",
                      required=True),),
    infer=lambda params, in_shapes: params["shape"], min_inputs=0, max_inputs=0,
    label=lambda p: fmt(p["shape"]), op=None,
))

Output = register(ModuleType(
    name="Output", category="Input/Output",
    summary="the network's result and its loss (cross_entropy takes logits)",
    params=(ParamSpec("loss", "choice", "cross_entropy", "training loss",
                      choices=("cross_entropy", "mse")),),
    infer=_output_infer,
    label=lambda p: p["loss"], op=None,
))

Flatten = register(ModuleType(
    name="Flatten", category="Structure",
    summary="reshape [C, ...] into a flat [features] vector, e.g. before Dense",
    params=(), infer=lambda params, in_shapes: (math.prod(in_shapes[0]),),
    op=lambda spec: cpu_or_cuda(spec, "elementwise", "FlattenOp"),
))

Add = register(ModuleType(
    name="Add", category="Structure",
    summary="element-wise sum of 2+ inputs of the same shape (residual connections)",
    params=(), infer=_add_infer, min_inputs=2, max_inputs=None,
    flops=lambda params, in_shapes, out: (len(in_shapes) - 1) * math.prod(out),
    op=lambda spec: cpu_or_cuda(spec, "elementwise", "AddOp"),
))

Concat = register(ModuleType(
    name="Concat", category="Structure",
    summary="join 2+ inputs along the channel axis (Inception branches)",
    params=(), infer=_concat_infer, min_inputs=2, max_inputs=None,
    op=lambda spec: cpu_or_cuda(spec, "elementwise", "ConcatOp"),
))
