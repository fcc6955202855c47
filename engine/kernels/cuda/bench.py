"""One training step on the GPU as a timed callable, for engine/bench.py and benchmarks/."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ...optim import Optimizer
from .losses import DeviceLoss


def cuda_train_step_timer(net, batch: int, optimizer: Optimizer | None = None,
                          seed: int = 0) -> Callable[[], float]:
    """A function that runs one training step of `net` (compiled with backend="cuda") on a fixed
    random batch and returns its wall seconds, GPU work included.

    The step is what training does with the data already on the device: forward, the loss and
    its gradient on the device, backward, an optimizer update (momentum SGD unless given); it
    ends with the one wait a real step has (for the loss). The first calls compile kernels:
    warm up before timing.
    """
    backend = net.backend
    rng = np.random.default_rng(seed)
    x = backend.to_device(rng.standard_normal((batch, *net.input_shape)), net.dtype)
    classes = net.output_shape[0]
    labels = rng.integers(0, classes, batch)
    net.set_input_grad(False)
    net.allocate(batch)
    loss = DeviceLoss(backend, net.loss_name, classes, batch, net.dtype)
    optimizer = optimizer or Optimizer("momentum", lr=0.01)

    def step() -> float:
        start = time.perf_counter()
        net.run_backward(loss.compute(net.run_forward(x, True), labels))
        optimizer.step(net)
        loss.result()
        return time.perf_counter() - start

    return step
