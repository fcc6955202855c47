"""The headless commands of `convdesigner` (DESIGN.md 3.3): train, evaluate, predict, info,
templates, bench (designer/launch.py opens the designer otherwise). User errors are one line on
stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import UsageError
from .outputs import MODEL_SUFFIXES, check_output, weights_note

COMMANDS = ("train", "evaluate", "predict", "info", "templates", "bench", "export", "import",
            "sweep")


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def bounded(kind: type, low: float, high: float | None = None, above: bool = False):
    """An argparse type: a finite kind(text) >= low (> low when above) and <= high."""
    rule = (f"{'a finite number ' * (kind is float)}{'>' if above else '>='} {low}"
            + (f" and <= {high:,}" if high is not None else ""))

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}. Received: {text!r}"
            ) from None
        if not (math.isfinite(value) and (value > low if above else value >= low)
                and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"must be {rule}. Received: {text}")
        return value

    return parse


def template_name(text: str) -> str:
    """An argparse type: a built-in template's name."""
    from .templates import template_names

    if text not in template_names():
        raise argparse.ArgumentTypeError(f"unknown template {text!r} (templates: "
                                         f"{', '.join(template_names())})")
    return text


MAX_BATCH = 1 << 20


class Progress:
    """A one-line progress bar on stderr for steps that take a while (shown after 0.3 s,
    redrawn at most ten times a second)."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        self.label, self.total, self.enabled = label, max(1, total), enabled
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.suffix = ""
        self.shown = False

    def update(self, done: int, suffix: str = "", total: int | None = None,
               label: str | None = None) -> None:
        self.done, self.suffix = done, suffix or self.suffix
        self.total = max(1, total) if total is not None else self.total
        self.label = label or self.label
        now = time.perf_counter()
        if self.enabled and now - self.start > 0.3 and (now - self.last > 0.1
                                                         or done >= self.total):
            self.last, self.shown = now, True
            share = min(1.0, done / self.total)
            bar = "#" * int(share * 30)
            eta = (now - self.start) / share * (1 - share) if share > 0 else 0
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} "
                             f"{self.suffix} eta {eta:4.0f}s ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
        self.shown = False


def _range(text: str | None, n: int, default: tuple[int, int]) -> tuple[int, int]:
    from .data import parse_range

    return parse_range(text, n) if text else default


def _load_data(spec: str, quiet: bool):
    from .data import load_dataset

    bar = Progress(f"loading {spec}", 1, not quiet)
    data = load_dataset(spec, progress=lambda done, total: bar.update(done, total=total))
    bar.update(bar.total)
    bar.close()
    return data


def _fit_data(session, data, where: str, batch_size: int, training: bool):
    """The data reshaped to the network's Input, its labels checked against the outputs, and
    the memory the network needs at batch_size checked."""
    from .data import check_labels, fit_input
    from .network import check_memory

    data = fit_input(data, session.net.input_shape, where)
    check_labels(data, math.prod(session.net.output_shape), where)
    check_memory(session.net.graph, batch_size, training=training)
    return data


def _apply_options(session, args) -> None:
    """Options given on the command line override the model's stored settings."""
    from .optim import DEFAULTS

    s = session.settings
    if args.optimizer and args.optimizer != s.optimizer:
        s.optimizer, s.lr = args.optimizer, DEFAULTS[args.optimizer]["lr"]
    for name in ("lr", "batch_size", "seed", "schedule", "epochs", "early_stop"):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    if args.translate is not None or args.hflip:
        s.augmentation = {**s.augmentation, "translate": args.translate or 0,
                          "hflip": bool(args.hflip)}
    s.device = args.device


