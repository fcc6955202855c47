"""Training inside the designer: a worker thread runs the engine's Trainer and answers the panels'
snapshot requests between batches; TrainingController turns all of it into Qt signals."""
from __future__ import annotations

import atexit
import dataclasses
import math
import queue
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QCoreApplication, QMetaMethod, QObject, QThread, Signal

from engine import inspect
from engine.data import (
    Augmentation,
    DataError,
    Dataset,
    Normalization,
    data_spec,
    load_dataset,
    parse_range,
)
from engine.graph import Graph
from engine.network import Network
from engine.optim import Schedule
from engine.session import Session
from engine.train import Trainer, TrainingDiverged, normalize_into

from .files import structure_key

EMIT_INTERVAL = 0.2       # batch_done at most five times a second
HEALTH_INTERVAL = 1.0     # node_health about once a second
HEALTH_SAMPLES = 16       # activation statistics on the first samples of the batch
SMOKE_BATCH = 32
# During a run the worker gives the GIL back to the GUI (and takes it back) within 1 ms instead of
# Python's 5: while the window's thread holds the GIL, a finished kernel waits for it with every
# core idle, so long handoffs cost the training far more than the GUI's own CPU time.
SWITCH_INTERVAL = 0.001
_controllers: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    # a QThread still running when Python tears its object down aborts the process
    for controller in list(_controllers):
        controller.shutdown()


@dataclass
class TrainingConfig:
    """Everything the Train panel sets. data is a dataset spec as the command line takes it."""

    data: str = "shapes"
    image_size: tuple[int, int] | None = None
    color: str | None = None
    val_percent: float = 20.0
    train_range: str = ""
    val_range: str = ""
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    weight_decay: float = 0.0
    augmentation: dict = field(default_factory=dict)
    device: str = "cpu"
    seed: int = 0
    smoke_test: bool = True


@dataclass
class DataInfo:
    """A loaded dataset and its split, as the Train panel previews them."""

    dataset: Dataset
    train_range: tuple[int, int]
    val_range: tuple[int, int]
    train_counts: np.ndarray
    val_counts: np.ndarray


