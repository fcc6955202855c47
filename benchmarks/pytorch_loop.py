"""The training loop as PyTorch users write it: one net, momentum SGD, batch 64, 2 threads; prints
one JSON object per epoch (epoch, seconds, samples_per_sec) on stdout.

    python benchmarks/pytorch_loop.py lenet5 DATA.npz [--epochs 2] [--train-range 0:8000]

DATA.npz holds x (float32, channels-first) and y (int64), as `convdesigner train` reads it.
"""
import argparse
import json
import time

import numpy as np
import torch
from torch import nn

NETS = {
    "lenet5": lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)),
    "vgg-small": lambda: nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Linear(256, 10)),
    "signal1d": lambda: nn.Sequential(
        nn.Conv1d(1, 16, 9), nn.ReLU(), nn.MaxPool1d(4),
        nn.Conv1d(16, 32, 9), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(1952, 2)),
}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", choices=NETS)
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-range", default=None, help="A:B (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    data = np.load(args.data)
    start, stop = (map(int, args.train_range.split(":")) if args.train_range
                   else (0, len(data["y"])))
    x, y = torch.from_numpy(data["x"][start:stop]), torch.from_numpy(data["y"][start:stop])
    axes = [0] + list(range(2, x.ndim))  # per-channel statistics, as convdesigner normalises
    x = (x - x.mean(axes, keepdim=True)) / x.std(axes, keepdim=True)

    model = NETS[args.net]()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        model.train()
        begin = time.perf_counter()
        for batch in torch.randperm(len(x)).split(args.batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - begin
        print(json.dumps({"epoch": epoch, "seconds": seconds, "samples_per_sec": len(x) / seconds}),
              flush=True)


if __name__ == "__main__":
    main()
