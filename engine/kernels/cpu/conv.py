"""Conv1D/2D/3D on the CPU: direct numba kernels for few channels, column copies + BLAS GEMM
for many. Every conv runs as 3D (1D and 2D get singleton leading spatial axes); ConvOp picks
the algorithm per direction (see choose_algorithms).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange
from threadpoolctl import ThreadpoolController

from ...modules.conv import conv_geometry
from ...modules.registry import Op

ALGORITHMS = ("direct", "gemm", "im2col")
"""direct: numba loops over the flat padded grid (stride 1); gemm: contiguous column copies from
that grid + BLAS (stride 1); im2col: exact columns + BLAS, col2im for grad-input (any stride)."""

FORCE_ALGORITHM: str | None = None
"""One of ALGORITHMS to use for every direction it can serve (the tests check each path)."""

COLUMN_BYTES = 1 << 20
"""Budget for one worker's column tile: whole images, as many as fit (at least one)."""

DIRECT_TERMS = 32
"""The direct kernels beat columns + GEMM up to about this many (channel, tap) terms."""

_FASTMATH = {"reassoc", "contract"}  # vectorised dot products: only the order of a sum changes

# geo: the int64 array the im2col kernels read (one array keeps numba's dispatch cheap)
K_D, K_H, K_W, S_D, S_H, S_W, D_D, D_H, D_W, P_D, P_H, P_W, O_D, O_H, O_W = range(15)


@njit(nogil=True, cache=True, inline="always")
def _copy(dst, src):
    # an explicit loop: numba's slice assignment is several times slower
    for k in range(dst.size):
        dst[k] = src[k]


@njit(nogil=True, cache=True, inline="always")
def _fill(dst, value):
    for k in range(dst.size):
        dst[k] = value


# -- flat grid: a channel stored flat with the padded input's row strides (s0, s1), so every
# tap is one constant offset and each inner loop runs over one long contiguous span -----------


@njit(parallel=True, nogil=True, cache=True)
def conv_embed_cpu(src, dst, start, stride0, stride1):
    """dst[n, c, start + a*stride0 + b*stride1 + e] = src[n, c, a, b, e] (the rest is kept)."""
    samples, channels, length = src.shape[0], src.shape[1], src.shape[4]
    for job in prange(samples * channels):
        n, c = job // channels, job % channels
        for a in range(src.shape[2]):
            for b in range(src.shape[3]):
                base = start + a * stride0 + b * stride1
                _copy(dst[n, c, base:base + length], src[n, c, a, b])


