"""`convdesigner bench`: steady-state training and inference samples/s, ours beside PyTorch's.

What is measured:

* GEMM rate: the steady GFLOP/s of a float32 1024x1024 matmul through numpy's BLAS with the
  same thread count, the yardstick for "how close to the machine's peak" (`measure_gemm_rate`).
* samples/s: a training step is forward, cross-entropy, backward and a momentum-SGD update; an
  inference step is a forward. Each figure is the median of several timed repeats after warm-up
  (min and max are reported too). PyTorch runs the same template in a child process, and the
  repeats alternate, ours then PyTorch's, so that both see the same machine: on a shared VM
  the speed of the cores drifts by tens of percent within a minute.
* achieved GFLOP/s of a step: nominal FLOPs per sample (`layer_flops`) x samples/s, and its
  share of the GEMM rate. Nominal FLOPs are the layers' forward FLOPs from the graph analysis
  plus their backward: grad-weight (and bias) of a conv or dense layer costs its forward, its
  grad-input the forward less the bias adds, and only where the op computes it
  (needs_input_grad; the first layer's input gradient is skipped in training, as PyTorch skips
  it); any other layer's backward counts as its forward again, or 0 when it computes nothing.
  The loss and the optimizer update are not counted.
* peak memory of training (`peak_memory`): the growth of the resident set over a fresh
  process's baseline while it builds the network at the benchmark batch and runs 3 steps;
  ours and PyTorch's are measured the same way, each in its own child process.
* per layer (`layer_table`, --layers): ms, FLOPs, GFLOP/s and % of the GEMM rate of each op's
  forward, grad-input and grad-weight (conv, dense) or backward (every other op).
"""
from __future__ import annotations

import gc
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import user_openmp_env
from .modules import REGISTRY
from .network import Network, compile_network
from .optim import Optimizer
from .templates import load_template
from .threads import limit_threads

DEFAULT_MODELS = ("lenet5", "vgg-small", "signal1d")
GEMM_CATEGORIES = ("Convolution", "Dense")  # layers whose backward has grad-input, grad-weight
MEMORY_STEPS = 3


REPEATS = 7


class Repeats:
    """Timed repeats of `step`, one per call of next(): warmed up, and each repeat as many calls
    as take about min_seconds, then `synchronize` (a device's queue drained) before the clock
    stops."""

    def __init__(self, step, samples: int, min_seconds: float = 0.4,
                 synchronize=lambda: None):
        self.step, self.samples, self.synchronize = step, samples, synchronize
        step()
        step()
        synchronize()
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < min_seconds / 4:
            step()
            calls += 1
        synchronize()
        per_call = (time.perf_counter() - start) / max(calls, 1)
        self.calls = max(1, int(min_seconds / max(per_call, 1e-7)))

    def next(self) -> float:
        """samples/s of one repeat."""
        start = time.perf_counter()
        for _ in range(self.calls):
            self.step()
        self.synchronize()
        return self.samples * self.calls / (time.perf_counter() - start)


def steady_rates(step, samples: int, repeats: int = REPEATS, min_seconds: float = 0.4,
                 synchronize=lambda: None) -> list[float]:
    """samples/s of `step` in `repeats` timed runs of at least min_seconds each."""
    timer = Repeats(step, samples, min_seconds, synchronize)
    return [timer.next() for _ in range(repeats)]


# -- the machine's GEMM rate ------------------------------------------------------------------
def gemm_rates(threads: int, n: int = 1024, repeats: int = 7,
               min_seconds: float = 0.2) -> list[float]:
    """GFLOP/s (2 n^3 per product) of float32 n x n matmuls through numpy's BLAS limited to
    `threads` threads, in `repeats` timed runs of at least min_seconds each after warm-up."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    with threadpool_limits(threads):
        rates = steady_rates(partial(np.matmul, a, b, out=out), 1, repeats=repeats,
                             min_seconds=min_seconds)
    return [rate * 2 * n ** 3 / 1e9 for rate in rates]


def measure_gemm_rate(threads: int, n: int = 1024) -> float:
    """The machine's steady float32 GEMM rate in GFLOP/s on `threads` threads (median)."""
    return statistics.median(gemm_rates(threads, n))


