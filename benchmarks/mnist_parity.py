"""Accuracy parity on real MNIST: LeNet-5 trained 10 epochs with Adam (lr 0.001, batch 64, no
schedule, no augmentation) on digits 0-7999, evaluated on 8000-9999, per seed: convdesigner
(`convdesigner train`, in a fresh process) beside the same net and loop in plain PyTorch.

    python benchmarks/mnist_parity.py [--seeds 0 1 2] [--epochs 10]
    python benchmarks/mnist_parity.py --lockstep [--epochs 3]

Also prints each side's first loss (a fresh classifier starts near ln 10 = 2.303). --lockstep
trains both from the same initial weights on the same batches in one process and prints, after
each epoch, the largest weight difference and both accuracies.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"


def ours(seed: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "m.json"
        subprocess.run([sys.executable, "-m", "engine.cli", "train", "lenet5", "--data",
                        str(MNIST), "--train-range", "0:8000", "--val-range", "8000:10000",
                        "--epochs", str(epochs), "--optimizer", "adam", "--lr", "0.001",
                        "--batch-size", "64", "--seed", str(seed), "--quiet",
                        "--metrics-json", str(metrics)], check=True, cwd=ROOT)
        rows = json.loads(metrics.read_text())
    first = subprocess.run([sys.executable, "-c", FIRST_LOSS_OURS, str(seed), str(MNIST)],
                           check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return {"accuracy": rows[-1]["val_acc"], "first_loss": float(first)}


FIRST_LOSS_OURS = """
import sys
from engine import compile_network, losses
from engine.data import Normalization, load_dataset
from engine.templates import load_template
seed, path = int(sys.argv[1]), sys.argv[2]
data = load_dataset(path)
x = Normalization.fit(data.x[:8000]).apply(data.x[:64])
net = compile_network(load_template("lenet5"), seed=seed)
print(losses.cross_entropy(net.forward(x), data.y[:64])[0])
"""

PYTORCH = """
import sys, json
import numpy as np
import torch
from torch import nn
from engine.data import load_dataset

seed, epochs, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.manual_seed(seed)
torch.set_num_threads(2)
data = load_dataset(path)
x, y = torch.tensor(data.x), torch.tensor(data.y)
mean, std = x[:8000].mean(), x[:8000].std()
x = (x - mean) / std
net = nn.Sequential(
    nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
with torch.no_grad():
    first = loss_fn(net(x[:64]), y[:64]).item()
for epoch in range(epochs):
    net.train()
    for batch in torch.randperm(8000).split(64):
        optimizer.zero_grad()
        loss = loss_fn(net(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
net.eval()
with torch.no_grad():
    accuracy = (net(x[8000:]).argmax(1) == y[8000:]).float().mean().item()
print(json.dumps({"accuracy": accuracy, "first_loss": first}))
"""


def pytorch(seed: int, epochs: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PYTORCH, str(seed), str(epochs), str(MNIST)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out)


def lockstep(epochs: int) -> None:
    import numpy as np
    import torch
    from torch import nn

    from engine import compile_network, losses
    from engine.data import Normalization, load_dataset
    from engine.optim import Optimizer
    from engine.templates import load_template

    torch.set_num_threads(2)
    data = load_dataset(str(MNIST))
    x, y = Normalization.fit(data.x[:8000]).apply(data.x), data.y
    net = compile_network(load_template("lenet5"), seed=0)
    torch_net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    layers = {"conv1": 0, "conv2": 3, "dense1": 7, "dense2": 9, "dense3": 11}
    with torch.no_grad():
        for name, index in layers.items():
            torch_net[index].weight.copy_(torch.tensor(net.params[f"{name}/weight"]))
            torch_net[index].bias.copy_(torch.tensor(net.params[f"{name}/bias"]))
    ours, theirs = Optimizer("adam", lr=1e-3), torch.optim.Adam(torch_net.parameters(), lr=1e-3)
    tx, ty, loss_fn = torch.tensor(x), torch.tensor(y), nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(8000)
        for start in range(0, 8000, 64):
            batch = np.sort(order[start:start + 64])
            _, dy = losses.cross_entropy(net.forward(x[batch], training=True), y[batch])
            net.backward(dy)
            ours.step(net)
            theirs.zero_grad()
            loss_fn(torch_net(tx[batch]), ty[batch]).backward()
            theirs.step()
        gap = max(float(np.abs(net.params[f"{name}/weight"]
                               - torch_net[index].weight.detach().numpy()).max())
                  for name, index in layers.items())
        with torch.no_grad():
            torch_acc = (torch_net(tx[8000:]).argmax(1) == ty[8000:]).float().mean().item()
        acc = float((net.forward(x[8000:]).argmax(1) == y[8000:]).mean())
        print(f"epoch {epoch}: largest weight difference {gap:.2e}, accuracy ours {acc:.2%}, "
              f"PyTorch {torch_acc:.2%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lockstep", action="store_true")
    args = parser.parse_args()
    if args.lockstep:
        sys.path.insert(0, str(ROOT))
        lockstep(args.epochs)
        return
    print(f"{'seed':>4}  {'ours acc':>9}  {'PyTorch acc':>11}  {'ours 1st loss':>13}  "
          f"{'PyTorch 1st loss':>16}")
    for seed in args.seeds:
        a, b = ours(seed, args.epochs), pytorch(seed, args.epochs)
        print(f"{seed:>4}  {a['accuracy']:>9.2%}  {b['accuracy']:>11.2%}  "
              f"{a['first_loss']:>13.3f}  {b['first_loss']:>16.3f}", flush=True)


if __name__ == "__main__":
    main()
