"""Winograd F(2x2, 3x3) for ConvOp: 16 products per 2x2 outputs instead of 36 (2D 3x3, stride
1, no dilation or groups), in all three directions: Y = A^T [(G w G^T) * (B^T d B)] A over 4x4
input tiles d that step by 2 (Lavin & Gray, 2016); the weight gradient is its adjoint. The
transforms run channels-last, one output element of a tile per loop along a row of channels,
which LLVM vectorises."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def conv_winograd_weight_cpu(weight, u):
    """u[4*r + c, i, o] = (G w G^T)[r, c] for w = weight[o, i] as 3x3 (weight: [O, I, 9])."""
    t = np.empty((4, 3), u.dtype)
    for o in range(weight.shape[0]):
        for i in range(weight.shape[1]):
            w = weight[o, i]
            for j in range(3):
                t[0, j] = w[j]
                t[1, j] = 0.5 * (w[j] + w[3 + j] + w[6 + j])
                t[2, j] = 0.5 * (w[j] - w[3 + j] + w[6 + j])
                t[3, j] = w[6 + j]
            for r in range(4):
                u[4 * r, i, o] = t[r, 0]
                u[4 * r + 1, i, o] = 0.5 * (t[r, 0] + t[r, 1] + t[r, 2])
                u[4 * r + 2, i, o] = 0.5 * (t[r, 0] - t[r, 1] + t[r, 2])
                u[4 * r + 3, i, o] = t[r, 2]


_WINOGRAD_ROWS = ((0, 2, 1), (1, 2, 0), (2, 1, 1), (1, 3, 1))
"""Row r of B^T d is d[a] + sign * d[b] for (a, b, sign) = _WINOGRAD_ROWS[r]; sign 0: +, 1: -."""


@njit(nogil=True, cache=True, inline="always")
def _winograd_term(out, d00, d01, d10, d11, sign_a, sign_b):
    # one (B^T d B)[r, c] for every channel: 4 rows of channels in, one out (few enough
    # pointers for LLVM to vectorise; all 16 in one loop were too many to check for overlap)
    for ch in range(out.size):
        out[ch] = (d00[ch] + sign_b * d01[ch]) + sign_a * (d10[ch] + sign_b * d11[ch])


@njit(nogil=True, cache=True)
def conv_winograd_input_cpu(x, padded, v, n0, pad_h, pad_w):
    """v[4*r + c, tile, ch] = (B^T d B)[r, c] for the 4x4 tile d of x[n0 + i, ch] (zero-padded)
    whose top-left input cell is (2*th - pad_h, 2*tw - pad_w); x: [N, C, 1, H, W]. The samples
    are first copied channels-last into padded [m, 2*tiles_h + 2, 2*tiles_w + 2, C], so that
    the transform runs along rows of channels, vectorised (a 16x16 layer has rows of only 8
    tiles): 11x faster than along rows of tiles for 32 or 64 channels."""
    m, rows, cols, channels = padded.shape
    height, width = x.shape[3], x.shape[4]
    tiles_h, tiles_w = (rows - 2) // 2, (cols - 2) // 2
    h_lo, h_hi = max(0, pad_h), max(0, min(rows, height + pad_h))  # rows that hold input
    w_lo, w_hi = max(0, pad_w), max(0, min(cols, width + pad_w))
    signs = np.empty(2, v.dtype)
    signs[0], signs[1] = 1, -1
    for i in range(m):
        p = padded[i]
        for h in range(rows):
            if h < h_lo or h >= h_hi:
                p[h] = 0
            else:
                p[h, :w_lo] = 0
                p[h, w_hi:] = 0
        for ch in range(channels):
            plane = x[n0 + i, ch, 0]
            for h in range(h_lo, h_hi):
                for w in range(w_lo, w_hi):
                    p[h, w, ch] = plane[h - pad_h, w - pad_w]
        for th in range(tiles_h):
            for tw in range(tiles_w):
                t = (i * tiles_h + th) * tiles_w + tw
                h, w = 2 * th, 2 * tw
                for r in range(4):
                    a1, a2, sign_a = _WINOGRAD_ROWS[r]
                    for c in range(4):
                        b1, b2, sign_b = _WINOGRAD_ROWS[c]
                        _winograd_term(v[4 * r + c, t], p[h + a1, w + b1], p[h + a1, w + b2],
                                       p[h + a2, w + b1], p[h + a2, w + b2], signs[sign_a],
                                       signs[sign_b])


@njit(nogil=True, cache=True)
def conv_winograd_output_cpu(products, tiled, y, n0, bias, relu, clamp):
    """y[n0 + i, o, 0] = A^T m A per 2x2 output tile, m = products[:, tile, o] (+ bias[o]; bias
    may be empty); relu (y's shape, or empty) gets max(y, 0) too; with clamp y gets max(., 0)
    itself. The tiles go channels-last through tiled [m, 2*tiles_h, 2*tiles_w, O] first."""
    m, rows, cols, outs = tiled.shape
    height, width = y.shape[3], y.shape[4]
    tiles_h, tiles_w = rows // 2, cols // 2
    for i in range(m):
        q = tiled[i]
        for th in range(tiles_h):
            for tw in range(tiles_w):
                t = (i * tiles_h + th) * tiles_w + tw
                top, bottom = q[2 * th, 2 * tw:2 * tw + 2], q[2 * th + 1, 2 * tw:2 * tw + 2]
                for o in range(outs):
                    s0 = products[0, t, o] + products[4, t, o] + products[8, t, o]
                    s1 = products[1, t, o] + products[5, t, o] + products[9, t, o]
                    s2 = products[2, t, o] + products[6, t, o] + products[10, t, o]
                    s3 = products[3, t, o] + products[7, t, o] + products[11, t, o]
                    d0 = products[4, t, o] - products[8, t, o] - products[12, t, o]
                    d1 = products[5, t, o] - products[9, t, o] - products[13, t, o]
                    d2 = products[6, t, o] - products[10, t, o] - products[14, t, o]
                    d3 = products[7, t, o] - products[11, t, o] - products[15, t, o]
                    top[0, o], top[1, o] = s0 + s1 + s2, s1 - s2 - s3
                    bottom[0, o], bottom[1, o] = d0 + d1 + d2, d1 - d2 - d3
        for o in range(outs):
            b = bias[o] if bias.size else 0
            plane = y[n0 + i, o, 0]
            for h in range(height):
                for w in range(width):
                    value = q[h, w, o] + b
                    clamped = 0 if value < 0 else value
                    plane[h, w] = clamped if clamp else value
                    if relu.size:
                        relu[n0 + i, o, 0, h, w] = clamped


_WINOGRAD_A = ((1.0, 0.0), (1.0, 1.0), (1.0, -1.0), (0.0, -1.0))
"""A (4x2): the adjoint of the output transform A^T m A takes a 2x2 tile of dY to A dY A^T."""
_WINOGRAD_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
"""G (4x3): the weight transform G w G^T."""


@njit(nogil=True, cache=True, inline="always")
def _winograd_grad_term(out, q00, q01, q10, q11, a0, a1, b0, b1):
    # one (A dY A^T)[r, c] for every filter (coefficients 0 or +-1)
    for o in range(out.size):
        out[o] = a0 * (b0 * q00[o] + b1 * q01[o]) + a1 * (b0 * q10[o] + b1 * q11[o])


@njit(nogil=True, cache=True)
def conv_winograd_dy_cpu(dy, tiled, dm, n0, dbias):
    """dm[4*r + c, tile, o] = (A dY A^T)[r, c] for the 2x2 tile of dy[n0 + i, o] (zero beyond
    the output), through tiled [m, 2*tiles_h, 2*tiles_w, O] channels-last; dbias (or an empty
    array) gets dy's sums added."""
    m, rows, cols, outs = tiled.shape
    height, width = dy.shape[3], dy.shape[4]
    tiles_h, tiles_w = rows // 2, cols // 2
    coefficients = np.empty((4, 2), dm.dtype)
    for r in range(4):
        coefficients[r, 0], coefficients[r, 1] = _WINOGRAD_A[r]
    for i in range(m):
        q = tiled[i]
        q[height:] = 0
        q[:height, width:] = 0
        for o in range(outs):
            plane = dy[n0 + i, o, 0]
            total = 0.0
            for h in range(height):
                for w in range(width):
                    q[h, w, o] = plane[h, w]
                    total += plane[h, w]
            if dbias.size:
                dbias[o] += total
        for th in range(tiles_h):
            for tw in range(tiles_w):
                t = (i * tiles_h + th) * tiles_w + tw
                top, bottom = q[2 * th], q[2 * th + 1]
                for r in range(4):
                    for c in range(4):
                        _winograd_grad_term(dm[4 * r + c, t], top[2 * tw], top[2 * tw + 1],
                                            bottom[2 * tw], bottom[2 * tw + 1],
                                            coefficients[r, 0], coefficients[r, 1],
                                            coefficients[c, 0], coefficients[c, 1])


@njit(nogil=True, cache=True)
def conv_winograd_weight_grad_cpu(du, dweight):
    """dweight[o, i] (3x3, flat) = G^T du[:, i, o] G: the gradient of the weight from that of
    its transform u (du: [16, I, O])."""
    g = np.empty((4, 3), du.dtype)
    for r in range(4):
        g[r, 0], g[r, 1], g[r, 2] = _WINOGRAD_G[r]
    half = np.empty((3, 4), du.dtype)   # G^T du
    for o in range(dweight.shape[0]):
        for i in range(dweight.shape[1]):
            for a in range(3):
                for c in range(4):
                    half[a, c] = (g[0, a] * du[c, i, o] + g[1, a] * du[4 + c, i, o]
                                  + g[2, a] * du[8 + c, i, o] + g[3, a] * du[12 + c, i, o])
            for a in range(3):
                for b in range(3):
                    dweight[o, i, 3 * a + b] = (half[a, 0] * g[0, b] + half[a, 1] * g[1, b]
                                                + half[a, 2] * g[2, b] + half[a, 3] * g[3, b])
