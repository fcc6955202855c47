"""Dense on the CPU: the matrix products go through BLAS (np.matmul into preallocated buffers),
split over the workers (forward by units when they outnumber the batch, so that each worker
packs half the weight rather than all of it, else by samples; the weight gradient by units, the
input gradient by input features), the bias and a fused ReLU through two small kernels
(numpy's broadcasting add allocates an iteration buffer)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...modules.registry import Op
from .elementwise import relu_mask_cpu
from .workers import split, worker_count


@njit(nogil=True, cache=True)
def dense_bias_forward_cpu(y, bias, relu, clamp):
    """y [N, units] += bias [units] (bias may be empty); relu (y's shape, or empty) gets
    max(y, 0); with clamp y itself does (NaN passes through, as in the Activation op)."""
    for i in range(y.shape[0]):
        for k in range(y.shape[1]):
            v = y[i, k] + bias[k] if bias.size else y[i, k]
            r = 0 if v < 0 else v
            y[i, k] = r if clamp else v
            if relu.size:
                relu[i, k] = r


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
        self.relu, self.keep_output = None, True
        self.empty = np.zeros(0, spec.dtype)
        self.no_relu = np.zeros((0, 0), spec.dtype)

    def fuse_relu(self, activation, keep_output: bool = True) -> None:
        """As ConvOp.fuse_relu: compute the ReLU `activation` that alone consumes this layer."""
        self.relu, self.keep_output = activation, keep_output
        activation.fused = True
        if self.batch:
            self.allocate(self.batch)

    def allocate(self, batch):
        super().allocate(batch)
        self.y = np.empty((batch, self.units), self.spec.dtype) if self.keep_output else None
        self.dx = np.empty((batch, self.features), self.spec.dtype)

    def _workers(self, batch):
        return worker_count(batch, batch * self.units * self.features)

    def forward(self, inputs, training):
        (x,) = inputs
        self.x = x
        n = x.shape[0]
        weight = self.params["weight"]
        bias = self.params["bias"] if self.has_bias else self.empty
        if self.relu is None:
            y, relu, clamp = self.y[:n], self.no_relu, False
        elif self.keep_output:
            y, relu, clamp = self.y[:n], self.relu.y[:n], False
        else:  # the ReLU's buffer is the output, clamped in place
            y, relu, clamp = self.relu.y[:n], self.no_relu, True
        finish = self.relu is not None or self.has_bias
        if self.units > n:  # each worker packs half the weight rather than all of it

            def work(worker, lo, hi):
                np.matmul(x, weight[lo:hi].T, out=y[:, lo:hi])
                if finish:
                    dense_bias_forward_cpu(y[:, lo:hi], bias[lo:hi] if bias.size else bias,
                                           relu[:, lo:hi] if relu.size else relu, clamp)

            split(work, self.units, self._workers(n))
        else:

            def work(worker, lo, hi):
                np.matmul(x[lo:hi], weight.T, out=y[lo:hi])
                if finish:
                    dense_bias_forward_cpu(y[lo:hi], bias, relu[lo:hi] if relu.size else relu,
                                           clamp)

            split(work, n, self._workers(n))
        return y

    def backward(self, dout):
        n, weight, grad = dout.shape[0], self.params["weight"], self.grads["weight"]
        if self.relu is not None:  # the fused ReLU's gradient, masked in place (see ConvOp)
            dout = np.ascontiguousarray(dout)
            relu_mask_cpu(dout.reshape(-1), self.relu.y[:n].reshape(-1))
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
