"""Pooling on the CPU: windows over 1-3 spatial axes (all viewed as [N, C, D, H, W]), groups of
channels (ChannelPool) and whole channels (GlobalPool); modes max, avg and l2."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ...modules.registry import Op

MODE_CODES = {"max": 0, "avg": 1, "l2": 2}
MAX, AVG = 0, 1


def _argmax_buffer(mode, shape):
    """Where max mode records each maximum's position; an empty stand-in for the other modes."""
    return np.empty(shape if mode == MAX else (0,) * len(shape), np.int32)


@njit(nogil=True, cache=True)
def _window(index, length, size, stride, padding):
    """The in-bounds [begin, end) of window `index` along one axis; padded cells are left out."""
    begin = index * stride - padding
    return max(begin, 0), min(begin + size, length)


@njit(parallel=True, nogil=True, cache=True)
def pool_forward_cpu(x, y, argmax, size, stride, padding, mode):
    """Pool x [N, C, D, H, W] into y [N, C, OD, OH, OW] (mode: see MODE_CODES).

    max ignores padded cells and writes each window's flat in-plane position of the maximum to
    argmax; avg divides by the full window (padded zeros count); l2 is sqrt(sum x^2).
    """
    n, c, d, h, w = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    inv_count = 1.0 / (size[0] * size[1] * size[2])
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp = x[i, j]
        for a in range(od):
            d0, d1 = _window(a, d, size[0], stride[0], padding[0])
            for b in range(oh):
                h0, h1 = _window(b, h, size[1], stride[1], padding[1])
                for e in range(ow):
                    w0, w1 = _window(e, w, size[2], stride[2], padding[2])
                    if mode == MAX:
                        best = xp[d0, h0, w0]
                        where = (d0 * h + h0) * w + w0
                        for p in range(d0, d1):
                            for q in range(h0, h1):
                                for r in range(w0, w1):
                                    v = xp[p, q, r]
                                    if v > best or v != v:  # NaN wins, as in PyTorch
                                        best = v
                                        where = (p * h + q) * w + r
                        y[i, j, a, b, e] = best
                        argmax[i, j, a, b, e] = where
                    else:
                        total = 0.0
                        for p in range(d0, d1):
                            for q in range(h0, h1):
                                for r in range(w0, w1):
                                    v = xp[p, q, r]
                                    total += v if mode == AVG else v * v
                        y[i, j, a, b, e] = total * inv_count if mode == AVG else math.sqrt(total)


@njit(parallel=True, nogil=True, cache=True)
def pool_backward_cpu(x, y, argmax, dy, dx, size, stride, padding, mode):
    """dx [N, C, D*H*W] (flat planes) from dy [N, C, OD, OH, OW]; overlapping windows add up.

    The l2 gradient x / y is taken as 0 where y == 0.
    """
    n, c, d, h, w = x.shape
    od, oh, ow = dy.shape[2], dy.shape[3], dy.shape[4]
    inv_count = 1.0 / (size[0] * size[1] * size[2])
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp, gp = x[i, j], dx[i, j]
        gp[:] = 0.0
        for a in range(od):
            d0, d1 = _window(a, d, size[0], stride[0], padding[0])
            for b in range(oh):
                h0, h1 = _window(b, h, size[1], stride[1], padding[1])
                for e in range(ow):
                    g = dy[i, j, a, b, e]
                    if mode == MAX:
                        gp[argmax[i, j, a, b, e]] += g
                        continue
                    w0, w1 = _window(e, w, size[2], stride[2], padding[2])
                    if mode == AVG:
                        g = g * inv_count
                    else:
                        norm = y[i, j, a, b, e]
                        g = g / norm if norm > 0 else 0.0
                    for p in range(d0, d1):
                        for q in range(h0, h1):
                            for r in range(w0, w1):
                                gp[(p * h + q) * w + r] += g if mode == AVG else g * xp[p, q, r]


