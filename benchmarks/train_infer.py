"""Steady-state training and inference samples/s of lenet5, vgg-small and signal1d beside
PyTorch CPU in the same run (what `convdesigner bench` prints; needs the bench extra for torch).

    python benchmarks/train_infer.py [--threads 2] [--json]
"""
import argparse

from engine.bench import DEFAULT_MODELS, run_bench

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", action="append", help=f"default: {', '.join(DEFAULT_MODELS)}")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--layers", action="store_true", help="also a per-layer table")
parser.add_argument("--json", action="store_true")
args = parser.parse_args()
run_bench(models=args.model, threads=args.threads, layers=args.layers, as_json=args.json)
