"""Losses over a batch: each returns (mean loss, gradient with respect to the network output)."""
from __future__ import annotations

import math

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy on logits [N, C] with integer labels [N]; the batch mean."""
    logits, labels = np.ascontiguousarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy takes logits [N, C] and one label per row. Received: "
                         f"logits {list(logits.shape)}, labels {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices. Received: {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise IndexError(f"labels must be class indices in 0..{logits.shape[1] - 1}. "
                         f"Received: {labels.min()}..{labels.max()}")
    grad = np.empty(logits.shape, logits.dtype)
    if not len(labels):
        return math.nan, grad
    from .kernels.cpu.loss import cross_entropy_cpu  # numba: not for what only reads files

    return float(cross_entropy_cpu(logits, labels.astype(np.int64, copy=False), grad)), grad


def mse(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element (PyTorch's MSELoss, reduction mean)."""
    targets = np.asarray(targets)
    if targets.size != outputs.size or len(targets) != len(outputs):
        raise ValueError(f"mse takes targets of the outputs' shape {list(outputs.shape)}. "
                         f"Received: {list(targets.shape)}")
    diff = outputs - targets.reshape(outputs.shape).astype(outputs.dtype)
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def one_hot(labels: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    out = np.zeros((labels.shape[0], classes), dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def compute(name: str, outputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The Output node's loss; mse against one-hot targets when given integer labels."""
    if name == "mse" and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        return mse(outputs, one_hot(labels, outputs.shape[1], outputs.dtype))
    return LOSSES[name](outputs, labels)