def _split(args, n: int, stored: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """--train-range and --val-range. Without either, the split the model keeps for this data
    (stored: its settings' data choice), so that a stopped run goes on as it was; else the first
    80% train and the rest validate."""
    from .data import DataError, same_source, split_ranges

    if args.train_range is None and args.val_range is None:
        if same_source(stored.get("source"), args.data):
            try:
                return split_ranges(stored, n)
            except DataError as err:
                raise UsageError(f"the split this model was trained with does not fit "
                                 f"{args.data} now ({err}): give --train-range and --val-range"
                                 ) from None
        if stored.get("source") and (stored.get("train_range") or stored.get("val_range")) \
                and not args.quiet:
            print(f"note: the model was trained on {stored['source']}, so {args.data} gets the "
                  f"default split, not the model's (give --train-range and --val-range)",
                  file=sys.stderr)
    return split_ranges({"train_range": args.train_range, "val_range": args.val_range}, n)


def cmd_train(args) -> int:
    from .data import same_source
    from .session import Session
    from .train import TrainingDiverged

    session = Session.open(args.model, backend=args.device, keep_outputs=False)
    if args.reset:
        session.reset()
    _apply_options(session, args)
    data = _load_data(args.data, args.quiet)
    data = _fit_data(session, data, args.data, min(session.settings.batch_size, len(data)),
                     training=True)
    problem = session.data_problem(data)
    if problem is not None:   # trained weights on other classes (the designer refuses it too)
        raise UsageError(problem.message + (" Give --reset to train it afresh on them"
                                            if "reset" in problem.fixes else ""))
    spatial = session.net.input_shape[1:]
    if spatial and args.translate and args.translate >= min(spatial):
        raise UsageError(f"argument --translate: must be less than the Input's smallest spatial "
                         f"size ({min(spatial)}). Received: {args.translate}")
    train_range, val_range = _split(args, len(data.x), session.settings.data)
    if session.settings.early_stop and val_range[0] == val_range[1]:
        raise UsageError("--early-stop needs validation data (--val-range)")
    if val_range[0] == val_range[1] and not args.quiet:
        print("note: no validation data, so no validation loss or accuracy (give --val-range)",
              file=sys.stderr)
    elif not args.quiet:
        _note_unmixed_classes(data, train_range, val_range)
    if args.metrics_json:
        check_output(args.metrics_json, args.model, args.data)
    if args.out:
        check_output(args.out, suffixes=MODEL_SUFFIXES)
    elif not args.quiet:
        print("note: without --out the trained model is not saved", file=sys.stderr)
    # the same data named another way keeps its first name (a relative path matches only
    # from its folder, the absolute one from anywhere)
    stored = session.settings.data.get("source")
    source = stored if same_source(stored, args.data) else args.data
    session.settings.data = {"source": source, **{
        key: f"{a}:{b}" if a < b else "" for key, (a, b) in
        (("train_range", train_range), ("val_range", val_range))}}
    trainer = session.trainer(data, train_range, val_range, epochs=args.epochs)
    bar = Progress("epoch", trainer.batches_per_epoch, not args.quiet)
    trainer.batch_listeners.append(lambda e: bar.update(
        e.batch, f"loss {e.loss:.4f} {e.samples_per_sec:,.0f} samples/s",
        label=f"epoch {e.epoch + 1}/{trainer.epochs}"))

    def epoch_done(row: dict) -> None:
        bar.close()
        if not args.quiet:
            val = ("" if val_range[0] == val_range[1] else
                   f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  ")
            print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc "
                  f"{row['train_acc']:.4f}  {val}{row['samples_per_sec']:,.0f} samples/s",
                  flush=True)
        bar.start = time.perf_counter()

    trainer.epoch_listeners.append(epoch_done)

    def interrupt(*_):   # the first Ctrl+C stops at the end of the batch; a second one at once
        signal.signal(signal.SIGINT, signal.default_int_handler)
        trainer.stop()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with warnings.catch_warnings(record=True) as caught:  # said once, in the message
            warnings.simplefilter("always", RuntimeWarning)
            trainer.run()
    except TrainingDiverged as err:
        bar.close()
        session.finish(trainer)
        if args.out:
            session.save(args.out)
        notes = sorted({str(w.message) for w in caught})
        raise UsageError(str(err) + (f" Saved {args.out}." if args.out else "") + (
            f" (numpy warned: {'; '.join(notes)})" if notes else "")) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    session.finish(trainer)
    interrupted = trainer.stopped_reason == "stopped"
    if trainer.stopped_reason and not interrupted and not args.quiet:
        print(trainer.stopped_reason)
    if args.out:
        session.save(args.out)
        if not args.quiet:
            print(f"saved {args.out}")
    if interrupted:
        print(f"interrupted at epoch {session.position.epoch + 1}, batch {session.position.batch}"
              + (f"; {args.out} keeps it (train it again without --epochs to finish the run)"
                 if args.out else ""), file=sys.stderr)
    if args.metrics_json:
        rows = [{key: _json_number(session.history[key][i])
                 for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                             "seconds", "samples_per_sec")}
                for i in range(len(session.history["epoch"]))]
        Path(args.metrics_json).write_text(json.dumps(rows, indent=1) + "\n")
    return 130 if interrupted else 0


