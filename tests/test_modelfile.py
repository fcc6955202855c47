"""Model files: bit-exact round trips, every load error, fuzzing, and a save killed mid-write."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.modelfile import ModelFileError, load_model, save_model
from engine.optim import Optimizer
from engine.session import Session, TrainingSettings
from engine.templates import load_template, template_names

ROOT = Path(__file__).resolve().parents[1]


def trained_session(name="lenet5", steps=2):
    session = Session(load_template(name), TrainingSettings(seed=1))
    session.optimizer = Optimizer("adam", lr=0.001)
    net = session.net
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *net.input_shape)).astype(np.float32)
    for _ in range(steps):
        out = net.forward(x, training=True)
        net.backward(np.ones_like(out) / out.size)
        session.optimizer.step(net)
    session.history = {"epoch": [1.0, 2.0], "train_loss": [1.5, 1.2], "val_acc": [0.5, 0.6]}
    session.data_spec = {"source": "shapes", "input_shape": list(net.input_shape),
                         "class_names": ["a", "b"]}
    return session


@pytest.mark.parametrize("name", template_names())
def test_round_trip_every_template(tmp_path, name):
    session = trained_session(name, steps=1)
    session.save(tmp_path / "m.h5")
    model = load_model(tmp_path / "m.h5")
    assert model.graph == session.graph
    weights = session.net.weights()
    assert set(model.weights) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(model.weights[key], value)
        assert model.weights[key].dtype == np.float32
    state = session.optimizer.state_dict()
    assert model.optimizer["type"] == state["type"] and model.optimizer["config"] == state["config"]
    for key, slots in state["slots"].items():
        for slot, value in slots.items():
            np.testing.assert_array_equal(model.optimizer["slots"][key][slot], value)
    assert {k: list(v) for k, v in model.history.items()} == session.history
    assert model.data_spec == session.data_spec
    assert model.created_by.startswith("convdesigner ") and model.saved_at


def test_loaded_model_computes_the_same(tmp_path):
    session = trained_session()
    session.save(tmp_path / "m.h5")
    reopened = Session.open(tmp_path / "m.h5")
    x = np.random.default_rng(3).standard_normal((5, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(reopened.net.forward(x), session.net.forward(x))


def write_variant(path, session, mutate):
    session.save(path)
    with h5py.File(path, "r+") as f:
        mutate(f)


@pytest.mark.parametrize("mutate,fragment", [
    (lambda f: f.attrs.__setitem__("format", "keras"), "not a convdesigner model"),
    (lambda f: f.attrs.__setitem__("format_version", 7), "newer convdesigner"),
    (lambda f: f.attrs.__setitem__("graph", "{not json"), "graph.*not valid JSON"),
    (lambda f: f.attrs.__setitem__("graph", json.dumps({"format": "convdesigner.graph",
                                                        "version": 1, "nodes": []})),
     "graph: the graph has no Input"),
    (lambda f: f.attrs.__delitem__("complete"), "incomplete"),
    (lambda f: f["weights/conv1"].__delitem__("bias"), "missing conv1/bias"),
    (lambda f: f["weights/conv1"].create_dataset("extra", data=np.zeros(2, np.float32)),
     "does not use: conv1/extra"),
    (lambda f: (f["weights/conv1"].__delitem__("bias"),
                f["weights/conv1"].create_dataset("bias", data=np.zeros(5, np.float32))),
     r"conv1/bias has shape \[5\], expected \[6\]"),
    (lambda f: (f["weights/conv1"].__delitem__("bias"),
                f["weights/conv1"].create_dataset("bias", data=np.zeros(6, np.float64))),
     "conv1/bias has dtype float64, expected float32"),
    (lambda f: f["optimizer"].attrs.__setitem__("type", "lbfgs"),
     "/optimizer type: 'lbfgs' is not one of"),
    (lambda f: f["history"].create_dataset("bad", data=np.zeros(5)),
     r"/history/\w+ has \d entries, the others \d"),
    (lambda f: f["data"].attrs.__setitem__("spec", "{"), "/data.*not valid JSON"),
])
def test_each_load_error_names_the_part(tmp_path, mutate, fragment):
    path = tmp_path / "m.h5"
    write_variant(path, trained_session(steps=1), mutate)
    with pytest.raises(ModelFileError, match=fragment):
        load_model(path)


def test_not_hdf5_missing_and_truncated(tmp_path):
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ModelFileError, match="not an HDF5 file"):
        load_model(tmp_path / "text.h5")
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nothing.h5")
    path = tmp_path / "m.h5"
    trained_session(steps=1).save(path)
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 100, 600):
        (tmp_path / "cut.h5").write_bytes(data[:size])
        with pytest.raises(ModelFileError):
            load_model(tmp_path / "cut.h5")


def test_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.h5"
    session = trained_session(steps=1)
    session.save(path)
    before = path.read_bytes()
    weights = session.net.weights()
    del weights["conv1/weight"]
    with pytest.raises(ModelFileError, match="weights missing for conv1/weight"):
        save_model(path, session.graph, weights)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


KILLER = """
import sys, time, numpy as np
import engine.modelfile as mf
from engine.session import Session, TrainingSettings
from engine.templates import load_template
session = Session(load_template("vgg-small"))
real_create = mf.h5py.Group.create_dataset
def slow_create(self, *args, **kwargs):
    result = real_create(self, *args, **kwargs)
    print("writing", flush=True)
    time.sleep(0.05)
    return result
mf.h5py.Group.create_dataset = slow_create
session.save(sys.argv[1])
"""


def test_save_killed_mid_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "m.h5"
    session = trained_session(steps=1)
    session.save(path)
    before = load_model(path)
    process = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], cwd=ROOT,
                               stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout.readline().startswith(b"writing")
    time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    after = load_model(path)
    assert after.graph == before.graph
    for key, value in before.weights.items():
        np.testing.assert_array_equal(after.weights[key], value)


def test_optimizer_resume_state(tmp_path):
    session = trained_session()
    session.save(tmp_path / "m.h5")
    reopened = Session.open(tmp_path / "m.h5")
    assert isinstance(reopened.optimizer, Optimizer)
    assert reopened.optimizer.step_count == session.optimizer.step_count == 2
