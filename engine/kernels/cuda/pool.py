"""Pooling on the GPU: windows over 1-3 spatial axes (viewed as [N, C, D, H, W]), groups of
channels (ChannelPool) and whole channels (GlobalPool); modes max, avg and l2.

Forward runs a thread per output; backward a thread per input cell that gathers from the windows
covering it, so overlapping windows need no atomics and dx no zeroing.
"""
from __future__ import annotations

import math

from numba import cuda, float64

from ...modules.registry import Op
from ..cpu.pool import MODE_CODES
from .runtime import ZERO, launch

MAX, AVG = 0, 1


def _argmax_buffer(mode, shape):
    """Where max mode records each maximum's position; a one-cell stand-in for the other modes."""
    return cuda.device_array(shape if mode == MAX else (1,), "int32")


@cuda.jit(cache=True)
def pool_forward_kernel(x, y, argmax, in_dims, out_dims, size, stride, padding, mode,
                        inv_count):
    """y [planes, OD, OH, OW] from x [planes, D, H, W] (flat). max ignores padded cells and
    records the in-plane position of each maximum; avg divides by the whole window; l2 is
    sqrt(sum x^2)."""
    d, h, w = in_dims
    od, oh, ow = out_dims
    out_plane, in_plane = od * oh * ow, d * h * w
    total = cuda.local.array(1, dtype=y.dtype)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        plane, r = i // out_plane, i % out_plane
        a0 = r // (oh * ow) * stride[0] - padding[0]
        b0 = r // ow % oh * stride[1] - padding[1]
        e0 = r % ow * stride[2] - padding[2]
        d0, d1 = max(a0, 0), min(a0 + size[0], d)
        h0, h1 = max(b0, 0), min(b0 + size[1], h)
        w0, w1 = max(e0, 0), min(e0 + size[2], w)
        base = plane * in_plane
        if mode == MAX:
            where = (d0 * h + h0) * w + w0
            best = x[base + where]
            for p in range(d0, d1):
                for q in range(h0, h1):
                    for s in range(w0, w1):
                        v = x[base + (p * h + q) * w + s]
                        if v > best or v != v:  # NaN wins, as in PyTorch
                            best = v
                            where = (p * h + q) * w + s
            y[i] = best
            argmax[i] = where
        else:
            total[0] = 0
            for p in range(d0, d1):
                for q in range(h0, h1):
                    for s in range(w0, w1):
                        v = x[base + (p * h + q) * w + s]
                        total[0] += v if mode == AVG else v * v
            y[i] = total[0] * inv_count if mode == AVG else math.sqrt(total[0])


@cuda.jit(device=True)
def _first_window(cell, padding, size, stride):
    """The first window index whose [o*stride - padding, + size) covers cell."""
    low = cell + padding - size + 1
    return 0 if low <= 0 else (low + stride - 1) // stride


