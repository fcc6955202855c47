"""`convdesigner sweep` (DESIGN.md 3.3): Optuna proposes trials (TPE, median pruning on the
per-epoch validation loss), Dask distributed trains them on a LocalCluster or an existing cluster.

The study lives on the Dask scheduler (optuna-integration's DaskStorage), so trials running on
other machines report their epochs and are pruned there; at the end it is copied into DIR's SQLite
file. The data is loaded once here and scattered to the workers; each trial sends back its model
file, written here as DIR/trial-NNN.h5.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write_text

STUDY = "convdesigner-sweep"
# training options a SPACE may name, and the type of their values
OPTIONS = {"lr": float, "weight_decay": float, "batch_size": int, "epochs": int, "seed": int,
           "early_stop": int, "optimizer": str, "schedule": str}


class SpaceError(ValueError):
    """A bad SPACE term; the message names it."""


@dataclass(frozen=True)
class Term:
    """One dimension of the search: a training option or node_id.param; a list of values, or a
    range low..high (log: a log scale)."""

    name: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def suggest(self, trial):
        if self.values:
            return trial.suggest_categorical(self.name, list(self.values))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_space(text: str, graph, settings) -> list[Term]:
    """The terms of SPACE ("lr=1e-4..1e-2:log;conv1.filters=4,8,16"), each checked against the
    settings or the module registry and the graph; SpaceError names the first bad term."""
    from .optim import OPTIMIZERS, SCHEDULES

    terms: list[Term] = []
    for raw in (t.strip() for t in text.split(";")):
        if not raw:
            continue
        try:
            term = _parse_term(raw, graph, settings, OPTIMIZERS, SCHEDULES)
        except SpaceError as err:
            raise SpaceError(f"SPACE term {raw!r}: {err}") from None
        if any(t.name == term.name for t in terms):
            raise SpaceError(f"SPACE term {raw!r}: {term.name} is named twice")
        terms.append(term)
    if not terms:
        raise SpaceError("SPACE is empty (give name=values;...)")
    return terms


def _parse_term(raw: str, graph, settings, optimizers, schedules) -> Term:
    name, sep, values = (p.strip() for p in raw.partition("="))
    if not sep or not name or not values:
        raise SpaceError("expected name=values")
    name = name.replace("-", "_") if "." not in name else name
    log = values.endswith(":log")
    values = values.removesuffix(":log").strip()
    head, colon, suffix = values.rpartition(":")
    if colon and ".." in head:
        raise SpaceError(f"unknown range suffix :{suffix} (a range may end in :log for a "
                         f"log scale)")
    if ".." in values:
        low, _, high = (_value(v.strip()) for v in values.partition(".."))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SpaceError("a range needs two numbers, low..high")
        if not low < high:
            raise SpaceError(f"the range is empty ({low} is not below {high})")
        if log and low <= 0:
            raise SpaceError("a log range needs low > 0")
        points, rng = (low, high), True
    else:
        if log:
            raise SpaceError(":log applies to a range low..high")
        points, rng = tuple(_value(v.strip()) for v in values.split(",")), False
    if "." in name:
        integer = _check_param(name, points, graph, rng)
    else:
        integer = _check_option(name, points, rng, optimizers, schedules)
    if rng:
        return Term(name, low=points[0], high=points[1], log=log, integer=integer)
    return Term(name, values=points)


def _check_option(name, points, rng, optimizers, schedules) -> bool:
    if name not in OPTIONS:
        raise SpaceError(f"unknown name {name!r} (training options: {', '.join(OPTIONS)}; "
                         f"graph parameters: node_id.param)")
    kind = OPTIONS[name]
    if kind is str:
        if rng:
            raise SpaceError(f"{name} takes a list of values, not a range")
        allowed = optimizers if name == "optimizer" else schedules
        bad = [p for p in points if p not in allowed]
        if bad:
            raise SpaceError(f"{name} must be one of {', '.join(allowed)}. Received: {bad[0]!r}")
        return False
    for p in points:
        wrong = isinstance(p, bool) or not isinstance(p, (int, float)) or (
            kind is int and not float(p).is_integer())
        if wrong or not math.isfinite(p) or p < (1 if kind is int and name != "seed" else 0):
            rule = "a positive integer" if kind is int else "a finite number >= 0"
            raise SpaceError(f"{name} must be {rule}. Received: {p!r}")
    return kind is int


def _check_param(name, points, graph, rng) -> bool:
    """A node_id.param term: the node exists, its type has the param, and every listed value
    (each end of a range) gives a valid graph."""
    from .graph import GraphValidationError
    from .modules import REGISTRY

    node_id, _, param = name.partition(".")
    if node_id not in graph.nodes:
        raise SpaceError(f"the graph has no node {node_id!r}")
    mt = REGISTRY[graph.nodes[node_id].type]
    try:
        spec = mt.param(param)
    except KeyError:
        raise SpaceError(f"{mt.name} has no parameter {param!r} (it takes "
                         f"{', '.join(s.name for s in mt.params) or 'none'})") from None
    if rng and spec.kind not in ("int", "float"):
        raise SpaceError(f"{param} takes a list of values, not a range")
    for p in points:
        trial = with_params(graph, {name: int(p) if spec.kind == "int" and rng else p})
        try:
            trial.check()
        except GraphValidationError as err:
            raise SpaceError(str(err)) from None
    return spec.kind == "int"


def with_params(graph, params: dict):
    """A copy of graph with node_id.param values set."""
    graph = graph.copy()
    for name, value in params.items():
        node_id, _, param = name.partition(".")
        graph.nodes[node_id].params[param] = value
    return graph


# -- a trial, on a worker ---------------------------------------------------------------------

def _study(storage, startup: int):
    """The sweep's study: TPE proposes, the median of earlier trials' epochs prunes."""
    import optuna

    return optuna.load_study(study_name=STUDY, storage=storage,
                             pruner=optuna.pruners.MedianPruner(n_startup_trials=startup))


def _dask_storage(**kwargs):
    """optuna-integration's DaskStorage (the study on the scheduler), without its warning that
    the class is experimental."""
    import optuna
    from optuna_integration import DaskStorage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return DaskStorage(**kwargs)


def run_trial(job: dict, arrays: dict, storage_name: str) -> dict:
    """On a worker: train one trial from fresh weights, reporting each epoch's validation loss
    to the study (and stopping when it prunes); returns the outcome and the model file's
    bytes."""
    import optuna

    from .data import Dataset
    from .graph import Graph
    from .session import Session, TrainingSettings
    from .train import TrainingDiverged

    study = _study(_dask_storage(name=storage_name, register=False), job["startup"])
    trial = optuna.Trial(study, job["trial_id"])
    session = Session(Graph.from_dict(job["graph"]), TrainingSettings.from_dict(job["settings"]),
                      backend=job["settings"]["device"], keep_outputs=False)
    data = Dataset(arrays["x"], arrays["y"], arrays["class_names"], arrays["source"])
    trainer = session.trainer(data, job["train_range"], job["val_range"],
                              epochs=session.settings.epochs)
    pruned = []

    def epoch_done(row: dict) -> None:
        if math.isfinite(row["val_loss"]):
            trial.report(row["val_loss"], int(row["epoch"]))
            if trial.should_prune():
                pruned.append(row["epoch"])
                trainer.stop()

    trainer.epoch_listeners.append(epoch_done)
    try:
        trainer.run()
        how = "pruned" if pruned else None
    except TrainingDiverged:
        how = "diverged"
    run = session.finish(trainer, how)
    run["trial"] = job["number"]
    with tempfile.TemporaryDirectory() as folder:
        session.save(Path(folder) / "trial.h5")
        model = (Path(folder) / "trial.h5").read_bytes()
    value, val_acc = _served_figures(run["history"], session.best)
    return {"ended_how": run["ended_how"], "value": value, "val_acc": val_acc,
            "epochs": len(run["history"]["epoch"]), "seconds": sum(run["history"]["seconds"]),
            "model": model}


def _served_figures(history: dict, best) -> tuple[float | None, float | None]:
    """The validation loss and accuracy of the weights the trial's file serves by default: its
    best epoch's where it keeps one (early stopping or keep best), else its last epoch's."""
    epochs = [i for i, v in enumerate(history["val_loss"]) if v is not None]
    if best is not None:
        epochs = [i for i in epochs if history["epoch"][i] == best.epoch] or epochs
    if not epochs:
        return None, None
    return history["val_loss"][epochs[-1]], history["val_acc"][epochs[-1]]


# -- the sweep, on the client -----------------------------------------------------------------

@dataclass
class Row:
    """One finished trial, as trials.csv and the printed table show it."""

    number: int
    state: str
    value: float | None
    val_acc: float | None
    epochs: int
    seconds: float
    params: dict
    file: str
    note: str = ""


def _cluster(workers: int, scheduler: str | None):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, ValueError, TypeError) as err:   # a bad address, no scheduler there
            raise SpaceError(f"cannot reach the Dask scheduler {scheduler!r}: "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                             ) from None
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, env=env)
    return Client(cluster), cluster


def check_folder(out: str | Path) -> Path:
    """The folder a sweep writes, refused if it is a file or holds a sweep (a finished or
    interrupted one: its trial files would be overwritten)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpaceError(f"{out} is a file; --out names the folder a sweep writes")
    held = [name for name in ("study.db", "trials.csv", "best.h5") if (out / name).exists()]
    held += sorted(p.name for p in out.glob("trial-*.h5"))[:1] if out.is_dir() else []
    if held:
        raise SpaceError(f"{out} already holds a sweep ({', '.join(held)}); choose another --out")
    return out


