"""Run history: every run kept in the model file's /runs, listed by info --runs, and diffs."""
import json

import h5py
import pytest

from engine.cli import main
from engine.data import generate
from engine.modelfile import ModelFileError, load_model
from engine.runs import graph_diff, settings_diff
from engine.session import Session


def train(session, data, epochs=1, stop_at_batch=None):
    trainer = session.trainer(data, (0, 60), (60, 80), epochs=epochs)
    if stop_at_batch:
        trainer.batch_listeners.append(
            lambda e: trainer.stop() if e.batch == stop_at_batch else None)
    trainer.run()
    return session.finish(trainer)


@pytest.fixture(scope="module")
def shapes():
    return generate("shapes", 80)


def test_runs_round_trip_through_save_and_open(tmp_path, shapes, capsys):
    session = Session.open("shapes")
    session.settings.batch_size = 16
    train(session, shapes)
    session.settings.lr = 0.01
    train(session, shapes, epochs=2, stop_at_batch=2)   # stopped inside its first epoch
    session.save(tmp_path / "m.h5")
    runs = Session.open(tmp_path / "m.h5").runs
    assert runs == session.runs and len(runs) == 2
    assert [r["ended_how"] for r in runs] == ["completed", "stopped"]
    assert runs[0]["history"]["epoch"] == [1.0] and runs[1]["history"]["epoch"] == []
    assert runs[1]["settings"]["lr"] == 0.01 and runs[0]["data"] == shapes.source
    assert all("pos" not in node for node in runs[0]["graph"]["nodes"])
    assert main(["info", str(tmp_path / "m.h5"), "--runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:4] == ["0", runs[0]["started"], "completed", "1"]
    assert lines[-1].split()[2] == "stopped"


def test_damaged_runs_are_refused_naming_the_part(tmp_path, shapes):
    session = Session.open("shapes")
    train(session, shapes)
    session.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        run = json.loads(f["runs/0"].attrs["run"])
        run["settings"]["lr"] = -1
        del f.attrs["digest"]
        f["runs/0"].attrs["run"] = json.dumps(run)
    with pytest.raises(ModelFileError, match="/runs/0 run: settings: lr"):
        load_model(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.move("runs/0", "runs/3")
    with pytest.raises(ModelFileError, match="/runs must be numbered"):
        load_model(tmp_path / "m.h5")


def test_graph_and_settings_diff():
    a = Session.open("lenet5").graph.to_dict()
    b = json.loads(json.dumps(a))
    conv = next(n for n in b["nodes"] if n["type"] == "Conv2D")
    conv["params"]["filters"] = 12
    b["nodes"].append({"id": "extra", "type": "Dropout", "params": {}})
    b["nodes"] = [n for n in b["nodes"] if n["id"] != a["nodes"][-2]["id"]]
    diff = graph_diff(a, b)
    assert diff.added == ["extra"] and diff.removed == [a["nodes"][-2]["id"]]
    assert diff.changed == {conv["id"]: {"filters": (6, 12)}}
    assert f"~ {conv['id']}.filters: 6 -> 12" in diff.lines()
    assert not graph_diff(a, a).any
    assert settings_diff({"lr": 0.1, "seed": 0}, {"lr": 0.2, "seed": 0}) == {"lr": (0.1, 0.2)}
