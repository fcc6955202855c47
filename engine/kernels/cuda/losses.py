"""The Output node's losses on the GPU: the gradient stays on the device and only the batch-mean
loss and the count of correct predictions come back (engine.losses is the host version)."""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .reduce import block_sum
from .runtime import REDUCE_THREADS, launch, stream


@cuda.jit(cache=True)
def cross_entropy_kernel(logits, labels, grad, row_loss, row_correct, classes, inv_n):
    """Softmax cross-entropy per row of logits [N, classes]; grad = (softmax - onehot) / N."""
    for row in range(cuda.grid(1), labels.size, cuda.gridsize(1)):
        start = row * classes
        top, best = logits[start], 0
        for j in range(1, classes):
            if logits[start + j] > top:
                top, best = logits[start + j], j
        total = 0.0
        for j in range(classes):
            total += math.exp(logits[start + j] - top)
        label = labels[row]
        row_loss[row] = math.log(total) - (logits[start + label] - top)
        row_correct[row] = 1.0 if best == label else 0.0
        for j in range(classes):
            p = math.exp(logits[start + j] - top) / total
            grad[start + j] = (p - 1.0 if j == label else p) * inv_n


@cuda.jit(cache=True)
def mse_kernel(outputs, targets, grad, row_loss, row_correct, classes, scale):
    """Per row: sum of squared differences; grad = 2 (outputs - targets) / size."""
    for row in range(cuda.grid(1), row_loss.size, cuda.gridsize(1)):
        start = row * classes
        total = 0.0
        top, best, target_best = outputs[start], 0, 0
        for j in range(classes):
            diff = outputs[start + j] - targets[start + j]
            total += diff * diff
            grad[start + j] = scale * diff
            if outputs[start + j] > top:
                top, best = outputs[start + j], j
            if targets[start + j] > targets[start + target_best]:
                target_best = j
        row_loss[row] = total
        row_correct[row] = 1.0 if best == target_best else 0.0


@cuda.jit(cache=True)
def totals_kernel(row_loss, row_correct, n, totals):
    """totals = (sum of row_loss[:n], sum of row_correct[:n]) in one block."""
    partial = cuda.shared.array(REDUCE_THREADS, dtype=totals.dtype)
    acc = cuda.local.array(2, dtype=totals.dtype)
    acc[0] = 0
    acc[1] = 0
    for i in range(cuda.threadIdx.x, n, REDUCE_THREADS):
        acc[0] += row_loss[i]
        acc[1] += row_correct[i]
    loss = block_sum(partial, acc[0])
    correct = block_sum(partial, acc[1])
    if cuda.threadIdx.x == 0:
        totals[0] = loss
        totals[1] = correct


class DeviceLoss:
    """A network's loss on the device, buffers preallocated for up to `capacity` rows.

    compute() queues the kernels and returns the gradient (a device array); result() waits for
    them and returns (mean loss, correct predictions). Integer labels with mse mean one-hot
    targets, as engine.losses.compute.
    """

    def __init__(self, backend, name: str, classes: int, capacity: int, dtype=np.float32):
        self.backend, self.name, self.classes = backend, name, classes
        self.dtype = np.dtype(dtype).type
        self.grad = cuda.device_array((capacity, classes), dtype)
        self.row_loss = cuda.device_array(capacity, np.float64)
        self.row_correct = cuda.device_array(capacity, np.float64)
        self.totals = cuda.device_array(2, np.float64)
        self.host_totals = cuda.pinned_array(2, np.float64)
        self.n = 0

    def compute(self, outputs, labels: np.ndarray):
        n = outputs.shape[0]
        self.n = n
        grad = self.grad[:n]
        flat = outputs.reshape(-1)
        if self.name == "cross_entropy":
            device_labels = self.backend.stage(labels, "labels", np.int64)
            cross_entropy_kernel[launch(n)](flat, device_labels, grad.reshape(-1), self.row_loss,
                                            self.row_correct, self.classes, self.dtype(1 / n))
        else:
            if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
                labels = np.eye(self.classes, dtype=self.dtype)[labels]
            targets = self.backend.stage(labels.reshape(n, -1), "targets", self.dtype)
            mse_kernel[launch(n)](flat, targets.reshape(-1), grad.reshape(-1), self.row_loss[:n],
                                  self.row_correct, self.classes,
                                  self.dtype(2 / (n * self.classes)))
        totals_kernel[1, REDUCE_THREADS, stream()](self.row_loss, self.row_correct, n,
                                                   self.totals)
        self.totals.copy_to_host(self.host_totals, stream=stream())
        return grad

    def result(self) -> tuple[float, int]:
        self.backend.synchronize()
        loss, correct = self.host_totals
        mean = loss / self.n if self.name == "cross_entropy" else loss / (self.n * self.classes)
        return float(mean), int(round(correct))
