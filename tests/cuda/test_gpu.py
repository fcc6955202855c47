"""On real hardware only (`NUMBA_ENABLE_CUDASIM=0 pytest tests/cuda` on a GPU machine): the full
templates at real sizes against the CPU, and the GPU step against the CPU step's speed."""
import time

import numpy as np
import pytest

from engine import losses
from engine.devices import cuda_devices
from engine.kernels.cuda.bench import cuda_train_step_timer
from engine.network import compile_network
from engine.optim import Optimizer
from engine.templates import load_template, template_names

pytestmark = pytest.mark.gpu


def test_the_gpu_is_described():
    devices = cuda_devices()
    assert devices and devices[0]["memory_total"] > 0 and devices[0]["multiprocessors"] > 0


@pytest.mark.parametrize("name", template_names())
def test_every_template_trains_as_on_the_cpu(name):
    graph = load_template(name)
    results = {}
    for backend in ("cpu", "cuda"):
        net = compile_network(graph, backend=backend, seed=0)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((8, *net.input_shape)).astype(np.float32)
        y = rng.integers(0, net.output_shape[0], 8)
        net.set_input_grad(False)
        out = net.backend.to_host(net.run_forward(net.backend.to_device(x), True))
        _, dy = losses.compute(net.loss_name, out, y)
        net.run_backward(net.backend.to_device(dy))
        grads = {k: net.backend.to_host(v) for k, v in net.grads.items()}
        Optimizer("momentum", lr=0.01).step(net)
        results[backend] = (out, grads, net.weights())
    has_dropout = any(n.type == "Dropout" for n in graph.nodes.values())
    if not has_dropout:  # masks are drawn differently on the two backends
        (out, grads, weights), (gpu_out, gpu_grads, gpu_weights) = results["cpu"], results["cuda"]
        np.testing.assert_allclose(gpu_out, out, rtol=1e-3, atol=1e-4)
        for key, value in grads.items():
            scale = max(float(np.abs(value).max()), 1e-3)
            assert float(np.abs(gpu_grads[key] - value).max()) <= 1e-3 * scale, key
        for key, value in weights.items():
            np.testing.assert_allclose(gpu_weights[key], value, rtol=1e-4, atol=1e-5)


def test_a_gpu_training_step_is_faster_than_the_cpu_one():
    graph = load_template("vgg-small")
    gpu_step = cuda_train_step_timer(compile_network(graph, backend="cuda"), 128)
    for _ in range(3):
        gpu_step()
    gpu = min(gpu_step() for _ in range(5))
    net = compile_network(graph, backend="cpu")
    net.set_input_grad(False)
    x = np.random.default_rng(0).standard_normal((128, *net.input_shape)).astype(np.float32)
    timings = []
    for _ in range(2):  # the first compiles
        start = time.perf_counter()
        out = net.run_forward(x, True)
        net.run_backward(losses.cross_entropy(out, np.zeros(128, np.int64))[1])
        timings.append(time.perf_counter() - start)
    cpu = timings[-1]
    assert gpu < cpu / 3, f"GPU step {gpu * 1e3:.1f} ms vs CPU {cpu * 1e3:.1f} ms"
