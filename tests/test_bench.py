"""`convdesigner bench`'s plumbing: the per-layer table, the FLOP accounting, peak memory and the
JSON output (small batches and short timings; no timing is asserted)."""
import json
from functools import partial

import pytest

from engine import bench, compile_network
from engine.cli import main
from engine.templates import load_template


def lenet5_hand_flops():
    """Forward FLOPs per sample of lenet5's layers, and its training-step FLOPs, by hand.

    conv: outputs x (2 x in_channels x taps + 1 bias add); dense: units x (2 x features + 1).
    Backward: conv/dense grad-weight (with the bias gradient) = forward, grad-input = forward
    less the bias adds (not for conv1, whose input gradient training skips); activation and
    pooling backward = forward; flatten = 0.
    """
    c1 = 6 * 28 * 28   # conv1 outputs: 6 filters, 5x5, padding 2 on 1x28x28
    c2 = 16 * 10 * 10  # conv2 outputs: 16 filters, 5x5 on 6x14x14
    forward = {
        "conv1": c1 * (2 * 1 * 25 + 1), "relu1": c1, "pool1": 6 * 14 * 14 * 4,
        "conv2": c2 * (2 * 6 * 25 + 1), "relu2": c2, "pool2": 16 * 5 * 5 * 4, "flatten1": 0,
        "dense1": 120 * (2 * 400 + 1), "relu3": 120, "dense2": 84 * (2 * 120 + 1), "relu4": 84,
        "dense3": 10 * (2 * 84 + 1)}
    grad_input = {"conv1": 0, "conv2": c2 * 2 * 6 * 25, "dense1": 120 * 2 * 400,
                  "dense2": 84 * 2 * 120, "dense3": 10 * 2 * 84}
    train = sum(forward.values())  # forward
    train += sum(forward[n] for n in grad_input)  # grad-weight of conv and dense
    train += sum(grad_input.values())
    train += sum(f for n, f in forward.items() if n not in grad_input)  # other backward
    return forward, grad_input, train


def test_training_flops_of_lenet5_match_the_hand_count():
    forward, grad_input, train = lenet5_hand_flops()
    net = compile_network(load_template("lenet5"))
    assert net.analysis.shapes["conv1"] == (6, 28, 28)
    assert net.analysis.shapes["conv2"] == (16, 10, 10)
    net.set_input_grad(False)
    layers = bench.layer_flops(net)
    assert {n: f["forward"] for n, f in layers.items()} == forward
    assert {n: f["grad_input"] for n, f in layers.items() if "grad_input" in f} == grad_input
    assert all(f["grad_weight"] == forward[n] for n, f in layers.items() if "grad_weight" in f)
    assert bench.step_flops(net) == {"forward": sum(forward.values()), "train": train}
    net.set_input_grad(True)  # conv1's input gradient is counted once it is computed
    assert bench.layer_flops(net)["conv1"]["grad_input"] == 6 * 28 * 28 * 2 * 25


def test_layer_table_has_each_direction_of_conv_pool_and_dense():
    rows = bench.layer_rows(load_template("lenet5"), batch=2, rounds=1, min_seconds=0.0)
    by_layer = {row["layer"]: row for row in rows}
    assert list(by_layer) == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten1",
                              "dense1", "relu3", "dense2", "relu4", "dense3"]
    for name in ("conv2", "dense1"):
        row = by_layer[name]
        assert "backward" not in row
        for direction in ("forward", "grad_input", "grad_weight"):
            assert row[direction]["ms"] is not None and row[direction]["flops"] > 0
    # the training step skips conv1's input gradient: it is not timed
    assert by_layer["conv1"]["grad_input"] == {"ms": None, "flops": None}
    assert by_layer["conv1"]["grad_weight"]["flops"] == 2 * 6 * 28 * 28 * 51
    pool = by_layer["pool1"]
    assert set(pool) == {"layer", "type", "output", "fused", "forward", "backward"}
    assert pool["backward"]["flops"] == pool["forward"]["flops"] == 2 * 6 * 14 * 14 * 4

    bench._add_rates(rows, gemm_rate=100.0)
    assert "gflops" in by_layer["conv2"]["grad_weight"]
    for row in rows:  # a ReLU computed by its producer (if the engine fuses it) gets no rate
        if row["fused"]:
            assert row["forward"]["gflops"] is None and row["backward"]["gflops"] is None
    text = bench.format_layer_table("lenet5", 2, 1, rows, 100.0, train_ms=1.0)
    header = text.splitlines()[1].split()
    assert header == ["layer", "type", "output", "direction", "ms", "MFLOP", "GFLOP/s", "%",
                      "GEMM"]
    for word in ("grad-input", "grad-weight", "backward", "not needed in training",
                 "sum of layers", "total", "measured training step"):
        assert word in text
    sums = bench._layer_sums(rows, 100.0)
    assert sums["total"]["ms"] == pytest.approx(sums["forward"]["ms"] + sums["backward"]["ms"])


def test_needs_input_grad_is_restored_after_timing(monkeypatch):
    built = []

    def build_steps(*args, **kwargs):
        built.append(real_build_steps(*args, **kwargs))
        return built[-1]

    real_build_steps = bench.build_steps
    monkeypatch.setattr(bench, "build_steps", build_steps)
    bench.layer_rows(load_template("lenet5"), batch=2, rounds=1, min_seconds=0.0)
    (steps,) = built
    flags = {n: op.needs_input_grad for n, op in steps.net.ops.items()}
    assert flags["conv1"] == [False]
    assert all(flag == [True] for n, flag in flags.items() if n != "conv1")