def _note_unmixed_classes(data, train_range, val_range) -> None:
    """Say so when a class is missing from one side of the split (data.unmixed_classes)."""
    from .data import unmixed_classes

    missing = unmixed_classes(data.y, train_range, val_range, data.num_classes)
    if not missing:
        return
    val = np.unique(data.y[slice(*val_range)])
    where = (f"the validation range holds one class only ({data.class_names[val[0]]})"
             if len(val) == 1 else f"classes {', '.join(data.class_names[k] for k in missing)} "
             f"are missing from the training or the validation range")
    print(f"note: {where}: is the data stored class by class? Give --train-range and "
          f"--val-range that mix the classes", file=sys.stderr)


def cmd_sweep(args) -> int:
    from .session import Session
    from .sweep import HEADER, check_folder, format_row, parse_space, run_sweep

    session = Session.open(args.model, backend=args.device, keep_outputs=False)
    if session.trained:
        session.reset()   # every trial trains from fresh weights
    _apply_options(session, args)
    space = parse_space(args.space, session.graph, session.settings)
    data = _load_data(args.data, args.quiet)
    data = _fit_data(session, data, args.data, min(session.settings.batch_size, len(data)),
                     training=True)
    train_range, val_range = _split(args, len(data.x), {})
    if val_range[0] == val_range[1]:
        raise UsageError("sweep needs validation data (--val-range): trials are compared and "
                         "pruned by their validation loss")
    out = check_folder(args.out)
    bar = Progress("trials", args.trials, not args.quiet)
    rows = []

    def on_row(row, done: int) -> None:
        if not rows:   # with the first row: a refused sweep prints nothing on stdout
            print(HEADER, flush=True)
        rows.append(row)
        bar.close()
        print(format_row(row, space), flush=True)
        bar.update(done, f"{sum(r.state == 'complete' for r in rows)} complete")

    stop = threading.Event()

    def interrupt(*_):   # the first Ctrl+C starts no more trials; a second one stops at once
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop.set()
        bar.close()
        print("stopping: no more trials start; the running ones finish (Ctrl+C again to quit "
              "now)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, interrupt)
    bar.update(0)
    try:
        run_sweep(session, data, space, args.trials, out, train_range=train_range,
                  val_range=val_range, workers=args.workers, scheduler=args.scheduler,
                  on_row=on_row, stop=stop)
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    done = [r for r in rows if r.state == "complete" and r.value is not None]
    if done:
        best = min(done, key=lambda r: r.value)
        print(f"best: trial {best.number}, val_loss {best.value:.4f}, " + ", ".join(
            f"{k}={v}" for k, v in best.params.items()) + f" -> {out / 'best.h5'}")
    else:
        print("no trial completed", file=sys.stderr)
    return 130 if stop.is_set() else 0 if done else 1


def _json_number(value):
    value = float(value)
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _model_normalization(session):
    from .data import Normalization

    spec = session.data_spec or {}
    return Normalization.from_dict(spec["normalization"]) if "normalization" in spec else None


def _open_for_use(args):
    """The model of evaluate and predict, with its best epoch's weights unless --weights last,
    and a note on those weights for the command to print once its inputs are accepted (an
    error stays one line)."""
    from .session import Session

    session = Session.open(args.model, backend=args.device, keep_outputs=False)
    if args.weights != "last":
        session.use_best()
    note = weights_note(args.model, session.trained, args.weights, session.best is not None)
    return session, note if not args.quiet else None


def _say(note: str | None) -> None:
    if note:
        print(note, file=sys.stderr)


def cmd_evaluate(args) -> int:
    from .train import evaluate

    session, note = _open_for_use(args)
    data = _load_data(args.data, args.quiet or args.json)
    data = _fit_data(session, data, args.data, min(256, len(data)), training=False)
    problem = session.data_problem(data)   # what train refuses: weights of other classes
    if problem is not None and "reset" in problem.fixes and not (args.quiet or args.json):
        trained_on = session.data_spec["class_names"]
        print(f"note: the model was trained on other classes ({', '.join(trained_on[:5])}"
              f"{', ...' if len(trained_on) > 5 else ''}); label k counts as its class k",
              file=sys.stderr)
    subset = data.subset(*_range(args.range, len(data.x), (0, len(data.x))))
    _say(note)
    result = evaluate(session.net, subset.x, subset.y, normalization=_model_normalization(session))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
              f"samples {result['samples']}")
    return 0


