"""Per-layer timing of the CPU conv op (forward, grad-input, grad-weight) on the template networks'
conv layers at batch 64, optionally beside PyTorch (when it is importable) with the same threads.
Also our GFLOP/s per direction (nominal FLOPs: grad-weight = forward, grad-input = forward less
the bias adds, as engine/bench.py counts them) and the total's share of the machine's GEMM rate
(float32 1024x1024 numpy matmul on the same threads, measured first).

Run: PYTHONPATH=. python benchmarks/conv_layers.py [--algorithm direct|gemm] [--torch]
"""
from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np

import engine.kernels.cpu.conv as conv
from engine.bench import measure_gemm_rate
from engine.modules import REGISTRY, OpSpec, resolve_params
from engine.threads import limit_threads

# name, type, in shape, params, whether the layer needs its input gradient in training
LAYERS = [
    ("lenet5 c1", "Conv2D", (1, 28, 28), {"filters": 6, "kernel_size": 5, "padding": 2}, False),
    ("lenet5 c2", "Conv2D", (6, 14, 14), {"filters": 16, "kernel_size": 5}, True),
    ("vgg-small c1", "Conv2D", (3, 32, 32), {"filters": 32, "kernel_size": 3, "padding": 1}, False),
    ("vgg-small c2", "Conv2D", (32, 32, 32), {"filters": 32, "kernel_size": 3, "padding": 1}, True),
    ("vgg-small c3", "Conv2D", (32, 16, 16), {"filters": 64, "kernel_size": 3, "padding": 1}, True),
    ("vgg-small c4", "Conv2D", (64, 16, 16), {"filters": 64, "kernel_size": 3, "padding": 1}, True),
    ("signal1d c1", "Conv1D", (1, 1024), {"filters": 16, "kernel_size": 9}, False),
    ("signal1d c2", "Conv1D", (16, 254), {"filters": 32, "kernel_size": 9}, True),
]


CLOCK = time.perf_counter


def best_ms(run, repeats: int, rounds: int) -> float:
    """The fastest of `rounds` means over `repeats` calls (the machine may be shared)."""
    run()
    best = float("inf")
    for _ in range(rounds):
        start = CLOCK()
        for _ in range(repeats):
            run()
        best = min(best, (CLOCK() - start) / repeats)
    return best * 1e3


def ours(type_name, in_shape, params, batch, algorithm, repeats, rounds):
    conv.FORCE_ALGORITHM = algorithm
    mt = REGISTRY[type_name]
    resolved = resolve_params(mt, params)
    out_shape = mt.infer(resolved, [in_shape])
    op = mt.op(OpSpec("conv", resolved, [in_shape], out_shape))
    rng = np.random.default_rng(0)
    for name, shape in mt.arrays(resolved, [in_shape]).items():
        op.params[name] = rng.standard_normal(shape).astype(np.float32)
        op.grads[name] = np.zeros(shape, np.float32)
    op.allocate(batch)
    x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
    dy = rng.standard_normal((batch, *out_shape)).astype(np.float32)
    forward = best_ms(lambda: op.forward([x], True), repeats, rounds)
    op.needs_input_grad = [False]
    weight_only = best_ms(lambda: op.backward(dy), repeats, rounds)
    op.needs_input_grad = [True]
    both = best_ms(lambda: op.backward(dy), repeats, rounds)
    conv.FORCE_ALGORITHM = None
    flops = mt.flops(resolved, [in_shape], out_shape) * batch
    bias = math.prod(out_shape) * batch if resolved["bias"] else 0
    return forward, both - weight_only, weight_only, op.algorithms, (flops, flops - bias, flops)


def pytorch(in_shape, params, batch, need_input, repeats, rounds):
    import torch

    dims = len(in_shape) - 1
    k = params["kernel_size"]
    pad = params.get("padding", 0)
    x = torch.randn(batch, *in_shape)
    w = torch.randn(params["filters"], in_shape[0], *([k] * dims))
    b = torch.randn(params["filters"])
    function = (torch.nn.functional.conv1d, torch.nn.functional.conv2d,
                torch.nn.functional.conv3d)[dims - 1]
    dy = torch.randn_like(function(x, w, b, padding=pad))

    def backward(mask):
        return torch.ops.aten.convolution_backward(dy, x, w, [params["filters"]], [1] * dims,
                                                   [pad] * dims, [1] * dims, False, [0] * dims,
                                                   1, mask)

    with torch.no_grad():
        forward = best_ms(lambda: function(x, w, b, padding=pad), repeats, rounds)
        weight_only = best_ms(lambda: backward([False, True, True]), repeats, rounds)
        both = best_ms(lambda: backward([True, True, True]), repeats, rounds) if need_input \
            else weight_only
    return forward, both - weight_only, weight_only


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", choices=conv.ALGORITHMS, default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", default="", help="only layers whose name contains this")
    parser.add_argument("--torch", action="store_true", help="also time PyTorch")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by process CPU time: steadier on a busy machine, but with "
                             "several threads it is their sum, not the wall time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    if args.torch:
        import torch

        torch.set_num_threads(args.threads)
    header = f"{'layer':13s} {'fwd':>7s} {'gin':>7s} {'gw+gb':>7s} {'total':>7s}"
    print(header + ("   torch: fwd     gin   gw+gb   total" if args.torch else "")
          + f"   (ms, batch {args.batch}, {args.threads} threads)")
    with limit_threads(args.threads):
        gemm = measure_gemm_rate(args.threads)
        print(f"numba threads {numba.get_num_threads()}; GEMM rate {gemm:.0f} GFLOP/s; "
              f"after the ms columns: our GFLOP/s fwd/gin/gw and the total's % of GEMM")
        for name, type_name, in_shape, params, need_input in LAYERS:
            if args.layers not in name:
                continue
            fwd, gin, gw, algorithms, flops = ours(type_name, in_shape, params, args.batch,
                                                   args.algorithm, args.repeats, args.rounds)
            gin = gin if need_input else 0.0
            flops = (flops[0], flops[1] if need_input else 0, flops[2])
            rates = [f / (ms * 1e6) if ms > 0 and f else None
                     for f, ms in zip(flops, (fwd, gin, gw), strict=True)]
            total = sum(flops) / ((fwd + gin + gw) * 1e6)
            line = f"{name:13s} {fwd:7.3f} {gin:7.3f} {gw:7.3f} {fwd + gin + gw:7.3f}"
            line += "  " + "/".join(f"{r:.0f}" if r else "-" for r in rates)
            line += f" {total / gemm:4.0%}"
            if args.torch:
                t = pytorch(in_shape, params, args.batch, need_input, args.repeats, args.rounds)
                line += "   " + " ".join(f"{v:7.3f}" for v in (*t, sum(t)))
            picks = "/".join(algorithms[d][0] for d in ("forward", "grad_input", "grad_weight"))
            print(line + f"   [{picks}]", flush=True)


if __name__ == "__main__":
    main()
