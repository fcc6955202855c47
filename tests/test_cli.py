"""The command line end to end: train on real MNIST, then evaluate, predict, info; user errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.modelfile import load_model

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


@pytest.mark.parametrize("args,fragment", [
    (["train", "lenet5", "--data", "shapes:64", "--batch-size", "0"],
     "argument --batch-size: must be >= 1 and <= 1,048,576. Received: 0"),
    (["train", "lenet5", "--data", "shapes:64", "--batch-size", str(2**21)], "--batch-size"),
    (["train", "lenet5", "--data", "shapes:64", "--epochs", "-1"], "--epochs: must be >= 1"),
    (["train", "lenet5", "--data", "shapes:64", "--lr", "-1"], "--lr: must be a finite number > 0"),
    (["train", "lenet5", "--data", "shapes:64", "--lr", "nan"], "Received: nan"),
    (["train", "lenet5", "--data", "shapes:64", "--seed", "-1"], "--seed: must be >= 0"),
    (["train", "lenet5", "--data", "shapes:64", "--seed", str(2**32)], "<= 4,294,967,295"),
    (["train", "lenet5", "--data", "shapes:64", "--epochs", "two"],
     "--epochs: expected an integer. Received: 'two'"),
    (["train", "lenet5", "--data", "shapes:64", "--translate", "28"],
     "--translate: must be less than the Input's smallest spatial size (28)"),
    (["bench", "--batch-size", "0"], "bench: error: argument --batch-size: must be >= 1"),
    (["bench", "--threads", "0"], "--threads: must be >= 1"),
    (["bench", "--model", "bogus"], "unknown template 'bogus' (templates: lenet5, shapes"),
    (["train", "lenet5", "--data", "/proc/self/mem"], "/proc/self/mem: cannot read"),
    (["train", "lenet5"], "train: error: the following arguments are required: --data"),
    (["train", "lenet5", "--data", "shapes:64", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_numeric_options_are_range_checked_in_one_line(capsys, args, fragment):
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_labels_and_memory_are_checked_before_training_and_evaluating(tmp_path, capsys,
                                                                     monkeypatch):
    from engine.session import Session

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((8, 1, 28, 28), np.float32), y=[0, 1, 2, 3, 4, 5, 6,
                                                                             10])
    Session.open("lenet5").save(tmp_path / "m.h5")
    for args in (["train", "lenet5", "--epochs", "1"], ["evaluate", str(tmp_path / "m.h5")]):
        assert main([*args, "--data", str(tmp_path / "d.npz"), "--quiet"]) == 2
        assert "d.npz: sample 7: label 10 does not fit the network's 10 outputs" in \
            capsys.readouterr().err
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 28, 28), np.float32))
    assert main(["predict", str(tmp_path / "m.h5"), "--input", str(tmp_path / "empty.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 2
    assert "empty.npy: no samples" in capsys.readouterr().err
    monkeypatch.setattr("engine.network.machine_memory", lambda: 1 << 20)  # lenet5 needs 0.5 MiB
    assert main(["train", "lenet5", "--data", "shapes:64", "--batch-size", "32", "--quiet"]) == 2
    assert "at batch 32 (" in capsys.readouterr().err


def test_an_unknown_command_is_an_error_never_the_designer(capsys):
    from designer.launch import main as launch
    from designer.launch import opens_designer

    for argv in (["frobnicate"], ["frobnicate", "--help"], ["model.npz"]):
        assert not opens_designer(argv)
        with pytest.raises(SystemExit) as exit_:
            launch(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "invalid choice" in err and len(err.splitlines()) == 1
    assert all(opens_designer(a) for a in ([], ["m.h5"], ["g.JSON"], ["-platform", "offscreen"]))


def test_ctrl_c_saves_and_a_second_train_finishes_the_run_bit_exactly(tmp_path):
    """SIGINT in the middle of `train --out`: the file keeps the batch reached; training it again
    without --epochs finishes the run as the uninterrupted one (cosine schedule, early stop and
    its settings taken from the file), and evaluate/predict use the best epoch by default."""
    import signal

    common = ["--data", "shapes:3000", "--optimizer", "momentum", "--schedule", "cosine",
              "--seed", "4", "--batch-size", "16", "--early-stop", "5"]
    straight = run_cli("train", "shapes", *common, "--epochs", "3", "--out", tmp_path / "a.h5")
    assert straight.returncode == 0, straight.stderr
    child = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "shapes", *common,
                              "--epochs", "3", "--out", str(tmp_path / "b.h5")], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert child.stdout.readline().startswith("epoch 1:")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130 and "interrupted at epoch 2" in err
    assert "Traceback" not in err
    stopped = load_model(tmp_path / "b.h5")
    assert stopped.training["position"]["epoch"] == 1 and stopped.settings["schedule"] == "cosine"
    finished = run_cli("train", tmp_path / "b.h5", "--data", "shapes:3000",
                       "--out", tmp_path / "b.h5")
    assert finished.returncode == 0, finished.stderr
    a, b = load_model(tmp_path / "a.h5"), load_model(tmp_path / "b.h5")
    for key, value in a.weights.items():
        np.testing.assert_array_equal(b.weights[key], value, err_msg=key)
    assert list(b.history["val_loss"]) == list(a.history["val_loss"])
    assert b.best["epoch"] == a.best["epoch"] and a.best is not None

    x = np.random.default_rng(0).random((4, 1, 28, 28), np.float32)
    np.save(tmp_path / "x.npy", x)
    for weights in ("best", "last"):
        assert run_cli("predict", tmp_path / "a.h5", "--input", tmp_path / "x.npy",
                       "--output", tmp_path / f"{weights}.npy", "--weights",
                       weights).returncode == 0
    same = np.array_equal(np.load(tmp_path / "best.npy"), np.load(tmp_path / "last.npy"))
    assert same == (a.best["epoch"] == 3)


def test_ranges_may_count_from_the_end(capsys):
    assert main(["evaluate", "lenet5", "--data", "shapes:100", "--range", "-20:", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 20


def test_early_stop_needs_validation_data(tmp_path):
    result = run_cli("train", "shapes", "--data", "shapes:100", "--train-range", "0:100",
                     "--early-stop", "2", "--epochs", "1")
    assert result.returncode == 2 and "--early-stop needs validation data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def saved(tmp_path):
    from engine.session import Session
    Session.open("lenet5").save(tmp_path / "m.h5")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "trial-000.h5").write_bytes(b"an interrupted sweep's trial")
    (tmp_path / "empty.json").write_text('{"format": "convdesigner.graph", "version": 1, '
                                           '"nodes": [], "edges": []}')
    np.save(tmp_path / "nan.npy", np.full((3, 1, 28, 28), np.nan, np.float32))
    np.save(tmp_path / "pixels.npy", np.zeros((3, 1, 28, 28), np.uint8))
    huge = np.zeros((2, 1, 28, 28))
    huge[1, 0, 3, 3] = 1e39   # finite in float64, not in float32
    np.save(tmp_path / "huge.npy", huge)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "notzip.npz").write_bytes(b"PK\x03\x04 and then no archive")
    return tmp_path


@pytest.mark.parametrize("args,fragment", [
    (["train", "lenet5", "--data", "shapes:100", "--val-range", "0:20"],
     "the validation range 0:20 overlaps the training range 0:80"),
    (["evaluate", "m.h5", "--data", "shapes:100", "--range", "50:1000"],
     "range '50:1000' goes past the end of the data (100 samples)"),
    (["train", "lenet5", "--data", "shapes:100000000000"], "at most 1,000,000 samples"),
    (["train", "lenet5", "--data", "shapes:100", "--out", "no/such/folder/m.h5"],
     "the folder"),
    (["predict", "m.h5", "--input", "nan.npy", "--output", "y.npy"],
     "nan.npy: sample 0 holds NaN, infinite or too large values (3 such samples)"),
    (["predict", "m.h5", "--input", "huge.npy", "--output", "y.npy"],
     "huge.npy: sample 1 holds NaN, infinite or too large values (1 such samples)"),
    (["predict", "m.h5", "--input", "empty.npy", "--output", "y.npy"], "cannot read"),
    (["predict", "m.h5", "--input", "notzip.npz", "--output", "y.npy"], "cannot read"),
    (["predict", "m.h5", "--input", "pixels.npy", "--output", "y.npy"], "x / 255"),
    (["predict", "m.h5", "--input", "nan.npy", "--output", "sweep"], "it is a folder"),
    (["sweep", "lenet5", "--data", "shapes:100", "--space", "lr=0.01,0.1", "--trials", "2",
      "--out", "m.h5"], "m.h5 is a file"),
    (["sweep", "lenet5", "--data", "shapes:100", "--space", "lr=0.01,0.1", "--trials", "2",
      "--out", "sweep"], "already holds a sweep (trial-000.h5)"),
    (["sweep", "lenet5", "--data", "shapes:100", "--space", "lr=0.01,0.1", "--trials", "2",
      "--out", "new", "--scheduler", "notanaddress"], "cannot reach the Dask scheduler"),
    (["info", "empty.json"], "empty.json: the graph has no Input node; the graph has no Output"),
    # outputs that would replace an input, or that could not be read back
    (["export", "m.h5", "--to", "onnx", "--out", "m.h5"], "it is this command's input"),
    (["export", "m.h5", "--to", "onnx", "--out", "m.onnx.h5"], "must end in .onnx"),
    (["export", "m.h5", "--to", "pytorch", "--out", "m.h5"], "it is a file"),
    (["import", "nan.npy", "--out", "nan.npy"], "it is this command's input"),
    (["train", "lenet5", "--data", "shapes:100", "--out", "m.json"], "must end in .h5 or .hdf5"),
    (["predict", "m.h5", "--input", "nan.npy", "--output", "nan.npy"], "this command's input"),
    (["train", "lenet5", "--data", "shapes:100", "--out", "n.h5", "--metrics-json",
      "no/such/m.json"], "cannot write no/such/m.json: the folder"),
])
def test_mistakes_users_made_are_one_line_and_exit_2(saved, args, fragment):
    result = run_cli(*args, cwd=saved)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert not (saved / "n.h5").exists()   # refused before training
    assert result.stdout == ""             # nothing before the refusal (sweep's table header)
    assert "Traceback" not in result.stderr and fragment in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("convdesigner")


def test_predict_writes_the_path_given_and_reads_npz_and_flat_channels(saved):
    x = np.random.default_rng(0).random((3, 28, 28), np.float32)   # [N, 28, 28] for [1, 28, 28]
    np.savez(saved / "x.npz", x=x, y=np.zeros(3, np.int64))
    for source in ("x.npz", "x.npy"):
        np.save(saved / "x.npy", x)
        result = run_cli("predict", "m.h5", "--input", source, "--output", "out", cwd=saved)
        assert result.returncode == 0, result.stderr
        assert np.load(saved / "out").shape == (3, 10) and not (saved / "out.npy").exists()


def test_training_a_model_file_again_keeps_its_split_and_says_what_is_not_saved(tmp_path):
    first = run_cli("train", "shapes", "--data", "shapes:300", "--train-range", "0:200",
                    "--val-range", "250:300", "--epochs", "1", "--out", tmp_path / "m.h5")
    assert first.returncode == 0, first.stderr
    again = run_cli("train", tmp_path / "m.h5", "--data", "shapes:300", "--epochs", "1",
                    "--out", tmp_path / "m.h5")
    assert again.returncode == 0, again.stderr
    data = load_model(tmp_path / "m.h5").settings["data"]
    assert (data["train_range"], data["val_range"]) == ("0:200", "250:300")
    unsaved = run_cli("train", "shapes", "--data", "shapes:100", "--train-range", "0:100",
                      "--epochs", "1")
    assert unsaved.returncode == 0, unsaved.stderr
    assert "no validation data" in unsaved.stderr and "not saved" in unsaved.stderr
    assert "epoch 1: train loss" in unsaved.stdout and "nan" not in unsaved.stdout
    ordered = tmp_path / "sorted.npz"   # stored class by class: the last 20% is one class
    np.savez(ordered, x=np.zeros((100, 1, 28, 28), np.float32), y=np.arange(100) // 25)
    sorted_run = run_cli("train", "shapes", "--data", ordered, "--epochs", "1")
    assert "validation range holds one class only (3)" in sorted_run.stderr, sorted_run.stderr
    assert "val loss" in first.stdout
    np.savez(tmp_path / "other.npz", x=np.zeros((40, 1, 28, 28), np.float32),
             y=np.arange(40) % 2)   # classes "0" and "1", not the shapes the model knows
    other = run_cli("train", tmp_path / "m.h5", "--data", tmp_path / "other.npz", "--epochs",
                    "1", "--out", tmp_path / "o.h5")
    assert other.returncode == 2 and "This model was trained on shapes:300 (4 classes" in \
        other.stderr and "Give --reset to train it afresh" in other.stderr, other.stderr
    assert run_cli("train", tmp_path / "m.h5", "--data", tmp_path / "other.npz", "--epochs", "1",
                   "--reset", "--out", tmp_path / "o.h5").returncode == 0
    assert load_model(tmp_path / "o.h5").history["epoch"].tolist() == [1]
    evaluated = run_cli("evaluate", tmp_path / "m.h5", "--data", tmp_path / "other.npz")
    assert "trained on other classes (circle, square, triangle, cross)" in evaluated.stderr
    assert "keeps no best epoch" not in evaluated.stderr   # best where kept: the default
    for command in (["evaluate", tmp_path / "m.h5", "--data", "shapes:100"],
                    ["export", tmp_path / "m.h5", "--to", "onnx", "--out", tmp_path / "m.onnx"]):
        asked = run_cli(*command, "--weights", "best")
        assert asked.returncode == 0 and "m.h5 keeps no best epoch" in asked.stderr, asked.stderr
    shrunk = run_cli("train", tmp_path / "m.h5", "--data", "shapes:100", "--epochs", "1")
    assert shrunk.returncode == 0, shrunk.stderr   # other data: the default split, said
    assert "trained on shapes:300, so shapes:100 gets the default split" in shrunk.stderr
    np.savez(tmp_path / "d.npz", x=np.zeros((300, 1, 28, 28), np.float32), y=np.arange(300) % 4)
    assert run_cli("train", "shapes", "--data", tmp_path / "d.npz", "--train-range", "0:200",
                   "--val-range", "200:300", "--epochs", "1", "--out",
                   tmp_path / "n.h5").returncode == 0
    relative = run_cli("train", "n.h5", "--data", "d.npz", "--epochs", "1", "--out", "n.h5",
                       cwd=tmp_path)   # the same file named another way keeps the split
    assert relative.returncode == 0 and "default split" not in relative.stderr, relative.stderr
    data = load_model(tmp_path / "n.h5").settings["data"]
    assert (data["train_range"], data["val_range"]) == ("0:200", "200:300")
    np.savez(tmp_path / "d.npz", x=np.zeros((100, 1, 28, 28), np.float32), y=np.arange(100) % 4)
    changed = run_cli("train", tmp_path / "n.h5", "--data", tmp_path / "d.npz", "--epochs", "1")
    assert changed.returncode == 2
    assert "the split this model was trained with does not fit" in changed.stderr


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4])
def test_ctrl_c_while_the_command_starts_is_one_line(delay):
    """A Ctrl+C while numpy and numba load ended in an import traceback."""
    import signal
    import time

    started = subprocess.Popen([sys.executable, "-m", "designer.launch", "train", "lenet5",
                                "--data", "shapes:100", "--epochs", "1"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    started.send_signal(signal.SIGINT)
    _, errors = started.communicate(timeout=120)
    assert "Traceback" not in errors, errors
    assert started.returncode in (0, 130)


def test_an_untrained_model_is_named_where_a_trained_one_is_expected(tmp_path, capsys):
    """evaluate, predict and export of a template (or graph) said nothing of using weights as
    initialised; a trained model gets no such note."""
    from engine.data import load_dataset
    from engine.session import Session

    note = "note: lenet5 has not been trained: its weights are as initialised"
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    for args in (["evaluate", "lenet5", "--data", "shapes:40"],
                 ["predict", "lenet5", "--input", str(tmp_path / "x.npy"), "--output",
                  str(tmp_path / "p.csv")],
                 ["export", "lenet5", "--to", "pytorch", "--out", str(tmp_path / "torch")]):
        assert main(args) == 0
        assert note in capsys.readouterr().err
    trained = Session.open("shapes")
    trained.trainer(load_dataset("shapes:40"), (0, 32), (32, 40), epochs=1).run()
    trained.save(tmp_path / "t.h5")
    assert main(["evaluate", str(tmp_path / "t.h5"), "--data", "shapes:40"]) == 0
    assert "has not been trained" not in capsys.readouterr().err


def test_a_read_only_target_is_refused_before_training_and_never_replaced(tmp_path, capsys):
    """`train --out` a file this user may not write: refused before the run (it trained, then
    failed to save); a save there fails in one line and leaves the file as it was."""
    from engine.atomic import writable
    from engine.modelfile import ModelFileError
    from engine.session import Session

    path = tmp_path / "m.h5"
    Session.open("shapes").save(path)
    before = path.read_bytes()
    path.chmod(0o444)
    locked = not writable(path) or subprocess.run(["chattr", "+i", str(path)],
                                                  capture_output=True).returncode == 0
    try:
        if writable(path) or not locked:
            pytest.skip("cannot make a file read-only here")
        assert main(["train", str(path), "--data", "shapes:40", "--out", str(path)]) == 2
        assert capsys.readouterr().err.strip().endswith(
            f"cannot write {path}: the file is read-only (or locked)")
        with pytest.raises(ModelFileError, match="read-only"):
            Session.open(str(path)).save(path)
        assert path.read_bytes() == before
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o644)
