"""The headless commands of `convdesigner` (DESIGN.md 3.3): train, evaluate, predict, info,
templates, bench (designer/launch.py opens the designer otherwise). User errors are one line on
stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

COMMANDS = ("train", "evaluate", "predict", "info", "templates", "bench", "export", "import")


class UsageError(ValueError):
    """A bad argument: reported as one line, exit code 2."""


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


def _check_input(session, data, where: str) -> None:
    expected = session.net.input_shape
    if tuple(data.input_shape) != tuple(expected):
        raise UsageError(f"{where}: the data has samples of shape {list(data.input_shape)} but "
                         f"the network's Input expects {list(expected)}")


def cmd_train(args) -> int:
    from .data import Augmentation, Normalization, data_spec
    from .optim import Schedule
    from .session import Session
    from .train import Trainer, TrainingDiverged

    session = Session.open(args.model, backend=args.device, seed=args.seed, keep_outputs=False)
    data = _load_data(args.data, args.quiet)
    _check_input(session, data, args.data)
    n = len(data.x)
    split = int(n * 0.8)
    train_range = _range(args.train_range, n, (0, split))
    val_range = _range(args.val_range, n, (split, n) if not args.train_range else (0, 0))
    train, val = data.subset(*train_range), data.subset(*val_range)
    if session.data_spec and "normalization" in session.data_spec:
        normalization = Normalization.from_dict(session.data_spec["normalization"])
    else:
        normalization = Normalization.fit(train.x)
    session.data_spec = data_spec(data, normalization, train_range, val_range)
    schedule = Schedule(args.schedule, epochs=session.position.epoch + args.epochs)
    optimizer = session.make_optimizer(args.optimizer, args.lr, schedule)
    augmentation = Augmentation(translate=args.translate, hflip=args.hflip)
    trainer = Trainer(session.net, optimizer, train.x, train.y, val.x, val.y,
                      epochs=session.position.epoch + args.epochs, batch_size=args.batch_size,
                      seed=session.seed, normalization=normalization, augmentation=augmentation,
                      history=session.history, position=session.position)
    bar = Progress("epoch", trainer.batches_per_epoch, not args.quiet)
    trainer.batch_listeners.append(lambda e: bar.update(
        e.batch, f"loss {e.loss:.4f} {e.samples_per_sec:,.0f} samples/s",
        label=f"epoch {e.epoch + 1}/{trainer.epochs}"))

    def epoch_done(row: dict) -> None:
        bar.close()
        if not args.quiet:
            print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc "
                  f"{row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc "
                  f"{row['val_acc']:.4f}  {row['samples_per_sec']:,.0f} samples/s", flush=True)
        bar.start = time.perf_counter()

    trainer.epoch_listeners.append(epoch_done)
    try:
        trainer.run()
    except TrainingDiverged as err:
        bar.close()
        if args.out:
            session.save(args.out)
        raise UsageError(str(err)) from None
    if args.out:
        session.save(args.out)
        if not args.quiet:
            print(f"saved {args.out}")
    if args.metrics_json:
        rows = [{key: _json_number(session.history[key][i])
                 for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                             "seconds", "samples_per_sec")}
                for i in range(len(session.history["epoch"]))]
        Path(args.metrics_json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def _json_number(value):
    value = float(value)
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _model_normalization(session):
    from .data import Normalization

    spec = session.data_spec or {}
    return Normalization.from_dict(spec["normalization"]) if "normalization" in spec else None


def cmd_evaluate(args) -> int:
    from .session import Session
    from .train import evaluate

    session = Session.open(args.model, backend=args.device, keep_outputs=False)
    data = _load_data(args.data, args.quiet or args.json)
    _check_input(session, data, args.data)
    subset = data.subset(*_range(args.range, len(data.x), (0, len(data.x))))
    result = evaluate(session.net, subset.x, subset.y, normalization=_model_normalization(session))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
              f"samples {result['samples']}")
    return 0


def cmd_predict(args) -> int:
    from .session import Session
    from .train import normalize_into

    session = Session.open(args.model, backend=args.device, keep_outputs=False)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"{args.input}: cannot read a .npy array ({err})") from None
    shape = tuple(session.net.input_shape)
    if x.shape == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise UsageError(f"{args.input}: arrays of shape {list(x.shape)} do not fit the Input "
                         f"{list(shape)} (give [N, {', '.join(map(str, shape))}])")
    if not np.issubdtype(x.dtype, np.number):
        raise UsageError(f"{args.input}: expected numbers, found dtype {x.dtype}")
    norm = _model_normalization(session)
    batch = 256
    outputs = []
    buffer = np.empty((min(batch, len(x)), *shape), np.float32)
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch].astype(np.float32)
        inputs = normalize_into(buffer[:len(chunk)], chunk, *(
            (norm.mean, norm.std) if norm else (None, None)))
        outputs.append(session.net.forward(inputs))
    np.save(args.output, np.concatenate(outputs).astype(np.float32))
    return 0


def layer_table(graph) -> tuple[list[tuple[str, str, str, int, int]], int, int]:
    """Rows (id, type, output shape, parameters, FLOPs) in execution order, and the totals."""
    analysis = graph.check()
    rows = [(node_id, graph.nodes[node_id].type,
             "x".join(map(str, analysis.shapes[node_id])), analysis.param_counts[node_id],
             analysis.flops[node_id]) for node_id in analysis.order]
    return rows, sum(r[3] for r in rows), sum(r[4] for r in rows)


def cmd_info(args) -> int:
    if args.devices:
        from .devices import describe_devices

        print(describe_devices())
        if not args.model:
            return 0
    if not args.model:
        raise UsageError("info needs MODEL (or --devices)")
    from .session import load_source

    graph, model = load_source(args.model)
    rows, params, flops = layer_table(graph)
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
    if model is not None and model.history.get("epoch") is not None:
        epochs = len(model.history["epoch"])
        last = {k: v[-1] for k, v in model.history.items() if len(v)}
        print(f"Trained for {epochs} epochs; last val_acc {last.get('val_acc', float('nan')):.4f}"
              f"; saved {model.saved_at} by {model.created_by}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    from .interop.commands import add_commands as add_interop_commands

    parser = argparse.ArgumentParser(
        prog="convdesigner", description="Design, train and inspect convolutional networks. "
        "Without a command, opens the designer (optionally on FILE: .h5 model or .json graph).")
    sub = parser.add_subparsers(dest="command")

    def common(p):
        p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
        p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("train", help="train MODEL (file, graph or template) on data")
    p.add_argument("model")
    p.add_argument("--data", required=True, help="IDX/.npz/.h5/.csv/image folder or a "
                   "generated dataset (shapes, shapes-rgb, signals, volumes)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"))
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", choices=("constant", "step", "cosine"), default="constant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-range")
    p.add_argument("--val-range")
    p.add_argument("--translate", type=int, default=0, help="augmentation: max shift in pixels")
    p.add_argument("--hflip", action="store_true", help="augmentation: random horizontal flips")
    p.add_argument("--out")
    p.add_argument("--metrics-json")
    common(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("evaluate", help="loss and accuracy of a model on data")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--range")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="the network's output for inputs in a .npy file")
    p.add_argument("model")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    common(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("info", help="layers, shapes, parameter counts, FLOPs")
    p.add_argument("model", nargs="?")
    p.add_argument("--devices", action="store_true", help="list the CUDA GPUs found")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("templates", help="list the built-in networks")
    p.set_defaults(run=cmd_templates)

    p = sub.add_parser("bench", help="steady-state training and inference samples/s, GFLOP/s "
                       "against the machine's GEMM rate, peak memory, beside PyTorch")
    p.add_argument("--model", action="append", help="template (repeatable); default: lenet5, "
                   "vgg-small, signal1d")
    p.add_argument("--batch-size", type=int, action="append")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=2)
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

    return (UsageError, DataError, ModelFileError, GraphFormatError, GraphValidationError,
            BackendError, SourceError, InteropError, FileNotFoundError, PermissionError,
            IsADirectoryError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except user_errors() as err:
        message = " ".join(str(err).split("\n")) or type(err).__name__
        print(f"convdesigner {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