# -- nominal FLOPs ----------------------------------------------------------------------------
def layer_flops(net: Network) -> dict[str, dict[str, int]]:
    """Nominal FLOPs per sample of each layer's directions in a training step of `net`, as its
    ops are set now (call net.set_input_grad(False) first for a training step).

    Conv and dense layers: {"forward", "grad_input", "grad_weight"}; grad-weight (with the bias
    gradient) costs the forward's FLOPs, grad-input the forward's less its bias adds, and 0 when
    the op does not compute it (needs_input_grad[0] is False). Every other layer: {"forward",
    "backward"}, the backward counted as the forward again (0 when the op needs no input
    gradient and has no parameters). Forward FLOPs come from the graph analysis.
    """
    analysis, result = net.analysis, {}
    for node_id in net.order:
        forward = int(analysis.flops[node_id])
        op = net.ops.get(node_id)
        needs = list(op.needs_input_grad) if op is not None else [True]
        node_type = net.graph.nodes[node_id].type
        if REGISTRY[node_type].category in GEMM_CATEGORIES:
            bias = math.prod(analysis.shapes[node_id]) if analysis.params[node_id].get("bias") \
                else 0
            result[node_id] = {"forward": forward,
                               "grad_input": forward - bias if needs[0] else 0,
                               "grad_weight": forward}
        else:
            computes = any(needs) or bool(op is not None and op.params)
            result[node_id] = {"forward": forward, "backward": forward if computes else 0}
    return result


def step_flops(net: Network) -> dict[str, int]:
    """Nominal FLOPs per sample: {"forward": inference, "train": forward + backward}."""
    layers = layer_flops(net).values()
    forward = sum(f["forward"] for f in layers)
    return {"forward": forward, "train": sum(sum(f.values()) for f in layers)}


# -- our step and PyTorch's -------------------------------------------------------------------
@dataclass
class Steps:
    """One network at one batch size with a fixed random batch, and its two timed steps."""

    net: object
    train: object  # callable: forward, loss, backward, optimizer update
    infer: object  # callable: forward in evaluation mode
    x: object = None  # the input batch (on the device)


def build_steps(graph, batch: int, device: str = "cpu") -> Steps:
    """Our network for `graph` at `batch` and its steps, set up as `convdesigner train` trains
    (input gradient off, only the outputs backward needs kept)."""
    from . import losses

    net = compile_network(graph, backend=device, keep_outputs=False)
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

    return Steps(net, train_step, infer_step, xd)


def build_torch_steps(graph, batch: int, device: str = "cpu") -> Steps:
    """PyTorch's model for `graph` at `batch` and its steps (torch.set_num_threads is the
    caller's)."""
    import torch

    from .interop.pytorch import build_torch_model

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
        model.train(True)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync()

    def infer_step():
        model.train(False)
        with torch.inference_mode():
            model(x)
        sync()

    return Steps(model, train_step, infer_step, x)


_CHILD = """
import json, sys
function, args, needs_torch = json.loads(sys.argv[1])
if needs_torch:
    try:
        import torch  # first, so its OpenMP runtime starts with the user's settings
    except ImportError:
        sys.exit(3)
from engine import bench
print(json.dumps(getattr(bench, function)(*args)))
"""


def run_in_child(function: str, args: list, needs_torch: bool = False):
    """engine.bench.<function>(*args) in a fresh Python process; its JSON result, or None when
    it needs torch and torch is not installed. A torch child gets the user's OpenMP settings
    (the engine shortens OpenMP's spin-wait; PyTorch runs with its default)."""
    env = user_openmp_env() if needs_torch else None
    result = subprocess.run([sys.executable, "-c", _CHILD,
                             json.dumps([function, list(args), needs_torch])],
                            env=env, capture_output=True, text=True)
    if needs_torch and result.returncode == 3:
        return None  # torch is not installed (pip install -e ".[bench]")
    if result.returncode:
        raise RuntimeError(f"the benchmark child {function} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


_SERVER = """
import json, sys
try:
    import torch  # first, so its OpenMP runtime starts with the user's settings
except ImportError:
    sys.exit(3)
from engine.bench import serve_torch_repeats
serve_torch_repeats(*json.loads(sys.argv[1]))
"""


def serve_torch_repeats(name: str, batch: int, device: str, train: bool, threads: int) -> None:
    """The child's side of side_by_side: warm up, say "ready", then time one repeat per line
    read from stdin and print its samples/s."""
    import torch

    torch.set_num_threads(threads)
    steps = build_torch_steps(load_template(name), batch, device)
    timer = Repeats(steps.train if train else steps.infer, batch)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(timer.next()), flush=True)