def run_sweep(session, dataset, space: list[Term], trials: int, out: str | Path, *,
              train_range, val_range, workers: int = 2, scheduler: str | None = None,
              client=None, on_row=None, stop=None) -> list[Row]:
    """Run `trials` trials of session's graph and settings with the values space proposes;
    on_row(row, done) is called as each finishes (trials.csv is rewritten then); once stop (a
    threading.Event) is set, no more trials start. Returns the rows, in finishing order."""
    import optuna
    from distributed import as_completed

    out = check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    own = client is None
    cluster = None
    if own:
        client, cluster = _cluster(workers, scheduler)
    rows: list[Row] = []
    try:
        storage = _dask_storage(client=client)
        optuna.create_study(storage=storage, study_name=STUDY, direction="minimize")
        startup = min(5, max(1, trials // 3))
        study = _study(storage, startup)
        study.sampler = optuna.samplers.TPESampler(seed=session.settings.seed)
        arrays = client.scatter({"x": dataset.x, "y": dataset.y,
                                 "class_names": list(dataset.class_names),
                                 "source": dataset.source}, broadcast=True)
        slots = max(1, sum(client.nthreads().values()))
        running: dict = {}
        queue = as_completed()

        def submit() -> None:
            trial = study.ask()
            params = {term.name: term.suggest(trial) for term in space}
            settings = {**session.settings.to_dict(),
                        **{k: v for k, v in params.items() if "." not in k}}
            graph = with_params(session.graph, {k: v for k, v in params.items() if "." in k})
            job = {"number": trial.number, "trial_id": trial._trial_id, "startup": startup,
                   "graph": graph.to_dict(), "settings": settings,
                   "train_range": train_range, "val_range": val_range}
            future = client.submit(run_trial, job, arrays, storage.name, pure=False)
            running[future] = (trial, params)
            queue.add(future)

        for _ in range(min(slots, trials)):
            submit()
        asked = min(slots, trials)
        for future in queue:
            trial, params = running.pop(future)
            row = _finish(study, trial, params, future, out)
            rows.append(row)
            write_csv(rows, space, out / "trials.csv")
            if on_row:
                on_row(row, len(rows))
            if asked < trials and not (stop and stop.is_set()):
                submit()
                asked += 1
        best = [r for r in rows if r.state == "complete" and r.value is not None]
        if best:
            shutil.copyfile(out / min(best, key=lambda r: r.value).file, out / "best.h5")
        optuna.copy_study(from_study_name=STUDY, from_storage=storage,
                          to_storage=f"sqlite:///{(out / 'study.db').resolve()}")
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return rows


def _finish(study, trial, params: dict, future, out: Path) -> Row:
    """Tell the study how a trial ended, write its model file and trials.csv's row."""
    from optuna.trial import TrialState

    try:
        result = future.result()
    except Exception as err:  # noqa: BLE001 - a worker lost too often, or the trial raised
        study.tell(trial, state=TrialState.FAIL)
        return Row(trial.number, "failed", None, None, 0, 0.0, params, "",
                   " ".join(f"{type(err).__name__}: {err}".split())[:200])
    file = f"trial-{trial.number:03d}.h5"
    (out / file).write_bytes(result["model"])
    how = result["ended_how"]
    if how == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
        state = "pruned"
    elif how == "diverged" or result["value"] is None:
        study.tell(trial, state=TrialState.FAIL)
        state = "failed"
    else:
        study.tell(trial, result["value"])
        state = "complete"
    return Row(trial.number, state, result["value"], result["val_acc"], result["epochs"],
               result["seconds"], params, file, "diverged" if how == "diverged" else "")


def write_csv(rows: list[Row], space: list[Term], path: Path) -> None:
    """trials.csv: one row per trial in trial order."""
    import io

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["trial", "state", "val_loss", "val_acc", "epochs", "seconds",
                     *(t.name for t in space), "file", "note"])
    for r in sorted(rows, key=lambda r: r.number):
        writer.writerow([r.number, r.state, "" if r.value is None else f"{r.value:.6g}",
                         "" if r.val_acc is None else f"{r.val_acc:.4f}", r.epochs,
                         f"{r.seconds:.1f}", *(r.params.get(t.name, "") for t in space),
                         r.file, r.note])
    atomic_write_text(path, text.getvalue())


def format_row(row: Row, space: list[Term]) -> str:
    values = "  ".join(f"{t.name}={_short(row.params.get(t.name))}" for t in space)
    loss = "-" if row.value is None else f"{row.value:.4f}"
    acc = "-" if row.val_acc is None else f"{row.val_acc:.4f}"
    return (f"{row.number:>5}  {row.state:<8}  {loss:>8}  {acc:>7}  {row.epochs:>6}  "
            f"{row.seconds:>7.1f}  {values}" + (f"  ({row.note})" if row.note else ""))


HEADER = f"{'trial':>5}  {'state':<8}  {'val_loss':>8}  {'val_acc':>7}  {'epochs':>6}  " \
         f"{'seconds':>7}  parameters"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
