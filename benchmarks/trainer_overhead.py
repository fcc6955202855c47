"""What the Trainer adds per batch over its bare step: one epoch of Trainer.run() beside the same
batches through forward, cross-entropy, backward and the momentum update alone (inputs gathered
and normalised beforehand), in one process, alternating, 4 rounds; ms per batch, median (min-max).

    python benchmarks/trainer_overhead.py [--net lenet5 ...]

lenet5 on MNIST 0:8000, vgg-small on shapes-rgb 0:1024, signal1d on signals 0:2560; batch 64,
2 threads.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine import losses  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.session import Session  # noqa: E402
from engine.threads import limit_threads  # noqa: E402
from engine.train import normalize_into  # noqa: E402

NETS = {"lenet5": (str(ROOT.parent / "shared" / "data" / "mnist-10k"), 8000),
        "vgg-small": ("shapes-rgb", 1024),
        "signal1d": ("signals", 2560)}


def measure(net_name: str, rounds: int = 4) -> tuple[list[float], list[float]]:
    source, stop = NETS[net_name]
    session = Session.open(net_name, keep_outputs=False)
    s = session.settings
    s.optimizer, s.lr, s.batch_size = "momentum", 0.01, 64
    trainer = session.trainer(load_dataset(source), (0, stop), (0, 0), epochs=1)
    trainer.run()  # compiles or loads the kernels
    net, optimizer, batches = trainer.net, trainer.optimizer, trainer.batches_per_epoch
    order = np.random.default_rng(0).permutation(stop)
    indices = [np.sort(order[i * 64:(i + 1) * 64]) for i in range(batches)]
    norm = trainer.normalization
    inputs = [normalize_into(np.empty((len(i), *trainer.x.shape[1:]), net.dtype), trainer.x[i],
                             norm.mean, norm.std) for i in indices]

    def bare() -> None:
        for x, index in zip(inputs, indices):
            out = net.backend.to_host(net.run_forward(x, True))
            _, dy = losses.cross_entropy(out, trainer.y[index])
            net.run_backward(dy)
            optimizer.step(net)

    def epoch() -> None:
        trainer.epochs += 1
        trainer.run()

    times = {bare: [], epoch: []}
    for _ in range(rounds):
        for run, results in times.items():
            start = time.perf_counter()
            run()
            results.append((time.perf_counter() - start) / batches * 1e3)
    return times[epoch], times[bare]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", action="append", choices=NETS, help="default: all three")
    args = parser.parse_args()
    print(f"{'net':<10} {'Trainer ms/batch':>22} {'bare step ms/batch':>22} {'added':>7}")
    with limit_threads(2):
        for name in args.net or list(NETS):
            epoch, bare = measure(name)
            cells = [f"{statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f})"
                     for t in (epoch, bare)]
            added = statistics.median(epoch) / statistics.median(bare) - 1
            print(f"{name:<10} {cells[0]:>22} {cells[1]:>22} {added:>7.1%}", flush=True)


if __name__ == "__main__":
    main()