def side_by_side(name: str, steps: Steps, batch: int, device: str, train: bool, threads: int,
                 repeats: int = REPEATS) -> tuple[list[float], list[float] | None]:
    """Our rates and PyTorch's (None without torch) from alternating repeats: ours, then
    PyTorch's in its child process (which waits on a pipe meanwhile, as we do for it)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps([name, batch, device, train, threads])],
        env=user_openmp_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    ours_timer = Repeats(steps.train if train else steps.infer, batch)
    with child:
        if child.stdout.readline().strip() != "ready":
            if child.wait() == 3:  # torch is not installed (pip install -e ".[bench]")
                return [ours_timer.next() for _ in range(repeats)], None
            raise RuntimeError(f"the PyTorch benchmark failed: {child.stderr.read().strip()}")
        ours_rates, torch_rates_ = [], []
        for _ in range(repeats):
            ours_rates.append(ours_timer.next())
            child.stdin.write("\n")
            child.stdin.flush()
            torch_rates_.append(float(child.stdout.readline()))
        child.stdin.close()
    return ours_rates, torch_rates_


# -- peak memory ------------------------------------------------------------------------------
def _proc_status_kb() -> dict[str, int] | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values if len(values) == 2 else None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; True if it took."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    status = _proc_status_kb()
    return status is not None and status["VmHWM"] <= status["VmRSS"] + 1024


def _max_rss_kb() -> int:
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, kB elsewhere


def peak_memory(framework: str, name: str, batch: int = 64, threads: int = 2,
                device: str = "cpu") -> dict:
    """Peak resident memory of training, measured in THIS process: call it in a fresh one
    (`measure_peak_memory` does).

    framework is "ours" or "pytorch". The same network is first built at batch 1 and trained
    one step, so every kernel is compiled or loaded and every library initialised; it is then
    deleted and garbage-collected, the kernel's peak-RSS counter is reset (writing 5 to
    /proc/self/clear_refs) and the resident set is taken as the baseline. Then the batch's
    input is created, the network (weights, optimizer state, buffers) built, and
    MEMORY_STEPS training steps run; the result is the peak RSS (VmHWM) less the baseline, in
    MB (10^6 bytes). Host memory only: device memory of --device cuda is not seen. Where the
    counter cannot be reset, the lifetime peak (ru_maxrss) is used instead, which also covers
    the warm-up at batch 1 (method "ru_maxrss"; with that small warm-up the two rarely differ).
    """
    if framework == "pytorch":
        import torch

        torch.set_num_threads(threads)
        build = build_torch_steps
    elif framework == "ours":
        build = build_steps
    else:
        raise ValueError(f'framework must be "ours" or "pytorch". Received: {framework!r}')
    graph = load_template(name)
    with limit_threads(threads):
        warm = build(graph, 1, device)
        warm.train()
        del warm
        gc.collect()
        method = "VmHWM" if _reset_peak_rss() else "ru_maxrss"
        status = _proc_status_kb()
        baseline = status["VmRSS"] if status else _max_rss_kb()
        steps = build(graph, batch, device)
        for _ in range(MEMORY_STEPS):
            steps.train()
        status = _proc_status_kb()
        peak = status["VmHWM"] if method == "VmHWM" else max(_max_rss_kb(), baseline)
    return {"framework": framework, "model": name, "batch": batch, "steps": MEMORY_STEPS,
            "peak_mb": (peak - baseline) * 1024 / 1e6, "baseline_mb": baseline * 1024 / 1e6,
            "method": method}


def measure_peak_memory(framework: str, name: str, batch: int = 64, threads: int = 2,
                        device: str = "cpu") -> dict | None:
    """peak_memory() in a fresh child process (None for PyTorch when torch is missing)."""
    return run_in_child("peak_memory", [framework, name, batch, threads, device],
                        needs_torch=framework == "pytorch")


# -- the whole benchmark ----------------------------------------------------------------------
def run_bench(models=None, batch_sizes=None, device: str = "cpu", as_json: bool = False,
              threads: int = 2, layers: bool = False, memory: bool = True) -> dict:
    """Run the benchmark, print it (tables, or one JSON object with as_json) and return
    {"gemm": ..., "rows": [...], "layers": {model: layer_rows}}."""
    report: dict = {"gemm": None, "rows": [], "layers": {}}
    with limit_threads(threads):
        gemm_rate = None
        if device == "cpu":
            rates = gemm_rates(threads)
            gemm_rate = statistics.median(rates)
            report["gemm"] = {"threads": threads, "n": 1024, "dtype": "float32",
                              "gflops": gemm_rate, **_summary(rates)}
            if not as_json:
                print(f"GEMM rate on {threads} thread{'s' if threads != 1 else ''}: "
                      f"{gemm_rate:.0f} GFLOP/s (float32 1024x1024 matmul through numpy's BLAS, "
                      f"median of 7)", flush=True)
        for name in models or DEFAULT_MODELS:
            graph = load_template(name)
            train_ms = None
            for direction, batch in _plan(batch_sizes):
                train = direction == "train"
                steps = build_steps(graph, batch, device)
                flops = step_flops(steps.net)["train" if train else "forward"]
                ours_rates, reference = side_by_side(name, steps, batch, device, train, threads)
                del steps
                row = {"model": name, "direction": direction, "batch": batch, "device": device,
                       "threads": threads, "ours": _summary(ours_rates),
                       "pytorch": _summary(reference) if reference else None,
                       "flops_per_sample": flops}
                if reference:
                    row["ratio"] = row["ours"]["median"] / row["pytorch"]["median"]
                row["gflops"] = flops * row["ours"]["median"] / 1e9
                row["pytorch_gflops"] = (flops * row["pytorch"]["median"] / 1e9
                                         if reference else None)
                row["gemm_fraction"] = row["gflops"] / gemm_rate if gemm_rate else None
                if train and memory and device == "cpu":
                    row["peak_memory"] = {
                        "ours": measure_peak_memory("ours", name, batch, threads, device),
                        "pytorch": measure_peak_memory("pytorch", name, batch, threads, device)}
                if train and train_ms is None:
                    train_ms = batch / row["ours"]["median"] * 1e3
                report["rows"].append(row)
                if not as_json:
                    _print_row(row, header=len(report["rows"]) == 1)
            if layers:
                batch = _plan(batch_sizes)[0][1]
                rows = layer_rows(graph, batch, device)
                _add_rates(rows, gemm_rate)
                report["layers"][name] = {"batch": batch, "layers": rows,
                                          "sum": _layer_sums(rows, gemm_rate)}
                if not as_json:
                    print(format_layer_table(name, batch, threads, rows, gemm_rate, train_ms),
                          flush=True)
        if gemm_rate:  # the machine may be shared: say how much its GEMM rate moved meanwhile
            end_rate = statistics.median(gemm_rates(threads))
            report["gemm"]["end_gflops"] = end_rate
            if not as_json:
                print(f"GEMM rate at the end: {end_rate:.0f} GFLOP/s (at the start "
                      f"{gemm_rate:.0f}, which the % columns use)", flush=True)
    if as_json:
        print(json.dumps(report, indent=1))
    return report


def _plan(batch_sizes):
    if batch_sizes:
        return [(d, b) for b in batch_sizes for d in ("train", "infer")]
    return [("train", 64), ("infer", 256)]


def _summary(rates):
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates)}


def _print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'net':<12} {'dir':<6} {'batch':>5}  {'ours samples/s (min-med-max)':>32}  "
              f"{'PyTorch median':>14}  {'ratio':>6}  {'GFLOP/s':>7}  {'% GEMM':>6}  "
              f"{'peak MB ours / PyTorch':>22}")
    o = row["ours"]
    ours_text = f"{o['min']:,.0f}-{o['median']:,.0f}-{o['max']:,.0f}"
    torch_text = f"{row['pytorch']['median']:,.0f}" if row["pytorch"] else "n/a"
    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
    share = f"{row['gemm_fraction']:.0%}" if row["gemm_fraction"] is not None else "n/a"
    memory = ""
    if "peak_memory" in row:
        peaks = row["peak_memory"]
        theirs = peaks["pytorch"]
        memory = f"{peaks['ours']['peak_mb']:.1f} / " + (
            f"{theirs['peak_mb']:.1f}" if theirs else "n/a")
        if "ru_maxrss" in (peaks["ours"]["method"], theirs and theirs["method"]):
            memory += " (ru_maxrss)"
    print(f"{row['model']:<12} {row['direction']:<6} {row['batch']:>5}  {ours_text:>32}  "
          f"{torch_text:>14}  {ratio:>6}  {row['gflops']:>7.1f}  {share:>6}  {memory:>22}",
          flush=True)


# -- per layer --------------------------------------------------------------------------------
def _time_ms(run, synchronize, rounds: int = 5, min_seconds: float = 0.04) -> float:
    """Milliseconds per call of `run`: the median of `rounds` rounds of at least min_seconds."""
    rates = steady_rates(run, 1, rounds, min_seconds, synchronize)
    return 1e3 / statistics.median(rates)


def layer_rows(graph, batch: int, device: str = "cpu", rounds: int = 5,
               min_seconds: float = 0.04) -> list[dict]:
    """Time every op of our network for `graph` at `batch`, as a training step runs it.

    Each op runs alone on its real inputs (the activations of one forward pass) with a random
    output gradient: forward (training mode), then backward. For conv and dense ops (the
    GEMM_CATEGORIES) backward is timed twice, with needs_input_grad[0] forced False (grad-weight
    and bias alone) and True (everything); grad-input is the difference (noise can make it
    small or negative). Where the training step skips the input gradient (the first layer),
    grad-input is not timed. Other ops get one backward time. The flag is restored afterwards.
    An op marked `fused` (a ReLU whose producer computes it) takes next to no time itself: its
    work is in the producer's times, its FLOPs stay in the sums, and it gets no GFLOP/s.
    Each time is the median of `rounds` rounds of at least min_seconds. Returns one dict per
    op: layer (node id), type, output shape, and per direction {"ms", "flops"} with FLOPs for
    the whole batch (both None where a direction is not run).
    """
    steps = build_steps(graph, batch, device)
    net, backend = steps.net, steps.net.backend
    steps.train()  # compiles or loads every kernel and allocates the buffers
    flops = layer_flops(net)
    rng = np.random.default_rng(1)
    acts = {net.input_id: steps.x}
    for node_id in net.order:
        if node_id in net.ops:
            inputs = [acts[src] for src in net.sources[node_id]]
            acts[node_id] = net.ops[node_id].forward(inputs, True)
    rows = []
    for node_id in net.order:
        op = net.ops.get(node_id)
        if op is None:
            continue
        inputs = [acts[src] for src in net.sources[node_id]]
        shape = net.analysis.shapes[node_id]
        dout = backend.to_device(rng.standard_normal((batch, *shape)).astype(np.float32))
        time_ms = partial(_time_ms, synchronize=backend.synchronize, rounds=rounds,
                          min_seconds=min_seconds)
        forward = time_ms(partial(op.forward, inputs, True))
        row = {"layer": node_id, "type": net.graph.nodes[node_id].type,
               "output": list(shape), "fused": bool(getattr(op, "fused", False)),
               "forward": {"ms": forward}}
        counts = flops[node_id]
        if "grad_weight" in counts:
            saved = op.needs_input_grad
            try:
                op.needs_input_grad = [False, *saved[1:]]
                weight_ms = time_ms(partial(op.backward, dout))
                full_ms = None
                if saved[0]:
                    op.needs_input_grad = [True, *saved[1:]]
                    full_ms = time_ms(partial(op.backward, dout))
            finally:
                op.needs_input_grad = saved
            row["grad_input"] = {"ms": full_ms - weight_ms if full_ms is not None else None}
            row["grad_weight"] = {"ms": weight_ms}
        else:
            row["backward"] = {"ms": time_ms(partial(op.backward, dout))}
        for direction, count in counts.items():
            ms = row[direction]["ms"]
            row[direction]["flops"] = count * batch if ms is not None else None
        rows.append(row)
    return rows


DIRECTIONS = ("forward", "grad_input", "grad_weight", "backward")


def _add_rates(rows: list[dict], gemm_rate: float | None) -> None:
    """GFLOP/s and share of the GEMM rate of each timed direction with FLOPs (in place)."""
    for row in rows:
        for direction in DIRECTIONS:
            cell = row.get(direction)
            if cell is None:
                continue
            ms, flops = cell["ms"], cell["flops"]
            rate = (flops / (ms * 1e-3) / 1e9 if ms and ms > 0 and flops and not row.get("fused")
                    else None)
            cell["gflops"] = rate
            cell["gemm_fraction"] = rate / gemm_rate if rate is not None and gemm_rate else None


def _layer_sums(rows: list[dict], gemm_rate: float | None) -> dict:
    """Sum of the layers' ms and FLOPs: forward, backward (every backward direction) and both."""
    sums = {}
    for label, directions in (("forward", ("forward",)),
                              ("backward", ("grad_input", "grad_weight", "backward")),
                              ("total", DIRECTIONS)):
        ms = flops = 0.0
        for row in rows:
            for direction in directions:
                cell = row.get(direction)
                if cell and cell["ms"] is not None:
                    ms += cell["ms"]
                    flops += cell["flops"] or 0
        rate = flops / (ms * 1e-3) / 1e9 if ms > 0 else None
        sums[label] = {"ms": ms, "flops": int(flops), "gflops": rate,
                       "gemm_fraction": rate / gemm_rate if rate and gemm_rate else None}
    return sums


