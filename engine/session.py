"""The model being worked on: graph, weights, optimizer state, data spec, training settings,
history, run position and the best epoch's weights, with one owner.

The command line and the designer both open, train and save models through a Session, so a file
trained in one resumes in the other exactly, and nothing is copied into a second record.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .graph import Graph
from .modelfile import ModelFile, expected_arrays, load_model, save_model
from .network import Network, compile_network
from .optim import DEFAULTS, Optimizer, Schedule
from .templates import load_template, template_info, template_names
from .train import HISTORY_KEYS, Best, Position, Trainer


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def run_graph(graph: Graph) -> dict:
    """The graph a run trained, without node positions (a run's record stays small)."""
    doc = graph.to_dict()
    doc["nodes"] = [{k: v for k, v in node.items() if k != "pos"} for node in doc["nodes"]]
    return doc


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


def structure_key(graph: Graph, renamed: dict[str, str] | None = None) -> str:
    """The graph without positions, name or the order of its lists (an undo may put a node or
    edge back elsewhere): weights fit two graphs whose keys are equal. With renamed, the key of
    the graph whose node ids are renamed so ({id: new id})."""
    doc = graph.to_dict()
    if renamed:
        for node in doc["nodes"]:
            node["id"] = renamed.get(node["id"], node["id"])
        for edge in doc["edges"]:
            edge["from"], edge["to"] = (renamed.get(edge[end], edge[end]) for end in ("from", "to"))
    nodes = sorted(({k: v for k, v in node.items() if k != "pos"} for node in doc["nodes"]),
                   key=lambda node: node["id"])
    edges = sorted(doc["edges"], key=lambda edge: json.dumps(edge, sort_keys=True))
    return json.dumps({"nodes": nodes, "edges": edges}, sort_keys=True)


@dataclass
class TrainingSettings:
    """What the Train panel sets and `convdesigner train` takes; stored as /training settings.

    data is the dataset the next run trains on: {"source": spec, "image_size": [h, w] or None,
    "color": "auto"|"gray"|"rgb", "val_percent": share, "train_range": "A:B", "val_range": "A:B"}
    (empty: the built-in dataset the Input fits). epochs is the length of a run."""

    optimizer: str = "adam"
    lr: float = DEFAULTS["adam"]["lr"]
    schedule: str = "constant"
    weight_decay: float = 0.0
    batch_size: int = 64
    augmentation: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    early_stop: int | None = None
    keep_best: bool = False
    epochs: int = 10
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainingSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


@dataclass
class DataProblem:
    """Why a dataset cannot train this model, and the fixes that fit: "model_data" (pick the data
    the model was trained on), "input_shape" (set the Input to the data's shape), "reset"
    (fresh weights, to train afresh on this data)."""

    message: str
    fixes: tuple[str, ...] = ()


def _shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def _classes_text(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:6]) + (", …" if len(names) > 6 else "")


def data_choice(spec: dict | None) -> dict:
    """The dataset choice that reproduces the data a model was trained on (its /data spec)."""
    if not spec or not spec.get("source"):
        return {}
    choice = {"source": spec["source"]}
    for key in ("train_range", "val_range"):
        if spec.get(key) and spec[key][0] < spec[key][1]:
            choice[key] = f"{spec[key][0]}:{spec[key][1]}"
    return choice


