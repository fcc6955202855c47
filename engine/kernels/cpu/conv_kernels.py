"""The CPU convolution's numba kernels (ConvOp in conv.py runs them): copies onto and off the
flat padded grid, the direct kernels on it (stride 1), and exact columns (im2col / col2im) for
any stride."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .elementwise import clamp_into

_FASTMATH = {"reassoc", "contract"}  # vectorised dot products: only the order of a sum changes

# geo: the int64 array the im2col kernels read (one array keeps numba's dispatch cheap)
K_D, K_H, K_W, S_D, S_H, S_W, D_D, D_H, D_W, P_D, P_H, P_W, O_D, O_H, O_W = range(15)


@njit(nogil=True, cache=True, inline="always")
def _copy(dst, src):
    # an explicit loop: numba's slice assignment is several times slower
    for k in range(dst.size):
        dst[k] = src[k]


@njit(nogil=True, cache=True, inline="always")
def _add(dst, src):
    for k in range(dst.size):
        dst[k] += src[k]


@njit(nogil=True, cache=True, inline="always")
def _mask(dst, src, mask):
    for k in range(dst.size):
        dst[k] = src[k] if mask[k] > 0 else 0


@njit(nogil=True, cache=True, inline="always")
def _copy_relu(dst, relu, src):
    # dst = src and relu = max(src, 0), NaN passing through as in the Activation op
    for k in range(dst.size):
        v = src[k]
        dst[k] = v
        relu[k] = 0 if v < 0 else v


@njit(nogil=True, cache=True, inline="always")
def _fill(dst, value):
    for k in range(dst.size):
        dst[k] = value


# -- flat grid: a channel stored flat with the padded input's row strides (s0, s1), so every
# tap is one constant offset and each inner loop runs over one long contiguous span -----------


@njit(nogil=True, cache=True)
def conv_embed_cpu(src, dst, start, stride0, stride1, mask):
    """dst[n, c, start + a*stride0 + b*stride1 + e] = src[n, c, a, b, e] (the rest is kept),
    or 0 where mask (same shape as src, or empty) is not positive: a fused ReLU's gradient.

    Serial: the GEMM workers each embed their own samples (a numba-parallel region between
    them would leave its threads spinning on the cores the workers need)."""
    length = src.shape[4]
    for n in range(src.shape[0]):
        for c in range(src.shape[1]):
            for a in range(src.shape[2]):
                for b in range(src.shape[3]):
                    base = start + a * stride0 + b * stride1
                    if mask.size:
                        _mask(dst[n, c, base:base + length], src[n, c, a, b], mask[n, c, a, b])
                    else:
                        _copy(dst[n, c, base:base + length], src[n, c, a, b])


@njit(nogil=True, cache=True)
def conv_extract_cpu(src, dst, stride0, stride1, relu, clamp):
    """dst[n, c, a, b, e] = src[n, c, a*stride0 + b*stride1 + e]: the inverse of embedding;
    relu (dst's shape, or empty) gets max(dst, 0) too; with clamp dst gets max(., 0) itself."""
    length = dst.shape[4]
    for n in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            for a in range(dst.shape[2]):
                for b in range(dst.shape[3]):
                    base = a * stride0 + b * stride1
                    if relu.size:
                        _copy_relu(dst[n, c, a, b], relu[n, c, a, b],
                                   src[n, c, base:base + length])
                    elif clamp:
                        clamp_into(dst[n, c, a, b], src[n, c, base:base + length])
                    else:
                        _copy(dst[n, c, a, b], src[n, c, base:base + length])


@njit(nogil=True, cache=True)
def conv_gather_cpu(src, cols, n0, offsets, span):
    """cols[i, g, j*T + t, :span] = src[n0 + i, g*J + j, offsets[t]:offsets[t] + span].

    Rows of cols past J*T are set to one (they carry the bias through the GEMM).
    """
    groups, rows = cols.shape[1], cols.shape[2]
    taps = offsets.size
    per_group = src.shape[1] // groups
    for i in range(cols.shape[0]):
        for g in range(groups):
            for j in range(per_group):
                channel = src[n0 + i, g * per_group + j]
                for t in range(taps):
                    _copy(cols[i, g, j * taps + t, :span], channel[offsets[t]:offsets[t] + span])
            for r in range(per_group * taps, rows):
                _fill(cols[i, g, r, :span], 1)


@njit(nogil=True, cache=True)
def conv_scatter_cpu(cols, dst, n0, offsets, span):
    """The adjoint of conv_gather_cpu (bias rows aside): dst[n0 + i, g*J + j] = the sum over
    taps t of cols[i, g, j*T + t, :span] placed at offsets[t], zeros elsewhere."""
    groups, taps = cols.shape[1], offsets.size
    per_group = dst.shape[1] // groups
    for i in range(cols.shape[0]):
        for g in range(groups):
            for j in range(per_group):
                channel = dst[n0 + i, g * per_group + j]
                _fill(channel, 0)
                for t in range(taps):
                    _add(channel[offsets[t]:offsets[t] + span], cols[i, g, j * taps + t, :span])


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def conv_direct_cpu(src, weight, offsets, out, stride0, stride1, bias, relu, clamp):
    """out[n, o, a, b, e] = bias[o] + sum over j, t of weight[o, j, t] * src[n, g*J + j, q + off[t]]

    with q = a*stride0 + b*stride1 + e, off = offsets and g the group of o. src: [N, S, length]
    on the flat grid; weight: [O, J, T]; out: [N, O, A, B, E]; bias: [O] or empty; relu: out's
    shape (gets max(out, 0)) or empty; clamp: out gets max(., 0) itself.
    """
    samples, outs = out.shape[0], out.shape[1]
    ins, taps = weight.shape[1], weight.shape[2]
    outs_per_group = outs // (src.shape[1] // ins)
    e0, e1, e2 = out.shape[2], out.shape[3], out.shape[4]
    span = (e0 - 1) * stride0 + (e1 - 1) * stride1 + e2
    for job in prange(samples * outs):
        n, o = job // outs, job % outs
        first = o // outs_per_group * ins
        acc = np.zeros(span, src.dtype)
        for j in range(ins):
            s = src[n, first + j]
            w = weight[o, j]
            t = 0
            while t + 4 <= taps:  # four taps per pass: a quarter of the accumulator traffic
                x0 = s[offsets[t]:offsets[t] + span]
                x1 = s[offsets[t + 1]:offsets[t + 1] + span]
                x2 = s[offsets[t + 2]:offsets[t + 2] + span]
                x3 = s[offsets[t + 3]:offsets[t + 3] + span]
                w0, w1, w2, w3 = w[t], w[t + 1], w[t + 2], w[t + 3]
                for p in range(span):
                    acc[p] += w0 * x0[p] + w1 * x1[p] + w2 * x2[p] + w3 * x3[p]
                t += 4
            while t < taps:
                x0 = s[offsets[t]:offsets[t] + span]
                w0 = w[t]
                for p in range(span):
                    acc[p] += w0 * x0[p]
                t += 1
        b = bias[o] if bias.size else 0
        for a in range(e0):
            for c in range(e1):
                base = a * stride0 + c * stride1
                for e in range(e2):
                    v = acc[base + e] + b
                    r = 0 if v < 0 else v
                    out[n, o, a, c, e] = r if clamp else v
                    if relu.size:
                        relu[n, o, a, c, e] = r


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def conv_grad_weight_direct_cpu(src, dy, start, offsets, span, dweight, dbias):
    """dweight[f, j, t] = sum over n, p < span of dy[n, f, start + p] * src[n, g*J + j, p + off[t]]

    with off = offsets, and dbias[f] = the sum of dy[:, f] (dbias may be empty). src: the padded
    input on the flat grid [N, C, length]; dy: dY on the same grid after `start` zeros (zeros
    between its rows too).
    """
    samples = src.shape[0]
    filters, ins, taps = dweight.shape
    filters_per_group = filters // (src.shape[1] // ins)
    # a filter's bias sum rides in its first channel's job: as jobs of their own after the
    # weight jobs, numba's static split handed them all to one thread and the weights to the other
    for job in prange(filters * ins):
        if dbias.size and job % ins == 0:
            f = job // ins
            s0 = dbias.dtype.type(0)
            for n in range(samples):
                d = dy[n, f, start:start + span]
                for p in range(span):
                    s0 += d[p]
            dbias[f] = s0
        f, j = job // ins, job % ins
        c = f // filters_per_group * ins + j
        t = 0
        while t + 4 <= taps:  # four taps share each load of dy
            s0 = s1 = s2 = s3 = dweight.dtype.type(0)
            for n in range(samples):
                d, s = dy[n, f, start:start + span], src[n, c]
                x0 = s[offsets[t]:offsets[t] + span]
                x1 = s[offsets[t + 1]:offsets[t + 1] + span]
                x2 = s[offsets[t + 2]:offsets[t + 2] + span]
                x3 = s[offsets[t + 3]:offsets[t + 3] + span]
                for p in range(span):
                    s0 += d[p] * x0[p]
                    s1 += d[p] * x1[p]
                    s2 += d[p] * x2[p]
                    s3 += d[p] * x3[p]
            dweight[f, j, t], dweight[f, j, t + 1] = s0, s1
            dweight[f, j, t + 2], dweight[f, j, t + 3] = s2, s3
            t += 4
        while t < taps:
            s0 = dweight.dtype.type(0)
            for n in range(samples):
                d = dy[n, f, start:start + span]
                x0 = src[n, c, offsets[t]:offsets[t] + span]
                for p in range(span):
                    s0 += d[p] * x0[p]
            dweight[f, j, t] = s0
            t += 1


# -- exact columns, any stride ----------------------------------------------------------------


@njit(nogil=True, cache=True)
def _valid_range(out_size, in_size, offset, stride):
    """Outputs o in [lo, hi) whose input o * stride + offset lies in [0, in_size)."""
    lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
    last = in_size - 1 - offset
    hi = 0 if last < 0 else min(out_size, last // stride + 1)
    return lo, max(lo, hi)


@njit(nogil=True, cache=True)
def conv_im2col_cpu(x, cols, n0, geo):
    """cols[i, g, j*T + t, p] = zero-padded x[n0 + i, g*J + j] under tap t at output p.

    x: [N, C, ID, IH, IW]; cols: [nb, G, rows, OD*OH*OW]; rows past J*T are set to one.
    """
    groups, rows = cols.shape[1], cols.shape[2]
    channels, i_d, i_h, i_w = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    per_group = channels // groups
    k_d, k_h, k_w = geo[K_D], geo[K_H], geo[K_W]
    o_d, o_h, o_w = geo[O_D], geo[O_H], geo[O_W]
    s_w = geo[S_W]
    taps = k_d * k_h * k_w
    for i in range(cols.shape[0]):
        for c in range(channels):
            g = c // per_group
            for kd in range(k_d):
                for kh in range(k_h):
                    for kw in range(k_w):
                        row = cols[i, g, (c - g * per_group) * taps + (kd * k_h + kh) * k_w + kw]
                        offset = kw * geo[D_W] - geo[P_W]
                        lo, hi = _valid_range(o_w, i_w, offset, s_w)
                        for od in range(o_d):
                            in_d = od * geo[S_D] + kd * geo[D_D] - geo[P_D]
                            for oh in range(o_h):
                                in_h = oh * geo[S_H] + kh * geo[D_H] - geo[P_H]
                                out = row[(od * o_h + oh) * o_w:(od * o_h + oh + 1) * o_w]
                                if 0 <= in_d < i_d and 0 <= in_h < i_h and lo < hi:
                                    src = x[n0 + i, c, in_d, in_h]
                                    _fill(out[:lo], 0)
                                    _copy(out[lo:hi],
                                          src[lo * s_w + offset:(hi - 1) * s_w + offset + 1:s_w])
                                    _fill(out[hi:], 0)
                                else:
                                    _fill(out, 0)
        for g in range(groups):
            for r in range(per_group * taps, rows):
                _fill(cols[i, g, r], 1)


@njit(nogil=True, cache=True)
def conv_col2im_cpu(cols, dx, n0, geo):
    """The adjoint of conv_im2col_cpu: dx[n0 + i] = the columns summed back over their taps."""
    groups = cols.shape[1]
    channels, i_d, i_h, i_w = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    per_group = channels // groups
    k_d, k_h, k_w = geo[K_D], geo[K_H], geo[K_W]
    o_d, o_h, o_w = geo[O_D], geo[O_H], geo[O_W]
    s_w = geo[S_W]
    taps = k_d * k_h * k_w
    for i in range(cols.shape[0]):
        for c in range(channels):
            for a in range(i_d):
                for b in range(i_h):
                    _fill(dx[n0 + i, c, a, b], 0)
    for i in range(cols.shape[0]):
        for c in range(channels):
            g = c // per_group
            for kd in range(k_d):
                for kh in range(k_h):
                    for kw in range(k_w):
                        row = cols[i, g, (c - g * per_group) * taps + (kd * k_h + kh) * k_w + kw]
                        offset = kw * geo[D_W] - geo[P_W]
                        lo, hi = _valid_range(o_w, i_w, offset, s_w)
                        if lo >= hi:
                            continue
                        for od in range(o_d):
                            in_d = od * geo[S_D] + kd * geo[D_D] - geo[P_D]
                            if not 0 <= in_d < i_d:
                                continue
                            for oh in range(o_h):
                                in_h = oh * geo[S_H] + kh * geo[D_H] - geo[P_H]
                                if not 0 <= in_h < i_h:
                                    continue
                                dst = dx[n0 + i, c, in_d, in_h,
                                         lo * s_w + offset:(hi - 1) * s_w + offset + 1:s_w]
                                src = row[(od * o_h + oh) * o_w + lo:(od * o_h + oh) * o_w + hi]
                                for k in range(hi - lo):
                                    dst[k] += src[k]
