"""Dense on the CPU: the matrix products go through BLAS (np.matmul into preallocated buffers),
the bias through two small kernels (numpy's broadcasting add allocates an iteration buffer)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...modules.registry import Op


@njit(nogil=True, cache=True)
def dense_bias_forward_cpu(y, bias):
    """y [N, units] += bias [units]."""
    for i in range(y.shape[0]):
        for k in range(y.shape[1]):
            y[i, k] += bias[k]


@njit(nogil=True, cache=True)
def dense_bias_backward_cpu(dy, grad_bias):
    """grad_bias [units] = the sum of dy [N, units] over the batch."""
    grad_bias[:] = 0.0
    for i in range(dy.shape[0]):
        for k in range(dy.shape[1]):
            grad_bias[k] += dy[i, k]


class DenseOp(Op):
    """y = x W^T + b with W [units, in_features]; x [N, in_features]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.units = spec.out_shape[0]
        self.features = spec.in_shapes[0][0]
        self.has_bias = spec.params["bias"]

    def allocate(self, batch):
        super().allocate(batch)
        self.y = np.empty((batch, self.units), self.spec.dtype)
        self.dx = np.empty((batch, self.features), self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        self.x = x
        y = np.matmul(x, self.params["weight"].T, out=self.y[:x.shape[0]])
        if self.has_bias:
            dense_bias_forward_cpu(y, self.params["bias"])
        return y

    def backward(self, dout):
        np.matmul(dout.T, self.x, out=self.grads["weight"])
        if self.has_bias:
            dense_bias_backward_cpu(dout, self.grads["bias"])
        if not self.needs_input_grad[0]:
            return [None]
        return [np.matmul(dout, self.params["weight"], out=self.dx[:dout.shape[0]])]