@njit(nogil=True, cache=True)
def conv_extract_cpu(src, dst, stride0, stride1):
    """dst[n, c, a, b, e] = src[n, c, a*stride0 + b*stride1 + e]: the inverse of embedding."""
    length = dst.shape[4]
    for n in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            for a in range(dst.shape[2]):
                for b in range(dst.shape[3]):
                    base = a * stride0 + b * stride1
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


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def conv_direct_cpu(src, weight, offsets, out, stride0, stride1, bias):
    """out[n, o, a, b, e] = bias[o] + sum over j, t of weight[o, j, t] * src[n, g*J + j, q + off[t]]

    with q = a*stride0 + b*stride1 + e, off = offsets and g the group of o. src: [N, S, length]
    on the flat grid; weight: [O, J, T]; out: [N, O, A, B, E]; bias: [O] or empty.
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
                    out[n, o, a, c, e] = acc[base + e] + b


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
    for job in prange(filters * ins + dbias.size):
        if job >= filters * ins:
            f = job - filters * ins
            s0 = dbias.dtype.type(0)
            for n in range(samples):
                d = dy[n, f, start:start + span]
                for p in range(span):
                    s0 += d[p]
            dbias[f] = s0
            continue
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


# -- the op ----------------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_blas: ThreadpoolController | None = None


def _thread_pool() -> tuple[ThreadPoolExecutor, ThreadpoolController]:
    """The persistent helper threads and the BLAS controller, made on first use."""
    global _pool, _blas
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="conv")
        _blas = ThreadpoolController()
    return _pool, _blas


def choose_algorithms(stride, channels_per_group, filters_per_group, taps) -> dict[str, str]:
    """One of ALGORITHMS per direction (forward, grad_input, grad_weight), from timings at batch
    64 on 2 cores: BLAS wins once its GEMM has a dozen or more rows (filters per group); the
    direct kernels win below that when each output sums few (channel, tap) terms (depthwise,
    first layers' grad-weight)."""
    if any(s != 1 for s in stride):
        return dict.fromkeys(("forward", "grad_input", "grad_weight"), "im2col")
    if FORCE_ALGORITHM is not None:
        return dict.fromkeys(("forward", "grad_input", "grad_weight"), FORCE_ALGORITHM)

    def pick(terms, gemm_rows, max_rows):
        return "direct" if terms <= DIRECT_TERMS and gemm_rows <= max_rows else "gemm"

    return {"forward": pick(channels_per_group * taps, filters_per_group, 4),
            "grad_input": pick(filters_per_group * taps, channels_per_group, 4),
            "grad_weight": pick(channels_per_group * taps, filters_per_group, 16)}


class ConvOp(Op):
    """Conv1D/2D/3D with PyTorch's semantics; weight [filters, C/groups, *k], bias [filters].

    Shape: input [N, C, *n] -> output [N, filters, *o], o = floor((n + p - d(k-1) - 1) / s) + 1.
    `algorithms` maps each direction (forward, grad_input, grad_weight) to one of ALGORITHMS.
    """

    def __init__(self, spec):
        super().__init__(spec)
        params, in_shape = spec.params, spec.in_shapes[0]
        geometry = conv_geometry(params, in_shape)
        lead = 3 - len(geometry["kernel"])

        def as3(values, fill):
            return (fill,) * lead + tuple(values)

        self.channels, self.filters, self.groups = in_shape[0], params["filters"], params["groups"]
        self.in3, self.out3 = as3(in_shape[1:], 1), as3(geometry["out"], 1)
        self.kernel, self.stride = as3(geometry["kernel"], 1), as3(geometry["stride"], 1)
        self.dilation, self.pad = as3(geometry["dilation"], 1), as3(geometry["pad_begin"], 0)
        self.pad_total = as3(geometry["pad_total"], 0)
        self.has_bias = bool(params["bias"])
        self.taps = math.prod(self.kernel)
        self.channels_per_group = self.channels // self.groups
        self.filters_per_group = self.filters // self.groups
        self.positions = math.prod(self.out3)
        self.geo = np.array([*self.kernel, *self.stride, *self.dilation, *self.pad, *self.out3],
                            np.int64)
        self.algorithms = choose_algorithms(self.stride, self.channels_per_group,
                                            self.filters_per_group, self.taps)
        self._flat_grid()

    def _flat_grid(self) -> None:
        """Strides, tap offsets and spans of the flat padded grid (stride-1 algorithms)."""
        padded = [n + p for n, p in zip(self.in3, self.pad_total, strict=True)]
        self.grid_strides = s0, s1 = (padded[1] * padded[2], padded[2])
        self.grid_size = math.prod(padded)
        (k_d, k_h, k_w), (d_d, d_h, d_w) = self.kernel, self.dilation
        self.tap_offsets = np.array([kd * d_d * s0 + kh * d_h * s1 + kw * d_w
                                     for kd in range(k_d) for kh in range(k_h)
                                     for kw in range(k_w)], np.int64)
        self.interior = self.pad[0] * s0 + self.pad[1] * s1 + self.pad[2]
        # dY sits after `margin` zeros, so grad-input's reads (the flipped taps) stay in range
        self.margin = int(self.tap_offsets[-1])
        self.input_offsets = self.margin + self.interior - self.tap_offsets[::-1]
        self.out_span = (self.out3[0] - 1) * s0 + (self.out3[1] - 1) * s1 + self.out3[2]
        self.in_span = (self.in3[0] - 1) * s0 + (self.in3[1] - 1) * s1 + self.in3[2]

    # -- buffers ------------------------------------------------------------------------------
    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, self.filters, *self.out3), dtype)
        self.dx = np.empty((batch, self.channels, *self.in3), dtype)
        uses = set(self.algorithms.values())
        flat = uses & {"direct", "gemm"}
        self.xp = np.zeros((batch, self.channels, self.grid_size), dtype) if flat else None
        self.dym = (np.zeros((batch, self.filters, self.margin + self.grid_size), dtype)
                    if flat else None)
        self.weight_t = np.empty((self.channels, self.filters_per_group, self.taps), dtype)
        self.no_bias = np.zeros(0, dtype)
        self._allocate_columns(batch, dtype, uses)

    def _allocate_columns(self, batch, dtype, uses) -> None:
        """Per-worker scratch for the GEMM algorithms: columns, GEMM outputs, weight sums."""
        groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
        self.workers = max(1, min(numba.get_num_threads(), batch))
        extra = int(self.has_bias)  # a row of ones in the columns carries the bias
        col_elems, out_elems = 0, 0
        if "gemm" in uses:
            col_elems = max((cpg * self.taps + extra) * self.out_span,
                            fpg * self.taps * self.in_span)
            out_elems = max(fpg * self.out_span, cpg * self.in_span)
        if "im2col" in uses:
            col_elems = max(col_elems, (cpg * self.taps + extra) * self.positions)
        per_image = groups * col_elems * np.dtype(dtype).itemsize
        share = -(-batch // self.workers)
        self.chunk = max(1, min(share, COLUMN_BYTES // max(1, per_image)))
        sums = groups * (cpg * self.taps + extra) * fpg
        self.cols = [np.empty(self.chunk * groups * col_elems, dtype) for _ in range(self.workers)]
        self.outs = [np.empty(self.chunk * groups * out_elems, dtype) for _ in range(self.workers)]
        self.partial = [np.empty(self.chunk * sums, dtype) for _ in range(self.workers)]
        self.sums = [np.empty(sums, dtype).reshape(groups, -1, fpg) for _ in range(self.workers)]
        self.weight_aug = np.empty((groups, fpg, cpg * self.taps + extra), dtype)

    @staticmethod
    def _view(buffer, *shape):
        return buffer[:math.prod(shape)].reshape(shape)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x5 = x.reshape(n, self.channels, *self.in3)
        self.padded = False
        algorithm = self.algorithms["forward"]
        if algorithm == "direct":
            self._pad_input(n)
            weight = self.params["weight"].reshape(self.filters, self.channels_per_group,
                                                   self.taps)
            bias = self.params["bias"] if self.has_bias else self.no_bias
            conv_direct_cpu(self.xp[:n], weight, self.tap_offsets, self.y[:n],
                            *self.grid_strides, bias)
        else:
            self._forward_gemm(n, algorithm)
        return self.y[:n].reshape(n, *self.spec.out_shape)

    def _pad_input(self, n) -> None:
        conv_embed_cpu(self.x5, self.xp[:n], self.interior, *self.grid_strides)
        self.padded = True

    def _forward_gemm(self, n, algorithm) -> None:
        groups, fpg = self.groups, self.filters_per_group
        rows = self.channels_per_group * self.taps
        extra = int(self.has_bias)
        np.copyto(self.weight_aug[:, :, :rows], self.params["weight"].reshape(groups, fpg, rows))
        if extra:
            np.copyto(self.weight_aug[:, :, rows], self.params["bias"].reshape(groups, fpg))
        y5 = self.y[:n]
        if algorithm == "gemm":
            self._pad_input(n)
            span = self.out_span

            def work(worker, lo, hi):
                for n0 in range(lo, hi, self.chunk):
                    m = min(self.chunk, hi - n0)
                    cols = self._view(self.cols[worker], m, groups, rows + extra, span)
                    out = self._view(self.outs[worker], m, groups, fpg, span)
                    conv_gather_cpu(self.xp, cols, n0, self.tap_offsets, span)
                    np.matmul(self.weight_aug, cols, out=out)
                    conv_extract_cpu(out.reshape(m, self.filters, span), y5[n0:n0 + m],
                                     *self.grid_strides)
        else:
            y4 = y5.reshape(n, groups, fpg, self.positions)

            def work(worker, lo, hi):
                for n0 in range(lo, hi, self.chunk):
                    m = min(self.chunk, hi - n0)
                    cols = self._view(self.cols[worker], m, groups, rows + extra, self.positions)
                    conv_im2col_cpu(self.x5, cols, n0, self.geo)
                    np.matmul(self.weight_aug, cols, out=y4[n0:n0 + m])

        self._parallel(work, n)

    def _parallel(self, work, n) -> None:
        """Split the batch over the workers; each runs BLAS on one thread meanwhile."""
        workers = min(self.workers, n)
        if workers == 1:
            work(0, 0, n)
            return
        pool, blas = _thread_pool()
        bounds = [n * w // workers for w in range(workers + 1)]
        with blas.limit(limits=1, user_api="blas"):
            futures = [pool.submit(work, w, bounds[w], bounds[w + 1]) for w in range(1, workers)]
            work(0, bounds[0], bounds[1])
            for future in futures:
                future.result()

    # -- backward -----------------------------------------------------------------------------
    def backward(self, dout):
        n = dout.shape[0]
        dy5 = dout.reshape(n, self.filters, *self.out3)
        input_algorithm = self.algorithms["grad_input"] if self.needs_input_grad[0] else None
        weight_algorithm = self.algorithms["grad_weight"]
        uses = {input_algorithm, weight_algorithm}
        if uses & {"direct", "gemm"}:
            conv_embed_cpu(dy5, self.dym[:n], self.margin, *self.grid_strides)
        if weight_algorithm in ("direct", "gemm") and not self.padded:
            self._pad_input(n)
        if input_algorithm in ("direct", "gemm"):
            groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
            weight = self.params["weight"].reshape(groups, fpg, cpg, self.taps)[..., ::-1]
            np.copyto(self.weight_t.reshape(groups, cpg, fpg, self.taps),
                      weight.transpose(0, 2, 1, 3))
        if input_algorithm == "direct":
            conv_direct_cpu(self.dym[:n], self.weight_t, self.input_offsets, self.dx[:n],
                            *self.grid_strides, self.no_bias)
        if weight_algorithm == "direct":
            dweight = self.grads["weight"].reshape(self.filters, self.channels_per_group,
                                                   self.taps)
            dbias = self.grads["bias"] if self.has_bias else self.no_bias
            conv_grad_weight_direct_cpu(self.xp[:n], self.dym[:n], self.margin, self.tap_offsets,
                                        self.out_span, dweight, dbias)
        if uses & {"gemm", "im2col"}:
            self._backward_gemm(n, dy5, input_algorithm, weight_algorithm)
        return [self.dx[:n].reshape(n, *self.spec.in_shapes[0])
                if self.needs_input_grad[0] else None]

    def _backward_gemm(self, n, dy5, input_algorithm, weight_algorithm) -> None:
        groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
        rows = cpg * self.taps
        extra = int(self.has_bias)
        weight = self.params["weight"].reshape(groups, fpg, rows)
        weight_t = self.weight_t.reshape(groups, cpg, fpg * self.taps)
        dy4 = dy5.reshape(n, groups, fpg, self.positions)
        dx5 = self.dx[:n]
        strides, out_span, in_span = self.grid_strides, self.out_span, self.in_span

        def work(worker, lo, hi):
            sums, partial = self.sums[worker], self.partial[worker]
            sums.fill(0)
            for n0 in range(lo, hi, self.chunk):
                m = min(self.chunk, hi - n0)
                if input_algorithm == "gemm":  # the transposed conv: columns of dY, flipped taps
                    cols = self._view(self.cols[worker], m, groups, fpg * self.taps, in_span)
                    out = self._view(self.outs[worker], m, groups, cpg, in_span)
                    conv_gather_cpu(self.dym, cols, n0, self.input_offsets, in_span)
                    np.matmul(weight_t, cols, out=out)
                    conv_extract_cpu(out.reshape(m, self.channels, in_span), dx5[n0:n0 + m],
                                     *strides)
                elif input_algorithm == "im2col":
                    cols = self._view(self.cols[worker], m, groups, rows, self.positions)
                    np.matmul(weight.transpose(0, 2, 1), dy4[n0:n0 + m], out=cols)
                    conv_col2im_cpu(cols, dx5, n0, self.geo)
                if weight_algorithm == "gemm":
                    cols = self._view(self.cols[worker], m, groups, rows + extra, out_span)
                    conv_gather_cpu(self.xp, cols, n0, self.tap_offsets, out_span)
                    dy = self.dym[n0:n0 + m, :, self.margin:self.margin + out_span]
                    dy = dy.reshape(m, groups, fpg, out_span)
                elif weight_algorithm == "im2col":
                    cols = self._view(self.cols[worker], m, groups, rows + extra, self.positions)
                    conv_im2col_cpu(self.x5, cols, n0, self.geo)
                    dy = dy4[n0:n0 + m]
                else:
                    continue
                part = self._view(partial, m, groups, rows + extra, fpg)
                np.matmul(cols, dy.transpose(0, 1, 3, 2), out=part)
                for i in range(m):
                    np.add(sums, part[i], out=sums)

        self._parallel(work, n)
        if weight_algorithm in ("gemm", "im2col"):
            total = self.sums[0]
            for other in self.sums[1:min(self.workers, n)]:
                np.add(total, other, out=total)
            np.copyto(self.grads["weight"].reshape(groups, fpg, rows),
                      total[:, :rows].transpose(0, 2, 1))
            if extra:
                np.copyto(self.grads["bias"].reshape(groups, fpg), total[:, rows])
