"""BatchNorm and inverted Dropout on the GPU.

BatchNorm reduces each channel in one block (two passes: the mean, then squares around it, so a
large mean does not cancel the variance). Dropout draws its mask on the device from a counter-
based hash of (seed, index); the seed comes from the network's generator at each training
forward, so runs are reproducible, but the masks differ from the CPU backend's.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, uint64

from ...modules.registry import Op
from .reduce import block_sum
from .runtime import REDUCE_THREADS, launch, stream


@cuda.jit(cache=True)
def batchnorm_stats_kernel(x, mean, invstd, running_mean, running_var, channels, positions,
                           inv_count, momentum, unbias, eps):
    """Per channel (one block each) of x [N, C, S]: batch mean and 1/sqrt(biased var + eps);
    running statistics updated as PyTorch does (the running variance takes the unbiased one)."""
    c = cuda.blockIdx.x
    partial = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    acc = cuda.local.array(1, dtype=x.dtype)
    count = x.size // channels
    acc[0] = 0
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        acc[0] += x[((e // positions) * channels + c) * positions + e % positions]
    m = block_sum(partial, acc[0]) * inv_count
    acc[0] = 0
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        v = x[((e // positions) * channels + c) * positions + e % positions] - m
        acc[0] += v * v
    var = block_sum(partial, acc[0]) * inv_count
    if cuda.threadIdx.x == 0:
        mean[c] = m
        invstd[c] = 1 / math.sqrt(var + eps)
        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * m
        running_var[c] = (1 - momentum) * running_var[c] + momentum * var * unbias


@cuda.jit(cache=True)
def batchnorm_running_kernel(running_mean, running_var, mean, invstd, eps):
    """Evaluation: normalise with the running statistics."""
    for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
        mean[c] = running_mean[c]
        invstd[c] = 1 / math.sqrt(running_var[c] + eps)


@cuda.jit(cache=True)
def batchnorm_forward_kernel(x, y, mean, invstd, weight, bias, channels, positions):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = i // positions % channels
        y[i] = (x[i] - mean[c]) * (weight[c] * invstd[c]) + bias[c]


@cuda.jit(cache=True)
def batchnorm_backward_sums_kernel(x, dy, mean, invstd, grad_weight, grad_bias, channels,
                                   positions):
    """Per channel: grad_bias = sum dy, grad_weight = sum dy * x_hat (one block each)."""
    c = cuda.blockIdx.x
    partial = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    acc = cuda.local.array(2, dtype=x.dtype)
    count = x.size // channels
    m = mean[c]
    acc[0] = 0
    acc[1] = 0
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        i = ((e // positions) * channels + c) * positions + e % positions
        acc[0] += dy[i]
        acc[1] += dy[i] * (x[i] - m)
    total = block_sum(partial, acc[0])
    dot = block_sum(partial, acc[1])
    if cuda.threadIdx.x == 0:
        grad_bias[c] = total
        grad_weight[c] = dot * invstd[c]


@cuda.jit(cache=True)
def batchnorm_backward_kernel(x, dy, dx, mean, invstd, weight, grad_weight, grad_bias,
                              channels, positions, count, training):
    """dx; in training the batch statistics depend on x (the standard batch-norm gradient), in
    evaluation they are constants and only the affine part remains."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = i // positions % channels
        k = weight[c] * invstd[c]
        if training:
            dx[i] = k * (dy[i] - (x[i] - mean[c]) * invstd[c] * grad_weight[c] / count
                         - grad_bias[c] / count)
        else:
            dx[i] = k * dy[i]


