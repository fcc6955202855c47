"""Conv1D/2D/3D on the CPU: direct numba kernels, column copies + BLAS GEMM, or Winograd, with
the batch split over worker threads. Every conv runs as 3D (1D and 2D get singleton leading
spatial axes); ConvOp picks the algorithm per direction (see choose_algorithms).
"""
from __future__ import annotations

import math

import numpy as np

from ...modules.conv import conv_geometry
from ...modules.registry import Op
from .conv_kernels import (
    conv_col2im_cpu,
    conv_direct_cpu,
    conv_embed_cpu,
    conv_extract_cpu,
    conv_gather_cpu,
    conv_grad_weight_direct_cpu,
    conv_im2col_cpu,
    conv_scatter_cpu,
)
from .elementwise import relu_in_place_cpu, relu_into_cpu, relu_mask_cpu
from .winograd import (
    A_T,
    PRODUCTS,
    STEP,
    TILE,
    conv_winograd_dy_cpu,
    conv_winograd_input_cpu,
    conv_winograd_output_cpu,
    conv_winograd_weight_cpu,
    conv_winograd_weight_grad_cpu,
    winograd_outputs,
)
from .workers import scratch, split, worker_count

ALGORITHMS = ("direct", "gemm", "im2col", "winograd")
"""direct: numba loops over the flat padded grid (stride 1); gemm: contiguous column copies from
that grid + BLAS (stride 1); im2col: exact columns + BLAS, col2im for grad-input (any stride);
winograd: F(4x4, 3x3) transforms (winograd.py) + 36 BLAS GEMMs (2D 3x3, stride 1, no dilation
or groups; every direction)."""

FORCE_ALGORITHM: str | None = None
"""One of ALGORITHMS to use for every direction it can serve (the tests check each path)."""

COLUMN_BYTES = 1 << 21
"""Budget for one worker's column tile: whole images, as many as fit (at least one). 2 MB: fewer,
larger GEMMs beat staying in the 1 MB L2 (signal1d's step 13% faster than at 1 MB; 4 MB gained
no more)."""

DIRECT_TERMS = 32
"""Up to this many (channel, tap) terms per output, GEMMs are too thin for BLAS (see
choose_algorithms)."""

WINOGRAD_TILES = 128
"""4x4 output tiles per Winograd GEMM (samples are batched until they reach it): a chunk's
transforms and products stay in L2 (64 and 256 were slower in vgg-small's layers)."""

WINOGRAD_CHANNELS, WINOGRAD_PAIRS = 16, 512
"""Winograd beats gemm once channels and filters both reach WINOGRAD_CHANNELS and their product
WINOGRAD_PAIRS, at any width (forward + backward at batch 64 on 2 threads, gemm against
Winograd: 16 to 32 channels at 16x16 4.4 against 3.4 ms, 24 to 24 4.9 against 3.7; 16 to 16
ties at 32x32, 8.9-9.2 against 9.0-9.6, and loses at 16x16, 2.2 against 2.6; 8 to 8 2.4 against
6.7)."""


