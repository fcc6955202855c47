"""Dense on the GPU: y = x W^T + b, dx = dy W, dW = dy^T x as tiled GEMMs (see gemm.py)."""
from __future__ import annotations

from numba import cuda

from ...modules.registry import Op
from .gemm import gemm
from .reduce import channel_sum


class DenseOp(Op):
    def __init__(self, spec):
        super().__init__(spec)
        self.features, self.units = spec.in_shapes[0][0], spec.out_shape[0]

    def allocate(self, batch):
        super().allocate(batch)
        self.y = cuda.device_array((batch, self.units), self.spec.dtype)
        self.dx = cuda.device_array((batch, self.features), self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n]
        gemm(x.reshape(-1), self.params["weight"].reshape(-1), y.reshape(-1),
             self.params.get("bias"), n, self.units, self.features, (self.features, 1),
             (1, self.features))
        return y

    def backward(self, dout):
        n = dout.shape[0]
        dy = dout.reshape(-1)
        grads = [None]
        if self.needs_input_grad[0]:
            dx = self.dx[:n]
            gemm(dy, self.params["weight"].reshape(-1), dx.reshape(-1), None, n, self.features,
                 self.units, (self.units, 1), (self.features, 1))
            grads = [dx]
        gemm(dy, self.x.reshape(-1), self.grads["weight"].reshape(-1), None, self.units,
             self.features, n, (1, self.units), (self.features, 1))
        if "bias" in self.grads:
            channel_sum(dy, self.grads["bias"], self.units, 1)
        return grads