class BatchNormOp(Op):
    """Normalises each channel (axis 1) of [N, C] or [N, C, *spatial] inputs; in training with the
    batch's statistics (and updates running_mean/running_var in place), else the running ones."""

    def __init__(self, spec):
        super().__init__(spec)
        shape, dtype = spec.in_shapes[0], spec.dtype
        self.channels, self.positions = shape[0], math.prod(shape[1:])
        self.momentum, self.eps = dtype(spec.params["momentum"]), dtype(spec.params["eps"])
        self.mean = cuda.device_array(self.channels, dtype)
        self.invstd = cuda.device_array(self.channels, dtype)

    def allocate(self, batch):
        super().allocate(batch)
        self.y = cuda.device_array((batch, *self.spec.out_shape), self.spec.dtype)
        self.dx = cuda.device_array((batch, *self.spec.in_shapes[0]), self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x, self.training = x, training
        count = n * self.positions
        if training:
            if count < 2:
                raise ValueError("BatchNorm needs more than one value per channel in training. "
                                 f"Received: a batch of {n} with input "
                                 f"{list(self.spec.in_shapes[0])}")
            batchnorm_stats_kernel[self.channels, REDUCE_THREADS, stream()](
                x.reshape(-1), self.mean, self.invstd, self.state["running_mean"],
                self.state["running_var"], self.channels, self.positions,
                self.spec.dtype(1 / count), self.momentum, self.spec.dtype(count / (count - 1)),
                self.eps)
        else:
            batchnorm_running_kernel[launch(self.channels)](
                self.state["running_mean"], self.state["running_var"], self.mean, self.invstd,
                self.eps)
        y = self.y[:n]
        batchnorm_forward_kernel[launch(count * self.channels)](
            x.reshape(-1), y.reshape(-1), self.mean, self.invstd, self.params["weight"],
            self.params["bias"], self.channels, self.positions)
        return y

    def backward(self, dout):
        n = dout.shape[0]
        x, dy = self.x.reshape(-1), dout.reshape(-1)
        batchnorm_backward_sums_kernel[self.channels, REDUCE_THREADS, stream()](
            x, dy, self.mean, self.invstd, self.grads["weight"], self.grads["bias"],
            self.channels, self.positions)
        if not self.needs_input_grad[0]:
            return [None]
        dx = self.dx[:n]
        batchnorm_backward_kernel[launch(dy.size)](
            x, dy, dx.reshape(-1), self.mean, self.invstd, self.params["weight"],
            self.grads["weight"], self.grads["bias"], self.channels, self.positions,
            self.spec.dtype(n * self.positions), self.training)
        return [dx]


GOLDEN = uint64(0x9E3779B97F4A7C15)
MIX1 = uint64(0xBF58476D1CE4E5B9)
MIX2 = uint64(0x94D049BB133111EB)


@cuda.jit(device=True)
def uniform(seed, index):
    """A uniform draw in [0, 1) for (seed, index): splitmix64's finaliser over a counter."""
    z = uint64(seed) + uint64(index) * GOLDEN
    z = (z ^ (z >> uint64(30))) * MIX1
    z = (z ^ (z >> uint64(27))) * MIX2
    z = z ^ (z >> uint64(31))
    return (z >> uint64(11)) * (1.0 / 9007199254740992.0)


@cuda.jit(cache=True)
def dropout_forward_kernel(x, y, mask, seed, rate, scale):
    """mask = scale where the draw is >= rate, else 0; y = x * mask."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        mask[i] = 0
        if uniform(seed, i) >= rate:
            mask[i] = scale
        y[i] = x[i] * mask[i]


@cuda.jit(cache=True)
def multiply_kernel(a, b, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[i] * b[i]


class DropoutOp(Op):
    """Inverted dropout; identity (no copy) in evaluation."""

    def __init__(self, spec):
        super().__init__(spec)
        self.rate = spec.params["rate"]
        self.scale = spec.dtype(1.0 / (1.0 - self.rate))

    def allocate(self, batch):
        super().allocate(batch)
        shape, dtype = (batch, *self.spec.out_shape), self.spec.dtype
        self.mask = cuda.device_array(shape, dtype)
        self.y = cuda.device_array(shape, dtype)
        self.dx = cuda.device_array(shape, dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        self.training = training
        if not training:
            return x
        n = x.shape[0]
        seed = int(self.spec.rng.integers(0, np.iinfo(np.int64).max))
        y = self.y[:n]
        dropout_forward_kernel[launch(x.size)](x.reshape(-1), y.reshape(-1),
                                               self.mask[:n].reshape(-1), seed, self.rate,
                                               self.scale)
        return y

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        if not self.training:
            return [dout]
        n = dout.shape[0]
        dx = self.dx[:n]
        multiply_kernel[launch(dout.size)](dout.reshape(-1), self.mask[:n].reshape(-1),
                                           dx.reshape(-1))
        return [dx]
