"""Optimizers (SGD, momentum with optional Nesterov, Adam; L2 weight decay) and LR schedules.

Updates run as fused kernels of the network's backend (engine/kernels/<backend>/optim.py); the
state (per-parameter slots and the step count) is what the model file stores for resuming.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "step", "cosine")
DEFAULTS = {
    "sgd": {"lr": 0.01, "weight_decay": 0.0},
    "momentum": {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
}
SLOTS = {"sgd": (), "momentum": ("velocity",), "adam": ("m", "v")}


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of the epoch over one run, from epoch `start` to `epochs`:
    constant, step (x gamma every step_size epochs) or cosine (from lr down to min_lr)."""

    kind: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    epochs: int = 10
    min_lr: float = 0.0
    start: int = 0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}. "
                             f"Received: {self.kind!r}")

    def lr(self, base_lr: float, epoch: int) -> float:
        epoch, length = max(0, epoch - self.start), self.epochs - self.start
        if self.kind == "step":
            return base_lr * self.gamma ** (epoch // max(1, self.step_size))
        if self.kind == "cosine":
            progress = min(epoch, length) / max(1, length)
            return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
        return base_lr

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Optimizer:
    def __init__(self, kind: str = "adam", schedule: Schedule | None = None, **config):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. "
                             f"Received: {kind!r}")
        unknown = set(config) - set(DEFAULTS[kind])
        if unknown:
            raise ValueError(f"{kind} takes {', '.join(DEFAULTS[kind])}. "
                             f"Received: {', '.join(sorted(unknown))}")
        self.kind = kind
        self.config = {**DEFAULTS[kind], **config}
        self.schedule = schedule or Schedule()
        self.step_count = 0
        self.epoch = 0
        self.slots: dict[str, dict[str, object]] = {}
        self._backend = None

    @property
    def lr(self) -> float:
        """The learning rate in force for the current epoch."""
        return self.schedule.lr(self.config["lr"], self.epoch)

    def bind(self, net) -> None:
        """Create (or move) the per-parameter slots on the network's backend."""
        self._backend = net.backend
        self._kernels = importlib.import_module(f"engine.kernels.{net.backend.name}.optim")
        for key, param in net.params.items():
            slots = self.slots.setdefault(key, {})
            for name in SLOTS[self.kind]:
                host = slots.get(name)
                slots[name] = (net.backend.zeros(param.shape, net.dtype) if host is None
                               else net.backend.to_device(net.backend.to_host(host), net.dtype))

    def step(self, net) -> None:
        """One update of every parameter from net.grads."""
        if self._backend is not net.backend:
            self.bind(net)
        self.step_count += 1
        c, lr, k = self.config, self.lr, self._kernels
        for key, param in net.params.items():
            grad, slots = net.grads[key], self.slots[key]
            if self.kind == "sgd":
                k.sgd_update(param, grad, lr, c["weight_decay"])
            elif self.kind == "momentum":
                k.momentum_update(param, grad, slots["velocity"], lr, c["momentum"],
                                  c["weight_decay"], c["nesterov"])
            else:
                k.adam_update(param, grad, slots["m"], slots["v"], lr, c["beta1"], c["beta2"],
                              c["eps"], c["weight_decay"], self.step_count)

    def state_dict(self) -> dict:
        """Plain data: type, config (incl. schedule, step and epoch) and host copies of slots."""
        to_host = self._backend.to_host if self._backend else np.asarray
        return {"type": self.kind,
                "config": {**self.config, "schedule": self.schedule.to_dict(),
                           "step": self.step_count, "epoch": self.epoch},
                "slots": {key: {name: np.array(to_host(a), np.float32) for name, a in s.items()}
                          for key, s in self.slots.items()}}

    @classmethod
    def from_state_dict(cls, state: dict) -> Optimizer:
        config = dict(state["config"])
        schedule = Schedule(**config.pop("schedule", {}))
        step, epoch = int(config.pop("step", 0)), int(config.pop("epoch", 0))
        opt = cls(state["type"], schedule, **config)
        opt.step_count, opt.epoch = step, epoch
        opt.slots = {key: dict(slots) for key, slots in state.get("slots", {}).items()}
        return opt
