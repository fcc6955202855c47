"""BatchNorm and inverted Dropout on the CPU."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ...modules.registry import Op


@njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc"})
def batchnorm_stats_cpu(x, row_sum, row_squares, mean, var):
    """Per-channel mean and biased variance of x [N, C, S] (float64 results).

    Each (sample, channel) row is summed around the channel's first value, so a mean far from
    zero does not cancel the variance; reassoc only lets those sums vectorise.
    """
    n, c, s = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        shift = np.float64(x[0, j, 0])
        total = 0.0
        squares = 0.0
        for k in range(s):
            v = x[i, j, k] - shift
            total += v
            squares += v * v
        row_sum[i, j] = total
        row_squares[i, j] = squares
    count = n * s
    for j in range(c):
        total = 0.0
        squares = 0.0
        for i in range(n):
            total += row_sum[i, j]
            squares += row_squares[i, j]
        offset = total / count
        mean[j] = x[0, j, 0] + offset
        var[j] = max(squares / count - offset * offset, 0.0)


@njit(nogil=True, cache=True)
def batchnorm_coefficients_cpu(mean, var, weight, eps, center, scale, invstd):
    """y = (x - center) * scale + bias: center and scale per channel, in the data's dtype."""
    for j in range(mean.size):
        invstd[j] = 1.0 / math.sqrt(var[j] + eps)
        center[j] = mean[j]
        scale[j] = weight[j] * invstd[j]


@njit(nogil=True, cache=True)
def batchnorm_running_update_cpu(running_mean, running_var, mean, var, momentum, count):
    """PyTorch's update; the running variance takes the unbiased batch variance."""
    unbias = count / (count - 1)
    for j in range(mean.size):
        running_mean[j] = (1.0 - momentum) * running_mean[j] + momentum * mean[j]
        running_var[j] = (1.0 - momentum) * running_var[j] + momentum * var[j] * unbias


@njit(parallel=True, nogil=True, cache=True)
def batchnorm_forward_cpu(x, y, center, scale, bias):
    """y = (x - center) * scale + bias over x [N, C, S], per channel."""
    n, c, s = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        m, a, b = center[j], scale[j], bias[j]
        for k in range(s):
            y[i, j, k] = (x[i, j, k] - m) * a + b


@njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc"})
def batchnorm_backward_sums_cpu(x, dy, center, row_sum, row_dot, sum_dy, sum_dy_centered):
    """Per channel: sum of dy and sum of dy * (x - center), in float64 (reassoc as above)."""
    n, c, s = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        m = center[j]
        total = 0.0
        dot = 0.0
        for k in range(s):
            g = dy[i, j, k]
            total += g
            dot += g * (x[i, j, k] - m)
        row_sum[i, j] = total
        row_dot[i, j] = dot
    for j in range(c):
        total = 0.0
        dot = 0.0
        for i in range(n):
            total += row_sum[i, j]
            dot += row_dot[i, j]
        sum_dy[j] = total
        sum_dy_centered[j] = dot


@njit(nogil=True, cache=True)
def batchnorm_grad_coefficients_cpu(sum_dy, sum_dy_centered, invstd, weight, count, training,
                                    grad_weight, grad_bias, k_dy, k_centered, k_const):
    """Weight and bias gradients, and dx = k_dy * dy + k_centered * (x - center) + k_const.

    In training the batch statistics depend on x (the standard batch-norm gradient); in
    evaluation they are constants and only the affine part remains.
    """
    for j in range(sum_dy.size):
        grad_weight[j] = sum_dy_centered[j] * invstd[j]
        grad_bias[j] = sum_dy[j]
        k_dy[j] = weight[j] * invstd[j]
        if training:
            k_centered[j] = -k_dy[j] * invstd[j] * grad_weight[j] / count
            k_const[j] = -k_dy[j] * sum_dy[j] / count
        else:
            k_centered[j] = 0.0
            k_const[j] = 0.0


@njit(parallel=True, nogil=True, cache=True)
def batchnorm_backward_cpu(x, dy, dx, center, k_dy, k_centered, k_const):
    """dx = k_dy * dy + k_centered * (x - center) + k_const over [N, C, S], per channel."""
    n, c, s = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        m, a, b, d = center[j], k_dy[j], k_centered[j], k_const[j]
        for k in range(s):
            dx[i, j, k] = a * dy[i, j, k] + b * (x[i, j, k] - m) + d


