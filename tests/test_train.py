"""Trainer: determinism, partial batches, pause/resume/stop from a thread, divergence, resume."""
import math
import threading

import numpy as np
import pytest

from engine import Graph, compile_network
from engine.inspect import predict_classes
from engine.optim import Optimizer
from engine.session import Session
from engine.train import Trainer, TrainingDiverged, evaluate


def small_graph(dropout=True):
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [1, 6, 6]}},
             {"id": "c1", "type": "Conv2D", "params": {"filters": 3, "kernel_size": 3}},
             {"id": "r1", "type": "Activation", "params": {"function": "relu"}},
             {"id": "f", "type": "Flatten", "params": {}},
             {"id": "d1", "type": "Dense", "params": {"units": 8}},
             {"id": "bn", "type": "BatchNorm", "params": {}},
             {"id": "r2", "type": "Activation", "params": {"function": "relu"}},
             {"id": "dr", "type": "Dropout", "params": {"rate": 0.3 if dropout else 0.0}},
             {"id": "d2", "type": "Dense", "params": {"units": 3}},
             {"id": "out", "type": "Output", "params": {"loss": "cross_entropy"}}]
    ids = [n["id"] for n in nodes]
    return Graph.from_dict({"format": "convdesigner.graph", "version": 1, "name": "small",
                            "nodes": nodes,
                            "edges": [{"from": a, "to": b, "port": 0}
                                      for a, b in zip(ids, ids[1:])]})


def toy_data(n=70, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32) * 0.3
    x[np.arange(n), 0, y * 2, y * 2] += 2.0
    return x, y


def make_trainer(epochs=3, seed=0, graph=None, **kw):
    net = compile_network(graph or small_graph(), seed=seed)
    x, y = toy_data()
    return Trainer(net, Optimizer("adam", lr=0.01), x[:56], y[:56], x[56:], y[56:],
                   epochs=epochs, batch_size=16, seed=seed, **kw)


def test_learns_and_records_history():
    trainer = make_trainer(epochs=8)
    batches = []
    trainer.batch_listeners.append(batches.append)
    history = trainer.run()
    assert len(history["epoch"]) == 8 and history["epoch"][-1] == 8
    assert len(batches) == 8 * 4 and batches[3].batch == 4 and batches[3].batches == 4
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] > 0.8
    assert all(v > 0 for v in history["samples_per_sec"])


def test_deterministic_for_a_seed():
    a, b = make_trainer(seed=3), make_trainer(seed=3)
    a.run()
    b.run()
    for key, value in a.net.weights().items():
        np.testing.assert_array_equal(value, b.net.weights()[key])
    untimed = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
    assert all(a.history[k] == b.history[k] for k in untimed)
    c = make_trainer(seed=4)
    c.run()
    assert c.history["train_loss"] != a.history["train_loss"]


def test_last_partial_batch_counts():
    trainer = make_trainer(epochs=1)
    sizes = []
    trainer.batch_listeners.append(lambda e: sizes.append(e.batch))
    trainer.run()
    assert sizes == [1, 2, 3, 4]  # 56 samples in batches of 16: 16, 16, 16, 8


def test_last_batch_of_one_sample_is_skipped_for_batchnorm():
    net = compile_network(small_graph())
    x, y = toy_data(n=33)
    trainer = Trainer(net, Optimizer("sgd"), x, y, epochs=2, batch_size=16)
    assert trainer.batches_per_epoch == 2
    trainer.run()
    assert trainer.optimizer.step_count == 4


def test_pause_resume_and_stop_from_another_thread():
    trainer = make_trainer(epochs=1000)
    paused_at = threading.Event()

    def listener(event):
        if event.step == 5:
            trainer.pause()
            paused_at.set()

    trainer.batch_listeners.append(listener)
    worker = threading.Thread(target=trainer.run)
    worker.start()
    assert paused_at.wait(30)
    steps = trainer.optimizer.step_count
    worker.join(0.3)
    assert worker.is_alive() and trainer.paused
    assert trainer.optimizer.step_count == steps == 5
    weights = trainer.net.weights()
    trainer.resume()
    worker.join(0.2)
    trainer.stop()
    worker.join(30)
    assert not worker.is_alive() and trainer.stopped_reason == "stopped"
    assert trainer.optimizer.step_count > steps
    assert any(not np.array_equal(weights[k], v) for k, v in trainer.net.weights().items())


def test_divergence_stops_and_keeps_last_good_weights_and_optimizer_state():
    trainer = make_trainer(epochs=5)
    good = {}

    def poison(event):
        if event.step == 2:  # the weights the third step starts from: its loss is finite
            good.update(trainer.net.weights())
            good.update({f"{k}/{n}": v.copy() for k, s in trainer.optimizer.slots.items()
                         for n, v in s.items()})
        if event.step == 3:
            trainer.net.params["d2/weight"][...] = np.nan  # the next forward gives a NaN loss
    trainer.batch_listeners.append(poison)
    with pytest.raises(TrainingDiverged, match="diverged.*optimizer state of the last good"):
        trainer.run()
    for key, value in trainer.net.weights().items():
        np.testing.assert_array_equal(value, good[key], err_msg=key)
    for key, slots in trainer.optimizer.slots.items():
        for name, value in slots.items():
            np.testing.assert_array_equal(value, good[f"{key}/{name}"])
    assert trainer.optimizer.step_count == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_exploding_loss_is_never_kept_as_good():
    """SGD at lr 1e6: the loss goes through huge finite values before NaN; the weights kept
    give a loss near the first one, not the exploded one (issue 12: 5.8e33 was kept)."""
    net = compile_network(small_graph(dropout=False))
    x, y = toy_data()
    first = evaluate(net, x, y)["loss"]
    trainer = Trainer(net, Optimizer("sgd", lr=1e6), x, y, epochs=50, batch_size=16)
    with pytest.raises(TrainingDiverged) as info:
        trainer.run()
    assert "epoch" in str(info.value) and "lower learning rate" in str(info.value)
    assert all(np.all(np.isfinite(v)) for v in net.weights().values())
    assert evaluate(net, x, y)["loss"] < 1000 * first


