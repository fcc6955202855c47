"""Would training in a worker process shield it from the designer's window? The window's work
costs the training thread through two doors: the cores and, in the same process, the interpreter
lock. Here lenet5 trains on MNIST (the Trainer, batch 64, over 300 batches) with nothing beside
it, beside a Python thread of its own process that computes BURN ms of every PERIOD ms (holding
the lock, as the window's Python does), and beside a process doing the same; each round runs
the three in fresh processes, alternating.

    python benchmarks/core_contention.py [--rounds 5] [--burn 5] [--period 50]

If the process side loses as much as the thread side, the lock is not what costs: a worker
process would not win the training back.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"
WARM, TIMED = 40, 300


def burn(busy_ms: float, period_ms: float) -> None:
    while True:
        end = time.perf_counter() + busy_ms / 1e3
        while time.perf_counter() < end:
            pass
        time.sleep((period_ms - busy_ms) / 1e3)


def train(beside: str, busy_ms: float, period_ms: float) -> float:
    """Samples/s over TIMED batches after WARM, with `beside` ('nothing', 'thread', 'process')
    started at the end of the warm-up."""
    sys.path.insert(0, str(ROOT))
    from engine.data import load_dataset
    from engine.session import Session

    session = Session.open("lenet5", keep_outputs=False)
    session.settings.batch_size, session.settings.epochs = 64, 1000
    trainer = session.trainer(load_dataset(str(MNIST)), (0, 8000), (0, 0))
    stamps: list[float] = []
    helper: list[subprocess.Popen] = []

    def listen(_event) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) == WARM and beside == "thread":
            threading.Thread(target=burn, args=(busy_ms, period_ms), daemon=True).start()
        if len(stamps) == WARM and beside == "process":
            helper.append(subprocess.Popen([sys.executable, __file__, "--burn-only",
                                            "--burn", str(busy_ms), "--period", str(period_ms)]))
        if len(stamps) == WARM + TIMED:
            trainer.stop()
    trainer.batch_listeners.append(listen)
    try:
        trainer.run()
    finally:
        for process in helper:
            process.kill()
    timed = stamps[WARM:]
    return (len(timed) - 1) * 64 / (timed[-1] - timed[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burn", type=float, default=5.0, help="ms of computing per period")
    parser.add_argument("--period", type=float, default=50.0, help="ms")
    parser.add_argument("--beside", choices=("nothing", "thread", "process"))
    parser.add_argument("--burn-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.burn_only:
        burn(args.burn, args.period)
    if args.beside:
        print(train(args.beside, args.burn, args.period))
        return 0
    rates: dict[str, list[float]] = {"nothing": [], "thread": [], "process": []}
    for _ in range(args.rounds):
        for beside, found in rates.items():
            out = subprocess.run([sys.executable, __file__, "--beside", beside, "--burn",
                                  str(args.burn), "--period", str(args.period)],
                                 capture_output=True, text=True, check=True).stdout
            found.append(float(out.split()[-1]))
        print("  ".join(f"{k} {v[-1]:7,.0f}" for k, v in rates.items()), flush=True)
    alone = statistics.median(rates["nothing"])
    print(f"median samples/s: alone {alone:,.0f}; beside a thread computing {args.burn:g} of every "
          f"{args.period:g} ms {statistics.median(rates['thread']) / alone:.2f}x; beside a "
          f"process doing the same {statistics.median(rates['process']) / alone:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
