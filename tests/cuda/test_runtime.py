"""The CUDA backend's array API, optimizer and loss kernels, device discovery and its errors."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine import losses
from engine.backend import BackendError, get_backend
from engine.kernels.cpu import optim as cpu_optim
from engine.kernels.cuda import optim as cuda_optim
from engine.kernels.cuda import runtime
from engine.kernels.cuda.losses import DeviceLoss
from engine.optim import Optimizer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def backend():
    return get_backend("cuda")


def test_arrays_round_trip(backend):
    host = np.arange(12.0).reshape(3, 4)
    device = backend.to_device(host, np.float32)
    assert not isinstance(device, np.ndarray) and device.dtype == np.float32
    np.testing.assert_array_equal(backend.to_host(device), host)
    assert backend.to_device(device, np.float32) is device
    zeros = backend.zeros((3, 4), np.float64)
    np.testing.assert_array_equal(backend.to_host(zeros), 0.0)
    backend.copy_into(zeros, host)
    backend.add_into(zeros, backend.to_device(host, np.float64))
    np.testing.assert_array_equal(backend.to_host(zeros), 2 * host)
    backend.copy_into(zeros[:2], device[1:].reshape(2, 4))  # device to device, other dtype
    np.testing.assert_array_equal(backend.to_host(zeros), np.vstack([host[1:], 2 * host[2:]]))
    backend.synchronize()


def test_stage_reuses_one_buffer_until_a_bigger_batch(backend):
    first = backend.stage(np.ones((4, 3), np.float64), "x", np.float32)
    buffer = backend._staging["x"].device
    second = backend.stage(np.full((2, 3), 5), "x", np.float32)
    assert backend._staging["x"].device is buffer and second.shape == (2, 3)
    np.testing.assert_array_equal(backend.to_host(second), 5.0)
    backend.stage(np.zeros((6, 3)), "x", np.float32)
    assert backend._staging["x"].device is not buffer
    assert backend.stage(first, "x", np.float32) is first


def test_params_read_as_numpy_and_write_through(backend):
    from engine.network import compile_network
    from engine.templates import load_template

    net = compile_network(load_template("lenet5"), backend="cuda")
    weight = np.asarray(net.params["conv1/weight"])
    assert isinstance(weight, np.ndarray) and weight.shape == (6, 1, 5, 5)
    net.params["conv1/bias"][:] = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(net.weights()["conv1/bias"], np.arange(6))


OPTIMIZERS = [("sgd", {"lr": 0.1, "weight_decay": 0.01}),
              ("momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True,
                            "weight_decay": 1e-3}),
              ("momentum", {"lr": 0.05, "momentum": 0.9}),
              ("adam", {"lr": 0.01, "weight_decay": 0.1})]


@pytest.mark.parametrize("kind, config", OPTIMIZERS)
def test_optimizer_steps_match_the_cpu(backend, kind, config):
    rng = np.random.default_rng(1)
    start = {"a/weight": rng.standard_normal((3, 5)), "a/bias": rng.standard_normal(7)}
    grads_seq = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(3)]
    nets = {}
    for name, b in (("cpu", get_backend("cpu")), ("cuda", backend)):
        params = {k: b.to_device(v.copy(), np.float64) for k, v in start.items()}
        grads = {k: b.zeros(v.shape, np.float64) for k, v in start.items()}
        nets[name] = SimpleNamespace(params=params, grads=grads, backend=b, dtype=np.float64)
        opt = Optimizer(kind, **config)
        for step in grads_seq:
            for k, g in step.items():
                b.copy_into(grads[k], g)
            opt.step(nets[name])
        state = opt.state_dict()
        assert all(isinstance(a, np.ndarray) for s in state["slots"].values() for a in s.values())
    for k in start:
        np.testing.assert_allclose(backend.to_host(nets["cuda"].params[k]),
                                   nets["cpu"].params[k], rtol=1e-12)


def test_optimizer_kernels_take_the_cpu_modules_signatures():
    for name in ("sgd_update", "momentum_update", "adam_update"):
        cpu, gpu = getattr(cpu_optim, name), getattr(cuda_optim, name)
        assert cpu.__code__.co_varnames[:cpu.__code__.co_argcount] == \
            gpu.__code__.co_varnames[:gpu.__code__.co_argcount]


@pytest.mark.parametrize("name", ["cross_entropy", "mse"])
def test_device_loss_matches_the_host_loss(backend, name):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 4)) * 3
    labels = rng.integers(0, 4, 5)
    expected_loss, expected_grad = losses.compute(name, logits, labels)
    loss = DeviceLoss(backend, name, 4, capacity=8, dtype=np.float64)
    grad = loss.compute(backend.to_device(logits, np.float64), labels)
    value, correct = loss.result()
    assert value == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(backend.to_host(grad), expected_grad, rtol=1e-12, atol=1e-15)
    assert correct == int(np.sum(np.argmax(logits, axis=1) == labels))


def test_backend_error_is_one_line_when_numba_cuda_is_missing(monkeypatch):
    monkeypatch.setattr(runtime, "cuda", None)
    monkeypatch.setattr(runtime, "_IMPORT_ERROR", ImportError("No module named 'cuda'"))
    monkeypatch.setattr(runtime, "_usable", None)
    with pytest.raises(BackendError) as info:
        get_backend("cuda")
    message = str(info.value)
    assert "\n" not in message and "numba-cuda" in message and "--device cpu" in message


NO_GPU_SCRIPT = """
import contextlib, io, sys
from numba import cuda
if cuda.is_available():
    print("GPU")
    sys.exit()
from engine.backend import BackendError, get_backend
from engine.cli import main
try:
    get_backend("cuda")
except BackendError as err:
    print("error:", err)
errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    code = main(["evaluate", "lenet5", "--data", "shapes", "--device", "cuda", "--quiet"])
print("cli:", code, errors.getvalue().strip().replace("\\n", " | "))
output = io.StringIO()
with contextlib.redirect_stdout(output):
    code = main(["info", "--devices"])
print("info:", code, output.getvalue().splitlines()[0])
"""


def test_without_a_gpu_the_backend_and_cli_say_so_in_one_line():
    """In a fresh interpreter on the hardware path (no simulator): what a user without a GPU
    gets."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_ENABLE_CUDASIM": "0"}
    result = subprocess.run([sys.executable, "-c", NO_GPU_SCRIPT], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "GPU":
        pytest.skip("a CUDA GPU is present")
    error, cli, info = result.stdout.splitlines()
    assert error.startswith("error: cannot use --device cuda") and "--device cpu" in error
    assert cli.startswith("cli: 2 ") and "cannot use --device cuda" in cli
    assert "Traceback" not in cli and " | " not in cli
    assert info.startswith("info: 0 No CUDA device")


def test_devices_are_described():
    from engine.devices import cuda_devices, describe_devices

    devices = cuda_devices()
    assert devices and {"name", "compute_capability", "memory_total"} <= set(devices[0])
    text = describe_devices()
    assert text.startswith("GPU 0:") and "--device cuda" in text