def test_gemm_rate_is_positive():
    rates = bench.gemm_rates(1, n=128, repeats=2, min_seconds=0.01)
    assert len(rates) == 2 and min(rates) > 0


def test_peak_memory_of_our_training_in_a_child_process():
    result = bench.measure_peak_memory("ours", "lenet5", batch=64, threads=1)
    assert result["peak_mb"] > 0
    assert result["method"] in ("VmHWM", "ru_maxrss")
    assert result["steps"] == bench.MEMORY_STEPS


def test_peak_memory_of_pytorch_in_a_child_process():
    pytest.importorskip("torch")
    result = bench.measure_peak_memory("pytorch", "lenet5", batch=64, threads=1)
    assert result["peak_mb"] > 0 and result["framework"] == "pytorch"


def quick(monkeypatch):
    """Short timings: one repeat each, a small GEMM."""
    monkeypatch.setattr(bench, "gemm_rates",
                        partial(bench.gemm_rates, n=128, repeats=1, min_seconds=0.01))
    monkeypatch.setattr(bench, "side_by_side", lambda name, steps, batch, *args: (
        [bench.Repeats(steps.train, batch, min_seconds=0.01).next()], [100.0]))


def test_bench_json_carries_the_new_fields(monkeypatch, capsys):
    quick(monkeypatch)
    monkeypatch.setattr(bench, "layer_rows", partial(bench.layer_rows, rounds=1, min_seconds=0.0))
    fake_peak = {"peak_mb": 5.0, "baseline_mb": 100.0, "method": "VmHWM", "steps": 3}
    monkeypatch.setattr(bench, "measure_peak_memory",
                        lambda framework, *args: {**fake_peak, "framework": framework})
    assert main(["bench", "--model", "lenet5", "--batch-size", "2", "--threads", "1",
                 "--layers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gemm"]["threads"] == 1 and report["gemm"]["gflops"] > 0
    train, infer = report["rows"]
    _, _, train_flops = lenet5_hand_flops()
    assert (train["direction"], infer["direction"]) == ("train", "infer")
    assert train["flops_per_sample"] == train_flops
    assert train["gflops"] == pytest.approx(train_flops * train["ours"]["median"] / 1e9)
    assert train["gemm_fraction"] == pytest.approx(train["gflops"] / report["gemm"]["gflops"])
    assert train["pytorch_gflops"] == pytest.approx(train_flops * 100.0 / 1e9)
    assert train["ratio"] == pytest.approx(train["ours"]["median"] / 100.0)
    assert train["peak_memory"]["ours"]["framework"] == "ours"
    assert train["peak_memory"]["pytorch"]["peak_mb"] == 5.0
    assert "peak_memory" not in infer and infer["gflops"] > 0
    layers = report["layers"]["lenet5"]
    assert layers["batch"] == 2
    conv2 = next(row for row in layers["layers"] if row["layer"] == "conv2")
    assert {"ms", "flops", "gflops", "gemm_fraction"} <= set(conv2["grad_input"])
    assert set(layers["sum"]) == {"forward", "backward", "total"}


def test_bench_table_output(monkeypatch, capsys):
    quick(monkeypatch)
    monkeypatch.setattr(bench, "side_by_side", lambda name, steps, batch, *args: (
        [bench.Repeats(steps.train, batch, min_seconds=0.01).next()], None))
    main(["bench", "--model", "lenet5", "--batch-size", "2", "--threads", "1", "--no-memory"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("GEMM rate on 1 thread: ")
    assert "GFLOP/s" in lines[1] and "% GEMM" in lines[1] and "peak MB ours / PyTorch" in lines[1]
    assert lines[2].split()[:3] == ["lenet5", "train", "2"]


def test_side_by_side_alternates_with_a_pytorch_child():
    pytest.importorskip("torch")
    steps = bench.build_steps(load_template("lenet5"), 4)
    ours, theirs = bench.side_by_side("lenet5", steps, 4, "cpu", True, 1, repeats=2)
    assert len(ours) == len(theirs) == 2 and min(ours + theirs) > 0


ENV_PROBE = "import os, engine, json; print(json.dumps([engine.OPENMP_CHOSEN_BY_USER, " \
            "os.environ['GOMP_SPINCOUNT'], 'GOMP_SPINCOUNT' in engine.user_openmp_env()]))"


@pytest.mark.parametrize("inherited, chosen, spin, kept", [
    ({}, False, "1000", False),
    ({"GOMP_SPINCOUNT": "1000", "CONVDESIGNER_GOMP_SPINCOUNT": "1000"}, False, "1000", False),
    ({"GOMP_SPINCOUNT": "5000", "CONVDESIGNER_GOMP_SPINCOUNT": "1000"}, True, "5000", True),
    ({"GOMP_SPINCOUNT": "1000"}, True, "1000", True),
])
def test_the_engines_openmp_spin_is_not_taken_for_the_users_in_a_child(inherited, chosen, spin,
                                                                       kept):
    """A process started by one that imported the engine inherits the engine's spin setting; it
    must still give PyTorch's children the user's settings (bench's PyTorch ran slower with it)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "CONVDESIGNER_GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", ENV_PROBE], env={**env, **inherited},
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [chosen, spin, kept]
