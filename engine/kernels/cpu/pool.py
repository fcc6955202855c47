"""Pooling on the CPU: windows over 1-3 spatial axes (all viewed as [N, C, D, H, W]), groups of
channels (ChannelPool) and whole channels (GlobalPool); modes max, avg and l2."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ...modules.registry import Op

MAX, AVG, L2 = 0, 1, 2
MODE_CODES = {"max": MAX, "avg": AVG, "l2": L2}


@njit(nogil=True, cache=True)
def _outputs_reading(offset, length, count, stride, padding):
    """The [begin, end) of the outputs along one axis whose window cell number `offset` falls
    inside the input rather than in the padding."""
    begin = -((offset - padding) // stride)  # ceil((padding - offset) / stride)
    end = (length - 1 + padding - offset) // stride + 1
    return max(begin, 0), min(end, count)


# The window kernels loop over the window offsets outermost and over a row of outputs innermost:
# a loop per output over a window of 2 or 3 cells took twice as long (its set-up outweighs it).


@njit(parallel=True, nogil=True, cache=True)
def max_pool_forward_cpu(x, y, argmax, size, stride, padding):
    """Max over windows of x [N, C, D, H, W] into y [N, C, OD, OH, OW], ignoring padded cells;
    argmax gets the flat in-plane position of each maximum (the first one on ties, as PyTorch)."""
    n, c, d, h, w = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp, yp, ap = x[i, j], y[i, j], argmax[i, j]
        ap[:] = -1  # nothing taken yet
        for u in range(size[0]):
            a0, a1 = _outputs_reading(u, d, od, stride[0], padding[0])
            for v in range(size[1]):
                b0, b1 = _outputs_reading(v, h, oh, stride[1], padding[1])
                for z in range(size[2]):
                    e0, e1 = _outputs_reading(z, w, ow, stride[2], padding[2])
                    shift = z - padding[2]
                    for a in range(a0, a1):
                        p = a * stride[0] + u - padding[0]
                        for b in range(b0, b1):
                            q = b * stride[1] + v - padding[1]
                            xr, yr, ar = xp[p, q], yp[a, b], ap[a, b]
                            base = (p * h + q) * w + shift
                            for e in range(e0, e1):
                                value, current, where = xr[e * stride[2] + shift], yr[e], ar[e]
                                # branch-free; NaN wins, as in PyTorch
                                take = (value > current) | (value != value) | (where < 0)
                                yr[e] = value if take else current
                                ar[e] = base + e * stride[2] if take else where


@njit(parallel=True, nogil=True, cache=True)
def max_pool_backward_cpu(argmax, dy, dx):
    """dx [N, C, D*H*W] (flat planes) from dy [N, C, OD, OH, OW] and argmax [N, C, OD*OH*OW]."""
    n, c = dx.shape[0], dx.shape[1]
    od, oh, ow = dy.shape[2], dy.shape[3], dy.shape[4]
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        gp, ap = dx[i, j], argmax[i, j]
        gp[:] = 0.0
        k = 0
        for a in range(od):
            for b in range(oh):
                for e in range(ow):
                    gp[ap[k]] += dy[i, j, a, b, e]
                    k += 1


@njit(parallel=True, nogil=True, cache=True)
def sum_pool_forward_cpu(x, y, size, stride, padding, squares):
    """avg (the divisor is the whole window: padded zeros count) or, with squares, l2 =
    sqrt(sum x^2) over windows of x [N, C, D, H, W] into y [N, C, OD, OH, OW]."""
    n, c, d, h, w = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    inv_count = 1.0 / (size[0] * size[1] * size[2])
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp, yp = x[i, j], y[i, j]
        yp[:] = 0.0
        for u in range(size[0]):
            a0, a1 = _outputs_reading(u, d, od, stride[0], padding[0])
            for v in range(size[1]):
                b0, b1 = _outputs_reading(v, h, oh, stride[1], padding[1])
                for z in range(size[2]):
                    e0, e1 = _outputs_reading(z, w, ow, stride[2], padding[2])
                    shift = z - padding[2]
                    for a in range(a0, a1):
                        for b in range(b0, b1):
                            xr = xp[a * stride[0] + u - padding[0], b * stride[1] + v - padding[1]]
                            yr = yp[a, b]
                            if squares:
                                for e in range(e0, e1):
                                    value = xr[e * stride[2] + shift]
                                    yr[e] += value * value
                            else:
                                for e in range(e0, e1):
                                    yr[e] += xr[e * stride[2] + shift]
        for a in range(od):
            for b in range(oh):
                yr = yp[a, b]
                for e in range(ow):
                    yr[e] = math.sqrt(yr[e]) if squares else yr[e] * inv_count


@njit(parallel=True, nogil=True, cache=True)
def sum_pool_backward_cpu(x, y, dy, dx, size, stride, padding, squares):
    """dx [N, C, D, H, W] from dy for sum_pool_forward_cpu; overlapping windows add up. The l2
    gradient x / y is taken as 0 where y == 0."""
    n, c, d, h, w = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    inv_count = 1.0 / (size[0] * size[1] * size[2])
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp, yp, gp = x[i, j], y[i, j], dx[i, j]
        gp[:] = 0.0
        for u in range(size[0]):
            a0, a1 = _outputs_reading(u, d, od, stride[0], padding[0])
            for v in range(size[1]):
                b0, b1 = _outputs_reading(v, h, oh, stride[1], padding[1])
                for z in range(size[2]):
                    e0, e1 = _outputs_reading(z, w, ow, stride[2], padding[2])
                    shift = z - padding[2]
                    for a in range(a0, a1):
                        p = a * stride[0] + u - padding[0]
                        for b in range(b0, b1):
                            q = b * stride[1] + v - padding[1]
                            xr, yr, gr, dyr = xp[p, q], yp[a, b], gp[p, q], dy[i, j, a, b]
                            if squares:
                                for e in range(e0, e1):
                                    k = e * stride[2] + shift
                                    norm = yr[e]
                                    gr[k] += dyr[e] * xr[k] / norm if norm > 0 else 0.0
                            else:
                                for e in range(e0, e1):
                                    gr[e * stride[2] + shift] += dyr[e] * inv_count


@njit(parallel=True, nogil=True, cache=True)
def max_pool_pairs_forward_cpu(x, y, argmax, depth, rows):
    """max_pool_forward_cpu for windows of depth x rows x 2 cells (depth and rows 1 or 2),
    stride = window, no padding: the common 2x2, 2x2x2 and 1D size-2 pools.

    Written out cell by cell: that runs several times faster than the general kernel.
    """
    n, c, d, h, w = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    below, behind = (rows - 1) * w, (depth - 1) * h * w  # flat steps to the window's other rows
    for plane in prange(n * c):
        i, j = plane // c, plane % c
        xp, yp, ap = x[i, j], y[i, j], argmax[i, j]
        for a in range(od):
            front, back = depth * a, depth * a + depth - 1
            for b in range(oh):
                top, bottom = rows * b, rows * b + rows - 1
                for e in range(ow):
                    left = 2 * e
                    corner = (front * h + top) * w + left
                    best, where = xp[front, top, left], corner
                    v = xp[front, top, left + 1]
                    if v > best or v != v:  # NaN wins, as in PyTorch
                        best, where = v, corner + 1
                    if rows == 2:
                        v = xp[front, bottom, left]
                        if v > best or v != v:
                            best, where = v, corner + below
                        v = xp[front, bottom, left + 1]
                        if v > best or v != v:
                            best, where = v, corner + below + 1
                    if depth == 2:
                        v = xp[back, top, left]
                        if v > best or v != v:
                            best, where = v, corner + behind
                        v = xp[back, top, left + 1]
                        if v > best or v != v:
                            best, where = v, corner + behind + 1
                        if rows == 2:
                            v = xp[back, bottom, left]
                            if v > best or v != v:
                                best, where = v, corner + behind + below
                            v = xp[back, bottom, left + 1]
                            if v > best or v != v:
                                best, where = v, corner + behind + below + 1
                    yp[a, b, e] = best
                    ap[a, b, e] = where


@njit(parallel=True, nogil=True, cache=True)
def max_pool_rows_forward_cpu(x, y, argmax, size):
    """Max over non-overlapping windows of `size` cells along rows: x [R, P, W] -> y [R, P, OW]
    (a 1D pool, or any pool whose window spans only the last axis); argmax as the general
    kernel's. Branch-free: 2.5x faster than the general kernel on signal1d's size-4 pool."""
    rows, planes, width = x.shape
    for r in prange(rows):
        for p in range(planes):
            for e in range(y.shape[2]):
                start = e * size
                best, where = x[r, p, start], start
                for t in range(start + 1, start + size):
                    value = x[r, p, t]
                    take = (value > best) | (value != value)  # NaN wins, as in PyTorch
                    best = value if take else best
                    where = t if take else where
                y[r, p, e] = best
                argmax[r, p, e] = p * width + where


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
        self.pairs = (self.mode == MAX and self.size == self.stride and self.size[0] <= 2
                      and self.size[1] <= 2 and self.size[2] == 2 and not any(self.padding))
        self.rows = (not self.pairs and self.mode == MAX and self.size[:2] == (1, 1)
                     and self.stride == self.size and not any(self.padding))

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, *self.out_view), dtype)
        self.dx = np.empty((batch, *self.in_view), dtype)
        self.argmax = np.empty((batch, *self.out_view), np.int32) if self.mode == MAX else None

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n]
        if self.pairs:
            max_pool_pairs_forward_cpu(x.reshape(n, *self.in_view), y, self.argmax[:n],
                                       self.size[0], self.size[1])
        elif self.rows:
            channels, depth, height, width = self.in_view
            max_pool_rows_forward_cpu(
                x.reshape(n * channels, depth * height, width),
                y.reshape(n * channels, depth * height, -1),
                self.argmax[:n].reshape(n * channels, depth * height, -1), self.size[2])
        elif self.mode == MAX:
            max_pool_forward_cpu(x.reshape(n, *self.in_view), y, self.argmax[:n], self.size,
                                 self.stride, self.padding)
        else:
            sum_pool_forward_cpu(x.reshape(n, *self.in_view), y, self.size, self.stride,
                                 self.padding, self.mode == L2)
        return y.reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n]
        if self.mode == MAX:
            max_pool_backward_cpu(self.argmax[:n].reshape(n, self.out_view[0], -1),
                                  dout.reshape(n, *self.out_view),
                                  dx.reshape(n, self.in_view[0], -1))
        else:
            sum_pool_backward_cpu(self.x.reshape(n, *self.in_view), self.y[:n],
                                  dout.reshape(n, *self.out_view), dx, self.size, self.stride,
                                  self.padding, self.mode == L2)
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
        self.argmax = np.empty((batch, *self.out_view), np.int32)

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
        self.argmax = np.empty((batch, self.in_view[0]), np.int32)

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
