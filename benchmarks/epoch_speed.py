"""What users get: `convdesigner train`'s epoch rate beside the same loop in plain PyTorch
(benchmarks/pytorch_loop.py), and the Python API's training step (DESIGN.md 3.4, backward
returning dx) beside PyTorch's computing dx too. Momentum SGD (the API step: plain SGD on
net.params), batch 64, 2 threads.

Every figure comes from a fresh process; the sides alternate, ours then PyTorch's, for each
round, so both see the same machine. A process's epoch figure is the median samples/s of its
epochs after the first (the first compiles or loads the kernels; this machine's speed drifts
between epochs, so one epoch's figure swings by a third): ours from --metrics-json, PyTorch's
from its own clock around each epoch. The step figure is the median of 7 repeats of at least
0.4 s each.

    python benchmarks/epoch_speed.py [--rounds 3] [--net lenet5 ...] [--epochs 4] [--no-api]

Data (written once to a temporary folder as .npz): lenet5 on the MNIST files in
shared/data/mnist-10k (train 0:8000), vgg-small on the built-in shapes-rgb (0:2048), signal1d on
the built-in signals (0:2560).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine import user_openmp_env  # noqa: E402  (PyTorch's processes get the user's OpenMP)

NETS = {"lenet5": (str(ROOT.parent / "shared" / "data" / "mnist-10k"), "0:8000"),
        "vgg-small": ("shapes-rgb", "0:2048"),
        "signal1d": ("signals", "0:2560")}
BATCH = 64


def ours_epoch(net: str, data: Path, train_range: str, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "metrics.json"
        subprocess.run([sys.executable, "-m", "engine.cli", "train", net, "--data", str(data),
                        "--train-range", train_range, "--epochs", str(epochs), "--optimizer",
                        "momentum", "--lr", "0.01", "--batch-size", str(BATCH),
                        "--metrics-json", str(metrics)],
                       check=True, cwd=ROOT, capture_output=True)
        return steady([row["samples_per_sec"] for row in json.loads(metrics.read_text())])


def pytorch_epoch(net: str, data: Path, train_range: str, epochs: int) -> float:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pytorch_loop.py"), net,
                          str(data), "--epochs", str(epochs), "--train-range", train_range,
                          "--batch-size", str(BATCH)],
                         check=True, capture_output=True, text=True, env=user_openmp_env()).stdout
    return steady([json.loads(line)["samples_per_sec"] for line in out.strip().splitlines()])


def steady(rates: list[float]) -> float:
    """The median of the epochs after the first (the only one if there is one)."""
    return statistics.median(rates[1:] or rates)


API_STEP = f"""
import json, sys
import numpy as np
from engine import compile_network, losses
from engine.bench import steady_rates
from engine.templates import load_template

net = compile_network(load_template(sys.argv[1]))
data = np.load(sys.argv[2])
x, y = data["x"][:{BATCH}], data["y"][:{BATCH}]

def step():
    out = net.forward(x, training=True)
    loss, dy = losses.cross_entropy(out, y)
    net.backward(dy)  # returns dx
    for key, grad in net.grads.items():
        net.params[key] -= 0.01 * grad

print(json.dumps(steady_rates(step, len(x))))
"""

API_STEP_PYTORCH = f"""
import json, runpy, sys
import numpy as np
import torch
from engine.bench import steady_rates

torch.set_num_threads(2)
NETS = runpy.run_path(sys.argv[3], run_name="nets")["NETS"]
model = NETS[sys.argv[1]]()
data = np.load(sys.argv[2])
x, y = torch.from_numpy(data["x"][:{BATCH}]), torch.from_numpy(data["y"][:{BATCH}])
loss_fn = torch.nn.CrossEntropyLoss()

def step():
    model.zero_grad(set_to_none=True)
    xg = x.clone().requires_grad_(True)
    loss_fn(model(xg), y).backward()  # xg.grad: dx
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad

print(json.dumps(steady_rates(step, len(x))))
"""


def api_step(side: str, net: str, data: Path) -> float:
    code = API_STEP if side == "ours" else API_STEP_PYTORCH
    out = subprocess.run([sys.executable, "-c", code, net, str(data),
                          str(ROOT / "benchmarks" / "pytorch_loop.py")],
                         check=True, capture_output=True, text=True, cwd=ROOT,
                         env=user_openmp_env() if side == "pytorch" else None).stdout
    return statistics.median(json.loads(out.strip().splitlines()[-1]))


def write_data(net: str, folder: Path) -> Path:
    from engine.data import load_dataset

    source, _ = NETS[net]
    path = folder / f"{net}.npz"
    data = load_dataset(source)
    np.savez(path, x=data.x.astype(np.float32), y=data.y.astype(np.int64))
    return path


def summary(rates: list[float]) -> str:
    return f"{min(rates):>8,.0f} {statistics.median(rates):>8,.0f} {max(rates):>8,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", action="append", choices=NETS, help="default: all three")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-api", action="store_true", help="skip the Python API step")
    args = parser.parse_args()
    kinds = [("epoch", ours_epoch, pytorch_epoch)]
    if not args.no_api:
        kinds.append(("API step", lambda n, d, r, e: api_step("ours", n, d),
                      lambda n, d, r, e: api_step("pytorch", n, d)))
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (2 threads each side)")
    print(f"{'net':<10} {'measure':<9} {'ours samples/s min med max':>26}   "
          f"{'PyTorch min med max':>26}   {'ratio':>5}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for net in args.net or list(NETS):
            data = write_data(net, Path(folder))
            train_range = NETS[net][1]
            for label, ours, theirs in kinds:
                a, b = [], []
                for _ in range(args.rounds):
                    a.append(ours(net, data, train_range, args.epochs))
                    b.append(theirs(net, data, train_range, args.epochs))
                ratio = statistics.median(a) / statistics.median(b)
                print(f"{net:<10} {label:<9} {summary(a)}   {summary(b)}   {ratio:>4.2f}x",
                      flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
