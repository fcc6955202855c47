"""Shape arithmetic and initialisers shared by the module declarations."""
from __future__ import annotations

import math

import numpy as np

from .registry import OpSpec, ShapeError

AXES = {1: "L", 2: "HxW", 3: "DxHxW"}


def fmt(shape) -> str:
    return "x".join(str(v) for v in shape)


def expect_rank(type_name: str, shape, spatial_dims: int) -> None:
    names = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}[spatial_dims]
    if len(shape) != spatial_dims + 1:
        raise ShapeError(f"{type_name} expects an input of shape {names}. Received: {list(shape)}")


def window_padding(padding, kernel, dilation, stride) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(padding before, total padding) per axis; "same" puts an odd extra cell at the end."""
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ShapeError(f'padding "same" needs stride 1. Received: stride={list(stride)}')
        total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        return tuple(t // 2 for t in total), total
    return tuple(padding), tuple(2 * p for p in padding)


def window_output(type_name: str, spatial, kernel, stride, pad_total, dilation) -> tuple[int, ...]:
    """Output size floor((n + p_total - d(k-1) - 1) / s) + 1 per axis, or a ShapeError."""
    out = []
    for n, k, s, p, d in zip(spatial, kernel, stride, pad_total, dilation):
        span = d * (k - 1) + 1
        if span > n + p:
            raise ShapeError(
                f"{type_name} kernel {fmt(kernel)} (dilation {fmt(dilation)}) is larger than the "
                f"padded input {fmt(np.add(spatial, pad_total))}. Received: input {fmt(spatial)}, "
                f"padding {fmt(pad_total)} in total")
        out.append((n + p - span) // s + 1)
    return tuple(out)


def uniform_fan_in(shape, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Conv and Linear weights
    (kaiming_uniform with a=sqrt(5)) and biases, so a fresh classifier's first loss is near
    ln(classes) and training follows PyTorch's."""
    bound = 1.0 / math.sqrt(max(1, fan_in))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def cpu_or_cuda(spec: OpSpec, family: str, class_name: str):
    """Build the op class named class_name from kernels/<backend>/<family>.py."""
    import importlib

    module = importlib.import_module(f"engine.kernels.{spec.backend}.{family}")
    return getattr(module, class_name)(spec)
