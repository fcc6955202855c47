"""Dense on the CPU: the matrix products go through BLAS (np.matmul into preallocated buffers),
split over the workers (forward by units when they outnumber the batch, so that each worker
packs half the weight rather than all of it, else by samples; the weight gradient by units, the
input gradient by input features), the bias through two small kernels (numpy's broadcasting add
allocates an iteration buffer)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...modules.registry import Op
from .workers import split, worker_count


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

    def _workers(self, batch):
        return worker_count(batch, batch * self.units * self.features)

    def forward(self, inputs, training):
        (x,) = inputs
        self.x = x
        n = x.shape[0]
        y, weight = self.y[:n], self.params["weight"]
        bias = self.params["bias"] if self.has_bias else None
        if self.units > n:  # each worker packs half the weight rather than all of it

            def work(worker, lo, hi):
                np.matmul(x, weight[lo:hi].T, out=y[:, lo:hi])
                if bias is not None:
                    dense_bias_forward_cpu(y[:, lo:hi], bias[lo:hi])

            split(work, self.units, self._workers(n))
        else:

            def work(worker, lo, hi):
                np.matmul(x[lo:hi], weight.T, out=y[lo:hi])
                if bias is not None:
                    dense_bias_forward_cpu(y[lo:hi], bias)

            split(work, n, self._workers(n))
        return y

    def backward(self, dout):
        n, weight, grad = dout.shape[0], self.params["weight"], self.grads["weight"]
        split(lambda worker, lo, hi: np.matmul(dout[:, lo:hi].T, self.x, out=grad[lo:hi]),
              self.units, self._workers(n))
        if self.has_bias:
            dense_bias_backward_cpu(dout, self.grads["bias"])
        if not self.needs_input_grad[0]:
            return [None]
        dx = self.dx[:n]
        split(lambda worker, lo, hi: np.matmul(dout, weight[:, lo:hi], out=dx[:, lo:hi]),
              self.features, self._workers(n))
        return [dx]
