"""Activations, Softmax, Flatten, Add and Concat on the GPU: grid-stride kernels, flat arrays."""
from __future__ import annotations

import math

from numba import cuda

from ...modules.registry import Op
from ..cpu.elementwise import FUNCTION_CODES
from .runtime import ZERO, add_kernel, launch


@cuda.jit(cache=True)
def activation_forward_kernel(x, y, code, alpha, one):
    """y = f(x); code selects f (see FUNCTION_CODES). alpha and one come in the arrays' dtype,
    so that float32 stays float32 (a literal 1.0 would be float64)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        if code == 0:
            y[i] = v if v > 0 else ZERO
        elif code == 1:
            y[i] = v if v > 0 else alpha * v
        elif code == 2:
            y[i] = v if v > 0 else alpha * (math.exp(v) - one)
        elif code == 3:
            y[i] = math.tanh(v)
        elif code == 4:
            y[i] = one / (one + math.exp(-v))
        else:
            y[i] = v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


@cuda.jit(cache=True)
def activation_backward_kernel(x, y, dy, dx, code, alpha, one):
    """dx = f'(x) dy, from the saved output y where that is cheaper."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        if code == 0:
            dx[i] = dy[i] if v > 0 else ZERO
        elif code == 1:
            dx[i] = dy[i] if v > 0 else alpha * dy[i]
        elif code == 2:
            dx[i] = dy[i] if v > 0 else dy[i] * (y[i] + alpha)
        elif code == 3:
            dx[i] = dy[i] * (one - y[i] * y[i])
        elif code == 4:
            dx[i] = dy[i] * y[i] * (one - y[i])
        else:
            dx[i] = dy[i] / (one + math.exp(-v))


class ActivationOp(Op):
    def __init__(self, spec):
        super().__init__(spec)
        self.code = FUNCTION_CODES[spec.params["function"]]
        self.alpha, self.one = spec.dtype(spec.params["alpha"]), spec.dtype(1)

    def allocate(self, batch):
        super().allocate(batch)
        shape = (batch, *self.spec.out_shape)
        self.y = cuda.device_array(shape, self.spec.dtype)
        self.dx = cuda.device_array(shape, self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        self.x = x
        y = self.y[:n]
        activation_forward_kernel[launch(x.size)](x.reshape(-1), y.reshape(-1), self.code,
                                                  self.alpha, self.one)
        return y

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n]
        activation_backward_kernel[launch(dout.size)](
            self.x.reshape(-1), self.y[:n].reshape(-1), dout.reshape(-1), dx.reshape(-1),
            self.code, self.alpha, self.one)
        return [dx]


@cuda.jit(cache=True)
def softmax_forward_kernel(x, y, classes):
    """Row-wise softmax of x [rows * classes] (one thread per row; rows are short)."""
    total = cuda.local.array(1, dtype=y.dtype)
    for row in range(cuda.grid(1), x.size // classes, cuda.gridsize(1)):
        start = row * classes
        top = x[start]
        for j in range(1, classes):
            top = max(top, x[start + j])
        total[0] = 0
        for j in range(classes):
            e = math.exp(x[start + j] - top)
            y[start + j] = e
            total[0] += e
        for j in range(classes):
            y[start + j] /= total[0]


@cuda.jit(cache=True)
def softmax_backward_kernel(y, dy, dx, classes):
    """dx = y (dy - sum(dy y)) per row."""
    dot = cuda.local.array(1, dtype=dx.dtype)
    for row in range(cuda.grid(1), y.size // classes, cuda.gridsize(1)):
        start = row * classes
        dot[0] = 0
        for j in range(classes):
            dot[0] += dy[start + j] * y[start + j]
        for j in range(classes):
            dx[start + j] = y[start + j] * (dy[start + j] - dot[0])


class SoftmaxOp(Op):
    def allocate(self, batch):
        super().allocate(batch)
        shape = (batch, *self.spec.out_shape)
        self.y = cuda.device_array(shape, self.spec.dtype)
        self.dx = cuda.device_array(shape, self.spec.dtype)

    def forward(self, inputs, training):
        (x,) = inputs
        n = x.shape[0]
        y = self.y[:n]
        softmax_forward_kernel[launch(n)](x.reshape(-1), y.reshape(-1), self.spec.out_shape[0])
        return y

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        n = dout.shape[0]
        dx = self.dx[:n]
        softmax_backward_kernel[launch(n)](self.y[:n].reshape(-1), dout.reshape(-1),
                                           dx.reshape(-1), self.spec.out_shape[0])
        return [dx]


class FlattenOp(Op):
    """A view: no copy forward or backward."""

    def forward(self, inputs, training):
        (x,) = inputs
        self.in_shape = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        if not self.needs_input_grad[0]:
            return [None]
        return [dout.reshape(self.in_shape)]


@cuda.jit(cache=True)
def add2_kernel(a, b, y):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[i] = a[i] + b[i]


class AddOp(Op):
    """y = x0 + x1 + ...; every input's gradient is dout itself (no copy)."""

    def allocate(self, batch):
        super().allocate(batch)
        self.y = cuda.device_array((batch, *self.spec.out_shape), self.spec.dtype)

    def forward(self, inputs, training):
        n = inputs[0].shape[0]
        y = self.y[:n].reshape(-1)
        add2_kernel[launch(y.size)](inputs[0].reshape(-1), inputs[1].reshape(-1), y)
        for x in inputs[2:]:
            add_kernel[launch(y.size)](y, x.reshape(-1))
        return self.y[:n]

    def backward(self, dout):
        return [dout if needed else None for needed in self.needs_input_grad]


@cuda.jit(cache=True)
def channel_block_copy_kernel(src, dst, src_width, src_offset, dst_width, dst_offset, width):
    """dst[s, dst_offset:dst_offset+width] = src[s, src_offset:src_offset+width] for every sample
    s, over flat per-sample rows (a channel range times the spatial size)."""
    rows = src.size // src_width
    for i in range(cuda.grid(1), rows * width, cuda.gridsize(1)):
        s, j = i // width, i % width
        dst[s * dst_width + dst_offset + j] = src[s * src_width + src_offset + j]


class ConcatOp(Op):
    """Joins inputs along the channel axis; backward gives each input its own contiguous slice."""

    def __init__(self, spec):
        super().__init__(spec)
        widths = [math.prod(shape) for shape in spec.in_shapes]
        self.widths = widths
        self.offsets = [sum(widths[:i]) for i in range(len(widths))]
        self.out_width = sum(widths)

    def allocate(self, batch):
        super().allocate(batch)
        dtype = self.spec.dtype
        self.y = cuda.device_array((batch, *self.spec.out_shape), dtype)
        self.dx = [cuda.device_array((batch, *shape), dtype) for shape in self.spec.in_shapes]

    def forward(self, inputs, training):
        n = inputs[0].shape[0]
        y = self.y[:n].reshape(-1)
        for x, width, offset in zip(inputs, self.widths, self.offsets, strict=True):
            channel_block_copy_kernel[launch(n * width)](x.reshape(-1), y, width, 0,
                                                         self.out_width, offset, width)
        return self.y[:n]

    def backward(self, dout):
        n = dout.shape[0]
        flat = dout.reshape(-1)
        grads = []
        for buffer, needed, width, offset in zip(self.dx, self.needs_input_grad, self.widths,
                                                 self.offsets, strict=True):
            if not needed:
                grads.append(None)
                continue
            channel_block_copy_kernel[launch(n * width)](flat, buffer[:n].reshape(-1),
                                                         self.out_width, offset, width, 0, width)
            grads.append(buffer[:n])
        return grads
