"""Activations, Softmax, Flatten, Add and Concat on the CPU."""
from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit, prange

from ...modules.registry import Op

FUNCTION_CODES = {"relu": 0, "leaky_relu": 1, "elu": 2, "tanh": 3, "sigmoid": 4, "softplus": 5}


@njit(parallel=True, nogil=True, cache=True, fastmath=False)
def activation_forward_cpu(x, y, code, alpha):
    """y = f(x) over flat arrays; code selects f (see FUNCTION_CODES)."""
    for i in prange(x.size):
        v = x[i]
        # written so that NaN passes through (as in PyTorch): a diverging run must show it
        if code == 0:
            y[i] = 0.0 if v < 0 else v
        elif code == 1:
            y[i] = alpha * v if v < 0 else v
        elif code == 2:
            y[i] = alpha * (math.exp(v) - 1.0) if v < 0 else v
        elif code == 3:
            y[i] = math.tanh(v)
        elif code == 4:
            y[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            y[i] = v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


@njit(parallel=True, nogil=True, cache=True)
def activation_backward_cpu(x, y, dy, dx, code, alpha):
    """dx = f'(x) * dy, using the saved output y where that is cheaper."""
    for i in prange(x.size):
        v = x[i]
        if code == 0:
            dx[i] = dy[i] if v > 0 else 0.0
        elif code == 1:
            dx[i] = dy[i] if v > 0 else alpha * dy[i]
        elif code == 2:
            dx[i] = dy[i] if v > 0 else dy[i] * (y[i] + alpha)
        elif code == 3:
            dx[i] = dy[i] * (1.0 - y[i] * y[i])
        elif code == 4:
            dx[i] = dy[i] * y[i] * (1.0 - y[i])
        else:
            dx[i] = dy[i] / (1.0 + math.exp(-v))


# -- a ReLU fused into the op before it (ConvOp, DenseOp: fuse_relu) ---------------------------


@njit(nogil=True, cache=True, inline="always")
def clamp_into(dst, src):
    """dst = max(src, 0), NaN passing through (inlined into the fused kernels)."""
    for k in range(dst.size):
        v = src[k]
        dst[k] = 0 if v < 0 else v


@njit(nogil=True, cache=True)
def relu_into_cpu(src, dst):
    """dst = max(src, 0) over flat arrays (NaN passes through); src and dst distinct."""
    clamp_into(dst, src)


@njit(nogil=True, cache=True)
def relu_in_place_cpu(x):
    """x = max(x, 0) over a flat array (one array: the loop vectorises, see relu_mask_cpu)."""
    for k in range(x.size):
        v = x[k]
        x[k] = 0 if v < 0 else v


@njit(nogil=True, cache=True)
def relu_mask_cpu(dy, mask):
    """dy = 0 where mask is not > 0, in place, over flat arrays (a fused ReLU's backward).

    In place on purpose: with dy passed twice, as source and destination, LLVM's alias check
    fails at run time and the loop runs scalar with a branch, 25x slower."""
    for k in range(dy.size):
        dy[k] = dy[k] if mask[k] > 0 else 0


class ActivationOp(Op):
    fused = False
    """Set by a producer that computes this ReLU itself (ConvOp.fuse_relu): forward then only
    returns the output buffer the producer filled and backward passes the gradient on unmasked,
    for the producer to mask."""

    def __init__(self, spec):
        super().__init__(spec)
        self.code = FUNCTION_CODES[spec.params["function"]]
        self.alpha = spec.params["alpha"]

    def allocate(self, batch):
        super().allocate(batch)
        shape = (batch, *self.spec.out_shape)
        self.y = np.empty(shape, self.spec.dtype)
        self.dx = None if self.fused else np.empty(shape, self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        if self.fused:
            return self.y[:n]
        self.x = x
        activation_forward_cpu(x.reshape(-1), self.y[:n].reshape(-1), self.code, self.alpha)
        return self.y[:n]

    def backward(self, dout):
        if self.fused:
            return [dout]
        n = dout.shape[0]
        activation_backward_cpu(self.x.reshape(-1), self.y[:n].reshape(-1), dout.reshape(-1),
                                self.dx[:n].reshape(-1), self.code, self.alpha)
        return [self.dx[:n]]


class FlattenOp(Op):
    """A view: no copy forward or backward."""

    def forward(self, inputs, training):
        (x,) = inputs
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return [dout.reshape(self.in_shape)]


@njit(parallel=True, nogil=True, cache=True)
def softmax_forward_cpu(x, y):
    """y = softmax of each row of x [N, C], shifted by the row's maximum for stability."""
    for i in prange(x.shape[0]):
        top = x[i, 0]
        for k in range(1, x.shape[1]):
            top = max(top, x[i, k])
        total = 0.0
        for k in range(x.shape[1]):
            e = math.exp(x[i, k] - top)
            y[i, k] = e
            total += e
        inv = 1.0 / total
        for k in range(x.shape[1]):
            y[i, k] *= inv


@njit(parallel=True, nogil=True, cache=True)
def softmax_backward_cpu(y, dy, dx):
    """dx = y * (dy - sum(dy * y)) per row of [N, C]."""
    for i in prange(y.shape[0]):
        dot = 0.0
        for k in range(y.shape[1]):
            dot += dy[i, k] * y[i, k]
        for k in range(y.shape[1]):
            dx[i, k] = y[i, k] * (dy[i, k] - dot)


class SoftmaxOp(Op):
    """Softmax over the flat [C] axis of each sample."""

    def allocate(self, batch):
        super().allocate(batch)
        shape = (batch, *self.spec.out_shape)
        self.y = np.empty(shape, self.spec.dtype)
        self.dx = np.empty(shape, self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        softmax_forward_cpu(x, self.y[:n])
        return self.y[:n]

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        softmax_backward_cpu(self.y[:n], dout, self.dx[:n])
        return [self.dx[:n]]


@njit(parallel=True, nogil=True, cache=True)
def add_forward_cpu(a, b, y):
    """y = a + b over [N, F] arrays (y may be a)."""
    for i in prange(a.shape[0]):
        for k in range(a.shape[1]):
            y[i, k] = a[i, k] + b[i, k]


class AddOp(Op):
    """Sum of 2+ inputs of one shape; each input's gradient is dout itself (the network copies
    where a gradient is accumulated)."""

    def allocate(self, batch):
        super().allocate(batch)
        self.y = np.empty((batch, math.prod(self.spec.out_shape)), self.spec.dtype)

    def forward(self, inputs, training):
        n = inputs[0].shape[0]
        first, second, *rest = (x.reshape(n, -1) for x in inputs)
        y = self.y[:n]
        add_forward_cpu(first, second, y)
        for x in rest:
            add_forward_cpu(y, x, y)
        return y.reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        return [dout if needed else None for needed in self.needs_input_grad]


@njit(parallel=True, nogil=True, cache=True)
def concat_forward_cpu(x, y, offset):
    """Copy x [N, c, S] into channels offset..offset+c of y [N, C, S]."""
    n, c, s = x.shape
    for row in prange(n * c):
        i, j = row // c, row % c
        for k in range(s):
            y[i, offset + j, k] = x[i, j, k]


class ConcatOp(Op):
    """Joins 2+ inputs along the channel axis; backward hands out channel slices of dout."""

    def __init__(self, spec):
        super().__init__(spec)
        bounds = itertools.accumulate((shape[0] for shape in spec.in_shapes), initial=0)
        self.slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self.positions = math.prod(spec.out_shape[1:])

    def allocate(self, batch):
        super().allocate(batch)
        self.y = np.empty((batch, self.spec.out_shape[0], self.positions), self.spec.dtype)

    def forward(self, inputs, training):
        n = inputs[0].shape[0]
        y = self.y[:n]
        for x, part in zip(inputs, self.slices, strict=True):
            concat_forward_cpu(x.reshape(n, -1, self.positions), y, part.start)
        return y.reshape(n, *self.spec.out_shape)

    def backward(self, dout):
        return [dout[:, part] if needed else None
                for part, needed in zip(self.slices, self.needs_input_grad, strict=True)]
