"""A model being worked on: graph, compiled network, optimizer, history, data spec, position.

The command line and the designer both open models through here, so a file trained in one resumes
in the other exactly.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .graph import Graph
from .modelfile import ModelFile, load_model, save_model
from .network import Network, compile_network
from .optim import Optimizer, Schedule
from .templates import load_template, template_names
from .train import HISTORY_KEYS, Position


class SourceError(ValueError):
    """MODEL names neither a model file, a graph JSON file nor a template."""


def load_source(source: str | Path) -> tuple[Graph, ModelFile | None]:
    """MODEL of the command line: a .h5 model file, a .json graph, or a template name."""
    path = Path(source)
    if path.suffix.lower() in (".h5", ".hdf5"):
        model = load_model(path)
        return model.graph, model
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        return Graph.load_json(path), None
    if str(source) in template_names():
        return load_template(str(source)), None
    raise SourceError(f"{source!r} is not a model file (.h5), a graph file (.json) or a template "
                      f"({', '.join(template_names())})")


class Session:
    def __init__(self, graph: Graph, model: ModelFile | None = None, backend: str = "cpu",
                 seed: int = 0, keep_outputs: bool = True):
        self.graph = graph
        self.seed = seed
        self.net: Network = compile_network(graph, backend=backend, seed=seed,
                                            keep_outputs=keep_outputs)
        self.optimizer: Optimizer | None = None
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        self.data_spec: dict | None = None
        self.position = Position()
        if model is not None:
            self.net.load_weights(model.weights)
            if model.optimizer is not None:
                self.optimizer = Optimizer.from_state_dict(model.optimizer)
            self.history = {key: [float(v) for v in values]
                            for key, values in model.history.items()} or self.history
            self.data_spec = model.data_spec
            training = model.training or {}
            self.seed = int(training.get("seed", seed))
            self.position = Position(**training["position"]) if "position" in training \
                else Position(epoch=len(self.history.get("epoch", [])))

    @classmethod
    def open(cls, source: str | Path, backend: str = "cpu", seed: int = 0,
             keep_outputs: bool = True) -> Session:
        graph, model = load_source(source)
        return cls(graph, model, backend=backend, seed=seed, keep_outputs=keep_outputs)

    def make_optimizer(self, kind: str | None, lr: float | None, schedule: Schedule | None = None,
                       **config) -> Optimizer:
        """Keep a resumed optimizer when the same kind is asked for; otherwise start a new one."""
        if self.optimizer is not None and kind in (None, self.optimizer.kind):
            if lr is not None:
                self.optimizer.config["lr"] = lr
        else:
            if lr is not None:
                config["lr"] = lr
            self.optimizer = Optimizer(kind or "adam", schedule, **config)
        return self.optimizer

    def save(self, path: str | Path) -> None:
        training = {"seed": self.seed, "position": dataclasses.asdict(self.position)}
        save_model(path, self.graph, self.net.weights(),
                   optimizer=self.optimizer.state_dict() if self.optimizer else None,
                   history={k: np.asarray(v) for k, v in self.history.items() if len(v)},
                   data_spec=self.data_spec, training=training)