def format_layer_table(name: str, batch: int, threads: int, rows: list[dict],
                       gemm_rate: float | None, train_ms: float | None = None) -> str:
    """The per-layer table: one line per op and direction, then the sums."""
    def line(layer, type_name, output, direction, cell, note=""):
        if cell is None or cell["ms"] is None:
            numbers = f"{'-':>9} {'-':>9} {'-':>8} {'-':>7}"
        else:
            mflop = f"{cell['flops'] / 1e6:,.1f}" if cell.get("flops") is not None else "-"
            rate = f"{cell['gflops']:.1f}" if cell.get("gflops") is not None else "-"
            share = (f"{cell['gemm_fraction']:.0%}" if cell.get("gemm_fraction") is not None
                     else "-")
            numbers = f"{cell['ms']:>9.3f} {mflop:>9} {rate:>8} {share:>7}"
        return (f"{layer:<16} {type_name:<11} {output:<12} {direction:<12} {numbers}"
                + (f"  {note}" if note else "")).rstrip()

    title = f"{name}: per layer, batch {batch}, {threads} thread{'s' if threads != 1 else ''}"
    if gemm_rate:
        title += f", GEMM rate {gemm_rate:.0f} GFLOP/s"
    lines = [title, f"{'layer':<16} {'type':<11} {'output':<12} {'direction':<12} "
                    f"{'ms':>9} {'MFLOP':>9} {'GFLOP/s':>8} {'% GEMM':>7}"]
    for row in rows:
        first = True
        for direction in DIRECTIONS:
            if direction not in row:
                continue
            cell = row[direction]
            note = ("not needed in training" if direction == "grad_input" and cell["ms"] is None
                    else "fused: computed by the op before it" if first and row.get("fused")
                    else "")
            shape = "x".join(map(str, row["output"]))
            layer, type_name, output = ((row["layer"], row["type"], shape) if first
                                        else ("", "", ""))
            lines.append(line(layer, type_name, output, direction.replace("_", "-"), cell, note))
            first = False
    sums = _layer_sums(rows, gemm_rate)
    for label in ("forward", "backward", "total"):
        lines.append(line("sum of layers" if label == "forward" else "", "", "", label,
                          sums[label]))
    if train_ms is not None:
        lines.append(f"measured training step (with loss and optimizer): {train_ms:.3f} ms")
    return "\n".join(lines)


def layer_table(graph, batch: int, device: str = "cpu", threads: int | None = None,
                gemm_rate: float | None = None) -> str:
    """The per-layer table of `graph` at `batch` as text (measures the GEMM rate on the CPU when
    not given; runs with the current thread settings)."""
    import numba

    threads = threads or numba.get_num_threads()
    if gemm_rate is None and device == "cpu":
        gemm_rate = measure_gemm_rate(threads)
    rows = layer_rows(graph, batch, device)
    _add_rates(rows, gemm_rate)
    name = graph.name if getattr(graph, "name", None) else "network"
    return format_layer_table(name, batch, threads, rows, gemm_rate)