class BatchNormOp(Op):
    """Normalises each channel (axis 1) of [N, C] or [N, C, *spatial] inputs; in training with the
    batch's statistics (and updates running_mean/running_var in place), else the running ones."""

    def __init__(self, spec):
        super().__init__(spec)
        shape = spec.in_shapes[0]
        self.view = (shape[0], math.prod(shape[1:]))
        self.momentum = spec.params["momentum"]
        self.eps = spec.params["eps"]
        channels, dtype = shape[0], spec.dtype
        self.mean, self.var, self.invstd, self.sum_dy, self.sum_dy_centered = \
            np.empty((5, channels))
        self.center, self.scale, self.k_dy, self.k_centered, self.k_const = \
            np.empty((5, channels), dtype)

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = np.empty((batch, *self.view), dtype)
        self.dx = np.empty((batch, *self.view), dtype)
        self.row_sums = np.empty((2, batch, self.view[0]))

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        x = x.reshape(n, *self.view)
        self.x, self.training = x, training
        if training:
            count = n * self.view[1]
            if count < 2:
                raise ValueError("BatchNorm needs more than one value per channel in training. "
                                 f"Received: a batch of {n} with input "
                                 f"{list(self.spec.in_shapes[0])}")
            batchnorm_stats_cpu(x, self.row_sums[0, :n], self.row_sums[1, :n], self.mean,
                                self.var)
            batchnorm_running_update_cpu(self.state["running_mean"], self.state["running_var"],
                                         self.mean, self.var, self.momentum, count)
            batchnorm_coefficients_cpu(self.mean, self.var, self.params["weight"], self.eps,
                                       self.center, self.scale, self.invstd)
        else:
            batchnorm_coefficients_cpu(self.state["running_mean"], self.state["running_var"],
                                       self.params["weight"], self.eps, self.center, self.scale,
                                       self.invstd)
        y = self.y[:n]
        batchnorm_forward_cpu(x, y, self.center, self.scale, self.params["bias"])
        return y.reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        n = dout.shape[0]
        dout = dout.reshape(n, *self.view)
        batchnorm_backward_sums_cpu(self.x, dout, self.center, self.row_sums[0, :n],
                                    self.row_sums[1, :n], self.sum_dy, self.sum_dy_centered)
        batchnorm_grad_coefficients_cpu(self.sum_dy, self.sum_dy_centered, self.invstd,
                                        self.params["weight"], n * self.view[1], self.training,
                                        self.grads["weight"], self.grads["bias"], self.k_dy,
                                        self.k_centered, self.k_const)
        if not self.needs_input_grad[0]:
            return [None]
        dx = self.dx[:n]
        batchnorm_backward_cpu(self.x, dout, dx, self.center, self.k_dy, self.k_centered,
                               self.k_const)
        return [dx.reshape(n, *self.spec.in_shapes[0])]


@njit(parallel=True, nogil=True, cache=True)
def dropout_apply_cpu(x, draws, y, rate, scale):
    """y = x * scale where the uniform draw is >= rate, else 0; x, y [N, F], draws [N, F]."""
    for i in prange(x.shape[0]):
        for k in range(x.shape[1]):
            y[i, k] = x[i, k] * scale if draws[i, k] >= rate else 0.0


class DropoutOp(Op):
    """Inverted dropout. The mask comes from uniform draws of the network's generator at each
    training forward, in float64 whatever the dtype, so float32 and float64 runs drop alike."""

    def __init__(self, spec):
        super().__init__(spec)
        self.rate = spec.params["rate"]
        self.scale = 1.0 / (1.0 - self.rate)
        self.features = math.prod(spec.in_shapes[0])

    def allocate(self, batch):
        super().allocate(batch)
        self.draws = np.empty((batch, self.features))
        self.y = np.empty((batch, self.features), self.spec.dtype)
        self.dx = np.empty((batch, self.features), self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        self.training = training
        if not training:
            return x
        n = x.shape[0]
        draws = self.draws[:n]
        self.spec.rng.random(out=draws)
        dropout_apply_cpu(x.reshape(n, -1), draws, self.y[:n], self.rate, self.scale)
        return self.y[:n].reshape(x.shape)

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        if not self.training:
            return [dout]
        n = dout.shape[0]
        dropout_apply_cpu(dout.reshape(n, -1), self.draws[:n], self.dx[:n], self.rate,
                          self.scale)
        return [self.dx[:n].reshape(dout.shape)]
