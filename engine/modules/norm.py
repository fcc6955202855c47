"""BatchNorm (per channel; batch statistics in training, running statistics in evaluation) and
inverted Dropout."""
from __future__ import annotations

import math

import numpy as np

from ._common import cpu_or_cuda
from .registry import ModuleType, ParamSpec, register


def _channels(params, in_shapes):
    return {"weight": (in_shapes[0][0],), "bias": (in_shapes[0][0],)}


def _bn_state(params, in_shapes):
    return {"running_mean": (in_shapes[0][0],), "running_var": (in_shapes[0][0],)}


def _bn_init(params, in_shapes, rng):
    channels = in_shapes[0][0]
    return {"weight": np.ones(channels, np.float32), "bias": np.zeros(channels, np.float32),
            "running_mean": np.zeros(channels, np.float32),
            "running_var": np.ones(channels, np.float32)}


BatchNorm = register(ModuleType(
    name="BatchNorm", category="Normalization",
    summary="normalise each channel over the batch, then scale and shift (learnable)",
    params=(
        ParamSpec("momentum", "float", 0.1, "weight of the new batch in the running statistics",
                  0.0, 1.0),
        ParamSpec("eps", "float", 1e-5, "added to the variance for stability", 0.0, 1.0),
    ),
    infer=lambda params, in_shapes: in_shapes[0], arrays=_channels, state=_bn_state,
    init=_bn_init, flops=lambda params, in_shapes, out: 4 * math.prod(out),
    op=lambda spec: cpu_or_cuda(spec, "norm", "BatchNormOp"),
))

Dropout = register(ModuleType(
    name="Dropout", category="Normalization",
    summary="in training, zero a random share of units and scale the rest by 1/(1-rate)",
    params=(ParamSpec("rate", "float", 0.5, "share of units dropped in training", 0.0, 0.99),),
    infer=lambda params, in_shapes: in_shapes[0],
    flops=lambda params, in_shapes, out: math.prod(out),
    label=lambda p: f"{p['rate']:g}",
    op=lambda spec: cpu_or_cuda(spec, "norm", "DropoutOp"),
))
