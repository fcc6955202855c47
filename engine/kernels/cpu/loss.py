"""The softmax cross-entropy and its gradient in one pass (engine/losses.py calls it)."""
from __future__ import annotations

import math

from numba import njit


@njit(cache=True, nogil=True)
def cross_entropy_cpu(logits, labels, grad):
    """The batch-mean softmax cross-entropy, its gradient written into grad, in one pass (a
    float64 sum per row; a NaN or infinite logit makes the loss NaN, as it does in numpy)."""
    n, classes = logits.shape
    total = 0.0
    for i in range(n):
        row, out = logits[i], grad[i]
        top = row[0]
        for j in range(1, classes):
            top = row[j] if row[j] > top or row[j] != row[j] else top
        norm = 0.0
        for j in range(classes):
            e = math.exp(row[j] - top)
            out[j] = e
            norm += e
        total += math.log(norm) - (row[labels[i]] - top)
        scale = 1.0 / (norm * n)
        for j in range(classes):
            out[j] *= scale
        out[labels[i]] -= 1.0 / n
    return total / n
