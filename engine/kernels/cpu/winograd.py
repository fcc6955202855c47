"""Winograd F(4x4, 3x3) for ConvOp: 36 products per 4x4 outputs instead of 144 (2D 3x3, stride
1, no dilation or groups), in all three directions: Y = A^T [(G w G^T) * (B^T d B)] A over 6x6
input tiles d that step by 4 (Lavin & Gray, 2016); the weight gradient is its adjoint, dU = the
sum over tiles of (B^T d B) * (A dY A^T), then G^T dU G. The input and dY transforms run
channels-last in numba: down the rows of a whole row of tiles at once, then along each tile's
columns, each output a loop over the channels that LLVM vectorises; the output transform is ten
small BLAS GEMMs over every tile of a chunk (winograd_outputs)."""
from __future__ import annotations

import numpy as np
from numba import njit

STEP = 4
"""Outputs per tile side (tiles overlap by 2: an input tile is STEP + 2 wide)."""
TILE = STEP + 2
PRODUCTS = TILE * TILE
"""Products per tile, so GEMMs per chunk of tiles."""

BLOCK = 8
"""The channels-last copies go in blocks of 8 channels x 8 positions (whole cache lines on both
sides)."""


def _terms(matrix, width: int):
    """Each row's nonzero entries as (columns, coefficients), padded to `width` terms with zero
    coefficients, so that every combination reads exactly `width` rows."""
    columns = np.zeros((len(matrix), width), np.int64)
    coefficients = np.zeros((len(matrix), width))
    for r, row in enumerate(matrix):
        nonzero = [c for c, value in enumerate(row) if value]
        columns[r, :len(nonzero)] = nonzero
        coefficients[r, :len(nonzero)] = [row[c] for c in nonzero]
    return columns, coefficients


