"""Activations, Softmax, Flatten, Add and Concat on the CPU."""
from __future__ import annotations

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
        if code == 0:
            y[i] = v if v > 0 else 0.0
        elif code == 1:
            y[i] = v if v > 0 else alpha * v
        elif code == 2:
            y[i] = v if v > 0 else alpha * (math.exp(v) - 1.0)
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


class ActivationOp(Op):
    def __init__(self, spec):
        super().__init__(spec)
        self.code = FUNCTION_CODES[spec.params["function"]]
        self.alpha = spec.params["alpha"]

    def allocate(self, batch):
        super().allocate(batch)
        shape = (batch, *self.spec.out_shape)
        self.y = np.empty(shape, self.spec.dtype)
        self.dx = np.empty(shape, self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        activation_forward_cpu(x.reshape(-1), self.y[:n].reshape(-1), self.code, self.alpha)
        return self.y[:n]

    def backward(self, dout):
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