def cmd_predict(args) -> int:
    from .network import check_memory
    from .train import normalize_into

    session, note = _open_for_use(args)
    check_output(args.output, args.input, args.model)
    shape = tuple(session.net.input_shape)
    x = _read_inputs(args.input, shape)
    norm = _model_normalization(session)
    batch = 256
    check_memory(session.net.graph, min(batch, len(x)), training=False)
    _say(note)
    outputs = []
    buffer = np.empty((min(batch, len(x)), *shape), np.float32)
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch].astype(np.float32)
        inputs = normalize_into(buffer[:len(chunk)], chunk, *(
            (norm.mean, norm.std) if norm else (None, None)))
        outputs.append(session.net.forward(inputs))
    with open(args.output, "wb") as out:   # np.save(name) would add ".npy" to another name
        np.save(out, np.concatenate(outputs).astype(np.float32))
    return 0


def _read_inputs(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """predict's samples [N, *shape] from a .npy array (or an .npz's x), in the importers' units:
    one line for what does not fit. Size-1 axes may differ, as for training data."""
    from .data import samples_of

    try:
        x = np.load(path, allow_pickle=False)
        if isinstance(x, np.lib.npyio.NpzFile):
            with x as archive:
                if "x" not in archive.files:
                    raise UsageError(f"{path}: an .npz for predict needs an array x (found "
                                     f"{', '.join(archive.files) or 'none'})")
                x = archive["x"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise UsageError(f"{path}: cannot read a .npy array "
                         f"({err or type(err).__name__})") from None
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UsageError(f"{path}: expected real numbers, found dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        raise UsageError(f"{path}: integer values ({x.dtype}); predict reads what the importers "
                         f"produce, pixel values scaled to [0, 1] (for 8-bit images: x / 255)")
    if x.shape == shape or (x.ndim == len(shape) and x.size == math.prod(shape)):
        x = x[None]   # one sample
    samples = samples_of(x, shape)
    if samples is None:
        raise UsageError(f"{path}: arrays of shape {list(x.shape)} do not fit the Input "
                         f"{list(shape)} (give [N, {', '.join(map(str, shape))}])")
    x = samples
    if not len(x):
        raise UsageError(f"{path}: no samples (an array of shape {list(x.shape)})")
    with np.errstate(over="ignore"):   # before the check: 1e39 is finite, inf in float32
        x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise UsageError(f"{path}: sample {int(np.argmax(bad))} holds NaN, infinite or "
                         f"too large values ({int(bad.sum())} such samples)")
    return x


def layer_table(graph, analysis=None) -> tuple[list[tuple[str, str, str, int, int]], int, int]:
    """Rows (id, type, output shape, parameters, FLOPs) in execution order, and the totals of
    the nodes the network runs (one reaching no Output is marked unused and not counted)."""
    analysis = analysis or graph.check()
    unused = set(analysis.unused)
    rows = [(node_id + (" (unused)" if node_id in unused else ""), graph.nodes[node_id].type,
             "x".join(map(str, analysis.shapes[node_id])), analysis.param_counts[node_id],
             analysis.flops[node_id]) for node_id in analysis.order]
    return (rows, *analysis.totals())


def cmd_info(args) -> int:
    if args.devices:
        from .devices import describe_devices

        print(describe_devices())
        if not args.model:
            return 0
    if not args.model:
        raise UsageError("info needs MODEL (or --devices)")
    from .network import estimate_memory, format_bytes, machine_memory
    from .session import load_source

    graph, model = load_source(args.model)
    analysis = graph.check()
    rows, params, flops = layer_table(graph, analysis)
    print(f"Model: {graph.name}")
    widths = (max(5, *(len(r[0]) for r in rows)), max(4, *(len(r[1]) for r in rows)),
              max(12, *(len(r[2]) for r in rows)))
    header = (f"{'Layer':<{widths[0]}}  {'Type':<{widths[1]}}  {'Output shape':<{widths[2]}}  "
              f"{'Params':>10}  {'FLOPs':>14}")
    print(header)
    print("-" * len(header))
    for node_id, type_name, shape, count, node_flops in rows:
        print(f"{node_id:<{widths[0]}}  {type_name:<{widths[1]}}  {shape:<{widths[2]}}  "
              f"{count:>10,}  {node_flops:>14,}")
    print("-" * len(header))
    print(f"Total parameters: {params:,}   Forward FLOPs per sample: {flops:,}")
    need, have = estimate_memory(graph, 64, analysis=analysis), machine_memory()
    print(f"Memory to train at batch 64: about {format_bytes(need)}" + (
        f", more than the {format_bytes(have)} this machine has" if have and need > have else ""))
    if model is not None and model.history.get("epoch") is not None:
        epochs = len(model.history["epoch"])
        last = {k: v[-1] for k, v in model.history.items() if len(v)}
        print(f"Trained for {epochs} epochs; last val_acc {last.get('val_acc', float('nan')):.4f}"
              f"; saved {model.saved_at} by {model.created_by}")
    if args.runs:
        print_runs(model.runs if model is not None else [], graph)
    return 0


def print_runs(runs: list[dict], graph) -> None:
    """The model's training runs, one line each (info --runs)."""
    from .runs import final, graph_diff

    def last(run: dict, key: str) -> str:
        value = final(run, key)
        return "-" if value is None else f"{value:.4f}"

    if not runs:
        print("No runs recorded.")
        return
    print(f"{'Run':>3}  {'Started':<25}  {'Ended':<11}  {'Epochs':>6}  {'Optimizer':<9}  "
          f"{'LR':>8}  {'Batch':>5}  {'Train loss':>10}  {'Val loss':>8}  {'Val acc':>7}  "
          f"Graph vs model")
    for i, run in enumerate(runs):
        s, epochs = run["settings"], run["history"].get("epoch", [])
        changes = graph_diff(run["graph"], graph.to_dict())
        print(f"{i:>3}  {run['started']:<25}  {run['ended_how']:<11}  "
              f"{len(epochs):>6}  {s.get('optimizer', '-'):<9}  {s.get('lr', 0):>8.2g}  "
              f"{s.get('batch_size', '-'):>5}  {last(run, 'train_loss'):>10}  "
              f"{last(run, 'val_loss'):>8}  {last(run, 'val_acc'):>7}  "
              f"{'same' if not changes.any else changes.summary()}")


def cmd_templates(args) -> int:
    from .templates import load_template, template_info, template_names

    for name in template_names():
        graph = load_template(name)
        info = template_info(name)
        shape = "x".join(map(str, graph.input_node.params["shape"]))
        print(f"{name:<16} {shape:<10} data: {info['dataset']:<11} {info['description']}")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    run_bench(models=args.model, batch_sizes=args.batch_size, device=args.device,
              as_json=args.json, threads=args.threads, layers=args.layers,
              memory=not args.no_memory)
    return 0


def common(p) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def train_options(p) -> None:
    """MODEL, --data and the training options that train and sweep share."""
    p.add_argument("model")
    p.add_argument("--data", required=True, help="IDX/.npz/.h5/.csv/image folder or a "
                   "generated dataset (shapes, shapes-rgb, signals, volumes)")
    p.add_argument("--epochs", type=bounded(int, 1, 1_000_000), help="epochs to train "
                   "(default: finish an interrupted run, else the model's setting, 10 for a new "
                   "one)")
    p.add_argument("--batch-size", type=bounded(int, 1, MAX_BATCH))
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"))
    p.add_argument("--lr", type=bounded(float, 0, above=True))
    p.add_argument("--schedule", choices=("constant", "step", "cosine"))
    p.add_argument("--seed", type=bounded(int, 0, 2**32 - 1))
    p.add_argument("--early-stop", type=bounded(int, 1, 1_000_000), metavar="N",
                   help="stop when the validation loss has not improved for N epochs; the file "
                   "keeps the best epoch in /best")
    p.add_argument("--train-range")
    p.add_argument("--val-range")
    p.add_argument("--translate", type=bounded(int, 0),
                   help="augmentation: max shift in pixels (less than the Input's size)")
    p.add_argument("--hflip", action="store_true", help="augmentation: random horizontal flips")
    common(p)


def build_parser() -> argparse.ArgumentParser:
    from .interop.commands import add_commands as add_interop_commands

    parser = Parser(
        prog="convdesigner", description="Design, train and inspect convolutional networks. "
        "Without a command, opens the designer (optionally on FILE: .h5 model or .json graph).")
    sub = parser.add_subparsers(dest="command")

    def weights_option(p):
        p.add_argument("--weights", choices=("best", "last"),
                       help="the best epoch's weights where the file keeps them (default), or "
                       "the last")

    p = sub.add_parser("train", help="train MODEL (file, graph or template) on data")
    train_options(p)
    p.add_argument("--out")
    p.add_argument("--metrics-json")
    p.add_argument("--reset", action="store_true", help="train from fresh weights (the "
                   "model's history and optimizer state go; its settings stay)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sweep", help="search training options and graph parameters: Optuna "
                       "proposes, Dask runs the trials")
    train_options(p)
    p.add_argument("--space", required=True, help="name=values;... where name is a training "
                   "option (lr, batch_size, ...) or node_id.param and values a list 32,64 or a "
                   "range 1e-4..1e-2 (:log for a log scale)")
    p.add_argument("--trials", type=bounded(int, 1, 100_000), required=True)
    p.add_argument("--out", required=True, help="folder for the trials' model files, the "
                   "study (study.db), trials.csv and best.h5")
    p.add_argument("--workers", type=bounded(int, 1, 1024), default=2,
                   help="worker processes of the local Dask cluster (default 2)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler "
                   "(tcp://host:8786) instead of a local cluster")
    p.set_defaults(run=cmd_sweep)

    p = sub.add_parser("evaluate", help="loss and accuracy of a model on data")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--range")
    p.add_argument("--json", action="store_true")
    weights_option(p)
    common(p)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="the network's output for inputs in a .npy file")
    p.add_argument("model")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    weights_option(p)
    common(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("info", help="layers, shapes, parameter counts, FLOPs")
    p.add_argument("model", nargs="?")
    p.add_argument("--devices", action="store_true", help="list the CUDA GPUs found")
    p.add_argument("--runs", action="store_true", help="list the model's training runs")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("templates", help="list the built-in networks")
    p.set_defaults(run=cmd_templates)

    p = sub.add_parser("bench", help="steady-state training and inference samples/s, GFLOP/s "
                       "against the machine's GEMM rate, peak memory, beside PyTorch")
    p.add_argument("--model", action="append", type=template_name,
                   help="template (repeatable); default: lenet5, vgg-small, signal1d")
    p.add_argument("--batch-size", type=bounded(int, 1, MAX_BATCH), action="append")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=bounded(int, 1, 1024), default=2)
    p.add_argument("--layers", action="store_true", help="also time each layer: forward, "
                   "grad-input, grad-weight (conv, dense) or backward, with GFLOP/s")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory measurement of the training steps")
    p.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    p.set_defaults(run=cmd_bench)
    add_interop_commands(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    from .backend import BackendError
    from .data import DataError
    from .graph import GraphFormatError, GraphValidationError
    from .interop import InteropError
    from .modelfile import ModelFileError
    from .session import SourceError
    from .sweep import SpaceError

    return (UsageError, SpaceError, DataError, ModelFileError, GraphFormatError,
            GraphValidationError, BackendError, SourceError, InteropError, FileNotFoundError,
            PermissionError, IsADirectoryError)


RANGE_OPTIONS = ("--train-range", "--val-range", "--range")


def _joined_ranges(argv: list[str]) -> list[str]:
    """"--val-range -2000:" as "--val-range=-2000:": argparse takes a value that starts with "-"
    for an option (ranges count from the end with negative values)."""
    out = []
    for arg in argv:
        if out and out[-1] in RANGE_OPTIONS and arg.startswith("-") and ":" in arg:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _joined_ranges(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except user_errors() as err:
        message = "; ".join(filter(None, str(err).split("\n"))) or type(err).__name__
        from .graph import GraphValidationError

        model = getattr(args, "model", None)
        if isinstance(err, GraphValidationError) and model and str(model) not in message:
            message = f"{model}: {message}"   # which file's graph it is
        print(f"convdesigner {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
