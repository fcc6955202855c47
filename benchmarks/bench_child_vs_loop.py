"""Does `convdesigner bench`'s PyTorch child measure what a plain PyTorch loop gets? Alternates,
in fresh processes: the bench's child (engine/bench.py's server: 7 timed repeats of 0.4 s on one
fixed batch, the median) and benchmarks/pytorch_loop.py (the last of 3 epochs on MNIST 0:8000),
both lenet5 at batch 64 on 2 threads, and prints each round's pair.

    python benchmarks/bench_child_vs_loop.py [--rounds 4]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine import user_openmp_env  # noqa: E402
from engine.bench import _SERVER  # noqa: E402

MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"


def bench_child() -> float:
    errors = tempfile.TemporaryFile("w+")   # read only on failure: a pipe could fill and block
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, json.dumps(["lenet5", 64, "cpu", True, 2])],
        env=user_openmp_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        text=True, cwd=ROOT)
    with child, errors:
        if child.stdout.readline().strip() != "ready":
            child.wait()
            errors.seek(0)
            raise SystemExit(f"the bench child failed: {errors.read().strip()}")
        rates = []
        for _ in range(7):
            child.stdin.write("\n")
            child.stdin.flush()
            rates.append(float(child.stdout.readline()))
        child.stdin.close()
    return statistics.median(rates)


def plain_loop(data: Path) -> float:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pytorch_loop.py"), "lenet5",
                          str(data), "--epochs", "3", "--train-range", "0:8000"],
                         env=user_openmp_env(), capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    from engine.data import load_dataset

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "mnist.npz"
        mnist = load_dataset(str(MNIST))
        np.savez(data, x=mnist.x.astype(np.float32), y=mnist.y.astype(np.int64))
        for r in range(args.rounds):
            print(f"round {r + 1}: bench child {bench_child():8,.0f}   plain loop "
                  f"{plain_loop(data):8,.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
