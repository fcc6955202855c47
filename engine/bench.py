"""Steady-state training and inference samples/s, ours beside PyTorch's in the same run.

A training step is forward, cross-entropy, backward and a momentum-SGD update. Each figure is the
median of several timed repeats after warm-up (min and max are reported too).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial

import numpy as np

from . import OMP_WAIT_POLICY_CHOSEN_BY_USER
from .network import compile_network
from .optim import Optimizer
from .templates import load_template
from .threads import limit_threads

DEFAULT_MODELS = ("lenet5", "vgg-small", "signal1d")


def steady_rates(step, samples: int, repeats: int = 7,
                 min_seconds: float = 0.4) -> list[float]:
    """samples/s of `step` in `repeats` timed runs of at least min_seconds each."""
    step()
    step()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / 4:
        step()
        calls += 1
    per_call = (time.perf_counter() - start) / max(calls, 1)
    calls = max(1, int(min_seconds / max(per_call, 1e-6)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        rates.append(samples * calls / (time.perf_counter() - start))
    return rates


def ours(graph, batch: int, device: str, train: bool) -> list[float]:
    from . import losses

    net = compile_network(graph, backend=device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    y = rng.integers(0, net.output_shape[0], batch)
    xd = net.backend.to_device(x)
    optimizer = Optimizer("momentum", lr=0.01)
    net.set_input_grad(False)

    def train_step():
        out = net.backend.to_host(net.run_forward(xd, True))
        _, dy = losses.cross_entropy(out, y)
        net.run_backward(net.backend.stage(dy, "dy"))
        optimizer.step(net)
        net.backend.synchronize()

    def infer_step():
        net.run_forward(xd, False)
        net.backend.synchronize()

    return steady_rates(train_step if train else infer_step, batch)


def pytorch(name: str, batch: int, device: str, train: bool, threads: int) -> list[float] | None:
    """PyTorch's rates for the same template, measured in a child process so that it runs with
    its own OpenMP settings (the engine makes OpenMP wait passively; PyTorch's default spins)."""
    env = dict(os.environ)
    if not OMP_WAIT_POLICY_CHOSEN_BY_USER:
        env.pop("OMP_WAIT_POLICY", None)
    args = json.dumps([name, batch, device, train, threads])
    result = subprocess.run([sys.executable, "-c", _TORCH_CHILD, args], env=env,
                            capture_output=True, text=True)
    if result.returncode == 3:
        return None  # torch is not installed (pip install -e ".[bench]")
    if result.returncode:
        raise RuntimeError(f"the PyTorch benchmark failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


_TORCH_CHILD = """
import json, sys
try:
    import torch  # first, so its OpenMP runtime starts with the user's settings
except ImportError:
    sys.exit(3)
from engine.bench import torch_rates
print(json.dumps(torch_rates(*json.loads(sys.argv[1]))))
"""


def torch_rates(name: str, batch: int, device: str, train: bool, threads: int) -> list[float]:
    import torch

    from .torch_ref import build_torch_model

    torch.set_num_threads(threads)
    graph = load_template(name)
    dev = "cuda" if device == "cuda" else "cpu"
    model = build_torch_model(graph).to(dev)
    analysis = graph.check()
    shape = analysis.shapes[graph.input_node.id]
    classes = analysis.shapes[graph.output_node.id][0]
    x = torch.randn(batch, *shape, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync()

    def infer_step():
        with torch.inference_mode():
            model(x)
        sync()

    model.train(train)
    return steady_rates(train_step if train else infer_step, batch)


def run_bench(models=None, batch_sizes=None, device: str = "cpu", as_json: bool = False,
              threads: int = 2, layers: bool = False) -> list[dict]:
    rows = []
    with limit_threads(threads):
        for name in models or DEFAULT_MODELS:
            graph = load_template(name)
            for direction, batch in _plan(batch_sizes):
                ours_rates = ours(graph, batch, device, direction == "train")
                reference = pytorch(name, batch, device, direction == "train", threads)
                row = {"model": name, "direction": direction, "batch": batch, "device": device,
                       "threads": threads, "ours": _summary(ours_rates),
                       "pytorch": _summary(reference) if reference else None}
                if reference:
                    row["ratio"] = row["ours"]["median"] / row["pytorch"]["median"]
                rows.append(row)
                if not as_json:
                    _print_row(row, header=len(rows) == 1)
            if layers:
                print(layer_table(graph, batch=64, device=device))
    if as_json:
        print(json.dumps(rows, indent=1))
    return rows


def _plan(batch_sizes):
    if batch_sizes:
        return [(d, b) for b in batch_sizes for d in ("train", "infer")]
    return [("train", 64), ("infer", 256)]


def _summary(rates):
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates)}


def _print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'net':<12} {'dir':<6} {'batch':>5}  {'ours samples/s (min-med-max)':>32}  "
              f"{'PyTorch median':>14}  {'ratio':>6}")
    o = row["ours"]
    ours_text = f"{o['min']:,.0f}-{o['median']:,.0f}-{o['max']:,.0f}"
    torch_text = f"{row['pytorch']['median']:,.0f}" if row["pytorch"] else "n/a"
    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
    print(f"{row['model']:<12} {row['direction']:<6} {row['batch']:>5}  {ours_text:>32}  "
          f"{torch_text:>14}  {ratio:>6}", flush=True)


def layer_table(graph, batch: int, device: str = "cpu") -> str:
    """Milliseconds per op, forward and backward, at one batch size (where a step's time goes)."""
    from . import losses

    net = compile_network(graph, backend=device)
    rng = np.random.default_rng(0)
    x = net.backend.to_device(rng.standard_normal((batch, *net.input_shape)).astype(np.float32))
    y = rng.integers(0, net.output_shape[0], batch)
    out = net.backend.to_host(net.run_forward(x, True))
    net.run_backward(net.backend.to_device(losses.cross_entropy(out, y)[1]))
    analysis = net.analysis
    lines = [f"{'layer':<16} {'type':<10} {'output':<12} {'fwd ms':>8} {'bwd ms':>8} "
             f"{'GFLOP/s fwd':>11}"]
    for node_id in net.order:
        op = net.ops[node_id]
        inputs = [net._acts[src] for src in net.sources[node_id]]
        dout = net.backend.zeros((batch, *analysis.shapes[node_id]), net.dtype)
        timings = []
        for run in (partial(op.forward, inputs, True), partial(op.backward, dout)):
            run()
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < 0.2:
                run()
                calls += 1
            net.backend.synchronize()
            timings.append((time.perf_counter() - start) / calls * 1e3)
        gflops = analysis.flops[node_id] * batch / (timings[0] * 1e-3) / 1e9
        lines.append(f"{node_id:<16} {graph.nodes[node_id].type:<10} "
                     f"{'x'.join(map(str, analysis.shapes[node_id])):<12} {timings[0]:>8.3f} "
                     f"{timings[1]:>8.3f} {gflops:>11.1f}")
    return "\n".join(lines)
