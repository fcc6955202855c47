"""Conv1D/2D/3D on the GPU as implicit-im2col GEMMs (see gemm.py), bias fused into the forward.

The weight gradient reduces over every output position of the batch, which leaves few output
tiles: it is split along that reduction over extra blocks (split-K) and folded in a fixed order.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ...modules.conv import conv_geometry
from ...modules.registry import Op
from . import gemm
from .reduce import channel_sum
from .runtime import SIMULATOR, launch, multiprocessors

MIN_SPLIT_K = 8 if SIMULATOR else 512
"""Fewest reduction steps one split of the weight gradient gets (fewer: not worth a partial)."""


def _lead(values, fill) -> tuple[int, ...]:
    return (fill,) * (3 - len(values)) + tuple(values)


class ConvOp(Op):
    def __init__(self, spec):
        super().__init__(spec)
        geo = conv_geometry(spec.params, spec.in_shapes[0])
        channels, filters = spec.in_shapes[0][0], spec.out_shape[0]
        kernel, dilation = _lead(geo["kernel"], 1), _lead(geo["dilation"], 1)
        self.stride, self.pad = _lead(geo["stride"], 1), _lead(geo["pad_begin"], 0)
        self.in_dims = (channels, *_lead(spec.in_shapes[0][1:], 1))
        self.out_dims = (filters, *_lead(geo["out"], 1))
        self.groups = geo["groups"]
        self.cg, self.fg = channels // self.groups, filters // self.groups
        self.plane, self.positions = math.prod(self.in_dims[1:]), math.prod(self.out_dims[1:])
        taps = math.prod(kernel)
        self.columns = self.cg * taps
        offsets = np.array(list(np.ndindex(*kernel))) * np.array(dilation)  # [taps, 3]
        forward = np.zeros((self.cg, taps, 4), np.int32)
        forward[:, :, 0] = np.arange(self.cg)[:, None] * self.plane
        forward[:, :, 1:] = offsets
        backward = np.zeros((self.fg, taps, 5), np.int32)
        backward[:, :, 0] = np.arange(self.fg)[:, None] * self.cg * taps + np.arange(taps)
        backward[:, :, 1] = np.arange(self.fg)[:, None] * self.positions
        backward[:, :, 2:] = offsets
        self.taps = cuda.to_device(forward.reshape(-1))
        self.taps_t = cuda.to_device(backward.reshape(-1))
        self.workspace = None

    def _split(self, images: int) -> tuple[int, int]:
        """(splits, chunk) of the weight gradient's reduction over images * positions."""
        k_size = images * self.positions
        tiles = -(-self.fg // gemm.BM) * -(-self.columns // gemm.BN) * self.groups
        splits = max(1, min(2 * multiprocessors() // tiles, k_size // MIN_SPLIT_K))
        chunk = -(-k_size // splits)
        chunk = -(-chunk // gemm.BK) * gemm.BK
        return -(-k_size // chunk), chunk

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = cuda.device_array((batch, *self.spec.out_shape), dtype)
        self.dx = cuda.device_array((batch, *self.spec.in_shapes[0]), dtype)
        splits, _ = self._split(batch)
        self.workspace = (cuda.device_array(splits * self.out_dims[0] * self.columns, dtype)
                          if splits > 1 else None)

    def _geometry(self, images):
        return images, self.in_dims, self.out_dims, self.stride, self.pad, self.groups

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n].reshape(-1)
        bias = self.params.get("bias")
        gemm.conv_forward_kernel[gemm.blocks(self.fg, n * self.positions, self.groups)](
            x.reshape(-1), self.params["weight"].reshape(-1), y if bias is None else bias, y,
            self.taps, *self._geometry(n), bias is not None)
        return self.y[:n]

    def backward(self, dout):
        n = dout.shape[0]
        dy = dout.reshape(-1)
        geometry = self._geometry(n)
        grads = [None]
        if self.needs_input_grad[0]:
            dx = self.dx[:n]
            gemm.conv_backward_data_kernel[gemm.blocks(self.cg, n * self.plane, self.groups)](
                dy, self.params["weight"].reshape(-1), dx.reshape(-1), self.taps_t, *geometry)
            grads = [dx]
        splits, chunk = self._split(n)
        dw = self.grads["weight"].reshape(-1)
        gemm.conv_backward_weight_kernel[
            gemm.blocks(self.fg, self.columns, self.groups * splits)](
            dy, self.x.reshape(-1), dw if splits == 1 else self.workspace, self.taps, *geometry,
            splits, chunk)
        if splits > 1:
            gemm.sum_splits_kernel[launch(dw.size)](self.workspace, dw, splits)
        if "bias" in self.grads:
            channel_sum(dy, self.grads["bias"], self.out_dims[0], self.positions)
        return grads
