"""Learner aids: what a conv layer's weight sharing saves against a dense layer between the same
shapes (receptive fields come from engine.inspect)."""
from __future__ import annotations

import math


def dense_equivalent(in_shape, out_shape, bias: bool = True) -> int:
    """Weights a dense layer mapping in_shape to out_shape would need (one per pair of units)."""
    outputs = math.prod(out_shape)
    return math.prod(in_shape) * outputs + (outputs if bias else 0)