@njit(parallel=True, nogil=True, cache=True)
def max_pool2x2_forward_cpu(x, y, argmax):
    """Max over 2x2 windows with stride 2 and no padding on the last two axes of x [N, C, H, W];
    argmax gets each window's position 0..3 (row-major)."""
    n, c, oh, ow = y.shape
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        for a in range(oh):
            top, bottom = x[i, j, 2 * a], x[i, j, 2 * a + 1]
            for b in range(ow):
                best, where = top[2 * b], 0
                v = top[2 * b + 1]
                if v > best or v != v:
                    best, where = v, 1
                v = bottom[2 * b]
                if v > best or v != v:
                    best, where = v, 2
                v = bottom[2 * b + 1]
                if v > best or v != v:
                    best, where = v, 3
                y[i, j, a, b] = best
                argmax[i, j, a, b] = where


@njit(parallel=True, nogil=True, cache=True)
def max_pool2x2_backward_cpu(argmax, dy, dx):
    """dx [N, C, H, W] from dy; writes every cell, so dx needs no zeroing first."""
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        for a in range(oh):
            top, bottom = dx[i, j, 2 * a], dx[i, j, 2 * a + 1]
            for b in range(ow):
                g, where = dy[i, j, a, b], argmax[i, j, a, b]
                top[2 * b] = g if where == 0 else 0.0
                top[2 * b + 1] = g if where == 1 else 0.0
                bottom[2 * b] = g if where == 2 else 0.0
                bottom[2 * b + 1] = g if where == 3 else 0.0
            top[2 * ow:] = 0.0  # an odd width leaves a column no window reads
            bottom[2 * ow:] = 0.0
        dx[i, j, 2 * oh:] = 0.0


class PoolOp(Op):
    """Pool1D/2D/3D. Every input is viewed as [N, C, D, H, W] (unit axes in front), so one set of
    kernels serves all three."""

    def __init__(self, spec):
        super().__init__(spec)
        p = spec.params
        missing = 3 - len(p["size"])
        self.size = (1,) * missing + tuple(p["size"])
        self.stride = (1,) * missing + tuple(p["stride"])
        self.padding = (0,) * missing + tuple(p["padding"])
        self.mode = MODE_CODES[p["mode"]]
        channels = spec.in_shapes[0][0]
        self.in_view = (channels, *(1,) * missing, *spec.in_shapes[0][1:])
        self.out_view = (channels, *(1,) * missing, *spec.out_shape[1:])
        self.fast = (self.mode == MAX and self.size == self.stride == (1, 2, 2)
                     and self.padding == (0, 0, 0))
        # the fast kernels see [N, C*D, H, W]
        self.fast_in = (channels * self.in_view[1], *self.in_view[2:])
        self.fast_out = (channels * self.out_view[1], *self.out_view[2:])

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, *self.out_view), dtype)
        self.dx = np.empty((batch, *self.in_view), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, *self.out_view))

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n]
        if self.fast:
            max_pool2x2_forward_cpu(x.reshape(n, *self.fast_in), y.reshape(n, *self.fast_out),
                                    self.argmax[:n].reshape(n, *self.fast_out))
        else:
            pool_forward_cpu(x.reshape(n, *self.in_view), y, self.argmax[:n], self.size,
                             self.stride, self.padding, self.mode)
        return y.reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n]
        if self.fast:
            max_pool2x2_backward_cpu(self.argmax[:n].reshape(n, *self.fast_out),
                                     dout.reshape(n, *self.fast_out),
                                     dx.reshape(n, *self.fast_in))
        else:
            pool_backward_cpu(self.x.reshape(n, *self.in_view), self.y[:n], self.argmax[:n],
                              dout.reshape(n, *self.out_view), dx.reshape(n, self.in_view[0], -1),
                              self.size, self.stride, self.padding, self.mode)
        return [dx.reshape(n, *self.spec.in_shapes[0])]


@njit(parallel=True, nogil=True, cache=True)
def channel_pool_forward_cpu(x, y, argmax, mode):
    """Pool x [N, G, size, S] over its third axis into y [N, G, S]; argmax (max mode) gets the
    winning channel within each group."""
    n, groups, size, positions = x.shape
    for row in prange(n * groups):
        i, g = row // groups, row % groups
        xr, yr = x[i, g], y[i, g]
        if mode == MAX:
            ar = argmax[i, g]
            for k in range(positions):
                yr[k] = xr[0, k]
                ar[k] = 0
            for m in range(1, size):
                for k in range(positions):
                    v = xr[m, k]
                    if v > yr[k] or v != v:
                        yr[k] = v
                        ar[k] = m
        else:
            yr[:] = 0.0
            for m in range(size):
                for k in range(positions):
                    v = xr[m, k]
                    yr[k] += v if mode == AVG else v * v
            for k in range(positions):
                yr[k] = yr[k] / size if mode == AVG else math.sqrt(yr[k])