def split_ranges(config: TrainingConfig, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Train and validation ranges: explicit "A:B" texts win over the validation percentage."""
    if config.train_range.strip():
        train = parse_range(config.train_range, n)
    else:
        train = (0, n - int(round(n * config.val_percent / 100)))
        if train[1] <= 0:
            raise DataError(f"a validation share of {config.val_percent:g}% leaves no training "
                            f"samples out of {n}")
    if config.val_range.strip():
        val = parse_range(config.val_range, n)
    elif config.train_range.strip():
        val = (0, 0)
    else:
        val = (train[1], n)
    return train, val


def find_devices() -> tuple[list[tuple[str, str]], str]:
    """[(device id, label)] with the CPU first and each CUDA GPU found, and a sentence saying why
    there is no GPU ("" when there is one)."""
    from engine.threads import available_cores

    found = [("cpu", f"CPU ({available_cores()} cores)")]
    try:
        from engine.devices import cuda_devices
    except ImportError:
        cuda_devices = None
    try:
        if cuda_devices is not None:
            gpus = list(cuda_devices())
        else:
            from numba import cuda

            gpus = list(cuda.gpus) if cuda.is_available() else []
    except Exception as err:  # a broken driver can fail detection in any way
        return found, f"No GPU: CUDA detection failed ({err})."
    for index, gpu in enumerate(gpus):
        name = gpu.get("name") if isinstance(gpu, dict) else getattr(gpu, "name", gpu)
        if isinstance(name, bytes):
            name = name.decode()
        found.append((f"cuda:{index}", f"GPU {index}: {name}"))
    if len(found) == 1:
        return found, ("No GPU: no NVIDIA GPU with a working CUDA driver was found, so training "
                       "runs on the CPU.")
    return found, ""


def _carry_weights(old: Network, new: Network) -> bool:
    """Copy the arrays whose key and shape match; True when every array of new was matched."""
    old_arrays = old.weights()
    targets = {**new.params, **new.state}
    fits = {k: v for k, v in old_arrays.items() if k in targets and v.shape == targets[k].shape}
    new.load_weights(fits)
    return len(fits) == len(targets)


class _Worker(QThread):
    """Runs queued jobs one at a time; the only thread that touches the network."""

    def __init__(self, controller: TrainingController):
        super().__init__()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.controller = controller

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job()
            except Exception as err:  # report and keep serving: one bad request must not kill it
                self.controller._fail(err)


class TrainingController(QObject):
    """Owns the model being trained (an engine Session), its data and the worker thread.

    Tell it the graph with set_graph(graph) and the node the user clicked with select_node(id);
    panels ask for arrays with request(kind, **params) and receive snapshot_ready(kind, payload).
    Signals from the worker arrive queued in the GUI thread.
    """

    # Python payloads travel as object: a dict signal would become a QVariantMap (keys re-sorted,
    # every value converted) on each emit.
    state_changed = Signal(str)          # idle, loading, smoke, training, paused, stopping
    data_loaded = Signal(object)         # DataInfo
    batch_done = Signal(object)          # dict: the batches since the last emit, and progress
    epoch_done = Signal(object)          # dict: the epoch's history row
    finished = Signal(str)               # completed, stopped, diverged, smoke test failed, failed
    diverged = Signal(str)               # the Trainer's message; the last good weights are kept
    smoke_done = Signal(object)          # engine.inspect.SmokeReport
    snapshot_ready = Signal(str, object)  # kind, payload dict ("error" key on failure)
    node_health = Signal(object)         # dict: node id -> {level, reasons, stats, tooltip}
    history_changed = Signal(object)     # dict: the whole history (adopted model, reset)
    graph_changed = Signal()
    node_selected = Signal(str)
    sample_selected = Signal(int)
    input_shape_requested = Signal(list)  # the data's sample shape, for the main window to apply
    devices_found = Signal(object, str)  # find_devices(): [(device id, label)], why no GPU ("")
    error = Signal(str)
    _worker_state = Signal(str)

    def __init__(self, graph: Graph | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._graph = graph.copy() if graph is not None else None
        self._session: Session | None = None
        self._info: DataInfo | None = None
        self._normalization: Normalization | None = None
        self._trainer: Trainer | None = None
        self._requests: dict[str, dict] = {}
        self._calls: list = []
        self._serve_queued = False
        self._wake = threading.Event()
        self._pause = threading.Event()
        self._stop = threading.Event()
        self._predictions: np.ndarray | None = None
        self._points: list[tuple] = []
        self._last_event = None
        self._data_key = None
        self._idle = threading.Event()
        self._idle.set()
        self.state = "idle"
        self.selected_node: str | None = None
        self.sample_index = 0
        self.confusion_at_epoch_end = False
        self.config = TrainingConfig()
        # state is the GUI thread's: the worker's changes arrive queued, in order with its signals
        self._worker_state.connect(self._adopt_state)
        self._worker = _Worker(self)
        self._worker.start()
        _controllers.add(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- what the main window tells it ------------------------------------------------------
    def set_graph(self, graph: Graph) -> None:
        """The graph being edited. The network follows it at the next start or snapshot (never
        during a run); weights whose layer and shape are unchanged are kept."""
        with self._lock:
            self._graph = graph.copy()
        self.graph_changed.emit()

    @property
    def graph(self) -> Graph | None:
        return self._graph

    def select_node(self, node_id: str | None) -> None:
        self.selected_node = node_id or None
        self.node_selected.emit(node_id or "")

    def select_sample(self, index: int) -> None:
        self.sample_index = max(0, int(index))
        self.sample_selected.emit(self.sample_index)

    def set_session(self, session: Session) -> None:
        """Adopt an opened model (Session.open): its weights, optimizer, history and data spec.
        The curves redraw from its history."""
        def adopt():
            self._session = session
            self._graph = session.graph.copy()
            self._normalization = None
            self.graph_changed.emit()
            self.history_changed.emit(self._history_copy())
        self._post(adopt)

    def load_trained(self, weights: dict | None = None, optimizer: dict | None = None,
                     history: dict | None = None, data_spec: dict | None = None,
                     training: dict | None = None) -> None:
        """Adopt trained state read from a model file for the current graph (the fields of the
        main window's Trained record); the curves show its history again."""
        from engine.optim import Optimizer
        from engine.train import Position

        def adopt():
            session = self._sync_session()
            arrays = {**session.net.params, **session.net.state}
            session.net.load_weights({k: v for k, v in (weights or {}).items()
                                      if k in arrays and np.shape(v) == arrays[k].shape})
            session.optimizer = Optimizer.from_state_dict(optimizer) if optimizer else None
            session.history = {k: [float(v) for v in values]
                               for k, values in (history or {}).items()}
            position = (training or {}).get("position")
            session.position = (Position(**position) if position else
                                Position(epoch=len(session.history.get("epoch", []))))
            session.seed = int((training or {}).get("seed", session.seed))
            session.data_spec = data_spec
            self.history_changed.emit(self._history_copy())
        self._post(adopt)

    def detect_devices(self) -> None:
        """Look for GPUs on a thread of their own (importing numba.cuda and asking the driver
        take a moment the window should not wait for); devices_found follows. Not on the
        training worker: after asking a missing driver there, its training ran at half speed."""
        def detect():
            found = find_devices()
            try:
                self.devices_found.emit(*found)
            except RuntimeError:  # the window closed meanwhile
                pass

        threading.Thread(target=detect, name="find-devices", daemon=True).start()

    # -- data ---------------------------------------------------------------------------------
    def load_data(self, config: TrainingConfig) -> None:
        """Load (or reuse) the dataset of config on the worker; data_loaded(DataInfo) follows."""
        if self.busy:
            return
        self.config = config
        self._set_state("loading")

        def load():
            try:
                self._load(config)
            finally:
                self._set_state("idle")
        self._post(load)

    @property
    def data(self) -> DataInfo | None:
        return self._info

    def input_shape(self) -> tuple[int, ...] | None:
        """The shape the graph's Input declares (None when there is none)."""
        graph = self._graph
        inputs = graph.nodes_of_type("Input") if graph is not None else []
        shape = inputs[0].params.get("shape") if inputs else None
        return tuple(shape) if shape else None

    def request_input_shape(self, shape) -> None:
        """Ask the main window to set the Input's shape; with none listening (the panels alone),
        apply it to the controller's own graph."""
        shape = [int(v) for v in shape]
        signal = QMetaMethod.fromSignal(self.input_shape_requested)
        if self.isSignalConnected(signal):
            self.input_shape_requested.emit(shape)
            return
        graph = self._graph.copy()
        graph.input_node.params["shape"] = shape
        self.set_graph(graph)
        if self._info is not None:
            self.data_loaded.emit(self._info)

    def _load(self, config: TrainingConfig) -> DataInfo:
        info = self._info
        key = (config.data, config.image_size, config.color)
        if info is None or self._data_key != key:
            dataset = load_dataset(config.data, image_size=config.image_size, color=config.color,
                                   seed=config.seed)
            self._data_key = key
            self._normalization = None
        else:
            dataset = info.dataset
        train, val = split_ranges(config, len(dataset))
        if info is None or info.dataset is not dataset or (train, val) != (
                info.train_range, info.val_range):
            self._normalization = None
        k = dataset.num_classes
        info = DataInfo(dataset, train, val,
                        np.bincount(dataset.y[slice(*train)], minlength=k),
                        np.bincount(dataset.y[slice(*val)], minlength=k))
        self._info = info
        self.data_loaded.emit(info)
        return info

    # -- running ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A run (smoke test included) is in progress or paused."""
        return self.state in ("smoke", "training", "paused", "stopping")

    @property
    def session(self) -> Session | None:
        """The model being trained. Read it from the GUI thread only while not busy."""
        return self._session

    def start(self, config: TrainingConfig | None = None, force: bool = False) -> None:
        """Train with config: the smoke test first (unless config.smoke_test is off or force),
        then config.epochs more epochs from where the model is."""
        if self.busy:
            return
        config = self._begin(config)
        self._set_state("smoke" if config.smoke_test and not force else "training")
        self._post(lambda: self._train(config, force))

    def run_smoke_test(self, config: TrainingConfig | None = None) -> None:
        """The smoke test alone; smoke_done(report) and node_health follow."""
        if self.busy:
            return
        config = self._begin(config)
        self._set_state("smoke")

        def smoke():
            try:
                self._smoke(config)
            finally:
                self._set_state("idle")
                self._idle.set()
        self._post(smoke)

    def _begin(self, config: TrainingConfig | None) -> TrainingConfig:
        """Adopt config (or keep the current one) and clear the run's flags."""
        self.config = config = config or self.config
        self._stop.clear()
        self._pause.clear()
        self._idle.clear()
        return config

    def pause(self) -> None:
        if self.state == "training":
            self._pause.set()

    def resume(self) -> None:
        if self._pause.is_set():
            self._pause.clear()
            self._wake.set()

    def stop(self) -> None:
        """Stop after the current batch; the weights reached are kept."""
        if not self.busy:
            return
        self._stop.set()
        self._pause.clear()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()
        self._set_state("stopping")
        self._wake.set()

    def reset(self) -> None:
        """Fresh weights for the current graph; history and optimizer state are dropped."""
        if self.busy:
            return

        def fresh():
            self._session = None
            self._sync_session()
            self.history_changed.emit(self._history_copy())
        self._post(fresh)

    def stop_and_wait(self, timeout: float = 60.0) -> bool:
        """Stop any run and wait until the network is left alone; False on timeout."""
        self.stop()
        return self._idle.wait(timeout)

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Stop any run and end the worker thread (quitting); a later request restarts it."""
        self.stop()
        if self._worker.isRunning():
            self._worker.jobs.put(None)
            self._worker.wait(timeout_ms)

    # -- snapshots ----------------------------------------------------------------------------
    def request(self, kind: str, **params) -> None:
        """Ask for a snapshot: "filters" (node), "activations" (node, sample), "saliency"
        (sample, class_index), "confusion", "cell_samples" (true, predicted, limit),
        "histograms". The worker answers between batches with snapshot_ready(kind, payload);
        a newer request of a kind replaces one not served yet."""
        with self._lock:
            self._requests[kind] = params
        self._schedule_serve()

    def save(self, path) -> None:
        """Save the model (graph, weights, optimizer, history, data spec) with Session.save;
        during a run it is written between two batches."""
        self._call(lambda: self._sync_session(during_run=self._trainer is not None).save(path))

    def trained_state(self) -> dict:
        """{"weights", "optimizer", "history", "data_spec", "training"}: the keyword arguments
        of the main window's set_trained(), read between batches during a run."""
        def read():
            session = self._sync_session(during_run=self._trainer is not None)
            return {"weights": session.net.weights(),
                    "optimizer": session.optimizer.state_dict() if session.optimizer else None,
                    "history": {k: np.asarray(v) for k, v in session.history.items()},
                    "data_spec": session.data_spec,
                    "training": {"seed": session.seed,
                                 "position": dataclasses.asdict(session.position)}}
        return self._call(read)

    # -- worker side ----------------------------------------------------------------------------
    def _post(self, job) -> None:
        if not self._worker.isRunning():
            self._worker.start()
        self._worker.jobs.put(job)

    def _schedule_serve(self) -> None:
        with self._lock:
            queued, self._serve_queued = self._serve_queued, True
        if not queued:
            self._post(self._serve_job)
        self._wake.set()

    def _serve_job(self) -> None:
        with self._lock:
            self._serve_queued = False
        self._serve()

    def _call(self, fn):
        """Run fn on the worker (between batches during a run) and return its result here."""
        done, box = threading.Event(), {}

        def call():
            try:
                box["value"] = fn()
            except Exception as err:
                box["error"] = err
            finally:
                done.set()
        with self._lock:
            self._calls.append(call)
        self._schedule_serve()
        done.wait()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _fail(self, err: Exception) -> None:
        self.error.emit(f"{type(err).__name__}: {err}" if not isinstance(err, ValueError)
                        else str(err))

    def _set_state(self, state: str) -> None:
        if QThread.currentThread() is self.thread():
            self._adopt_state(state)
        else:
            self._worker_state.emit(state)

    def _adopt_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _history_copy(self) -> dict:
        session = self._session
        return {k: list(v) for k, v in session.history.items()} if session else {}

    def _sync_session(self, device: str | None = None, during_run: bool = False) -> Session:
        """The Session for the current graph, rebuilt when the graph's structure or the device
        changed (keeping every array that still fits)."""
        session = self._session
        if during_run:
            return session
        graph = self._graph
        if graph is None:
            raise ValueError("there is no network to train: set a graph first")
        backend, _, index = (device or (session.net.backend.name if session else "cpu")
                             ).partition(":")
        if backend == "cuda" and index:
            from numba import cuda

            cuda.select_device(int(index))
        if session is None:
            self._session = Session(graph, backend=backend, seed=self.config.seed)
            return self._session
        same = structure_key(graph) == structure_key(session.graph)
        if same and backend == session.net.backend.name:
            session.graph = graph
            return session
        fresh = Session(graph, backend=backend, seed=session.seed)
        if _carry_weights(session.net, fresh.net):
            fresh.optimizer, fresh.history = session.optimizer, session.history
            fresh.position, fresh.data_spec = session.position, session.data_spec
        self._session = fresh
        if not same:
            self.history_changed.emit(self._history_copy())
        return fresh

    def _normalized(self, session: Session, info: DataInfo) -> Normalization:
        if self._normalization is None:
            spec = session.data_spec or {}
            stored = spec.get("normalization")
            same_data = (spec.get("source") == info.dataset.source
                         and list(spec.get("train_range") or []) == list(info.train_range))
            self._normalization = (Normalization.from_dict(stored) if stored and same_data
                                   else Normalization.fit(info.dataset.x[slice(*info.train_range)]))
        return self._normalization

    def _check_fit(self, session: Session, info: DataInfo) -> None:
        expected, got = tuple(session.net.input_shape), info.dataset.input_shape
        if expected != got:
            raise DataError(f"the data's samples have shape {list(got)} but the network's Input "
                            f"expects {list(expected)}: set the Input shape to {list(got)}")
        outputs = session.net.output_shape
        if session.net.loss_name == "cross_entropy" and info.dataset.num_classes > outputs[0]:
            raise DataError(f"the data has {info.dataset.num_classes} classes but the network "
                            f"outputs {outputs[0]} scores: give the last layer "
                            f"{info.dataset.num_classes} units")

    def _smoke(self, config: TrainingConfig) -> inspect.SmokeReport:
        session = self._sync_session(config.device)
        info = self._load(config)
        self._check_fit(session, info)
        norm = self._normalized(session, info)
        start = info.train_range[0]
        count = min(SMOKE_BATCH, config.batch_size, info.train_range[1] - start)
        xb = info.dataset.x[start:start + count]
        x = normalize_into(np.empty(xb.shape, np.float32), xb, norm.mean, norm.std)
        report = inspect.smoke_test(session.net, x, info.dataset.y[start:start + count])
        self.smoke_done.emit(report)
        self.node_health.emit({
            node_id: {"level": "bad", "reasons": messages, "stats": {},
                      "tooltip": "smoke test: " + "; ".join(messages)}
            for node_id, messages in report.problems.items() if node_id is not None})
        return report

    def _train(self, config: TrainingConfig, force: bool) -> None:
        reason = "failed"
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
        try:
            if config.smoke_test and not force:
                report = self._smoke(config)
                if not report.ok:
                    reason = "smoke test failed"
                    return
                if self._stop.is_set():
                    reason = "stopped"
                    return
            self._set_state("training")
            reason = self._run(config)
        finally:
            sys.setswitchinterval(switch)
            self._flush_points(self._last_event)
            self._trainer = None
            self._set_state("idle")
            self._idle.set()
            self.finished.emit(reason)
            self._serve()

    def _run(self, config: TrainingConfig) -> str:
        session = self._sync_session(config.device)
        info = self._load(config)
        self._check_fit(session, info)
        norm = self._normalized(session, info)
        session.data_spec = data_spec(info.dataset, norm, info.train_range, info.val_range)
        target = session.position.epoch + config.epochs
        schedule = Schedule(config.schedule, step_size=max(1, target // 3), epochs=target)
        optimizer = session.make_optimizer(config.optimizer, config.lr, schedule,
                                           weight_decay=config.weight_decay)
        optimizer.schedule = schedule
        optimizer.config["weight_decay"] = config.weight_decay
        data = info.dataset
        train, val = data.subset(*info.train_range), data.subset(*info.val_range)
        trainer = Trainer(session.net, optimizer, train.x, train.y, val.x, val.y,
                          epochs=target, batch_size=config.batch_size, seed=session.seed,
                          normalization=norm,
                          augmentation=Augmentation.from_dict(config.augmentation),
                          history=session.history, position=session.position)
        self._points: list[tuple] = []
        self._last_event = None
        self._last_emit = time.perf_counter()
        self._last_health = -math.inf   # the first health report comes after two batches
        self._health_before: dict | None = None
        self._rate = math.nan
        self._rate_mark = (time.perf_counter(), 0)
        self._seen = 0
        trainer.batch_listeners.append(self._after_batch)
        trainer.epoch_listeners.append(self._after_epoch)
        self._trainer = trainer
        if self._stop.is_set():
            return "stopped"
        try:
            trainer.run()
        except TrainingDiverged as err:
            self.diverged.emit(str(err))
            return "diverged"
        return "stopped" if trainer.stopped_reason == "stopped" else "completed"

    def _after_batch(self, event) -> None:
        trainer = self._trainer
        self._last_event = event
        now = time.perf_counter()
        self._seen += min(trainer.batch_size, len(trainer.x) - (event.batch - 1)
                          * trainer.batch_size)
        self._points.append((event.epoch + event.batch / event.batches, event.loss,
                             event.accuracy, event.lr, event.step))
        mark_time, mark_seen = self._rate_mark
        if now - mark_time >= 1.0:
            # wall-clock throughput (listeners and all), smoothed, for the ETA
            rate = (self._seen - mark_seen) / (now - mark_time)
            self._rate = rate if math.isnan(self._rate) else 0.5 * self._rate + 0.5 * rate
            self._rate_mark = (now, self._seen)
        if now - self._last_emit >= EMIT_INTERVAL:
            self._flush_points(event)
        if self._health_before is not None:
            self._emit_health(now)
        elif now - self._last_health >= HEALTH_INTERVAL:
            # keep this step's weights: the next step's update over them is the update ratio
            self._health_before = trainer.net.weights()
        self._serve()
        announced = False
        while self._pause.is_set() and not self._stop.is_set():
            if not announced:
                self._flush_points(event)
                self._set_state("paused")
                announced = True
            self._wake.wait(0.25)
            self._wake.clear()
            self._serve()
        if announced and not self._stop.is_set():
            self._set_state("training")
            self._rate_mark = (time.perf_counter(), self._seen)

    def _flush_points(self, event=None) -> None:
        points = self._points
        if not points:
            return
        self._points = []
        self._last_emit = time.perf_counter()
        trainer = self._trainer
        payload = {"points": points, "step": points[-1][4]}
        if event is not None and trainer is not None:
            done = event.epoch * len(trainer.x) + min(event.batch * trainer.batch_size,
                                                      len(trainer.x))
            remaining = trainer.epochs * len(trainer.x) - done
            rate = self._rate if not math.isnan(self._rate) else event.samples_per_sec
            payload.update(epoch=event.epoch + 1, epochs=trainer.epochs, batch=event.batch,
                           batches=event.batches, samples_per_sec=rate,
                           eta=remaining / max(rate, 1e-9), fraction=done / (
                               trainer.epochs * len(trainer.x)))
        self.batch_done.emit(payload)

    def _emit_health(self, now: float) -> None:
        net = self._trainer.net
        stats = inspect.layer_health(net, self._health_before, samples=HEALTH_SAMPLES)
        self._health_before = None
        self._last_health = now
        report = {}
        for node_id, values in stats.items():
            level, reasons = inspect.health_alerts(values)
            report[node_id] = {"level": level, "reasons": reasons, "stats": values,
                               "tooltip": health_tooltip(values, reasons)}
        self.node_health.emit(report)

    def _after_epoch(self, row: dict) -> None:
        self.epoch_done.emit(dict(row))
        if self.confusion_at_epoch_end:
            self.snapshot_ready.emit("confusion", self._snapshot("confusion", {}))

    def _serve(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, {}
            calls, self._calls = self._calls, []
        for call in calls:
            call()
        for kind, params in requests.items():
            try:
                payload = self._snapshot(kind, params)
            except Exception as err:  # the panel shows it; the run goes on
                payload = {"error": str(err) or type(err).__name__}
            payload.setdefault("params", params)
            self.snapshot_ready.emit(kind, payload)

    def _samples(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        info = self._info
        if info is None:
            raise DataError("load a dataset in the Train panel first")
        rng = info.val_range if info.val_range[1] > info.val_range[0] else info.train_range
        return info.dataset.x[slice(*rng)], info.dataset.y[slice(*rng)], rng

    def _prepared(self, session: Session, x: np.ndarray) -> np.ndarray:
        norm = self._normalized(session, self._info)
        return normalize_into(np.empty(x.shape, np.float32), x, norm.mean, norm.std)

    def _snapshot(self, kind: str, params: dict) -> dict:
        session = self._sync_session(during_run=self._trainer is not None)
        net = session.net
        step = session.optimizer.step_count if session.optimizer else 0
        if kind == "filters":
            convs = [n for n in net.order if net.graph.nodes[n].type.startswith("Conv")]
            if not convs:
                raise ValueError("the network has no convolution layer")
            node = params.get("node") if params.get("node") in convs else convs[0]
            return {"node": node, "conv_nodes": convs, "filters": inspect.filters(net, node),
                    "weight": net.backend.to_host(net.params[f"{node}/weight"]).copy(),
                    "type": net.graph.nodes[node].type, "step": step}
        if kind == "histograms":
            layers = [k.split("/")[0] for k in net.params if k.endswith("/weight")]
            if not layers:
                raise ValueError("the network has no layer with weights")
            node = params.get("node") if params.get("node") in layers else layers[0]
            return {"node": node, "layers": layers, "step": step,
                    "histograms": inspect.histograms(net, node_ids=[node])[node]}
        x, y, rng = self._samples()
        if kind in ("activations", "saliency"):
            index = min(int(params.get("sample", self.sample_index)), len(x) - 1)
            sample = self._prepared(session, x[index:index + 1])
            payload = {"sample": index, "dataset_index": rng[0] + index, "input": x[index],
                       "label": int(y[index]), "class_names": self._info.dataset.class_names,
                       "step": step}
            if kind == "activations":
                node = params.get("node") or net.input_id
                if node not in net.order and node != net.input_id:
                    raise ValueError(f"{node!r} is not part of the compiled network (its output "
                                     f"does not reach the Output node, or it was added since)")
                acts = inspect.activations(net, sample[0], [node])
                logits = net.activation(net.sources[net.output_id][0])[0]
                fields = inspect.receptive_fields(net.graph)
                payload.update(node=node, type=net.graph.nodes[node].type,
                               activation=acts[node], field=fields.get(node), logits=logits)
                return payload
            logits = net.forward(sample, training=False)[0]
            chosen = params.get("class_index")
            chosen = int(np.argmax(logits)) if chosen is None else int(chosen)
            payload.update(logits=logits, class_index=chosen,
                           saliency=inspect.saliency(net, sample[0], chosen))
            return payload
        if kind == "confusion":
            norm = self._normalized(session, self._info)
            predictions = inspect.predict_classes(net, x, normalization=norm)
            self._predictions = predictions
            names = list(self._info.dataset.class_names)
            # a network with more outputs than classes can still predict the extra ones
            columns = max(len(names), int(predictions.max(initial=0)) + 1)
            matrix = inspect.confusion_matrix(y, predictions, columns)[:len(names)]
            return {"matrix": matrix, "class_names": names,
                    "predicted_names": names + [f"output {k}" for k in range(len(names),
                                                                             columns)],
                    "step": step, "epoch": session.position.epoch}
        if kind == "cell_samples":
            if self._predictions is None or len(self._predictions) != len(y):
                raise ValueError("no confusion matrix yet: train an epoch first")
            true, predicted = int(params["true"]), int(params["predicted"])
            where = np.flatnonzero((y == true) & (self._predictions == predicted))
            where = where[:int(params.get("limit", 12))]
            maps = (inspect.saliency(net, self._prepared(session, x[where]),
                                     np.full(len(where), predicted)) if len(where)
                    else np.zeros((0, *x.shape[1:]), np.float32))
            return {"true": true, "predicted": predicted, "indices": where, "inputs": x[where],
                    "saliency": maps, "class_names": self._info.dataset.class_names,
                    "step": step}
        raise ValueError(f"unknown snapshot kind {kind!r}")


def health_tooltip(stats: dict[str, float], reasons: list[str]) -> str:
    """Plain-text tooltip for a node's badge: the statistics, then what is wrong."""
    lines = [f"activation mean {stats['mean']:.3g}, std {stats['std']:.3g}"]
    if "dead" in stats:
        lines.append(f"dead ReLUs {stats['dead']:.0%}")
    if "grad_norm" in stats:
        lines.append(f"gradient norm {stats['grad_norm']:.3g}")
    if "update_ratio" in stats:
        lines.append(f"update/weight {stats['update_ratio']:.2e} per step")
    return "\n".join(lines + [f"\u26a0 {r}" for r in reasons])


def install_training_docks(main_window, controller: TrainingController) -> dict:
    """Add the training panels to main_window as tabbed docks (through its add_panel when it has
    one) and ask before closing it during a run. Returns {title: panel widget}."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QDockWidget, QMessageBox

    from .panels import make_panels

    panels = make_panels(controller)
    docks = []
    for title, widget in panels.items():
        area = Qt.RightDockWidgetArea if title == "Train" else Qt.BottomDockWidgetArea
        if hasattr(main_window, "add_panel"):
            dock = main_window.add_panel(widget, title, area)
        else:
            dock = QDockWidget(title, main_window)
            dock.setObjectName(f"dock-{title}")
            dock.setWidget(widget)
            main_window.addDockWidget(area, dock)
            same_area = [d for d in docks if main_window.dockWidgetArea(d) == area]
            if same_area:
                main_window.tabifyDockWidget(same_area[-1], dock)
        docks.append(dock)
    next(d for d in docks if d.windowTitle() == "Curves").raise_()

    class CloseGuard(QObject):
        def eventFilter(self, watched, event):
            if event.type() != QEvent.Close or not controller.busy:
                return False
            answer = QMessageBox.question(
                main_window, "Training is running",
                "Training is still running. Stop it (keeping the weights reached) and close?",
                QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
            if answer != QMessageBox.Yes:
                event.ignore()
                return True
            controller.stop_and_wait()
            return False

    main_window.installEventFilter(CloseGuard(main_window))
    return panels