def choose_algorithms(stride, channels_per_group, filters_per_group, taps,
                      winograd_ok=False) -> dict[str, str]:
    """One of ALGORITHMS per direction (forward, grad_input, grad_weight), from timings at batch
    64 on the templates' layers (benchmarks/conv_layers.py; min of interleaved repeats).

    A layer whose outputs sum few (channel, tap) terms (DIRECT_TERMS: first layers) makes GEMMs
    too thin for BLAS: the direct kernels win for up to 8 filters (lenet5's 6: 2.5x faster than
    gemm), exact columns (im2col, no grid copies) beyond (signal1d's 16 filters: 1.5x faster
    than direct). Otherwise BLAS wins. The input gradient of a layer with up to 4 channels per
    group (what the Python API's backward and saliency ask of a first layer) is computed
    directly: 4-5x faster than the GEMM of gathered dY columns this path once had (lenet5's
    conv1 0.96 -> 0.21 ms), and level with today's summed columns in lenet5's API step (3
    alternating rounds). Winograd beats gemm on 3x3 layers with many channels (see
    WINOGRAD_CHANNELS)."""
    if any(s != 1 for s in stride):
        return dict.fromkeys(("forward", "grad_input", "grad_weight"), "im2col")
    if FORCE_ALGORITHM == "winograd" and winograd_ok:
        return dict.fromkeys(("forward", "grad_input", "grad_weight"), "winograd")
    if FORCE_ALGORITHM is not None:
        forced = "gemm" if FORCE_ALGORITHM == "winograd" else FORCE_ALGORITHM
        return dict.fromkeys(("forward", "grad_input", "grad_weight"), forced)
    winograd = (winograd_ok and min(channels_per_group, filters_per_group) >= WINOGRAD_CHANNELS
                and channels_per_group * filters_per_group >= WINOGRAD_PAIRS)
    few_terms = channels_per_group * taps <= DIRECT_TERMS
    thin = ("direct" if filters_per_group <= 8 else "im2col") if few_terms else "gemm"
    input_direct = channels_per_group <= 4
    return {"forward": "winograd" if winograd else thin,
            "grad_input": "winograd" if winograd else "direct" if input_direct else "gemm",
            "grad_weight": "winograd" if winograd else thin}


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
        self.winograd_ok = (self.kernel == (1, 3, 3) and self.in3[0] == self.out3[0] == 1
                            and self.groups == 1 and self.dilation == (1, 1, 1)
                            and self.stride == (1, 1, 1))   # 2-D: one plane in and out
        self.tiles_out = (-(-self.out3[1] // STEP), -(-self.out3[2] // STEP))
        self.tiles_in = (-(-self.in3[1] // STEP), -(-self.in3[2] // STEP))
        self.algorithms = choose_algorithms(self.stride, self.channels_per_group,
                                            self.filters_per_group, self.taps, self.winograd_ok)
        self.relu, self.keep_output = None, True
        self._flat_grid()

    def fuse_relu(self, activation, keep_output: bool = True) -> None:
        """Compute the ReLU `activation` that alone consumes this conv: forward writes its output
        beside this one (while the tile is in cache), or instead of it without keep_output, and
        backward masks the incoming gradient (in place: nothing reads it after); the activation
        op only hands its buffer and the gradient on."""
        self.relu, self.keep_output = activation, keep_output
        activation.fused = True
        if self.batch:
            self.allocate(self.batch)

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
        # the direct grad-input's dY sits after `margin` zeros, so its reads (the flipped taps)
        # stay in range
        self.margin = int(self.tap_offsets[-1])
        self.input_offsets = self.margin + self.interior - self.tap_offsets[::-1]
        self.out_span = (self.out3[0] - 1) * s0 + (self.out3[1] - 1) * s1 + self.out3[2]
        # without padding the grid is the input itself: columns are gathered from it directly
        self.unpadded = not any(self.pad_total)

    # -- buffers ------------------------------------------------------------------------------
    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, self.filters, *self.out3), dtype) if self.keep_output else None
        self.dx = None  # made on first use: training never needs the first layer's
        # buffers for the directions asked for (needs_input_grad may be set before allocate)
        self.allocated_for = self.needs_input_grad[0]
        uses = {self.algorithms["forward"], self.algorithms["grad_weight"]}
        if self.allocated_for:
            uses.add(self.algorithms["grad_input"])
        # the padded input and dY on the flat grid: whole batches for the direct kernels
        self.xp = self._grid(batch, self.channels, 0) if "direct" in uses else None
        self.dym = self._grid(batch, self.filters, self.margin) if "direct" in uses else None
        self.weight_t = np.empty((self.channels, self.filters_per_group, self.taps), dtype)
        self.no_bias = np.zeros(0, dtype)
        self.no_relu = np.zeros((0, 0, 0, 0, 0), dtype)
        self._allocate_columns(batch, dtype, uses)

    def _allocate_columns(self, batch, dtype, uses) -> None:
        """Per-worker scratch for the GEMM algorithms: columns, GEMM outputs, weight sums."""
        groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
        self.workers = worker_count(batch)
        extra = int(self.has_bias)  # a row of ones in the columns carries the bias
        rows = cpg * self.taps + extra

        def image(direction):  # one image's (columns, GEMM outputs) elements
            algorithm = self.algorithms[direction]
            if direction == "grad_input" and not self.allocated_for:
                return 0, 0
            if algorithm == "im2col":
                return groups * rows * self.positions, 0
            if algorithm != "gemm":
                return 0, 0
            outputs = {"forward": self.filters * self.out_span, "grad_weight": 0,
                       "grad_input": 0 if self.unpadded else self.channels * self.grid_size}
            return groups * rows * self.out_span, outputs[direction]

        # a tile: as many whole images as fit COLUMN_BYTES (at least one), in every direction
        cols, outs = map(max, *(image(d) for d in ("forward", "grad_input", "grad_weight")))
        share = -(-batch // self.workers)
        self.chunk = max(1, min(share, COLUMN_BYTES // max(1, cols * np.dtype(dtype).itemsize)))
        col_elems, out_elems = self.chunk * cols, self.chunk * outs
        if "winograd" in uses:
            tiles_out, tiles_in = math.prod(self.tiles_out), math.prod(self.tiles_in)
            self.winograd_chunk = max(1, min(share, WINOGRAD_TILES // min(tiles_out, tiles_in)))
            col_elems = max(col_elems, self.winograd_chunk * PRODUCTS * max(
                self.channels * tiles_out, self.filters * tiles_in))
            out_elems = max(out_elems, self.winograd_chunk * PRODUCTS * max(
                self.filters * tiles_out, self.channels * tiles_in))
            self.a_t = A_T.astype(dtype)
            self.u = np.empty((PRODUCTS, self.channels, self.filters), dtype)
            self.u_t = np.empty((PRODUCTS, self.filters, self.channels), dtype)
        sums = groups * rows * fpg
        if "gemm" in uses:  # the GEMM workers' own grids: a chunk of samples each
            self.xp_tiles = None if self.unpadded else [
                self._grid(self.chunk, self.channels, 0) for _ in range(self.workers)]
            self.dym_tiles = [self._grid(self.chunk, self.filters, 0)
                              for _ in range(self.workers)]
        self.scratch_sizes = {"cols": col_elems, "outs": out_elems, "partial": self.chunk * sums}
        if "winograd" in uses:  # channels-last tiles: (grid, channels) of both directions
            (out_h, out_w), (in_h, in_w) = self.tiles_out, self.tiles_in
            sides = (((STEP * out_h + 2) * (STEP * out_w + 2), self.channels,
                      STEP * STEP * out_h * out_w, self.filters),
                     ((STEP * in_h + 2) * (STEP * in_w + 2), self.filters,
                      STEP * STEP * in_h * in_w, self.channels))
            self.scratch_sizes["tiles_in"] = self.winograd_chunk * max(
                grid * ins for grid, ins, _, _ in sides)
            self.scratch_sizes["tiles_out"] = self.winograd_chunk * max(
                grid * outs for _, _, grid, outs in sides)
            self.scratch_sizes["across"] = self.scratch_sizes["tiles_out"] * TILE // STEP
            self.scratch_sizes["partial"] = max(self.scratch_sizes["partial"],
                                                PRODUCTS * self.channels * self.filters)
            self.du_sums = [np.empty((PRODUCTS, self.channels, self.filters), dtype)
                            for _ in range(self.workers)]
            self.dbias_sums = [np.empty(self.filters, dtype) for _ in range(self.workers)]
        self.sums = [np.empty(sums, dtype).reshape(groups, -1, fpg) for _ in range(self.workers)]
        self.weight_aug = np.empty((groups, fpg, cpg * self.taps + extra), dtype)

    def _grid(self, samples, channels, margin):
        """Zeros for `samples` x `channels` flat grids after `margin` zeros; embedding writes only
        the interior, so the padding stays zero."""
        return np.zeros((samples, channels, margin + self.grid_size), self.spec.dtype)

    def _scratch(self, name):
        """The calling worker thread's own scratch buffer `name` (shared by every op)."""
        return scratch(name, self.scratch_sizes[name], self.spec.dtype)

    @staticmethod
    def _view(buffer, *shape):
        return buffer[:math.prod(shape)].reshape(shape)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x5 = x.reshape(n, self.channels, *self.in3)
        self.x_flat = self.x5.reshape(n, self.channels, -1) if self.unpadded else None
        y, relu, clamp = self._outputs(n)
        algorithm = self.algorithms["forward"]
        self.padded = algorithm == "direct"  # xp holds this batch for the direct grad-weight
        if algorithm == "direct":
            self._embed(self.x5, self.xp, 0, n, self.interior)
            weight = self.params["weight"].reshape(self.filters, self.channels_per_group,
                                                   self.taps)
            bias = self.params["bias"] if self.has_bias else self.no_bias
            conv_direct_cpu(self.xp[:n], weight, self.tap_offsets, y,
                            *self.grid_strides, bias, relu, clamp)
        elif algorithm == "winograd":
            conv_winograd_weight_cpu(self.params["weight"].reshape(self.filters, self.channels, 9),
                                     self.u)
            bias = self.params["bias"] if self.has_bias else self.no_bias
            self._parallel(self._winograd_work(self.x5, y, self.u, self.pad[1:],
                                               self.tiles_out, bias, relu, clamp), n)
        else:
            self._forward_gemm(n, algorithm, y, relu, clamp)
        return y.reshape(n, *self.spec.out_shape)

    def _relu_out(self, n):
        """The fused ReLU's output as y's 5D view, or an empty array."""
        if self.relu is None:
            return self.no_relu
        return self.relu.y[:n].reshape(n, self.filters, *self.out3)

    def _outputs(self, n):
        """Where forward writes: (y, relu, clamp): this conv's output and the fused ReLU's (or
        an empty array); without keep_output, the ReLU's buffer as y, clamped in place."""
        relu = self._relu_out(n)
        if self.keep_output:
            return self.y[:n], relu, False
        return relu, self.no_relu, True

    def _winograd_work(self, src, out, u, pad, tiles, bias, relu=None, clamp=False):
        """A worker's loop: transform its samples' tiles, 36 GEMMs, transform back into out."""
        ins, outs = src.shape[1], out.shape[1]

        def work(worker, lo, hi):
            for n0 in range(lo, hi, self.winograd_chunk):
                m = min(self.winograd_chunk, hi - n0)
                padded, v, products, tiled = self._winograd_buffers(m, tiles, ins, outs)
                conv_winograd_input_cpu(src, padded, v, n0, pad[0], pad[1])
                np.matmul(v, u, out=products)
                outputs = tiled.reshape(STEP * STEP, -1, outs)
                across = self._view(self._scratch("across"), STEP, TILE, outputs[0].size)
                winograd_outputs(self.a_t, products, across, outputs.reshape(STEP * STEP, -1))
                conv_winograd_output_cpu(outputs, out, n0, *tiles, bias,
                                         self.no_relu if relu is None else relu, clamp)

        return work

    def _winograd_buffers(self, m, tiles, ins, outs):
        """The calling worker's scratch for a chunk of m samples on tiles (rows, columns): the
        input channels-last and padded, its transform, the GEMM products (or dY's transform)
        and the output tiles channels-last."""
        count = m * tiles[0] * tiles[1]
        return (self._view(self._scratch("tiles_in"), m, STEP * tiles[0] + 2,
                           STEP * tiles[1] + 2, ins),
                self._view(self._scratch("cols"), PRODUCTS, count, ins),
                self._view(self._scratch("outs"), PRODUCTS, count, outs),
                self._view(self._scratch("tiles_out"), m, STEP * tiles[0], STEP * tiles[1],
                           outs))

    @staticmethod
    def _summed(parts: list, workers: int) -> np.ndarray:
        """The first `workers` per-worker partial sums added into the first, which is returned."""
        total = parts[0]
        for other in parts[1:workers]:
            np.add(total, other, out=total)
        return total

    def _grid_of_x(self, worker, n0, m):
        """(grid, first sample) holding samples n0..n0+m of the input on the flat padded grid:
        the input itself when unpadded, else the worker's grid tile, embedded now."""
        if self.unpadded:
            return self.x_flat, n0
        xp = self.xp_tiles[worker]
        self._embed(self.x5, xp, n0, n0 + m, self.interior)
        return xp, 0

    def _embed(self, src, grid, lo, hi, start, mask=None) -> None:
        """src[lo:hi] onto grid[:hi - lo] after `start` cells (masked by a fused ReLU's output)."""
        mask = self.no_relu if mask is None or not mask.size else mask[lo:hi]
        conv_embed_cpu(src[lo:hi], grid[:hi - lo], start, *self.grid_strides, mask)

    def _forward_gemm(self, n, algorithm, y5, relu, clamp) -> None:
        groups, fpg = self.groups, self.filters_per_group
        rows = self.channels_per_group * self.taps
        extra = int(self.has_bias)
        np.copyto(self.weight_aug[:, :, :rows], self.params["weight"].reshape(groups, fpg, rows))
        if extra:
            np.copyto(self.weight_aug[:, :, rows], self.params["bias"].reshape(groups, fpg))
        if algorithm == "gemm":
            span = self.out_span

            def work(worker, lo, hi):
                for n0 in range(lo, hi, self.chunk):
                    m = min(self.chunk, hi - n0)
                    cols = self._view(self._scratch("cols"), m, groups, rows + extra, span)
                    out = self._view(self._scratch("outs"), m, groups, fpg, span)
                    grid, first = self._grid_of_x(worker, n0, m)
                    conv_gather_cpu(grid, cols, first, self.tap_offsets, span)
                    np.matmul(self.weight_aug, cols, out=out)
                    conv_extract_cpu(out.reshape(m, self.filters, span), y5[n0:n0 + m],
                                     *self.grid_strides, relu[n0:n0 + m] if relu.size else relu,
                                     clamp)
        else:
            y4 = y5.reshape(n, groups, fpg, self.positions)

            def work(worker, lo, hi):
                for n0 in range(lo, hi, self.chunk):
                    m = min(self.chunk, hi - n0)
                    cols = self._view(self._scratch("cols"), m, groups, rows + extra,
                                      self.positions)
                    conv_im2col_cpu(self.x5, cols, n0, self.geo)
                    np.matmul(self.weight_aug, cols, out=y4[n0:n0 + m])
                    if relu.size:
                        relu_into_cpu(y4[n0:n0 + m].reshape(-1), relu[n0:n0 + m].reshape(-1))
                    elif clamp:
                        relu_in_place_cpu(y4[n0:n0 + m].reshape(-1))

        self._parallel(work, n)

    def _parallel(self, work, n) -> int:
        """Split the batch over the workers (each runs BLAS on one thread); returns their count."""
        return split(work, n, min(self.workers, worker_count(n)))

    # -- backward -----------------------------------------------------------------------------
    def backward(self, dout):
        n = dout.shape[0]
        dy5 = dout.reshape(n, self.filters, *self.out3)
        input_algorithm = self.algorithms["grad_input"] if self.needs_input_grad[0] else None
        weight_algorithm = self.algorithms["grad_weight"]
        uses = {input_algorithm, weight_algorithm}
        mask = self._relu_out(n)  # a fused ReLU passes the gradient where its output is > 0
        if mask.size and uses & {"winograd", "im2col"}:  # these read dY itself: mask it first
            split(lambda worker, lo, hi: relu_mask_cpu(dy5[lo:hi].reshape(-1),
                                                       mask[lo:hi].reshape(-1)), n)
            mask = self.no_relu
        if self.needs_input_grad[0] and not self.allocated_for:
            self.allocate(self.batch)
            self.padded = False  # the padded input's grid was made again (zeros)
        if self.needs_input_grad[0] and self.dx is None:
            self.dx = np.empty((self.batch, self.channels, *self.in3), self.spec.dtype)
        if "direct" in uses:
            self._embed(dy5, self.dym, 0, n, self.margin, mask)
            if weight_algorithm == "direct" and not self.padded:
                self._embed(self.x5, self.xp, 0, n, self.interior)
        if input_algorithm in ("direct", "winograd"):
            groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
            weight = self.params["weight"].reshape(groups, fpg, cpg, self.taps)[..., ::-1]
            np.copyto(self.weight_t.reshape(groups, cpg, fpg, self.taps),
                      weight.transpose(0, 2, 1, 3))
        if input_algorithm == "direct":
            conv_direct_cpu(self.dym[:n], self.weight_t, self.input_offsets, self.dx[:n],
                            *self.grid_strides, self.no_bias, self.no_relu, False)
        if weight_algorithm == "direct":
            dweight = self.grads["weight"].reshape(self.filters, self.channels_per_group,
                                                   self.taps)
            dbias = self.grads["bias"] if self.has_bias else self.no_bias
            conv_grad_weight_direct_cpu(self.xp[:n], self.dym[:n], self.margin, self.tap_offsets,
                                        self.out_span, dweight, dbias)
        if input_algorithm == "winograd":  # the transposed conv: flipped taps, padding 2 - p
            conv_winograd_weight_cpu(self.weight_t, self.u_t)
            pad = (2 - self.pad[1], 2 - self.pad[2])
            self._parallel(self._winograd_work(dy5, self.dx[:n], self.u_t, pad, self.tiles_in,
                                               self.no_bias), n)
        if weight_algorithm == "winograd":
            self._winograd_weight_grad(n, dy5)
        if uses & {"gemm", "im2col"}:
            self._backward_gemm(n, dy5, mask, input_algorithm, weight_algorithm)
        return [self.dx[:n].reshape(n, *self.spec.in_shapes[0])
                if self.needs_input_grad[0] else None]

    def _winograd_weight_grad(self, n, dy5) -> None:
        """dU_k = V_k^T dM_k summed over the tiles (V: the input's transform as in forward, dM:
        dY's, A dY A^T), then the weight's gradient G^T dU G: 36 GEMMs as long as the batch's
        tiles instead of one as long as its positions (4x fewer multiply-adds)."""
        channels, filters, tiles = self.channels, self.filters, self.tiles_out
        bias = self.has_bias

        def work(worker, lo, hi):
            du, dbias = self.du_sums[worker], self.dbias_sums[worker]
            du.fill(0)
            dbias.fill(0)
            for n0 in range(lo, hi, self.winograd_chunk):
                m = min(self.winograd_chunk, hi - n0)
                padded, v, dm, tiled = self._winograd_buffers(m, tiles, channels, filters)
                part = self._view(self._scratch("partial"), PRODUCTS, channels, filters)
                conv_winograd_input_cpu(self.x5, padded, v, n0, self.pad[1], self.pad[2])
                conv_winograd_dy_cpu(dy5, tiled, dm, n0, dbias if bias else self.no_bias)
                np.matmul(v.transpose(0, 2, 1), dm, out=part)
                np.add(du, part, out=du)

        workers = self._parallel(work, n)
        conv_winograd_weight_grad_cpu(self._summed(self.du_sums, workers),
                                      self.grads["weight"].reshape(filters, channels, 9))
        if bias:
            np.copyto(self.grads["bias"], self._summed(self.dbias_sums, workers))

    def _backward_gemm(self, n, dy5, mask, input_algorithm, weight_algorithm) -> None:
        groups, cpg, fpg = self.groups, self.channels_per_group, self.filters_per_group
        rows = cpg * self.taps
        extra = int(self.has_bias)
        weight = self.params["weight"].reshape(groups, fpg, rows)
        weight_t = weight.transpose(0, 2, 1)
        dy4 = dy5.reshape(n, groups, fpg, self.positions)
        dx5 = self.dx[:n] if input_algorithm else None
        dx_flat = dx5.reshape(n, self.channels, -1) if input_algorithm else None
        strides, out_span = self.grid_strides, self.out_span

        def work(worker, lo, hi):
            sums, partial = self.sums[worker], self._scratch("partial")
            sums.fill(0)
            for n0 in range(lo, hi, self.chunk):
                m = min(self.chunk, hi - n0)
                if "gemm" in (input_algorithm, weight_algorithm):  # dY on the grid's rows
                    dym = self.dym_tiles[worker]
                    self._embed(dy5, dym, n0, n0 + m, 0, mask)
                    dy_grid = dym[:m, :, :out_span].reshape(m, groups, fpg, out_span)
                if input_algorithm == "gemm":  # W^T dY on the grid, summed back over the taps
                    cols = self._view(self._scratch("cols"), m, groups, rows, out_span)
                    np.matmul(weight_t, dy_grid, out=cols)
                    if self.unpadded:
                        conv_scatter_cpu(cols, dx_flat, n0, self.tap_offsets, out_span)
                    else:
                        grid = self._view(self._scratch("outs"), m, self.channels,
                                          self.grid_size)
                        conv_scatter_cpu(cols, grid, 0, self.tap_offsets, out_span)
                        conv_extract_cpu(grid[:m, :, self.interior:], dx5[n0:n0 + m], *strides,
                                         self.no_relu, False)
                elif input_algorithm == "im2col":
                    cols = self._view(self._scratch("cols"), m, groups, rows, self.positions)
                    np.matmul(weight_t, dy4[n0:n0 + m], out=cols)
                    conv_col2im_cpu(cols, dx5, n0, self.geo)
                if weight_algorithm == "gemm":
                    cols = self._view(self._scratch("cols"), m, groups, rows + extra, out_span)
                    grid, first = self._grid_of_x(worker, n0, m)
                    conv_gather_cpu(grid, cols, first, self.tap_offsets, out_span)
                    dy = dy_grid
                elif weight_algorithm == "im2col":
                    cols = self._view(self._scratch("cols"), m, groups, rows + extra,
                                      self.positions)
                    conv_im2col_cpu(self.x5, cols, n0, self.geo)
                    dy = dy4[n0:n0 + m]
                else:
                    continue
                part = self._view(partial, m, groups, rows + extra, fpg)
                np.matmul(cols, dy.transpose(0, 1, 3, 2), out=part)
                sums += part.sum(axis=0)  # one reduction: m adds of one image each cost 3x

        workers = self._parallel(work, n)
        if weight_algorithm in ("gemm", "im2col"):
            total = self._summed(self.sums, workers)
            np.copyto(self.grads["weight"].reshape(groups, fpg, rows),
                      total[:, :rows].transpose(0, 2, 1))
            if extra:
                np.copyto(self.grads["bias"].reshape(groups, fpg), total[:, rows])
