"""Optimizer updates on the GPU, in place over flat parameter arrays (fused, no temporaries).

Scalars are cast to the parameters' dtype on the host, so float32 updates stay float32 on the GPU.
"""
from __future__ import annotations

import math

from numba import cuda

from .runtime import launch


@cuda.jit(cache=True)
def sgd_update_kernel(p, g, lr, weight_decay):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        p[i] -= lr * (g[i] + weight_decay * p[i])


@cuda.jit(cache=True)
def momentum_update_kernel(p, g, velocity, lr, momentum, weight_decay, nesterov):
    """PyTorch's SGD with momentum: v = mu v + g; p -= lr (g + mu v if nesterov else v)."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        grad = g[i] + weight_decay * p[i]
        v = momentum * velocity[i] + grad
        velocity[i] = v
        p[i] -= lr * (grad + momentum * v if nesterov else v)


@cuda.jit(cache=True)
def adam_update_kernel(p, g, m, v, lr, beta1, beta2, rest1, rest2, eps, weight_decay,
                       correction1, correction2):
    """PyTorch's Adam (L2 weight decay added to the gradient), bias-corrected; rest = 1 - beta."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        grad = g[i] + weight_decay * p[i]
        mi = beta1 * m[i] + rest1 * grad
        vi = beta2 * v[i] + rest2 * grad * grad
        m[i] = mi
        v[i] = vi
        p[i] -= lr * (mi / correction1) / (math.sqrt(vi / correction2) + eps)


def sgd_update(p, g, lr, weight_decay):
    t = p.dtype.type
    sgd_update_kernel[launch(p.size)](p.reshape(-1), g.reshape(-1), t(lr), t(weight_decay))


def momentum_update(p, g, velocity, lr, momentum, weight_decay, nesterov):
    t = p.dtype.type
    momentum_update_kernel[launch(p.size)](p.reshape(-1), g.reshape(-1), velocity.reshape(-1),
                                           t(lr), t(momentum), t(weight_decay), bool(nesterov))


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    t = p.dtype.type
    adam_update_kernel[launch(p.size)](
        p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(lr), t(beta1), t(beta2),
        t(1.0 - beta1), t(1.0 - beta2), t(eps), t(weight_decay), t(1.0 - beta1 ** step),
        t(1.0 - beta2 ** step))
