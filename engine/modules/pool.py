"""Pooling: Pool1D/2D/3D over spatial windows, ChannelPool over groups of channels, GlobalPool.

Shape: Pool output o = floor((n + 2p - k) / s) + 1 per axis. avg counts padded cells in the
divisor; l2 is sqrt(sum x^2) over the window with zero padding; max ignores padded cells.
"""
from __future__ import annotations

import math

from ._common import cpu_or_cuda, expect_rank, fmt, window_output
from .registry import ModuleType, ParamSpec, ShapeError, register

MODES = ("max", "avg", "l2")


def _make(dims: int) -> ModuleType:
    name = f"Pool{dims}D"

    def infer(params, in_shapes):
        (shape,) = in_shapes
        expect_rank(name, shape, dims)
        size, padding = params["size"], params["padding"]
        if any(2 * p > k for p, k in zip(padding, size)):
            raise ShapeError(f"{name} padding must be at most half the window size. "
                             f"Received: padding={list(padding)}, size={list(size)}")
        out = window_output(name, shape[1:], size, params["stride"],
                            tuple(2 * p for p in padding), (1,) * dims)
        return (shape[0], *out)

    def label(params):
        text = f"{params['mode']} {fmt(params['size'])}"
        if params["stride"] != params["size"]:
            text += f" s{fmt(params['stride'])}"
        if any(params["padding"]):
            text += f" p{fmt(params['padding'])}"
        return text

    return register(ModuleType(
        name=name, category="Pooling",
        summary=f"{dims}D pooling: max, average or L2 norm over each window",
        params=(
            ParamSpec("mode", "choice", "max", "how a window is summarised", choices=MODES),
            ParamSpec("size", "size", 2, "window size per spatial axis", 1, 64),
            ParamSpec("stride", "size", lambda p: p["size"], "step between windows (= size)", 1,
                      64),
            ParamSpec("padding", "size", 0, "zeros added on each side", 0, 32),
        ),
        infer=infer, label=label, spatial_dims=dims,
        flops=lambda params, in_shapes, out: math.prod(out) * math.prod(params["size"]),
        kernel_geometry=lambda p: (p["size"], p["stride"], p["padding"], (1,) * dims),
        op=lambda spec: cpu_or_cuda(spec, "pool", "PoolOp"),
    ))


Pool1D, Pool2D, Pool3D = (_make(d) for d in (1, 2, 3))


def _channel_pool_infer(params, in_shapes):
    (shape,) = in_shapes
    if shape[0] % params["size"]:
        raise ShapeError(f"ChannelPool size must divide the channels. "
                         f"Received: size={params['size']}, channels={shape[0]}")
    return (shape[0] // params["size"], *shape[1:])


ChannelPool = register(ModuleType(
    name="ChannelPool", category="Pooling",
    summary="pool over groups of consecutive channels (maxout when mode is max)",
    params=(
        ParamSpec("mode", "choice", "max", "how a group is summarised", choices=MODES),
        ParamSpec("size", "int", 2, "channels per group", 1, 4096, required=True),
    ),
    infer=_channel_pool_infer,
    flops=lambda params, in_shapes, out: math.prod(in_shapes[0]),
    label=lambda p: f"{p['mode']} /{p['size']}",
    op=lambda spec: cpu_or_cuda(spec, "pool", "ChannelPoolOp"),
))


def _global_pool_infer(params, in_shapes):
    (shape,) = in_shapes
    if len(shape) < 2:
        raise ShapeError(f"GlobalPool needs spatial axes ([C, L], [C, H, W] or [C, D, H, W]). "
                         f"Received: {list(shape)}")
    return (shape[0],)


GlobalPool = register(ModuleType(
    name="GlobalPool", category="Pooling",
    summary="pool each channel over all its positions: [C, ...] becomes [C]",
    params=(ParamSpec("mode", "choice", "avg", "how a channel is summarised",
                      choices=("max", "avg")),),
    infer=_global_pool_infer,
    flops=lambda params, in_shapes, out: math.prod(in_shapes[0]),
    label=lambda p: p["mode"],
    op=lambda spec: cpu_or_cuda(spec, "pool", "GlobalPoolOp"),
))
