"""Training throughput on an NVIDIA GPU: convdesigner's CUDA backend beside PyTorch's.

    python benchmarks/gpu_bench.py [--model lenet5 ...] [--batch-size 64 ...] [--json FILE]

Needs a CUDA GPU, numba-cuda with its CUDA libraries, and torch (pip install -e ".[bench]").
Each figure is samples/s of a full training step (forward, cross-entropy, backward, momentum-SGD
update) on one fixed batch already on the device, the median of --repeats timed runs after
warm-up. PyTorch runs in float32 with TF32 off (as ours) unless --tf32; cuDNN autotuning is on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.bench import steady_rates  # noqa: E402
from engine.kernels.cuda.bench import cuda_train_step_timer  # noqa: E402
from engine.network import compile_network  # noqa: E402
from engine.templates import load_template  # noqa: E402

MODELS = ("lenet5", "vgg-small", "signal1d")
BATCHES = (64, 256)


def ours(graph, batch: int) -> Callable[[], float]:
    return cuda_train_step_timer(compile_network(graph, backend="cuda"), batch)


def pytorch(graph, batch: int, tf32: bool) -> Callable[[], None]:
    import torch

    from engine.interop.pytorch import build_torch_model

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    analysis = graph.check()
    model = build_torch_model(graph).cuda().train()
    x = torch.randn(batch, *analysis.shapes[graph.input_node.id], device="cuda")
    y = torch.randint(0, analysis.shapes[graph.output_node.id][0], (batch,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # the one wait a training step has, as ours

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help=f"template (default: {MODELS})")
    parser.add_argument("--batch-size", type=int, action="append",
                        help=f"default: {BATCHES}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 tensor cores")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)

    from engine.devices import describe_devices

    print(describe_devices().splitlines()[0])
    try:
        import torch
    except ImportError:
        print("torch is not installed: showing convdesigner only (pip install -e '.[bench]')")
        torch = None
    rows = []
    print(f"{'model':<10} {'batch':>5} {'ours samples/s':>15} {'PyTorch samples/s':>18} "
          f"{'ours/PyTorch':>12}")
    for name in args.model or MODELS:
        graph = load_template(name)
        for batch in args.batch_size or BATCHES:
            row = {"model": name, "batch": batch,
                   "ours": statistics.median(steady_rates(ours(graph, batch), batch,
                                                          args.repeats, args.min_seconds))}
            if torch is not None:
                step = pytorch(graph, batch, args.tf32)
                row["pytorch"] = statistics.median(steady_rates(step, batch, args.repeats,
                                                                args.min_seconds))
                row["ratio"] = row["ours"] / row["pytorch"]
            rows.append(row)
            theirs = f"{row['pytorch']:>18,.0f} {row['ratio']:>11.2f}x" if "pytorch" in row \
                else f"{'n/a':>18} {'':>12}"
            print(f"{name:<10} {batch:>5} {row['ours']:>15,.0f} {theirs}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
