"""Steady-state training and inference samples/s of lenet5, vgg-small and signal1d beside
PyTorch CPU in the same run, with the machine's GEMM rate, each step's achieved GFLOP/s and its
share of that rate, and the peak memory of training (what `convdesigner bench` prints; needs the
bench extra for torch).

    python benchmarks/train_infer.py [--threads 2] [--layers] [--no-memory] [--json]
"""
import argparse

from engine.bench import DEFAULT_MODELS, run_bench

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", action="append", help=f"default: {', '.join(DEFAULT_MODELS)}")
parser.add_argument("--batch-size", type=int, action="append",
                    help="train and infer at this batch (repeatable); default: train 64, infer 256")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--layers", action="store_true",
                    help="also a per-layer table (forward, grad-input, grad-weight, GFLOP/s)")
parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
parser.add_argument("--json", action="store_true")
args = parser.parse_args()
run_bench(models=args.model, batch_sizes=args.batch_size, threads=args.threads,
          layers=args.layers, memory=not args.no_memory, as_json=args.json)
