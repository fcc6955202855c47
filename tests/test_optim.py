"""Optimizers against PyTorch's update formulas written out in numpy; LR schedules."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine.backend import CPUBackend
from engine.optim import Optimizer, Schedule


def fake_net(seed=0):
    rng = np.random.default_rng(seed)
    params = {"a/weight": rng.standard_normal((3, 5)).astype(np.float32),
              "a/bias": rng.standard_normal(7).astype(np.float32)}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    return SimpleNamespace(params=params, grads=grads, backend=CPUBackend(), dtype=np.float32)


def reference_steps(kind, config, params, grads_seq):
    p = {k: v.astype(np.float64) for k, v in params.items()}
    slots = {k: {"v": np.zeros_like(v), "m": np.zeros_like(v)} for k, v in p.items()}
    for t, grads in enumerate(grads_seq, start=1):
        for k in p:
            g = grads[k] + config.get("weight_decay", 0) * p[k]
            if kind == "sgd":
                p[k] = p[k] - config["lr"] * g
            elif kind == "momentum":
                v = slots[k]["v"] = config["momentum"] * slots[k]["v"] + g
                step = g + config["momentum"] * v if config.get("nesterov") else v
                p[k] = p[k] - config["lr"] * step
            else:
                b1, b2 = 0.9, 0.999
                m = slots[k]["m"] = b1 * slots[k]["m"] + (1 - b1) * g
                v = slots[k]["v"] = b2 * slots[k]["v"] + (1 - b2) * g * g
                p[k] = p[k] - config["lr"] * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + 1e-8)
    return p


@pytest.mark.parametrize("kind,config", [
    ("sgd", {"lr": 0.1}), ("sgd", {"lr": 0.1, "weight_decay": 0.01}),
    ("momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}),
    ("adam", {"lr": 0.01}), ("adam", {"lr": 0.01, "weight_decay": 0.1})])
def test_updates_match_pytorch_formulas(kind, config):
    net = fake_net()
    start = {k: v.copy() for k, v in net.params.items()}
    rng = np.random.default_rng(1)
    grads_seq = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in start.items()}
                 for _ in range(4)]
    opt = Optimizer(kind, **config)
    for grads in grads_seq:
        for k, g in grads.items():
            np.copyto(net.grads[k], g)
        opt.step(net)
    expected = reference_steps(kind, {"momentum": 0.9, **config}, start, grads_seq)
    for k in start:
        np.testing.assert_allclose(net.params[k], expected[k], rtol=2e-5, atol=2e-6)


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32)
              for k, v in fake_net().params.items()} for _ in range(4)]
    a, b = fake_net(), fake_net()
    opt_a = Optimizer("adam", lr=0.01)
    for g in grads:
        a.grads.update(g)
        opt_a.step(a)
    opt_b = Optimizer("adam", lr=0.01)
    for g in grads[:2]:
        b.grads.update(g)
        opt_b.step(b)
    opt_b = Optimizer.from_state_dict(opt_b.state_dict())
    for g in grads[2:]:
        b.grads.update(g)
        opt_b.step(b)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_schedules():
    assert Schedule("step", step_size=2, gamma=0.5).lr(1.0, 5) == 0.25
    cosine = Schedule("cosine", epochs=10, min_lr=0.1)
    assert cosine.lr(1.0, 0) == 1.0
    assert math.isclose(cosine.lr(1.0, 5), 0.55)
    assert math.isclose(cosine.lr(1.0, 10), 0.1)
    assert Schedule().lr(0.3, 99) == 0.3
    with pytest.raises(ValueError, match="schedule must be one of"):
        Schedule("exp")


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Optimizer("rmsprop")
    with pytest.raises(ValueError, match="sgd takes lr, weight_decay"):
        Optimizer("sgd", momentum=0.9)