class Session:
    """The one record of a model being worked on.

    graph is the graph the weights fit. The network is compiled on first use (net), on the thread
    that trains; adopt(graph) follows an edited graph, keeping every array that still fits.
    modified says whether the trained state changed since it was opened or saved."""

    def __init__(self, graph: Graph, settings: TrainingSettings | None = None,
                 backend: str = "cpu", keep_outputs: bool = True):
        self.graph = graph.copy()
        self.settings = settings or TrainingSettings()
        self.backend = backend
        self.keep_outputs = keep_outputs
        self.path: Path | None = None
        self.optimizer: Optimizer | None = None
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        self.data_spec: dict | None = None
        self.position = Position()
        self.best: Best | None = None
        self.runs: list[dict] = []        # every training run of this model (the file's /runs)
        self._run: dict | None = None     # the run under way: what it started with
        self.modified = False
        self.trained_elsewhere = False    # weights from a file that holds their normalisation
        self._net: Network | None = None
        self._pending: dict | None = None   # weights read from a file, not yet in a network
        self._stash: dict | None = None     # the trained state of the structure edited away

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: ModelFile, path: str | Path | None = None, backend: str = "cpu",
                   keep_outputs: bool = True) -> Session:
        settings = TrainingSettings.from_dict(model.settings)
        if not settings.data:
            settings.data = data_choice(model.data_spec)
        if model.settings is None and model.optimizer is not None:
            config = model.optimizer["config"]
            settings.optimizer, settings.lr = model.optimizer["type"], config.get("lr",
                                                                                settings.lr)
            settings.weight_decay = config.get("weight_decay", 0.0)
            settings.schedule = config.get("schedule", {}).get("kind", settings.schedule)
        session = cls(model.graph, settings, backend=backend, keep_outputs=keep_outputs)
        session.path = Path(path) if path else None
        session._pending = dict(model.weights)
        session.trained_elsewhere = bool((model.data_spec or {}).get("normalization"))
        if model.optimizer is not None:
            session.optimizer = Optimizer.from_state_dict(model.optimizer)
        session.history = {key: [float(v) for v in model.history.get(key, [])]
                           for key in HISTORY_KEYS} if model.history else session.history
        session.data_spec = model.data_spec
        training = model.training or {}
        if "seed" in training:
            settings.seed = int(training["seed"])
        session.position = (Position(**training["position"]) if "position" in training
                            else Position(epoch=len(session.history["epoch"])))
        session.best = Best.from_dict(model.best)
        session.runs = list(model.runs)
        return session

    @classmethod
    def from_template(cls, name: str) -> Session:
        """A fresh model of a built-in network with its own dataset and settings."""
        info = template_info(name)
        settings = TrainingSettings.from_dict(info.get("settings"))
        settings.data = {"source": info["dataset"]}
        return cls(load_template(name), settings)

    @classmethod
    def open(cls, source: str | Path, backend: str = "cpu",
             keep_outputs: bool = True) -> Session:
        """MODEL of the command line: a model file, a graph JSON file or a template."""
        graph, model = load_source(source)
        if model is not None:
            return cls.from_model(model, source, backend=backend, keep_outputs=keep_outputs)
        if str(source) in template_names():
            session = cls.from_template(str(source))
            session.backend, session.keep_outputs = backend, keep_outputs
            return session
        return cls(graph, backend=backend, keep_outputs=keep_outputs)

    # -- the network --------------------------------------------------------------------------
    @property
    def net(self) -> Network:
        """The compiled network (compiled here on first use, with the stored weights)."""
        if self._net is None:
            self._net = compile_network(self.graph, backend=self.backend,
                                        seed=self.settings.seed, keep_outputs=self.keep_outputs)
            if self._pending is not None:
                self._net.load_weights(self._pending)
                self._pending = None
        return self._net

    @property
    def trained(self) -> bool:
        """Whether the weights came from training: here (a history) or elsewhere (an imported
        model, a file that keeps the normalisation its weights expect)."""
        return (bool(self.history["epoch"]) or self.position.batch > 0 or self.best is not None
                or self.trained_elsewhere)

    @property
    def graph(self) -> Graph:
        return self._graph

    @graph.setter
    def graph(self, graph: Graph) -> None:
        # its structure key, kept: every edit in the window asks whether the weights still fit
        self._graph, self._key = graph, structure_key(graph)

    def fits(self, graph: Graph) -> bool:
        return structure_key(graph) == self._key

    def renames(self, graph: Graph) -> dict[str, str]:
        """{id: new id} when graph is this model's network with nodes renamed and nothing else
        changed (its weights, optimizer state and best epoch follow the new ids); else {}."""
        gone = [n for n in self.graph.nodes if n not in graph.nodes]
        added = [n for n in graph.nodes if n not in self.graph.nodes]
        if not gone or len(gone) != len(added):
            return {}
        renamed = dict(zip(gone, added, strict=True))   # a rename keeps the node's place
        back = {new: old for old, new in renamed.items()}
        return renamed if structure_key(graph, back) == self._key else {}

    def brings_back(self, graph: Graph) -> bool:
        """Whether following graph (adopt) swaps in the run an edit set aside: an undo back to
        its structure (cheap: nothing is compiled)."""
        return (self._stash is not None and not self.fits(graph)
                and self._stash["key"] == structure_key(graph))

    @property
    def set_aside_epochs(self) -> int | None:
        """The trained epochs of the run an edit set aside (an undo brings it back), or None."""
        return None if self._stash is None else len(self._stash["history"]["epoch"])

    def epochs_for(self, graph: Graph) -> int:
        """The trained epochs of the run that following graph trains on: this one, or the one an
        undo brings back."""
        return self.set_aside_epochs if self.brings_back(graph) else len(self.history["epoch"])

    def keeps_run(self, graph: Graph) -> bool:
        """Whether following graph (adopt) keeps the trained state: every array it needs is one
        the model has, of the same shape (an inserted Dropout or ReLU changes none), or an undo
        brings a set-aside state back. A graph that cannot be checked changes nothing yet."""
        if self.fits(graph) or self.brings_back(graph) or self.renames(graph):
            return True
        try:
            wanted, have = expected_arrays(graph), expected_arrays(self.graph)
        except ValueError:
            return True
        return all(have.get(key) == shape for key, shape in wanted.items())

    def weights(self) -> dict[str, np.ndarray]:
        if self._net is None and self._pending is not None:
            return {k: v.copy() for k, v in self._pending.items()}
        return self.net.weights()

    def set_backend(self, backend: str) -> None:
        """Move the model to another backend ("cpu", "cuda"), keeping its arrays."""
        if backend == self.backend:
            return
        if self._net is not None:
            self._pending, self._net = self._net.weights(), None
        self.backend = backend

    def adopt(self, graph: Graph) -> None:
        """Follow an edited graph. Arrays whose key and shape still fit are kept; when some do
        not, the run's state (optimizer, history, position, best) is set aside, and comes back
        when the graph returns to that structure (an undo). A graph that cannot be compiled
        raises before anything changes."""
        if self.fits(graph):
            self.graph = graph.copy()
            return
        renamed = self.renames(graph)
        if renamed:
            self._rename_arrays(renamed)
            self.graph, self._net = graph.copy(), None
            self.modified = True
            return
        if self.brings_back(graph):
            stash = self._stash
            self._stash = self._state(self._key, self.weights())
            self.graph, self._net = graph.copy(), None
            self._restore(stash)
            return
        net = compile_network(graph, backend=self.backend, seed=self.settings.seed,
                              keep_outputs=self.keep_outputs)
        old = self.weights() if self._net is not None or self._pending is not None else {}
        trained = self.trained
        before = self._state(self._key, old) if trained else None
        targets = {**net.params, **net.state}
        fitting = {k: v for k, v in old.items() if k in targets and v.shape == targets[k].shape}
        net.load_weights(fitting)
        self.graph, self._net, self._pending = graph.copy(), net, None
        if len(fitting) != len(targets):
            if before is not None:   # a second edit keeps the first one's trained state
                self._stash = before
            self._clear_run()
        self.modified = self.modified or trained

    def _rename_arrays(self, renamed: dict[str, str]) -> None:
        """Key the weights, the optimizer's slots and the best epoch's weights by new node ids."""
        def key(name: str) -> str:
            node, _, array = name.partition("/")
            return f"{renamed.get(node, node)}/{array}"

        self._pending = {key(k): v for k, v in self.weights().items()}
        if self.optimizer is not None:
            self.optimizer.slots = {key(k): v for k, v in self.optimizer.slots.items()}
        if self.best is not None:
            self.best.weights = {key(k): v for k, v in self.best.weights.items()}

    def _state(self, key: str, weights: dict) -> dict:
        return {"key": key, "weights": weights, "modified": self.modified,
                **{name: getattr(self, name) for name in
                   ("optimizer", "history", "position", "best", "data_spec", "trained_elsewhere")}}

    def _restore(self, state: dict) -> None:
        self._pending = state["weights"]
        for name in ("optimizer", "history", "position", "best", "data_spec", "modified",
                     "trained_elsewhere"):
            setattr(self, name, state[name])

    def _clear_run(self) -> None:
        self.optimizer, self.best, self.position = None, None, Position()
        self.trained_elsewhere = False
        self.history = {key: [] for key in HISTORY_KEYS}

    def settings_changed(self) -> None:
        """The training settings changed: the file keeps them, so the model is unsaved, also
        when an undo brings a set-aside run back (the settings are not set aside with it)."""
        self.modified = True
        if self._stash is not None:
            self._stash["modified"] = True

    def reset(self) -> None:
        """Fresh weights; the optimizer state, history, position and best epoch go."""
        self._net, self._pending, self._stash = None, None, None
        self._clear_run()
        self.modified = True

    # -- training -----------------------------------------------------------------------------
    def data_problem(self, dataset, graph: Graph | None = None) -> DataProblem | None:
        """Whether dataset can train this model (with graph, the edited one): its samples must
        fit the Input, its classes the Output, and trained weights their own classes."""
        graph = graph or self.graph
        try:
            analysis = graph.check()
        except ValueError:
            return None  # the graph's own errors are shown on its nodes
        expected = tuple(analysis.shapes[graph.input_node.id])
        outputs = analysis.shapes[graph.output_node.id]
        got = tuple(dataset.input_shape)
        spec = self.data_spec or {}
        own = spec.get("source")
        model_data = ("model_data",) if self.trained and own and own != dataset.source else ()
        if got != expected:
            ranks = len(got) - 1, len(expected) - 1
            why = (f"; a {ranks[1]}D network cannot take {ranks[0]}D samples"
                   if ranks[0] != ranks[1] else "")
            return DataProblem(f"The data's samples are {_shape_text(got)} but the network's "
                               f"Input expects {_shape_text(expected)}{why}.", model_data + (
                                   ("input_shape",) if ranks[0] == ranks[1] else ()))
        loss = analysis.params[graph.output_node.id]["loss"]
        if loss == "cross_entropy" and len(outputs) == 1 and dataset.num_classes > outputs[0]:
            return DataProblem(f"The data has {dataset.num_classes} classes but the network "
                               f"outputs {outputs[0]} scores: give its last layer "
                               f"{dataset.num_classes} units.", model_data)
        trained_on = spec.get("class_names")
        if self.trained and trained_on and list(trained_on) != list(dataset.class_names):
            return DataProblem(
                f"This model was trained on {own} ({len(trained_on)} classes: "
                f"{_classes_text(trained_on)}); the chosen data {dataset.source} has "
                f"{dataset.num_classes} ({_classes_text(dataset.class_names)}).",
                model_data + ("reset",))
        return None

    @property
    def interrupted(self) -> bool:
        """A run was stopped before its last epoch (Start or `train` without --epochs finishes
        it exactly as it would have run)."""
        return self.optimizer is not None and self.position.epoch < self.optimizer.schedule.epochs

    def normalization_for(self, dataset, train_range: tuple[int, int]):
        """Trained weights keep the input units they were trained in (the stored normalisation);
        fresh ones get statistics of the training range."""
        from .data import Normalization

        stored = (self.data_spec or {}).get("normalization")
        if stored and self.trained:
            return Normalization.from_dict(stored)
        return Normalization.fit(dataset.x[slice(*train_range)])

    def trainer(self, dataset, train_range: tuple[int, int], val_range: tuple[int, int],
                epochs: int | None = None) -> Trainer:
        """A Trainer for the next run on dataset (engine.data.Dataset): the interrupted run when
        epochs is None and there is one, else `epochs` (or the settings' epochs) more. The
        optimizer resumes when its kind is unchanged; the data spec records the data."""
        from .data import Augmentation, data_spec

        s = self.settings
        norm = self.normalization_for(dataset, train_range)
        self.data_spec = data_spec(dataset, norm, train_range, val_range)
        if epochs is None and self.interrupted:
            start, target = self.optimizer.schedule.start, self.optimizer.schedule.epochs
        else:
            start = self.position.epoch
            target = start + (epochs or s.epochs)
        schedule = Schedule(s.schedule, step_size=max(1, (target - start) // 3), epochs=target,
                            start=start)
        if self.optimizer is None or self.optimizer.kind != s.optimizer:
            self.optimizer = Optimizer(s.optimizer, schedule)
        self.optimizer.schedule = schedule
        self.optimizer.config.update(lr=s.lr, weight_decay=s.weight_decay)
        train, val = dataset.subset(*train_range), dataset.subset(*val_range)
        self._run = {"started": _now(), "graph": run_graph(self.graph),
                     "settings": s.to_dict(), "data": dataset.source,
                     "first": len(self.history["epoch"])}
        return Trainer(self.net, self.optimizer, train.x, train.y, val.x, val.y, epochs=target,
                       batch_size=s.batch_size, seed=s.seed, normalization=norm,
                       augmentation=Augmentation.from_dict(s.augmentation),
                       history=self.history, position=self.position, early_stop=s.early_stop,
                       keep_best=s.keep_best,
                       best=self.best if s.keep_best or s.early_stop else None)

    def finish(self, trainer: Trainer, ended_how: str | None = None) -> dict:
        """Take what a run reached (its weights live in the network already) and record the run
        in runs; ended_how defaults to how the trainer stopped. Returns the run's record. A run
        ended by early stopping is complete: the next one starts afresh rather than resuming it."""
        self.best = trainer.best
        self.modified = True
        reason = trainer.stopped_reason or ""
        if reason.startswith("early stop"):
            self.optimizer.schedule = dataclasses.replace(self.optimizer.schedule,
                                                          epochs=self.position.epoch)
        run, self._run = self._run, None
        first = run.pop("first")
        run["ended"] = _now()
        run["ended_how"] = ended_how or next(
            (how for how, start in (("stopped", "stopped"), ("early stop", "early stop"),
                                    ("diverged", "training diverged")) if reason.startswith(start)),
            "completed")
        run["history"] = {key: [_json_number(v) for v in values[first:]]
                          for key, values in self.history.items()}
        self.runs.append(run)
        return run

    def use_best(self) -> None:
        """Load the best epoch's weights (evaluate, predict and export use them by default)."""
        if self.best is not None:
            self.net.load_weights(self.best.weights)

    # -- saving -------------------------------------------------------------------------------
    def save(self, path: str | Path, copy: bool = False) -> None:
        """Write the whole model atomically (DESIGN.md 3.2); the old file stays if this fails.
        A copy (an autosave) leaves the session's file and modified flag as they were."""
        training = {"seed": self.settings.seed, "position": dataclasses.asdict(self.position)}
        save_model(path, self.graph, self.weights(),
                   optimizer=self.optimizer.state_dict() if self.optimizer else None,
                   history={k: np.asarray(v) for k, v in self.history.items() if len(v)},
                   data_spec=self.data_spec, training=training,
                   settings=self.settings.to_dict(),
                   best=self.best.to_dict() if self.best else None, runs=self.runs)
        if not copy:
            self.path, self.modified = Path(path), False
