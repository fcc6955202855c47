"""The command line end to end: train on real MNIST, then evaluate, predict, info; user errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT),
                                                               "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST data not present")
def test_train_evaluate_predict_info_on_mnist(tmp_path):
    model, metrics = tmp_path / "m.h5", tmp_path / "m.json"
    result = run_cli("train", "lenet5", "--data", MNIST, "--train-range", "0:8000",
                     "--val-range", "8000:10000", "--epochs", "2", "--out", model,
                     "--metrics-json", metrics)
    assert result.returncode == 0, result.stderr
    rows = json.loads(metrics.read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                            "seconds", "samples_per_sec"}
    assert rows[1]["val_acc"] > 0.9 and rows[1]["samples_per_sec"] > 0
    assert "epoch 2/2" in result.stderr  # the progress bar

    result = run_cli("evaluate", model, "--data", MNIST, "--range", "8000:10000", "--json")
    assert result.returncode == 0, result.stderr
    evaluation = json.loads(result.stdout)
    assert evaluation["samples"] == 2000
    assert abs(evaluation["accuracy"] - rows[1]["val_acc"]) < 1e-9

    from engine.data import load_dataset
    images = load_dataset(str(MNIST)).x[8000:8010]
    np.save(tmp_path / "x.npy", images)
    result = run_cli("predict", model, "--input", tmp_path / "x.npy", "--output",
                     tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    logits = np.load(tmp_path / "y.npy")
    assert logits.shape == (10, 10) and logits.dtype == np.float32

    result = run_cli("info", model)
    assert result.returncode == 0
    assert "conv1" in result.stdout and "61,706" in result.stdout
    assert "Trained for 2 epochs" in result.stdout


def test_info_and_templates_print_tables(capsys):
    assert main(["info", "vgg-small"]) == 0
    out = capsys.readouterr().out
    assert "Total parameters: 1,116,970" in out and "32x32x32" in out
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "resnet-mini" in out and "volume3d" in out


@pytest.mark.parametrize("args,fragment", [
    (["train", "nosuchnet", "--data", "shapes"], "not a model file"),
    (["train", "lenet5", "--data", "/nonexistent/data.npz"], "data.npz"),
    (["train", "signal1d", "--data", "shapes:200", "--epochs", "1"], "Input expects [1, 1024]"),
    (["evaluate", "missing.h5", "--data", "shapes"], "missing.h5: no such file"),
    (["info", "broken.json"], "broken.json"),
    (["train", "lenet5", "--data", "shapes:100", "--device", "cuda", "--epochs", "1"], "CUDA"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, args, fragment):
    (tmp_path / "broken.json").write_text("{nope")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0]


def test_predict_rejects_wrong_shape(tmp_path):
    from engine.session import Session
    Session.open("lenet5").save(tmp_path / "m.h5")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 3), np.float32))
    result = run_cli("predict", tmp_path / "m.h5", "--input", tmp_path / "x.npy", "--output",
                     tmp_path / "y.npy")
    assert result.returncode == 2 and "do not fit the Input [1, 28, 28]" in result.stderr