@cuda.jit(cache=True)
def pool_backward_kernel(x, y, argmax, dy, dx, in_dims, out_dims, size, stride, padding, mode,
                         inv_count):
    """dx [planes, D, H, W] from dy; the l2 gradient x / y is taken as 0 where y == 0."""
    d, h, w = in_dims
    od, oh, ow = out_dims
    out_plane, in_plane = od * oh * ow, d * h * w
    total = cuda.local.array(1, dtype=dx.dtype)
    for i in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        plane, q = i // in_plane, i % in_plane
        pd, ph, pw = q // (h * w), q // w % h, q % w
        total[0] = 0
        for a in range(_first_window(pd, padding[0], size[0], stride[0]),
                       min(od, (pd + padding[0]) // stride[0] + 1)):
            for b in range(_first_window(ph, padding[1], size[1], stride[1]),
                           min(oh, (ph + padding[1]) // stride[1] + 1)):
                for e in range(_first_window(pw, padding[2], size[2], stride[2]),
                               min(ow, (pw + padding[2]) // stride[2] + 1)):
                    o = plane * out_plane + (a * oh + b) * ow + e
                    if mode == MAX:
                        if argmax[o] == q:
                            total[0] += dy[o]
                    elif mode == AVG:
                        total[0] += dy[o]
                    elif y[o] > 0:
                        total[0] += dy[o] * x[i] / y[o]
        dx[i] = total[0] * inv_count if mode == AVG else total[0]


class PoolOp(Op):
    """Pool1D/2D/3D; every input is viewed as [N, C, D, H, W] (unit axes in front)."""

    def __init__(self, spec):
        super().__init__(spec)
        p = spec.params
        missing = 3 - len(p["size"])
        self.size = (1,) * missing + tuple(p["size"])
        self.stride = (1,) * missing + tuple(p["stride"])
        self.padding = (0,) * missing + tuple(p["padding"])
        self.mode = MODE_CODES[p["mode"]]
        self.in_dims = (1,) * missing + tuple(spec.in_shapes[0][1:])
        self.out_dims = (1,) * missing + tuple(spec.out_shape[1:])
        self.inv_count = spec.dtype(1 / math.prod(self.size))

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = cuda.device_array((batch, *self.spec.out_shape), dtype)
        self.dx = cuda.device_array((batch, *self.spec.in_shapes[0]), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, *self.spec.out_shape))

    def _argmax(self, n):
        return self.argmax[:n].reshape(-1) if self.mode == MAX else self.argmax

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n].reshape(-1)
        pool_forward_kernel[launch(y.size)](
            x.reshape(-1), y, self._argmax(n), self.in_dims, self.out_dims, self.size,
            self.stride, self.padding, self.mode, self.inv_count)
        return self.y[:n]

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n].reshape(-1)
        pool_backward_kernel[launch(dx.size)](
            self.x.reshape(-1), self.y[:n].reshape(-1), self._argmax(n), dout.reshape(-1), dx,
            self.in_dims, self.out_dims, self.size, self.stride, self.padding, self.mode,
            self.inv_count)
        return [self.dx[:n]]


@cuda.jit(cache=True)
def channel_pool_forward_kernel(x, y, argmax, size, positions, mode, inv_size):
    """y [N*G, S] pools x [N*G, size, S] over its middle axis; argmax (max) gets the winner."""
    total = cuda.local.array(1, dtype=y.dtype)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        base = (i // positions) * size * positions + i % positions
        if mode == MAX:
            best, where = x[base], 0
            for m in range(1, size):
                v = x[base + m * positions]
                if v > best or v != v:
                    best, where = v, m
            y[i] = best
            argmax[i] = where
        else:
            total[0] = 0
            for m in range(size):
                v = x[base + m * positions]
                total[0] += v if mode == AVG else v * v
            y[i] = total[0] * inv_size if mode == AVG else math.sqrt(total[0])


@cuda.jit(cache=True)
def channel_pool_backward_kernel(x, y, argmax, dy, dx, size, positions, mode, inv_size):
    """dx [N*G, size, S] from dy [N*G, S]; the l2 gradient x / y is 0 where y == 0."""
    for i in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        row, k = i // positions, i % positions  # row = group * size + member
        o = row // size * positions + k
        if mode == MAX:
            dx[i] = dy[o] if argmax[o] == row % size else ZERO
        elif mode == AVG:
            dx[i] = dy[o] * inv_size
        else:
            dx[i] = dy[o] * x[i] / y[o] if y[o] > 0 else ZERO


class ChannelPoolOp(Op):
    """Pools groups of `size` consecutive channels: [C, *spatial] -> [C/size, *spatial]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.mode = MODE_CODES[spec.params["mode"]]
        self.size = spec.params["size"]
        self.positions = math.prod(spec.in_shapes[0][1:])
        self.inv_size = spec.dtype(1 / self.size)

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = cuda.device_array((batch, *self.spec.out_shape), dtype)
        self.dx = cuda.device_array((batch, *self.spec.in_shapes[0]), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, *self.spec.out_shape))

    def _argmax(self, n):
        return self.argmax[:n].reshape(-1) if self.mode == MAX else self.argmax

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n].reshape(-1)
        channel_pool_forward_kernel[launch(y.size)](x.reshape(-1), y, self._argmax(n), self.size,
                                                    self.positions, self.mode, self.inv_size)
        return self.y[:n]

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n].reshape(-1)
        channel_pool_backward_kernel[launch(dx.size)](
            self.x.reshape(-1), self.y[:n].reshape(-1), self._argmax(n), dout.reshape(-1), dx,
            self.size, self.positions, self.mode, self.inv_size)
        return [self.dx[:n]]


@cuda.jit(cache=True)
def global_pool_forward_kernel(x, y, argmax, positions, mode):
    """y [N*C] = max (argmax: its position) or mean of x [N*C, S] over S; the mean sums in
    float64 so long rows stay accurate in float32."""
    total = cuda.local.array(1, dtype=float64)
    for row in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        base = row * positions
        if mode == MAX:
            best, where = x[base], 0
            for k in range(1, positions):
                v = x[base + k]
                if v > best or v != v:
                    best, where = v, k
            y[row] = best
            argmax[row] = where
        else:
            total[0] = 0
            for k in range(positions):
                total[0] += x[base + k]
            y[row] = total[0] / positions


@cuda.jit(cache=True)
def global_pool_backward_kernel(argmax, dy, dx, positions, mode, inv_positions):
    for i in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        row = i // positions
        if mode == MAX:
            dx[i] = dy[row] if argmax[row] == i % positions else ZERO
        else:
            dx[i] = dy[row] * inv_positions


class GlobalPoolOp(Op):
    """Pools each channel over all its positions: [C, *spatial] -> [C]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.mode = MODE_CODES[spec.params["mode"]]
        self.positions = math.prod(spec.in_shapes[0][1:])
        self.inv_positions = spec.dtype(1 / self.positions)

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = cuda.device_array((batch, *self.spec.out_shape), dtype)
        self.dx = cuda.device_array((batch, *self.spec.in_shapes[0]), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, *self.spec.out_shape))

    def _argmax(self, n):
        return self.argmax[:n].reshape(-1) if self.mode == MAX else self.argmax

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        y = self.y[:n].reshape(-1)
        global_pool_forward_kernel[launch(y.size)](x.reshape(-1), y, self._argmax(n),
                                                   self.positions, self.mode)
        return self.y[:n]

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n].reshape(-1)
        global_pool_backward_kernel[launch(dx.size)](self._argmax(n), dout.reshape(-1), dx,
                                                     self.positions, self.mode,
                                                     self.inv_positions)
        return [self.dx[:n]]