_B_T = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
        (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
A_T = np.array(((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0),
                (0, 1, -1, 8, -8, 1)), float)
"""The output transform A^T (STEP x TILE)."""
_G = np.array(((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
               (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)))
_INPUT_COLUMNS, _INPUT_COEFFICIENTS = _terms(_B_T, 4)            # B^T d: 3-4 terms a row
_GRADIENT_COLUMNS, _GRADIENT_COEFFICIENTS = _terms(A_T.T, 4)      # A dY: 1-4 terms a row


@njit(nogil=True, cache=True)
def _as(coefficients, like):
    out = np.empty(coefficients.shape, like.dtype)
    out[:] = coefficients
    return out


@njit(nogil=True, cache=True, inline="always")
def _combine4(out, rows, base, columns, coefficients):
    # out = sum_j coefficients[j] * rows[base + columns[j]]: one transform output, vectorised
    x0, x1, x2, x3 = (rows[base + columns[0]], rows[base + columns[1]],
                      rows[base + columns[2]], rows[base + columns[3]])
    a0, a1, a2, a3 = coefficients[0], coefficients[1], coefficients[2], coefficients[3]
    for k in range(out.size):
        out[k] = a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]


@njit(nogil=True, cache=True, inline="always")
def _block_in(row, x, n, c0, h, w0, cn, wn, shift):
    # row[w0 + w, c0 + c] = x[n, c0 + c, 0, h, w0 + w - shift]
    if cn == BLOCK and wn == BLOCK:
        for c in range(BLOCK):
            for w in range(BLOCK):
                row[w0 + w, c0 + c] = x[n, c0 + c, 0, h, w0 + w - shift]
    else:
        for c in range(cn):
            for w in range(wn):
                row[w0 + w, c0 + c] = x[n, c0 + c, 0, h, w0 + w - shift]


@njit(nogil=True, cache=True)
def channels_last_cpu(x, n, p, pad_h, pad_w):
    """p[h, w, ch] = x[n, ch, 0, h - pad_h, w - pad_w], zero where that is outside x."""
    rows, cols, channels = p.shape
    h_lo, h_hi = max(0, pad_h), max(0, min(rows, x.shape[3] + pad_h))
    w_lo, w_hi = max(0, pad_w), max(0, min(cols, x.shape[4] + pad_w))
    for h in range(rows):
        row = p[h]
        if h < h_lo or h >= h_hi:
            row[:] = 0
            continue
        row[:w_lo] = 0
        row[w_hi:] = 0
        for w0 in range(w_lo, w_hi, BLOCK):
            for c0 in range(0, channels, BLOCK):
                _block_in(row, x, n, c0, h - pad_h, w0, min(BLOCK, channels - c0),
                          min(BLOCK, w_hi - w0), pad_w)


@njit(nogil=True, cache=True)
def _transform_tiles(grid, tiles_h, tiles_w, out, t_first, down, columns, coefficients):
    """out[TILE*r + c, t_first + tile] = (M grid_tile M^T)[r, c] for every tile of the
    channels-last grid [rows, cols, ch] (tiles step by STEP); M's rows as (columns,
    coefficients) of 4 terms. down [TILE, cols, ch]: scratch for M down one row of tiles."""
    rows, cols, channels = grid.shape
    grid_rows = grid.reshape(rows, cols * channels)
    down_rows = down.reshape(TILE, cols * channels)
    for th in range(tiles_h):
        for r in range(TILE):
            _combine4(down_rows[r], grid_rows, STEP * th, columns[r], coefficients[r])
        t0 = t_first + th * tiles_w
        for r in range(TILE):
            for c in range(TILE):
                plane = out[TILE * r + c]
                for tw in range(tiles_w):
                    _combine4(plane[t0 + tw], down[r], STEP * tw, columns[c], coefficients[c])


@njit(nogil=True, cache=True)
def conv_winograd_weight_cpu(weight, u):
    """u[TILE*r + c, i, o] = (G w G^T)[r, c] for w = weight[o, i] as 3x3 (weight: [O, I, 9])."""
    g = _as(_G, u)
    t = np.empty((TILE, 3), u.dtype)
    for o in range(weight.shape[0]):
        for i in range(weight.shape[1]):
            w = weight[o, i]
            for r in range(TILE):
                for j in range(3):
                    t[r, j] = g[r, 0] * w[j] + g[r, 1] * w[3 + j] + g[r, 2] * w[6 + j]
            for r in range(TILE):
                for c in range(TILE):
                    u[TILE * r + c, i, o] = (t[r, 0] * g[c, 0] + t[r, 1] * g[c, 1]
                                             + t[r, 2] * g[c, 2])


@njit(nogil=True, cache=True)
def conv_winograd_input_cpu(x, padded, v, n0, pad_h, pad_w):
    """v[TILE*r + c, tile, ch] = (B^T d B)[r, c] for the 6x6 tile d of x[n0 + i, ch]
    (zero-padded) whose top-left input cell is (STEP*th - pad_h, STEP*tw - pad_w); x: [N, C, 1,
    H, W]. Each sample is first copied channels-last into padded [m, STEP*tiles_h + 2,
    STEP*tiles_w + 2, C]."""
    m, rows, cols, channels = padded.shape
    tiles_h, tiles_w = (rows - 2) // STEP, (cols - 2) // STEP
    columns, coefficients = _INPUT_COLUMNS, _as(_INPUT_COEFFICIENTS, v)
    down = np.empty((TILE, cols, channels), v.dtype)
    for i in range(m):
        channels_last_cpu(x, n0 + i, padded[i], pad_h, pad_w)
        _transform_tiles(padded[i], tiles_h, tiles_w, v, i * tiles_h * tiles_w, down, columns,
                         coefficients)


def winograd_outputs(a_t, products, across, outputs) -> None:
    """outputs[STEP*a + j] = (A^T m A)[a, j] for every tile's m = products[:, tile] ([PRODUCTS,
    tiles x O]) as ten small BLAS GEMMs: A^T down each column of m into across [STEP, TILE,
    tiles x O], then along each row (3x faster than two passes in numba on 32 channels, and
    than one GEMM by A^T kron A^T). a_t: A_T in the arrays' dtype."""
    by_row = products.reshape(TILE, TILE, -1)
    for c in range(TILE):
        np.matmul(a_t, by_row[:, c], out=across[:, c])
    for a in range(STEP):
        np.matmul(a_t, across[a], out=outputs[STEP * a:STEP * a + STEP])


@njit(nogil=True, cache=True)
def conv_winograd_output_cpu(outputs, y, n0, tiles_h, tiles_w, bias, relu, clamp):
    """y[n0 + i, o, 0, STEP*th + a, STEP*tw + j] = outputs[STEP*a + j, tile, o] (+ bias[o];
    bias may be empty) for the tiles of samples i = 0, 1, ... (outputs: winograd_outputs');
    relu (y's shape, or empty) gets max(y, 0) too; with clamp y gets max(., 0) itself."""
    height, width = y.shape[3], y.shape[4]
    per_sample = tiles_h * tiles_w
    for i in range(outputs.shape[1] // per_sample):
        for o in range(y.shape[1]):
            b = bias[o] if bias.size else 0
            plane = y[n0 + i, o, 0]
            for h in range(height):
                th, a = h // STEP, h % STEP
                tiles = outputs[STEP * a:STEP * a + STEP, i * per_sample + th * tiles_w:, o]
                for w in range(width):
                    value = tiles[w % STEP, w // STEP] + b
                    clamped = 0 if value < 0 else value
                    plane[h, w] = clamped if clamp else value
                    if relu.size:
                        relu[n0 + i, o, 0, h, w] = clamped


@njit(nogil=True, cache=True)
def conv_winograd_dy_cpu(dy, tiled, dm, n0, dbias):
    """dm[TILE*r + c, tile, o] = (A dY A^T)[r, c] for the 4x4 tile of dy[n0 + i, o] (zero
    beyond the output), through tiled [m, STEP*tiles_h, STEP*tiles_w, O] channels-last; dbias
    (or an empty array) gets dy's sums added."""
    m, rows, cols, outs = tiled.shape
    height, width = dy.shape[3], dy.shape[4]
    tiles_h, tiles_w = rows // STEP, cols // STEP
    columns, coefficients = _GRADIENT_COLUMNS, _as(_GRADIENT_COEFFICIENTS, dm)
    down = np.empty((TILE, cols, outs), dm.dtype)
    totals = np.zeros(outs)
    for i in range(m):
        q = tiled[i]
        channels_last_cpu(dy, n0 + i, q, 0, 0)
        if dbias.size:
            for h in range(height):
                for w in range(width):
                    for o in range(outs):
                        totals[o] += q[h, w, o]
        _transform_tiles(q, tiles_h, tiles_w, dm, i * tiles_h * tiles_w, down, columns,
                         coefficients)
    for o in range(dbias.size):
        dbias[o] += totals[o]


@njit(nogil=True, cache=True)
def conv_winograd_weight_grad_cpu(du, dweight):
    """dweight[o, i] (3x3, flat) = G^T du[:, i, o] G: the gradient of the weight from that of
    its transform u (du: [PRODUCTS, I, O])."""
    g = _as(_G, du)
    half = np.empty((3, TILE), du.dtype)   # G^T du
    for o in range(dweight.shape[0]):
        for i in range(dweight.shape[1]):
            for a in range(3):
                for c in range(TILE):
                    total = 0.0
                    for r in range(TILE):
                        total += g[r, a] * du[TILE * r + c, i, o]
                    half[a, c] = total
            for a in range(3):
                for b in range(3):
                    total = 0.0
                    for c in range(TILE):
                        total += half[a, c] * g[c, b]
                    dweight[o, i, 3 * a + b] = total
