"""Whole networks on the CUDA backend: a training step as the CPU's, moves, files, the Trainer."""
import h5py
import numpy as np
import pytest

from engine import losses
from engine.graph import Graph
from engine.inspect import activations, filters, layer_health, saliency
from engine.modelfile import load_model, save_model
from engine.network import compile_network
from engine.optim import Optimizer
from engine.templates import load_template
from engine.train import Trainer, evaluate

SMALLER = {"lenet5": {6: 3, 16: 4, 120: 8, 84: 6, 10: 5},
           "resnet-mini": {16: 3, 32: 4, 10: 5}}


def tiny(name: str, side: int) -> Graph:
    """A template with a 1 x side x side input and far fewer filters and units."""
    doc = load_template(name).to_dict()
    for node in doc["nodes"]:
        params = node.get("params", {})
        if node["type"] == "Input":
            params["shape"] = [1, side, side]
        for key in ("filters", "units"):
            if key in params:
                params[key] = SMALLER[name][params[key]]
    return Graph.from_dict(doc)


def training_step(net, x, y, optimizer):
    """Forward, cross-entropy, backward, one update; everything it produced, on the host."""
    out = net.backend.to_host(net.run_forward(net.backend.to_device(x, net.dtype), True))
    loss, dy = losses.cross_entropy(out, y)
    net.run_backward(net.backend.to_device(dy, net.dtype))
    grads = {k: net.backend.to_host(v).copy() for k, v in net.grads.items()}
    optimizer.step(net)
    return {"logits": out.copy(), "loss": np.array(loss), **{f"grad {k}": v for k, v in
                                                            grads.items()},
            **{f"after {k}": v for k, v in net.weights().items()}}


def assert_same(cpu: dict, gpu: dict, tolerance: float) -> None:
    """Each array within `tolerance` of the CPU's, relative to the array's largest value; arrays
    that are zero but for rounding (a conv bias before BatchNorm) are compared as if 1e-3."""
    for key, expected in cpu.items():
        scale = max(float(np.max(np.abs(expected))), 1e-3)
        error = float(np.max(np.abs(gpu[key] - expected))) / scale
        assert error <= tolerance, f"{key}: relative error {error:.2e}"


@pytest.mark.parametrize("name, side", [("lenet5", 12), ("resnet-mini", 6)])
@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_a_training_step_matches_the_cpu(name, side, dtype, tolerance):
    graph = tiny(name, side)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, side, side))
    y = rng.integers(0, 5, 2)
    results = {}
    for backend in ("cpu", "cuda"):
        net = compile_network(graph, backend=backend, seed=1, dtype=dtype)
        net.set_input_grad(False)
        results[backend] = training_step(net, x, y, Optimizer("momentum", lr=0.1))
    assert_same(results["cpu"], results["cuda"], tolerance)


@pytest.fixture(scope="module")
def trained():
    """A tiny LeNet after one training step on the GPU, and its optimizer."""
    net = compile_network(tiny("lenet5", 12), backend="cuda", seed=2)
    rng = np.random.default_rng(1)
    optimizer = Optimizer("adam", lr=0.01)
    training_step(net, rng.standard_normal((3, 1, 12, 12)), rng.integers(0, 5, 3), optimizer)
    return net, optimizer


def test_a_model_moves_between_devices(trained):
    net, _ = trained
    x = np.random.default_rng(4).standard_normal((2, 1, 12, 12)).astype(np.float32)
    on_cpu = net.to("cpu")
    assert on_cpu.backend.name == "cpu" and isinstance(on_cpu.params["conv1/weight"], np.ndarray)
    np.testing.assert_allclose(on_cpu.forward(x), net.forward(x), rtol=1e-5, atol=1e-6)
    back = on_cpu.to("cuda")
    for key, value in net.weights().items():
        np.testing.assert_array_equal(back.weights()[key], value)


def test_saving_a_gpu_model_writes_what_the_cpu_writes(trained, tmp_path):
    net, optimizer = trained
    graph = net.graph
    save_model(tmp_path / "gpu.h5", graph, net.weights(), optimizer=optimizer.state_dict())
    cpu = net.to("cpu")
    cpu_optimizer = Optimizer.from_state_dict(optimizer.state_dict())
    cpu_optimizer.bind(cpu)
    save_model(tmp_path / "cpu.h5", graph, cpu.weights(), optimizer=cpu_optimizer.state_dict())

    def datasets(path):
        found = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, item: found.setdefault(name, item[()]) if isinstance(
                item, h5py.Dataset) else None)
        return found

    gpu_sets, cpu_sets = datasets(tmp_path / "gpu.h5"), datasets(tmp_path / "cpu.h5")
    assert gpu_sets.keys() == cpu_sets.keys()
    for name, value in gpu_sets.items():
        assert value.dtype == cpu_sets[name].dtype
        np.testing.assert_array_equal(value, cpu_sets[name])
    reopened = compile_network(graph, backend="cuda")
    reopened.load_weights(load_model(tmp_path / "gpu.h5").weights)
    for key, value in net.weights().items():
        np.testing.assert_array_equal(reopened.weights()[key], value)


def test_inspection_reads_a_gpu_network(trained):
    net, _ = trained
    x = np.random.default_rng(5).standard_normal((1, 12, 12)).astype(np.float32)
    assert filters(net, "conv1").shape == (3, 1, 5, 5)
    maps = activations(net, x, ["relu1", "pool2"])
    assert maps["relu1"].shape == (3, 12, 12) and (maps["relu1"] >= 0).all()
    assert saliency(net, x, 1).shape == x.shape
    net.set_input_grad(False)
    health = layer_health(net)
    assert "grad_norm" in health["conv1"]


def test_the_trainer_runs_on_the_gpu_as_on_the_cpu():
    graph = tiny("lenet5", 12)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((10, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 10)
    nets = {}
    for backend in ("cpu", "cuda"):
        net = compile_network(graph, backend=backend, seed=3)
        trainer = Trainer(net, Optimizer("momentum", lr=0.05), x[:8], y[:8], x[8:], y[8:],
                          epochs=1, batch_size=4, seed=3)
        history = trainer.run()
        assert np.isfinite(history["val_loss"][0])
        nets[backend] = (net, history)
    for key, value in nets["cpu"][0].weights().items():
        np.testing.assert_allclose(nets["cuda"][0].weights()[key], value, rtol=1e-4, atol=1e-5)
    assert nets["cuda"][1]["train_loss"][0] == pytest.approx(nets["cpu"][1]["train_loss"][0],
                                                             rel=1e-4)
    result = evaluate(nets["cuda"][0], x, y, batch_size=4)
    assert result["samples"] == 10 and np.isfinite(result["loss"])


def test_the_benchmark_step_trains():
    from engine.kernels.cuda.bench import cuda_train_step_timer

    net = compile_network(tiny("lenet5", 12), backend="cuda", seed=4)
    before = net.weights()
    step = cuda_train_step_timer(net, 2)
    assert step() > 0
    assert not np.array_equal(net.weights()["conv1/weight"], before["conv1/weight"])
