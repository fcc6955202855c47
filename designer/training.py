"""Training inside the designer: a worker thread runs the engine's Trainer on the model being worked
on (an engine Session, the one record of it) and answers the panels' snapshot requests between
batches; TrainingController turns all of it into Qt signals."""
from __future__ import annotations

import atexit
import math
import queue
import sys
import threading
import time
import weakref

import numpy as np
from PySide6.QtCore import QCoreApplication, QMetaMethod, QObject, QThread, Signal

from engine import inspect
from engine.data import DataError, fit_input, load_dataset, split_ranges
from engine.graph import Graph
from engine.network import check_memory
from engine.session import Session, data_choice
from engine.train import TrainingDiverged, normalize_into

from .datachoice import DataInfo, builtin_dataset_for, find_devices
from .run_watch import RunWatch
from .snapshots import Snapshots, health_tooltip

EMIT_INTERVAL = 0.5       # batch_done at most twice a second, as the curves redraw: each
# update repaints the window, which takes a core from the training
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
    """Runs the model being worked on (session, an engine Session) on a worker thread.

    The window gives it a model with set_session() (New, Open, a template, recovery) and the
    edited graph with set_graph(); the Train panel writes session.settings. The GUI thread reads
    the session's settings, flags and spec freely, but its network only through the worker:
    panels ask with request(kind, **params) and receive snapshot_ready(kind, payload); save()
    writes the file between two batches. Signals from the worker arrive queued in the GUI thread.
    """

    # Python payloads travel as object: a dict signal would become a QVariantMap (keys re-sorted,
    # every value converted) on each emit.
    state_changed = Signal(str)          # idle, loading, smoke, training, paused, stopping
    session_changed = Signal()           # another model: panels start over from it
    data_loaded = Signal(object)         # DataInfo
    batch_done = Signal(object)          # dict: the batches since the last emit, and progress
    epoch_done = Signal(object)          # dict: the epoch's history row and "best_epoch"
    finished = Signal(str)               # completed, stopped, early stop, diverged, smoke test
    #                                      failed, failed
    diverged = Signal(str)               # the Trainer's message; the last good weights are kept
    warning = Signal(str)                # the run is likely going wrong (still running)
    warning_withdrawn = Signal(str)      # a later epoch proved the last warning wrong: why
    smoke_done = Signal(object)          # engine.inspect.SmokeReport
    snapshot_ready = Signal(str, object)  # kind, payload dict ("error" key on failure)
    node_health = Signal(object)         # dict: node id -> {level, reasons, stats, tooltip}
    history_changed = Signal(object)     # dict: the whole history and "best_epoch"
    modified_changed = Signal()          # the model's trained state changed or was saved
    graph_changed = Signal()
    node_selected = Signal(str)
    sample_selected = Signal(int)
    input_shape_requested = Signal(list)  # the data's sample shape, for the main window to apply
    devices_found = Signal(object, str)  # find_devices(): [(device id, label)], why no GPU ("")
    error = Signal(str)
    _worker_state = Signal(str, str)
    _worker_snapshot = Signal(str, object, object)  # kind, payload, the session it shows

    def __init__(self, graph: Graph | None = None, parent: QObject | None = None,
                 session: Session | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._session = session or (Session(graph) if graph is not None else None)
        self._graph = self._session.graph.copy() if self._session else None
        self._info: DataInfo | None = None
        self._data_key = None
        self._norm = None                 # the normalisation the panels' samples get
        self._snapshots = Snapshots()
        self._trainer = None
        self._requests: dict[str, dict] = {}
        self._calls: list = []
        self._serve_queued = False
        self._wake = threading.Event()
        self._pause = threading.Event()
        self._stop = threading.Event()
        self._watch: RunWatch | None = None   # the run's points, rate and warnings
        self._idle = threading.Event()
        self._idle.set()
        self.state = "idle"
        self.selected_node: str | None = None
        self.sample_index = 0
        self.confusion_at_epoch_end = False
        # state is the GUI thread's: the worker's changes arrive queued, in order with its signals
        self._worker_state.connect(self._adopt_state)
        self._worker_snapshot.connect(self._relay_snapshot)
        self._worker = _Worker(self)
        self._worker.start()
        _controllers.add(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- the model ------------------------------------------------------------------------------
    @property
    def session(self) -> Session | None:
        """The model being worked on. Its network is the worker's (reach it through request,
        save or between runs only)."""
        return self._session

    def set_session(self, session: Session) -> None:
        """Work on another model (New, Open, a template, recovery): any run stops first, and
        every panel starts over from it."""
        self.stop_and_wait()
        # what the worker sent about the previous model lands before the panels start over
        QCoreApplication.sendPostedEvents()
        with self._lock:
            self._session, self._graph = session, session.graph.copy()
            self._requests.clear()
        self._norm = None
        if self._info is not None:
            self._info.problem = session.data_problem(self._info.dataset)
        self.session_changed.emit()
        self.graph_changed.emit()
        self.history_changed.emit(self._history_copy())
        self.modified_changed.emit()

    def settings_edited(self) -> None:
        """The user changed a training setting: the model (its file holds them) is unsaved."""
        if self._session is not None:
            was = self._session.modified
            self._session.settings_changed()
            if not was:
                self.modified_changed.emit()

    def set_graph(self, graph: Graph) -> None:
        """The graph being edited. The model follows it at the next start or snapshot (never
        during a run); weights whose layer and shape are unchanged are kept."""
        with self._lock:
            self._graph = graph.copy()
        if self._info is not None and self._session is not None:
            self._info.problem = self._session.data_problem(self._info.dataset, self._graph)
        self.graph_changed.emit()
        if self._session is not None and not self.busy and self._session.brings_back(graph):
            self._post(self._sync)   # an undo brought a set-aside run back: show it now

    @property
    def graph(self) -> Graph | None:
        return self._graph

    def select_node(self, node_id: str | None) -> None:
        self.selected_node = node_id or None
        self.node_selected.emit(node_id or "")

    def select_sample(self, index: int) -> None:
        self.sample_index = max(0, int(index))
        self.sample_selected.emit(self.sample_index)

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
    def load_data(self) -> None:
        """Load (or reuse) the dataset of session.settings.data on the worker; data_loaded
        (DataInfo) follows. Without a chosen source, the built-in dataset the Input fits."""
        if self.busy:
            return
        choice = self._session.settings.data
        if not choice.get("source"):
            if self.input_shape() is None:
                return   # nothing to fit yet (an empty canvas)
            name = builtin_dataset_for(self.input_shape())
            if name is None:
                self._info = None
                self.error.emit(f"No built-in dataset fits the Input "
                                f"{'x'.join(map(str, self.input_shape() or ()))}: import your "
                                f"data (Import file… or Import folder…).")
                return
            self._session.settings.data = {**choice, "source": name}
        self._set_state("loading")

        def load():
            try:
                self._load()
            finally:
                self._set_state("idle", only_from="loading")
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

    def output_classes(self) -> int | None:
        """How many classes the graph's Output tells apart (None for a graph not yet valid or a
        non-flat output)."""
        graph = self._graph
        try:
            analysis = graph.check()
        except ValueError:
            return None
        shape = analysis.shapes.get(graph.output_node.id)
        return shape[0] if shape and len(shape) == 1 else None

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

    def use_model_data(self) -> None:
        """Choose the data the model was trained on (its /data spec) and load it."""
        self._session.settings.data = data_choice(self._session.data_spec)
        self.load_data()

    def _load(self) -> DataInfo:
        session = self._session
        choice = session.settings.data
        if not choice.get("source"):
            raise DataError("choose a dataset in the Train panel first")
        size = choice.get("image_size")
        key = (choice["source"], tuple(size) if size else None, choice.get("color"))
        info = self._info
        if info is None or self._data_key != key:
            # a generated dataset's spec names the same samples here and on the command line
            # (the training seed shuffles and initialises; it does not make other data)
            dataset = load_dataset(choice["source"], image_size=key[1],
                                   color=choice.get("color"))
            shape = self.input_shape()
            if shape is not None:
                try:   # an explicit axis of 1 ([N, 1, 1024] for a [1, 1024] Input) fits
                    dataset = fit_input(dataset, shape, choice["source"])
                except DataError:
                    pass   # the problem below says what does not fit
            self._data_key = key
        else:
            dataset = info.dataset
        train, val = split_ranges(choice, len(dataset))
        k = dataset.num_classes
        info = DataInfo(dataset, train, val,
                        np.bincount(dataset.y[slice(*train)], minlength=k),
                        np.bincount(dataset.y[slice(*val)], minlength=k),
                        session.data_problem(dataset, self._graph))
        if self._info is None or self._info.dataset is not dataset \
                or self._info.train_range != train:
            self._norm = None
        self._info = info
        self.data_loaded.emit(info)
        return info

    # -- running ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A run (smoke test included) is in progress or paused."""
        return self.state in ("smoke", "training", "paused", "stopping")

    def start(self, smoke_test: bool = True) -> None:
        """Train with the session's settings: the smoke test first (unless smoke_test is off),
        then the interrupted run, or settings.epochs more epochs from where the model is."""
        if self.busy:
            return
        self._begin()
        self._set_state("smoke" if smoke_test else "training")
        self._post(lambda: self._train(smoke_test))

    def run_smoke_test(self) -> None:
        """The smoke test alone; smoke_done(report) and node_health follow."""
        if self.busy:
            return
        self._begin()
        self._set_state("smoke")

        def smoke():
            try:
                self._smoke()
            finally:
                self._set_state("idle")
                self._idle.set()
        self._post(smoke)

    def _begin(self) -> None:
        self._stop.clear()
        self._pause.clear()
        self._idle.clear()

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
        """Fresh weights for the current graph; history, optimizer state and best epoch go."""
        if self.busy:
            return

        def fresh():
            self._session.reset()
            self._sync()
            self._norm = None
            if self._info is not None:
                self._info.problem = self._session.data_problem(self._info.dataset, self._graph)
                self.data_loaded.emit(self._info)
            self.history_changed.emit(self._history_copy())
            self.modified_changed.emit()
        self._post(fresh)

    def load_weights(self, arrays: dict) -> None:
        """Put arrays ("node/name" -> array) into the model's network where key and shape fit;
        the model counts as modified."""
        def load():
            session = self._sync()
            targets = {**session.net.params, **session.net.state}
            session.net.load_weights({k: v for k, v in arrays.items()
                                      if k in targets and np.shape(v) == targets[k].shape})
            session.modified = True
            self.modified_changed.emit()
        self._post(load)

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

    # -- snapshots and files ------------------------------------------------------------------
    def request(self, kind: str, **params) -> None:
        """Ask for a snapshot: "filters" (node), "activations" (node, sample), "saliency"
        (sample, class_index), "confusion", "cell_samples" (true, predicted, limit),
        "histograms". The worker answers between batches with snapshot_ready(kind, payload);
        a newer request of a kind replaces one not served yet."""
        with self._lock:
            self._requests[kind] = params
        self._schedule_serve()

    def save(self, path, graph: Graph | None = None) -> None:
        """Save the model as graph (the edited one; by default the controller's) to path; during
        a run it is written between two batches. Raises what Session.save raises."""
        graph = graph or self._graph

        def write():
            running = self._trainer is not None
            session = self._sync(graph=graph, during_run=running)
            if running and not session.fits(graph):
                raise ValueError("stop training to save the edited network (the run trains "
                                 "the network as it was when it started)")
            if running:
                session.graph = graph.copy()   # positions and name; the structure is the same
            session.save(path)
            session.modified = running   # the run goes on changing the weights
        self._call(write)
        self.modified_changed.emit()

    def export(self, to: str, path, graph: Graph | None = None) -> None:
        """Export the model as "onnx" (a file) or "pytorch" (a folder), as `convdesigner export`
        does, between two batches. Raises engine.interop.InteropError with the one-line reason."""
        from engine.interop import Model

        graph = graph or self._graph

        def write():
            model = Model.from_session(self._sync(graph=graph,
                                                  during_run=self._trainer is not None))
            if to == "onnx":
                from engine.interop.onnx import export_onnx

                export_onnx(model, path)
            else:
                from engine.interop.pytorch import export_pytorch

                export_pytorch(model, path, origin=graph.name)
        self._call(write)

    def save_copy(self, path, done=None) -> None:
        """Write a copy of the model to path between two batches without waiting (autosave);
        done(error or None) is called on the worker."""
        graph = self._graph

        def write():
            try:
                session = self._sync(graph=graph, during_run=self._trainer is not None)
                session.save(path, copy=True)
                error = None
            except Exception as err:  # autosave must never disturb the run
                error = err
            if done is not None:
                done(error)
        with self._lock:
            self._calls.append(write)
        self._schedule_serve()

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

    def _set_state(self, state: str, only_from: str = "") -> None:
        """Go to state; with only_from, only from that state (a load that ends after Start was
        pressed leaves the run's state alone)."""
        if QThread.currentThread() is self.thread():
            self._adopt_state(state, only_from)
        else:
            self._worker_state.emit(state, only_from)

    def _adopt_state(self, state: str, only_from: str = "") -> None:
        if state != self.state and only_from in ("", self.state):
            self.state = state
            self.state_changed.emit(state)

    def _history_copy(self) -> dict:
        session = self._session
        if session is None:
            return {}
        history = {k: list(v) for k, v in session.history.items()}
        history["best_epoch"] = session.best.epoch if session.best else None
        return history

    def _sync(self, device: str | None = None, graph: Graph | None = None,
              during_run: bool = False) -> Session:
        """The session, following the edited graph and the chosen device (never during a run);
        the curves start over when an edit sets the run's state aside or brings it back."""
        session = self._session
        if during_run:
            return session
        if session is None:
            raise ValueError("there is no network to train: set a graph first")
        backend, _, index = (device or session.settings.device or "cpu").partition(":")
        if backend == "cuda" and index:
            from numba import cuda

            cuda.select_device(int(index))
        session.set_backend(backend)
        history = session.history
        session.adopt(graph or self._graph)
        if session.history is not history:
            self._norm = None
            self.history_changed.emit(self._history_copy())
            self.modified_changed.emit()
        return session

    def _normalized(self, info: DataInfo):
        if self._norm is None:
            self._norm = self._session.normalization_for(info.dataset, info.train_range)
        return self._norm

    def _checked_data(self) -> DataInfo:
        info = self._load()
        if info.problem is not None:
            raise DataError(info.problem.message)
        return info

    def _smoke(self) -> inspect.SmokeReport:
        session = self._sync()
        info = self._checked_data()
        norm = self._normalized(info)
        start = info.train_range[0]
        count = min(SMOKE_BATCH, session.settings.batch_size, info.train_range[1] - start)
        xb = info.dataset.x[start:start + count]
        x = normalize_into(np.empty(xb.shape, np.float32), xb, norm.mean, norm.std)
        report = inspect.smoke_test(session.net, x, info.dataset.y[start:start + count])
        self.smoke_done.emit(report)
        self.node_health.emit({
            node_id: {"level": "bad", "reasons": messages, "stats": {},
                      "tooltip": "smoke test: " + "; ".join(messages)}
            for node_id, messages in report.problems.items() if node_id is not None})
        return report

    def _train(self, smoke: bool) -> None:
        reason = "failed"
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
        try:
            if smoke:
                report = self._smoke()
                if not report.ok:
                    reason = "smoke test failed"
                    return
                if self._stop.is_set():
                    reason = "stopped"
                    return
            self._set_state("training")
            reason = self._run()
        except Exception as err:   # said before `finished`, so the run's end shows why
            self._fail(err)
        finally:
            sys.setswitchinterval(switch)
            self._flush_points(self._watch.last_event if self._watch else None)
            self._watch = None
            self._trainer = None
            self._norm = None
            self._set_state("idle")
            self._idle.set()
            self.modified_changed.emit()
            self.finished.emit(reason)
            self._serve()

    def _run(self) -> str:
        session = self._sync()
        info = self._checked_data()
        check_memory(session.net.graph, session.settings.batch_size)
        if session.settings.early_stop and info.val_range[0] == info.val_range[1]:
            raise DataError("early stopping needs validation data: set a validation share "
                            "or range")
        trainer = session.trainer(info.dataset, info.train_range, info.val_range)
        session.modified = True   # from the first step on, the file no longer holds the model
        self.modified_changed.emit()
        self._norm = trainer.normalization
        self._watch = RunWatch(trainer, info.train_counts.max() / max(1, info.train_counts.sum()))
        self._last_emit = time.perf_counter()
        self._last_health = -math.inf   # the first health report comes after two batches
        self._health_before: dict | None = None
        trainer.batch_listeners.append(self._after_batch)
        trainer.epoch_listeners.append(self._after_epoch)
        self._trainer = trainer
        if self._stop.is_set():
            return "stopped"
        try:
            trainer.run()
        except TrainingDiverged as err:
            session.finish(trainer)
            self.diverged.emit(str(err))
            return "diverged"
        except Exception:
            session.finish(trainer, "failed")
            raise
        session.finish(trainer)
        if trainer.stopped_reason == "stopped":
            return "stopped"
        if trainer.stopped_reason:
            self.warning.emit(trainer.stopped_reason)
            return "early stop"
        return "completed"

    def _after_batch(self, event) -> None:
        warning = self._watch.batch(event)
        if warning:
            self.warning.emit(warning)
        now = time.perf_counter()
        if now - self._last_emit >= EMIT_INTERVAL:
            self._flush_points(event)
        if self._health_before is not None:
            self._emit_health(now)
        elif now - self._last_health >= HEALTH_INTERVAL:
            # keep this step's weights: the next step's update over them is the update ratio
            self._health_before = self._trainer.net.weights()
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
            self._watch.resumed()

    def _flush_points(self, event=None) -> None:
        payload = self._watch.take_points(event) if self._watch is not None else None
        if payload is not None:
            self._last_emit = time.perf_counter()
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
        best = self._session.best = self._trainer.best   # saved or autosaved mid-run too
        self.epoch_done.emit({**row, "best_epoch": best.epoch if best else None})
        warning, withdrawn = self._watch.epoch(row)
        if warning:
            self.warning.emit(warning)
        if withdrawn:
            self.warning_withdrawn.emit(withdrawn)
        if self.confusion_at_epoch_end:
            self._serve_snapshot("confusion", {"predictions": self._trainer.val_predictions})

    def _serve(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, {}
            calls, self._calls = self._calls, []
        for call in calls:
            call()
        for kind, params in requests.items():
            self._serve_snapshot(kind, params)

    def _serve_snapshot(self, kind: str, params: dict) -> None:
        session = self._session
        try:
            session = self._sync(during_run=self._trainer is not None)
            info = self._info
            norm = self._normalized(info) if info is not None else None
            payload = self._snapshots.take(kind, {"sample": self.sample_index, **params},
                                           session, info, norm)
        except Exception as err:  # the panel shows it; the run goes on
            payload = {"error": str(err) or type(err).__name__}
        payload.setdefault("params", {k: v for k, v in params.items() if k != "predictions"})
        self._worker_snapshot.emit(kind, payload, session)

    def _relay_snapshot(self, kind: str, payload: dict, session) -> None:
        if session is self._session:   # else another model was opened meanwhile: stale
            self.snapshot_ready.emit(kind, payload)