def _resume_session(optimizer, schedule):
    from engine.data import Dataset

    x, y = toy_data()
    session = Session(small_graph())
    s = session.settings
    s.optimizer, s.lr, s.schedule, s.seed, s.batch_size = optimizer, 0.02, schedule, 5, 16
    return session, Dataset(x, y, ["a", "b", "c"], source="toy")


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine"])
@pytest.mark.parametrize("stop_step", [8, 6])  # at an epoch boundary (4 batches/epoch) and inside
def test_resume_from_file_equals_uninterrupted(tmp_path, optimizer, schedule, stop_step):
    straight, data = _resume_session(optimizer, schedule)
    straight.trainer(data, (0, 56), (56, 70), epochs=4).run()

    first, _ = _resume_session(optimizer, schedule)
    trainer = first.trainer(data, (0, 56), (56, 70), epochs=4)
    trainer.batch_listeners.append(lambda e: e.step == stop_step and trainer.stop())
    trainer.run()
    first.save(tmp_path / "half.h5")

    resumed = Session.open(tmp_path / "half.h5")
    assert resumed.optimizer.step_count == stop_step and resumed.interrupted
    resumed.trainer(data, (0, 56), (56, 70)).run()  # no epochs: finish the interrupted run
    for key, value in straight.net.weights().items():
        np.testing.assert_array_equal(resumed.net.weights()[key], value, err_msg=key)
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert resumed.history[key] == straight.history[key], key


def test_early_stop_keeps_the_best_epoch(tmp_path, monkeypatch):
    session, data = _resume_session("sgd", "constant")
    session.settings.lr, session.settings.early_stop = 0.05, 2
    val_losses = iter([1.0, 0.5, 0.7, 0.9, 0.4])
    trainer = session.trainer(data, (0, 56), (56, 70), epochs=5)
    seen = {}

    trainer.epoch_listeners.append(lambda row: seen.update({row["epoch"]:
                                                            trainer.net.weights()}))
    # validation losses in a known order
    monkeypatch.setattr("engine.train.evaluate", lambda *a, **k: {
        "loss": next(val_losses), "accuracy": 0.5, "samples": 14})
    trainer.run()
    session.finish(trainer)
    assert session.position.epoch == 4 and "early stop" in trainer.stopped_reason
    assert session.best.epoch == 2 and session.best.val_loss == 0.5
    for key, value in seen[2].items():
        np.testing.assert_array_equal(session.best.weights[key], value)
    session.save(tmp_path / "m.h5")
    reopened = Session.open(tmp_path / "m.h5")
    assert reopened.best.epoch == 2 and reopened.position.epoch == 4
    reopened.use_best()
    for key, value in seen[2].items():
        np.testing.assert_array_equal(reopened.net.weights()[key], value)


def test_first_loss_of_a_fresh_classifier_is_near_ln_classes():
    from engine import losses
    from engine.templates import load_template

    rng = np.random.default_rng(0)
    for name in ("lenet5", "vgg-small", "signal1d"):
        for seed in range(3):
            net = compile_network(load_template(name), seed=seed)
            x = rng.standard_normal((32, *net.input_shape)).astype(np.float32)
            out = net.forward(x)
            loss, _ = losses.cross_entropy(out, rng.integers(0, out.shape[1], 32))
            assert abs(loss - math.log(out.shape[1])) < 0.15, (name, seed, loss)


def test_evaluate_counts_every_sample():
    net = compile_network(small_graph())
    x, y = toy_data(n=37)
    result = evaluate(net, x, y, batch_size=16, keep_predictions=True)
    assert result["samples"] == 37 and 0 <= result["accuracy"] <= 1
    assert math.isfinite(result["loss"])
    # the classes it predicted: what the designer's confusion matrix reuses at an epoch end
    np.testing.assert_array_equal(result["predictions"], predict_classes(net, x))
    assert result["accuracy"] == np.mean(result["predictions"] == y)


def test_each_run_has_its_own_schedule_and_patience(monkeypatch):
    """A second run with cosine starts again at the full rate; after an early stop, the next run
    is not "interrupted" and gets `early_stop` epochs to improve before it stops."""
    session, data = _resume_session("sgd", "cosine")
    session.trainer(data, (0, 56), (56, 70), epochs=2).run()
    assert session.history["lr"] == [0.02, 0.01]
    trainer = session.trainer(data, (0, 56), (56, 70), epochs=2)
    trainer.run()
    assert session.history["lr"][2:] == [0.02, 0.01]

    session.settings.early_stop = 1
    losses = iter([0.5, 0.9, 0.4, 0.8, 0.9])
    monkeypatch.setattr("engine.train.evaluate", lambda *a, **k: {
        "loss": next(losses), "accuracy": 0.5, "samples": 14})
    trainer = session.trainer(data, (0, 56), (56, 70), epochs=5)
    trainer.run()
    session.finish(trainer)
    assert session.position.epoch == 6 and session.best.epoch == 5
    assert not session.interrupted
    trainer = session.trainer(data, (0, 56), (56, 70), epochs=5)
    trainer.run()
    session.finish(trainer)
    assert session.position.epoch == 8 and session.best.epoch == 7   # 0.4, then 0.8: stop
