"""Optimizer updates over flat parameter arrays, in place (fused: no temporaries)."""
from __future__ import annotations

import math

from numba import njit, prange


@njit(parallel=True, nogil=True, cache=True)
def sgd_update_cpu(p, g, lr, weight_decay):
    for i in prange(p.size):
        p[i] -= lr * (g[i] + weight_decay * p[i])


@njit(parallel=True, nogil=True, cache=True)
def momentum_update_cpu(p, g, velocity, lr, momentum, weight_decay, nesterov):
    """PyTorch's SGD with momentum: v = mu v + g; p -= lr (g + mu v if nesterov else v)."""
    for i in prange(p.size):
        grad = g[i] + weight_decay * p[i]
        velocity[i] = momentum * velocity[i] + grad
        p[i] -= lr * (grad + momentum * velocity[i] if nesterov else velocity[i])


@njit(parallel=True, nogil=True, cache=True)
def adam_update_cpu(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """PyTorch's Adam (L2 weight decay added to the gradient), bias-corrected."""
    correction1 = 1.0 - beta1 ** step
    correction2 = 1.0 - beta2 ** step
    for i in prange(p.size):
        grad = g[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * grad
        v[i] = beta2 * v[i] + (1.0 - beta2) * grad * grad
        p[i] -= lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)


def sgd_update(p, g, lr, weight_decay):
    sgd_update_cpu(p.reshape(-1), g.reshape(-1), lr, weight_decay)


def momentum_update(p, g, velocity, lr, momentum, weight_decay, nesterov):
    momentum_update_cpu(p.reshape(-1), g.reshape(-1), velocity.reshape(-1), lr, momentum,
                        weight_decay, nesterov)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    adam_update_cpu(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), lr, beta1, beta2,
                    eps, weight_decay, step)
