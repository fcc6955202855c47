"""convdesigner sweep: trials on a local Dask cluster, a worker lost mid-trial, bad SPACE terms."""
import csv
import os
import signal
import threading
import time

import dask
import optuna
import pytest
from distributed import Client, LocalCluster

from engine.cli import main
from engine.data import generate
from engine.session import Session
from engine.sweep import STUDY, parse_space, run_sweep


def test_ctrl_c_starts_no_more_trials_and_keeps_the_finished_ones(tmp_path):
    """The first Ctrl+C lets the running trials finish (no traceback from Dask), keeps best.h5
    and exits 130; it used to reach Dask's threads as a KeyboardInterrupt."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "sweep", "shapes", "--data", "shapes:400",
         "--space", "lr=1e-3..1e-1:log", "--trials", "40", "--epochs", "8", "--out",
         str(tmp_path / "s"), "--quiet"], cwd=root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    header, first = sweep.stdout.readline(), sweep.stdout.readline()   # a trial has finished
    sweep.send_signal(signal.SIGINT)
    rest, errors = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, errors
    assert "Traceback" not in errors and "stopping: no more trials start" in errors
    rows = [first, *rest.splitlines()[:-1]]
    assert header.startswith("trial") and 1 <= len(rows) < 40
    assert rest.splitlines()[-1].startswith("best: trial ")
    assert (tmp_path / "s" / "best.h5").exists()


def test_a_sweep_of_4_trials_on_2_workers(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "lenet5", "--data", "shapes:200", "--space",
                 "lr=1e-4..1e-2:log;conv1.filters=4,8", "--trials", "4", "--epochs", "2",
                 "--workers", "2", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:3] == ["trial", "state", "val_loss"] and len(printed) == 6
    assert printed[-1].startswith("best: trial ")
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["state"] for r in rows} <= {"complete", "pruned"}
    assert {r["conv1.filters"] for r in rows} <= {"4", "8"}
    assert all(1e-4 <= float(r["lr"]) <= 1e-2 for r in rows)
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4 and study.best_trial.number == int(printed[-1].split()[2][:-1])
    for row in rows:
        run = Session.open(out / row["file"]).runs[-1]
        assert run["trial"] == int(row["trial"]) and run["settings"]["lr"] == float(row["lr"])
        assert next(n for n in run["graph"]["nodes"] if n["id"] == "conv1")["params"][
            "filters"] == int(row["conv1.filters"])
    best = Session.open(out / "best.h5")
    assert best.runs[-1]["trial"] == study.best_trial.number


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_during_a_trial(tmp_path, retries):
    """The killed worker's trial runs again on another worker, or (no retries allowed) is
    marked failed; either way the sweep completes."""
    session = Session.open("lenet5")
    session.settings.epochs, session.settings.batch_size = 2, 32
    data = generate("shapes", 200)
    space = parse_space("lr=1e-3..1e-2", session.graph, session.settings)
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        rows = []
        sweep = threading.Thread(target=lambda: rows.extend(run_sweep(
            session, data, space, 4, tmp_path, train_range=(0, 160), val_range=(160, 200),
            client=client)))
        sweep.start()
        busy = {}
        for _ in range(600):   # until a trial is running on a worker (at most a minute)
            busy = {w: tasks for w, tasks in client.processing().items() if tasks}
            if busy:
                break
            time.sleep(0.1)
        assert busy, "no trial started"
        pid = client.run(os.getpid, workers=[next(iter(busy))])
        os.kill(next(iter(pid.values())), signal.SIGKILL)
        sweep.join(120)
        assert not sweep.is_alive()
    assert sorted(r.number for r in rows) == [0, 1, 2, 3]
    states = [r.state for r in rows]
    if retries:
        assert set(states) <= {"complete", "pruned"}
    else:
        assert states.count("failed") == 1
        failed = next(r for r in rows if r.state == "failed")
        assert "KilledWorker" in failed.note and not failed.file
    assert (tmp_path / "best.h5").exists() and (tmp_path / "study.db").exists()


@pytest.mark.parametrize("space, fragment", [
    ("lr=1e-2..1e-4", "SPACE term 'lr=1e-2..1e-4': the range is empty"),
    ("momentum=0.9,0.99", "SPACE term 'momentum=0.9,0.99': unknown name 'momentum'"),
    ("conv9.filters=4,8", "SPACE term 'conv9.filters=4,8': the graph has no node 'conv9'"),
    ("conv1.width=4,8", "SPACE term 'conv1.width=4,8': Conv2D has no parameter 'width'"),
    ("conv1.filters=0,8", "SPACE term 'conv1.filters=0,8': "),
    ("conv1.kernel_size=5,40", "SPACE term 'conv1.kernel_size=5,40': "),
    ("optimizer=adam,rmsprop", "optimizer must be one of sgd, momentum, adam. Received: 'rmsprop'"),
    ("batch_size=16..64:log;lr", "SPACE term 'lr': expected name=values"),
    ("lr=0..1e-2:log", "a log range needs low > 0"),
    ("lr=1e-3..1e-2:lg", "unknown range suffix :lg (a range may end in :log"),
])
def test_a_bad_space_is_one_line_naming_the_term(tmp_path, capsys, space, fragment):
    code = main(["sweep", "lenet5", "--data", "shapes:200", "--space", space, "--trials", "2",
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_trial_reports_the_figures_of_the_weights_its_file_serves():
    """With a best epoch kept (early stopping), the trial's val_loss and val_acc are that
    epoch's, which `evaluate` gives for its file by default (they were the last epoch's, and
    the ranking followed them)."""
    from engine.sweep import _served_figures
    from engine.train import Best

    history = {"epoch": [1, 2, 3], "val_loss": [1.5, 1.2, 1.4], "val_acc": [0.3, 0.6, 0.5]}
    assert _served_figures(history, Best(2, 1.2, {})) == (1.2, 0.6)
    assert _served_figures(history, None) == (1.4, 0.5)
    assert _served_figures({"epoch": [], "val_loss": [], "val_acc": []}, None) == (None, None)