@njit(parallel=True, nogil=True, cache=True)
def channel_pool_backward_cpu(x, y, argmax, dy, dx, mode):
    """dx [N, G, size, S] from dy [N, G, S]; the l2 gradient x / y is 0 where y == 0."""
    n, groups, size, positions = dx.shape
    for row in prange(n * groups):
        i, g = row // groups, row % groups
        for m in range(size):
            if mode == MAX:
                for k in range(positions):
                    dx[i, g, m, k] = dy[i, g, k] if argmax[i, g, k] == m else 0.0
            elif mode == AVG:
                for k in range(positions):
                    dx[i, g, m, k] = dy[i, g, k] / size
            else:
                for k in range(positions):
                    norm = y[i, g, k]
                    dx[i, g, m, k] = dy[i, g, k] * x[i, g, m, k] / norm if norm > 0 else 0.0


class ChannelPoolOp(Op):
    """Pools groups of `size` consecutive channels: [C, *spatial] -> [C/size, *spatial]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.mode = MODE_CODES[spec.params["mode"]]
        size = spec.params["size"]
        channels = spec.in_shapes[0][0]
        self.in_view = (channels // size, size, math.prod(spec.in_shapes[0][1:]))
        self.out_view = (channels // size, self.in_view[2])

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, *self.out_view), dtype)
        self.dx = np.empty((batch, *self.in_view), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, *self.out_view))

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        channel_pool_forward_cpu(x.reshape(n, *self.in_view), self.y[:n], self.argmax[:n],
                                 self.mode)
        return self.y[:n].reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        channel_pool_backward_cpu(self.x.reshape(n, *self.in_view), self.y[:n], self.argmax[:n],
                                  dout.reshape(n, *self.out_view), self.dx[:n], self.mode)
        return [self.dx[:n].reshape(n, *self.spec.in_shapes[0])]


@njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc"})
def global_pool_forward_cpu(x, y, argmax, mode):
    """y [N, C] = max (argmax: its position) or mean of x [N, C, S] over S.

    reassoc only lets the mean's sum vectorise; tests compare it with a float64 reference.
    """
    n, c, positions = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        xr = x[i, j]
        if mode == MAX:
            best, where = xr[0], 0
            for k in range(1, positions):
                v = xr[k]
                if v > best or v != v:
                    best, where = v, k
            y[i, j] = best
            argmax[i, j] = where
        else:
            total = 0.0
            for k in range(positions):
                total += xr[k]
            y[i, j] = total / positions


@njit(parallel=True, nogil=True, cache=True)
def global_pool_backward_cpu(argmax, dy, dx, mode):
    """dx [N, C, S] from dy [N, C]."""
    n, c, positions = dx.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        if mode == MAX:
            dx[i, j, :] = 0.0
            dx[i, j, argmax[i, j]] = dy[i, j]
        else:
            dx[i, j, :] = dy[i, j] / positions


class GlobalPoolOp(Op):
    """Pools each channel over all its positions: [C, *spatial] -> [C]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.mode = MODE_CODES[spec.params["mode"]]
        shape = spec.in_shapes[0]
        self.in_view = (shape[0], math.prod(shape[1:]))

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, self.in_view[0]), dtype)
        self.dx = np.empty((batch, *self.in_view), dtype)
        self.argmax = _argmax_buffer(self.mode, (batch, self.in_view[0]))

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        global_pool_forward_cpu(x.reshape(n, *self.in_view), self.y[:n], self.argmax[:n],
                                self.mode)
        return self.y[:n]

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        global_pool_backward_cpu(self.argmax[:n], dout, self.dx[:n], self.mode)
        return [self.dx[:n].reshape(n, *self.spec.in_shapes[0])]
