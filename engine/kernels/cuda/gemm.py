"""Tiled shared-memory GEMM kernels: a strided one (Dense) and implicit-im2col ones (Conv).

A block of TY x TX threads computes a BM x BN tile of C, each thread a TM x TN micro-tile held in
registers, stepping through K in BK-deep slices staged in shared memory. The conv kernels never
build the im2col matrix: a thread reads the input cells its tile needs through a small table of
per-tap offsets rather than decoding each tap by division. Every conv runs as 3D (1D and 2D get
unit leading spatial axes); arrays are passed flat.
"""
from __future__ import annotations

from numba import cuda

from .runtime import SIMULATOR, stream

DEVICE_INLINE = {} if SIMULATOR else {"forceinline": True}


def configure(threads: int, micro: int, depth: int) -> None:
    """Tile shape: threads x threads per block, micro x micro outputs each, BK = depth.

    The simulator runs every thread in Python, so it gets small tiles; its tests can switch to
    the GPU's shape, as simulated kernels read these globals at each run (a GPU compile bakes
    them in).
    """
    global TX, TY, TM, TN, BK, BM, BN, NT, A_LOADS, B_LOADS, BM_PADDED, BN_PADDED
    TX = TY = threads
    TM = TN = micro
    BK = depth
    BM, BN, NT = TY * TM, TX * TN, TX * TY
    # a padding column keeps the k-major stores of a tile off one shared-memory bank; the GPU
    # compiler needs shapes as plain globals
    BM_PADDED, BN_PADDED = BM + 1, BN + 1
    A_LOADS, B_LOADS = BM * BK // NT, BN * BK // NT
    # each thread keeps one column (forward, backward data) or one k (weights) of every load
    assert NT % BN == 0 and NT % BK == 0 and BN % (NT // BK) == 0 and A_LOADS * NT == BM * BK


GPU_TILES = (16, 4, 16)
SIMULATOR_TILES = (2, 2, 4)
configure(*(SIMULATOR_TILES if SIMULATOR else GPU_TILES))


def blocks(rows: int, cols: int, depth: int = 1) -> tuple:
    """Launch configuration for a rows x cols output (times depth: groups, splits)."""
    return (-(-cols // BN), -(-rows // BM), depth), (TX, TY), stream()


@cuda.jit(device=True, **DEVICE_INLINE)
def tile_multiply(a_tile, b_tile, acc, b_reg, ty, tx):
    """acc += a_tile^T-slice x b_tile-slice for this thread's rows ty + i*TY, cols tx + j*TX."""
    for k in range(BK):
        for j in range(TN):
            b_reg[j] = b_tile[k, tx + j * TX]
        for i in range(TM):
            a = a_tile[k, ty + i * TY]
            for j in range(TN):
                acc[i, j] += a * b_reg[j]


@cuda.jit(cache=True)
def gemm_kernel(a, b, c, bias, m_size, n_size, k_size, a_rs, a_cs, b_rs, b_cs, has_bias):
    """c [m, n] (row-major) = sum_k a[m*a_rs + k*a_cs] b[k*b_rs + n*b_cs] (+ bias[n]).

    Loads run along whichever axis is contiguous in memory, so transposed operands coalesce too.
    """
    a_tile = cuda.shared.array((BK, BM_PADDED), dtype=c.dtype)
    b_tile = cuda.shared.array((BK, BN_PADDED), dtype=c.dtype)
    acc = cuda.local.array((TM, TN), dtype=c.dtype)
    b_reg = cuda.local.array(TN, dtype=c.dtype)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    tid = ty * TX + tx
    row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = 0
    for k0 in range(0, k_size, BK):
        for load in range(A_LOADS):
            index = tid + load * NT
            if a_cs == 1:
                kk, mm = index % BK, index // BK
            else:
                mm, kk = index % BM, index // BM
            a_tile[kk, mm] = 0
            if row0 + mm < m_size and k0 + kk < k_size:
                a_tile[kk, mm] = a[(row0 + mm) * a_rs + (k0 + kk) * a_cs]
        for load in range(B_LOADS):
            index = tid + load * NT
            if b_cs == 1:
                nn, kk = index % BN, index // BN
            else:
                kk, nn = index % BK, index // BK
            b_tile[kk, nn] = 0
            if col0 + nn < n_size and k0 + kk < k_size:
                b_tile[kk, nn] = b[(k0 + kk) * b_rs + (col0 + nn) * b_cs]
        cuda.syncthreads()
        tile_multiply(a_tile, b_tile, acc, b_reg, ty, tx)
        cuda.syncthreads()
    for i in range(TM):
        row = row0 + ty + i * TY
        if row < m_size:
            for j in range(TN):
                col = col0 + tx + j * TX
                if col < n_size:
                    value = acc[i, j]
                    if has_bias:
                        value += bias[col]
                    c[row * n_size + col] = value


def gemm(a, b, c, bias, m_size, n_size, k_size, a_strides, b_strides) -> None:
    """c = a @ b (+ bias) over flat arrays; a_strides/b_strides: (row, column) element strides."""
    gemm_kernel[blocks(m_size, n_size)](a, b, c, bias if bias is not None else c, m_size, n_size,
                                        k_size, *a_strides, *b_strides, bias is not None)


@cuda.jit(cache=True)
def conv_forward_kernel(x, w, bias, y, taps, images, in_dims, out_dims, stride, pad, groups,
                        has_bias):
    """y [N, F, P] = W [F, Cg*T] x im2col(x) (+ bias) per group (blockIdx.z).

    taps[kk] for kk = c*T + t: (c * input plane, d, h, w offsets of tap t with dilation).
    """
    a_tile = cuda.shared.array((BK, BM_PADDED), dtype=y.dtype)
    b_tile = cuda.shared.array((BK, BN_PADDED), dtype=y.dtype)
    acc = cuda.local.array((TM, TN), dtype=y.dtype)
    b_reg = cuda.local.array(TN, dtype=y.dtype)
    channels, d_in, h_in, w_in = in_dims
    filters, d_out, h_out, w_out = out_dims
    positions, plane = d_out * h_out * w_out, d_in * h_in * w_in
    g = cuda.blockIdx.z
    fg, cg = filters // groups, channels // groups
    k_size = taps.size // 4
    cols = images * positions
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    tid = ty * TX + tx
    row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = 0
    # the one output column this thread loads for: where its window starts
    nn = tid % BN
    col = col0 + nn
    image, p = col // positions, col % positions
    d0 = (p // (h_out * w_out)) * stride[0] - pad[0]
    h0 = (p // w_out) % h_out * stride[1] - pad[1]
    w0 = p % w_out * stride[2] - pad[2]
    x_base = (image * channels + g * cg) * plane
    a_k = tid % BK
    for k0 in range(0, k_size, BK):
        kk = k0 + a_k
        for load in range(A_LOADS):
            mm = tid // BK + load * (NT // BK)
            a_tile[a_k, mm] = 0
            if row0 + mm < fg and kk < k_size:
                a_tile[a_k, mm] = w[(g * fg + row0 + mm) * k_size + kk]
        for load in range(B_LOADS):
            kb = tid // BN + load * (NT // BN)
            kk = k0 + kb
            b_tile[kb, nn] = 0
            if col < cols and kk < k_size:
                di = d0 + taps[4 * kk + 1]
                hi = h0 + taps[4 * kk + 2]
                wi = w0 + taps[4 * kk + 3]
                if 0 <= di < d_in and 0 <= hi < h_in and 0 <= wi < w_in:
                    b_tile[kb, nn] = x[x_base + taps[4 * kk] + (di * h_in + hi) * w_in + wi]
        cuda.syncthreads()
        tile_multiply(a_tile, b_tile, acc, b_reg, ty, tx)
        cuda.syncthreads()
    for i in range(TM):
        f = row0 + ty + i * TY
        if f < fg:
            for j in range(TN):
                out = col0 + tx + j * TX
                if out < cols:
                    value = acc[i, j]
                    if has_bias:
                        value += bias[g * fg + f]
                    y[((out // positions) * filters + g * fg + f) * positions
                      + out % positions] = value


@cuda.jit(cache=True)
def conv_backward_data_kernel(dy, w, dx, taps, images, in_dims, out_dims, stride, pad, groups):
    """dx [N, C, plane] = W^T x col2im-gather(dy) per group: each input cell sums the outputs
    whose windows cover it, so there are no atomics and dx needs no zeroing.

    taps[kk] for kk = f*T + t: (f*Cg*T + t, f * output positions, d, h, w offsets of tap t).
    """
    a_tile = cuda.shared.array((BK, BM_PADDED), dtype=dx.dtype)
    b_tile = cuda.shared.array((BK, BN_PADDED), dtype=dx.dtype)
    acc = cuda.local.array((TM, TN), dtype=dx.dtype)
    b_reg = cuda.local.array(TN, dtype=dx.dtype)
    channels, d_in, h_in, w_in = in_dims
    filters, d_out, h_out, w_out = out_dims
    positions, plane = d_out * h_out * w_out, d_in * h_in * w_in
    g = cuda.blockIdx.z
    fg, cg = filters // groups, channels // groups
    k_size = taps.size // 5
    tap_count = k_size // fg
    cols = images * plane
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    tid = ty * TX + tx
    row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = 0
    nn = tid % BN
    col = col0 + nn
    image, q = col // plane, col % plane
    d1 = q // (h_in * w_in) + pad[0]
    h1 = q // w_in % h_in + pad[1]
    w1 = q % w_in + pad[2]
    dy_base = (image * filters + g * fg) * positions
    a_k = tid % BK
    for k0 in range(0, k_size, BK):
        kk = k0 + a_k
        for load in range(A_LOADS):
            mm = tid // BK + load * (NT // BK)
            a_tile[a_k, mm] = 0
            if row0 + mm < cg and kk < k_size:
                a_tile[a_k, mm] = w[(g * fg * cg + row0 + mm) * tap_count + taps[5 * kk]]
        for load in range(B_LOADS):
            kb = tid // BN + load * (NT // BN)
            kk = k0 + kb
            b_tile[kb, nn] = 0
            if col < cols and kk < k_size:
                dd = d1 - taps[5 * kk + 2]
                hh = h1 - taps[5 * kk + 3]
                ww = w1 - taps[5 * kk + 4]
                if (dd >= 0 and hh >= 0 and ww >= 0 and dd % stride[0] == 0
                        and hh % stride[1] == 0 and ww % stride[2] == 0):
                    od, oh, ow = dd // stride[0], hh // stride[1], ww // stride[2]
                    if od < d_out and oh < h_out and ow < w_out:
                        b_tile[kb, nn] = dy[dy_base + taps[5 * kk + 1]
                                            + (od * h_out + oh) * w_out + ow]
        cuda.syncthreads()
        tile_multiply(a_tile, b_tile, acc, b_reg, ty, tx)
        cuda.syncthreads()
    for i in range(TM):
        c = row0 + ty + i * TY
        if c < cg:
            for j in range(TN):
                out = col0 + tx + j * TX
                if out < cols:
                    dx[((out // plane) * channels + g * cg + c) * plane + out % plane] = acc[i, j]


@cuda.jit(cache=True)
def conv_backward_weight_kernel(dy, x, dw, taps, images, in_dims, out_dims, stride, pad, groups,
                                splits, chunk):
    """dw[split] [F, Cg*T] = dy [F, N*P] x im2col(x)^T over this split's share (chunk) of the
    N*P reduction; blockIdx.z = group * splits + split. With splits > 1, dw is a workspace
    [splits, F, Cg*T] that sum_splits_kernel folds.

    taps as in conv_forward_kernel.
    """
    a_tile = cuda.shared.array((BK, BM_PADDED), dtype=dw.dtype)
    b_tile = cuda.shared.array((BK, BN_PADDED), dtype=dw.dtype)
    acc = cuda.local.array((TM, TN), dtype=dw.dtype)
    b_reg = cuda.local.array(TN, dtype=dw.dtype)
    channels, d_in, h_in, w_in = in_dims
    filters, d_out, h_out, w_out = out_dims
    positions, plane = d_out * h_out * w_out, d_in * h_in * w_in
    g, split = cuda.blockIdx.z // splits, cuda.blockIdx.z % splits
    fg, cg = filters // groups, channels // groups
    cols = taps.size // 4
    k_size = images * positions
    k_begin = split * chunk
    k_end = min(k_size, k_begin + chunk)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    tid = ty * TX + tx
    row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
    for i in range(TM):
        for j in range(TN):
            acc[i, j] = 0
    a_k = tid % BK
    for k0 in range(k_begin, k_end, BK):
        # this thread's k (an output position of one image) is the same for both operands
        kk = k0 + a_k
        image, p = kk // positions, kk % positions
        d0 = (p // (h_out * w_out)) * stride[0] - pad[0]
        h0 = (p // w_out) % h_out * stride[1] - pad[1]
        w0 = p % w_out * stride[2] - pad[2]
        dy_base = (image * filters + g * fg) * positions + p
        x_base = (image * channels + g * cg) * plane
        for load in range(A_LOADS):
            mm = tid // BK + load * (NT // BK)
            a_tile[a_k, mm] = 0
            if row0 + mm < fg and kk < k_end:
                a_tile[a_k, mm] = dy[dy_base + (row0 + mm) * positions]
        for load in range(B_LOADS):
            nn = tid // BK + load * (NT // BK)
            col = col0 + nn
            b_tile[a_k, nn] = 0
            if col < cols and kk < k_end:
                di = d0 + taps[4 * col + 1]
                hi = h0 + taps[4 * col + 2]
                wi = w0 + taps[4 * col + 3]
                if 0 <= di < d_in and 0 <= hi < h_in and 0 <= wi < w_in:
                    b_tile[a_k, nn] = x[x_base + taps[4 * col] + (di * h_in + hi) * w_in + wi]
        cuda.syncthreads()
        tile_multiply(a_tile, b_tile, acc, b_reg, ty, tx)
        cuda.syncthreads()
    base = split * filters * cols
    for i in range(TM):
        f = row0 + ty + i * TY
        if f < fg:
            for j in range(TN):
                col = col0 + tx + j * TX
                if col < cols:
                    dw[base + (g * fg + f) * cols + col] = acc[i, j]


@cuda.jit(cache=True)
def sum_splits_kernel(partials, out, splits):
    """out[i] = sum over s of partials[s * out.size + i] (a fixed order: deterministic)."""
    size = out.size
    for i in range(cuda.grid(1), size, cuda.gridsize(1)):
        total = partials[i]
        for s in range(1, splits):
            total += partials[s * size + i]
        out[i] = total
