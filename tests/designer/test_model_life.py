"""The model's life in the designer (issue 11): open a trained model, train it on its own data and
settings, save, close, reopen, recover after a crash; driven through the widgets, with assertions
on the one model object (window.session) and on the files."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from designer import recovery
from engine.data import load_dataset
from engine.modelfile import load_model
from engine.session import Session
from engine.templates import template_info, template_names

RUN = 60_000
FOLLOW = 5_000   # ms: what an edit changes shows at once (autosave's minute must not do it)
ROOT = Path(__file__).resolve().parents[2]


def trained_file(path: Path, epochs: int = 2) -> Path:
    """A "shapes" model trained on 300 generated shapes with its own, non-default settings."""
    session = Session.from_template("shapes")
    s = session.settings
    s.data = {"source": "shapes:300", "val_percent": 20.0}
    s.optimizer, s.lr, s.batch_size, s.seed = "momentum", 0.02, 32, 3
    data = load_dataset("shapes:300")
    session.trainer(data, (0, 240), (240, 300), epochs=epochs).run()
    session.save(path)
    return path


def shown(qtbot, window, source=None):
    """Wait until the Train panel shows the loaded data (of source, when given)."""
    train = window.training_panels["Train"]
    qtbot.waitUntil(lambda: train.data_shown is not None
                    and train.data_shown is window.training.data
                    and source in (None, train.data_shown.dataset.source)
                    and window.training.state == "idle", timeout=RUN)
    return train.data_shown


def open_trained(qtbot, window, path):
    """Open the model file at path in the window and wait for its data; the Train panel."""
    assert window.open_file(path)
    shown(qtbot, window)
    return window.training_panels["Train"]


def train_once(qtbot, window, epochs=1):
    train = window.training_panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(epochs)
    with qtbot.waitSignal(window.training.finished, timeout=RUN) as finished:
        train.start_button.click()
    return finished.args[0]


def test_open_restores_the_models_data_and_settings_and_start_trains_on_them(
        window, qtbot, tmp_path, dialogs):
    path = trained_file(tmp_path / "model.h5")
    train = window.training_panels["Train"]
    # another network first, trained at a silly learning rate on other data
    window.load_graph(Session.from_template("vgg-small").graph, None,
                      Session.from_template("vgg-small"))
    train.lr.setValue(1.0)
    train.optimizer.setCurrentText("sgd")
    window.document.undo_stack.setClean()
    before = load_model(path)

    assert window.open_file(path)
    shown(qtbot, window, "shapes:300")
    assert train.source.currentData() == "shapes" and train.samples.value() == 300
    assert (train.optimizer.currentText(), train.lr.value(), train.batch_size.value(),
            train.seed.value()) == ("momentum", 0.02, 32, 3)
    assert window.training.data.problem is None and not train.mismatch.isVisible()

    assert train_once(qtbot, window) == "completed"
    session = window.session
    assert session.data_spec["source"] == "shapes:300"
    assert session.optimizer.kind == "momentum" and session.optimizer.config["lr"] == 0.02
    assert len(session.history["epoch"]) == 3
    assert session.history["val_acc"][-1] >= before.history["val_acc"][-1] - 0.05
    assert window.isWindowModified() and "*" in window.windowTitle()


def test_close_after_training_asks_and_save_writes_the_new_epochs(window, qtbot, tmp_path,
                                                                   dialogs):
    path = trained_file(tmp_path / "model.h5")
    assert window.open_file(path)
    shown(qtbot, window)
    assert not window.isWindowModified()
    assert train_once(qtbot, window) == "completed"
    dialogs.answer = QMessageBox.Save
    assert window.close()
    assert "Save the training" in dialogs.asked[-1][1]
    saved = load_model(path)
    assert len(saved.history["epoch"]) == 3 and saved.settings["optimizer"] == "momentum"
    assert saved.training["position"]["epoch"] == 3


def test_each_template_opens_with_its_own_dataset(window, qtbot):
    train = window.training_panels["Train"]
    for name in template_names():
        window.load_graph(Session.from_template(name).graph, None, Session.from_template(name))
        dataset = template_info(name)["dataset"]
        shown(qtbot, window, dataset)
        assert train.source.currentData() == dataset, name
        assert window.training.data.problem is None, name
        assert not train.mismatch.isVisible()


def test_a_dataset_that_does_not_fit_offers_the_fixes_of_the_networks_rank(window, qtbot,
                                                                           tmp_path):
    path = trained_file(tmp_path / "model.h5")
    assert window.open_file(path)
    train = window.training_panels["Train"]
    train.set_data_spec("signals:60")    # 1-D signals for a 2-D network
    shown(qtbot, window, "signals:60")
    assert "1x1024" in train.mismatch.text() and "1x28x28" in train.mismatch.text()
    assert train.fix_model_data.isVisible() and not train.fix_shape.isVisible()
    assert not train.fix_reset.isVisible()

    train.set_data_spec("shapes-rgb:60")   # same rank, other shape
    shown(qtbot, window, "shapes-rgb:60")
    assert train.fix_shape.isVisible() and "3x32x32" in train.fix_shape.text()

    train.fix_model_data.click()
    shown(qtbot, window, "shapes:300")
    assert not train.mismatch.isVisible() and train.samples.value() == 300


def test_training_on_other_classes_is_refused_until_the_weights_are_reset(window, qtbot,
                                                                          tmp_path, dialogs):
    """A trained 4-class model and a dataset whose classes differ: Start says why, and the
    offered reset trains afresh."""
    path = tmp_path / "model.h5"
    session = Session.from_template("shapes")
    data = load_dataset("shapes:120")
    data.class_names = ["w", "x", "y", "z"]
    session.trainer(data, (0, 100), (100, 120), epochs=1).run()
    session.data_spec["source"] = "elsewhere"
    session.save(path)
    assert window.open_file(path)
    train = window.training_panels["Train"]
    shown(qtbot, window)
    train.set_data_spec("shapes:120")
    shown(qtbot, window, "shapes:120")
    assert "trained on elsewhere" in train.mismatch.text() and train.fix_reset.isVisible()
    assert train.progress.format() == "trained 1 epoch"
    assert train_once(qtbot, window) == "failed"
    assert "trained on elsewhere" in train.status.text()
    train.set_data_spec("shapes:100")   # another choice: the refusal goes, the mismatch stays
    shown(qtbot, window, "shapes:100")
    assert train.status.text() == "" and "trained on elsewhere" in train.mismatch.text()
    with qtbot.waitSignal(window.training.data_loaded, timeout=RUN):
        train.fix_reset.click()
    assert train.data_shown.problem is None and not train.mismatch.isVisible()
    assert not window.session.trained and window.isWindowModified()
    # the reset's history reaches the panel as its own signal, maybe after the data's
    qtbot.waitUntil(lambda: train.progress.format() == "not started", timeout=RUN)
    assert train_once(qtbot, window) == "completed"


def test_curves_show_the_whole_history_after_open_and_after_resume(window, qtbot, tmp_path):
    path = trained_file(tmp_path / "model.h5", epochs=3)
    assert window.open_file(path)
    curves = window.training_panels["Curves"]
    assert curves.epoch_count == 3
    (x0, x1), (y0, y1) = curves.loss_plot.vb.viewRange()
    losses = curves.epochs["train_loss"] + curves.epochs["val_loss"]
    assert x0 <= 0.05 and x1 >= 3 and y0 <= min(losses) and y1 >= max(losses)
    assert len(curves.lr_epochs.getData()[1]) == 6   # the learning rate comes back, 3 steps
    shown(qtbot, window)
    assert train_once(qtbot, window) == "completed"
    (x0, x1), _ = curves.loss_plot.vb.viewRange()
    assert curves.epoch_count == 4 and curves.epochs["epoch"] == [1, 2, 3, 4]
    assert x0 <= 0.05 and x1 >= 4


def test_panels_start_over_on_new_and_open(window, qtbot, tmp_path):
    train, layers = window.training_panels["Train"], window.training_panels["Layers"]
    window.load_graph(Session.from_template("shapes").graph, None,
                      Session.from_template("shapes"))
    shown(qtbot, window)
    train.epochs.setValue(3)
    health = []
    window.training.node_health.connect(health.append)
    assert train_once(qtbot, window, epochs=3) == "completed"
    qtbot.waitUntil(lambda: any(e["stats"] for r in health for e in r.values()), timeout=RUN)
    layers.show_health(health[-1])
    assert layers.table.rowCount() == 0   # behind the Curves tab
    window.docks["Layers"].raise_()
    qtbot.waitUntil(lambda: layers.table.rowCount() > 0)
    assert "complete" in train.status.text()

    window.load_graph(Session.from_template("signal1d").graph, None,
                      Session.from_template("signal1d"))
    assert layers.table.rowCount() == 0 and layers.layer is None
    shown(qtbot, window, "signals")
    assert train.progress.format() == "not started" and train.status.text() == ""
    assert window.training_panels["Curves"].epoch_count == 0
    filters = window.training_panels["Filters"]   # empty, or the new network's 1-D filters
    assert filters.shown is None or filters.shown.ndim == 3
    assert window.training_panels["Confusion"].matrix is None
    assert not window.isWindowModified()


def test_saving_over_a_more_trained_model_asks(window, qtbot, tmp_path, dialogs):
    path = trained_file(tmp_path / "model.h5")
    before = path.read_bytes()
    window.load_graph(Session.from_template("shapes").graph, None, None)
    dialogs.answer = QMessageBox.Cancel
    assert not window.save_to(path)
    assert "trained for 2 epochs" in dialogs.asked[-1][1]
    assert path.read_bytes() == before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_warns_with_the_fix_and_a_stop_button(window, qtbot):
    train = window.training_panels["Train"]
    window.load_graph(Session.from_template("shapes").graph, None,
                      Session.from_template("shapes"))
    shown(qtbot, window)
    train.set_data_spec("shapes:2000")
    train.optimizer.setCurrentText("adam")
    train.lr.setValue(10.0)
    warnings = []
    window.training.warning.connect(warnings.append)
    window.training.diverged.connect(warnings.append)
    train.smoke_first.setChecked(False)
    train.epochs.setValue(30)
    train.start_button.click()
    qtbot.waitUntil(lambda: bool(warnings), timeout=RUN)
    assert "learning rate" in warnings[0]
    qtbot.waitUntil(lambda: any("learning rate" in m for m in window.log_panel.messages()),
                    timeout=RUN)
    if window.training.busy:
        assert train.stop_now.isVisible()
        with qtbot.waitSignal(window.training.finished, timeout=RUN):
            train.stop_now.click()


CRASHING_WINDOW = textwrap.dedent("""
    import os, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from designer import recovery
    from designer.app import MainWindow
    folder, model, train = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "train"
    recovery.recovery_folder = lambda: folder
    window = MainWindow()
    assert window.open_file(model)
    window.document.move_nodes({"conv1": (40, 300)})
    if train:
        panel = window.training_panels["Train"]
        panel.smoke_first.setChecked(False)
        panel.epochs.setValue(1)
        done = []
        window.training.finished.connect(done.append)
        panel.start_button.click()
        while not done:
            app.processEvents()
            time.sleep(0.02)
    window.autosave()
    window.training.stop_and_wait()
    while window.session.modified and not window.recovery.model_path.exists():
        time.sleep(0.02)     # the worker writes the model between batches
    time.sleep(0.3)
    print("autosaved", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("trained_since_open", [False, True])
def test_recovery_after_a_killed_process_keeps_the_trained_work(window, qtbot, tmp_path,
                                                                 dialogs, trained_since_open):
    """A second process opens a trained model, moves a node (and trains an epoch), autosaves and
    is killed; recovering then saving writes every trained epoch, never untrained weights."""
    path = trained_file(tmp_path / "model.h5")
    original = load_model(path)
    folder = tmp_path / "crash-recovery"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WINDOW, str(folder), str(path),
         "train" if trained_since_open else "edit"], cwd=ROOT, stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "autosaved"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    (orphan,) = recovery.orphans(folder)
    assert (orphan.model is not None) == trained_since_open
    window.recover(orphan)
    assert window.isWindowModified() and window.file_path == path
    assert window.document.graph.nodes["conv1"].pos == [40, 300]
    assert window.save()
    saved = load_model(path)
    epochs = 3 if trained_since_open else 2
    assert len(saved.history["epoch"]) == epochs and saved.optimizer is not None
    assert saved.graph.nodes["conv1"].pos == [40, 300]
    if not trained_since_open:
        for key, value in original.weights.items():
            np.testing.assert_array_equal(saved.weights[key], value)


def test_file_export_and_import(window, qtbot, tmp_path, dialogs):
    """File > Export writes what `convdesigner export` writes; File > Import opens it again with
    its weights, as an unsaved model."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = trained_file(tmp_path / "model.h5")
    assert window.open_file(path)
    assert window.export_to("onnx", tmp_path / "model.onnx")
    assert window.export_to("pytorch", tmp_path / "torch.py")
    assert {p.name for p in (tmp_path / "torch").iterdir()} >= {"model.py", "model.safetensors"}
    x = np.random.default_rng(0).random((3, 1, 28, 28), np.float32)
    run = ort.InferenceSession(str(tmp_path / "model.onnx"))
    (onnx_out,) = run.run(None, {run.get_inputs()[0].name: x})

    assert window.import_file(tmp_path / "model.onnx")
    assert window.file_path is None and window.isWindowModified()
    session = window.session
    assert session.data_spec["normalization"] == load_model(path).data_spec["normalization"]
    norm = session.normalization_for(None, (0, 0))
    ours = session.net.forward(norm.apply(x))
    np.testing.assert_allclose(ours, onnx_out, atol=1e-4)
    # the ONNX file is not a dataset: the Train panel takes the built-in data of the Input's
    # shape (it tried to load model.onnx: "unknown dataset")
    assert session.data_spec["source"] == ""
    shown(qtbot, window, "shapes")
    assert window.weights_label.text() == "weights: trained elsewhere · unsaved"


def test_saving_during_a_run_keeps_it_marked_unsaved_and_refuses_an_edited_structure(
        window, qtbot, tmp_path, dialogs):
    path = trained_file(tmp_path / "model.h5")
    train = open_trained(qtbot, window, path)
    train.smoke_first.setChecked(False)
    train.epochs.setValue(50)
    train.start_button.click()
    qtbot.waitUntil(lambda: window.training.state == "training", timeout=RUN)
    assert window.save_to(path)                   # between two batches
    assert window.session.modified and window.isWindowModified()
    assert not train.lr.isEnabled()               # the run's settings are fixed while it runs
    window.document.set_param("dense2", "units", 5)
    before = path.read_bytes()
    dialogs.answer = QMessageBox.Save   # "the weights no longer fit: save anyway?"
    assert not window.save_to(path)
    assert "stop training to save" in dialogs.asked[-1][1] and path.read_bytes() == before
    with qtbot.waitSignal(window.training.finished, timeout=RUN):
        train.stop_button.click()
    window.document.undo_stack.undo()


def test_a_refused_start_then_undo_keeps_the_trained_model(window, qtbot, tmp_path, dialogs):
    path = trained_file(tmp_path / "model.h5")
    train = open_trained(qtbot, window, path)
    weights = window.session.weights()
    window.document.remove(["relu1"])   # pool1 is left with an unconnected input
    train.smoke_first.setChecked(False)
    with qtbot.waitSignal(window.training.error, timeout=RUN):
        train.start_button.click()
    qtbot.waitUntil(lambda: window.training.state == "idle", timeout=RUN)
    assert "pool1" in train.status.text()
    window.document.undo_stack.undo()
    assert train.status.text() == ""                        # the refusal went with its cause
    assert window.weights_label.text().startswith("weights: trained 2 epochs")
    assert train_once(qtbot, window) == "completed"
    assert len(window.session.history["epoch"]) == 3         # on from the trained weights
    assert not np.array_equal(window.session.weights()["conv1/weight"], weights["conv1/weight"])


def test_a_start_that_would_set_the_trained_run_aside_asks_first(window, qtbot, tmp_path,
                                                                  dialogs):
    path = trained_file(tmp_path / "model.h5")
    train = open_trained(qtbot, window, path)
    assert train.progress.format() == "trained 2 epochs"
    window.document.set_param("dense1", "units", 33)      # dense1 and dense2 no longer fit
    assert window.weights_label.text().startswith("weights: invalidated by edits")
    dialogs.answer = QMessageBox.Cancel
    train.start_button.click()
    assert "2 trained epochs" in dialogs.asked[-1][1] and window.training.state == "idle"
    assert len(window.session.history["epoch"]) == 2
    dialogs.answer = QMessageBox.Yes
    assert train_once(qtbot, window) == "completed"
    assert len(window.session.history["epoch"]) == 1          # the edited network's own run
    qtbot.waitUntil(lambda: "training completed" in window.log_panel.messages()[-1])
    logged = window.log_panel.messages()   # the run's story: start, epoch, end
    assert any("momentum, lr 0.02, batch 32, 1 epoch on shapes:300" in m for m in logged)
    assert any("epoch 1: train loss" in m for m in logged)
    window.document.set_param("dense1", "units", 34)          # a second edit would drop the first
    dialogs.answer = QMessageBox.Cancel
    train.start_button.click()
    assert "(1 trained epoch) is set aside" in dialogs.asked[-1][1]
    assert "earlier edit set aside (2 trained epochs) is then dropped" in dialogs.asked[-1][1]
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    assert window.weights_label.text().startswith("weights: trained 2 epochs")


def test_a_changed_setting_marks_the_model_unsaved_and_a_wheel_turn_changes_no_field(
        window, qtbot, tmp_path, dialogs):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    path = trained_file(tmp_path / "model.h5")
    train = open_trained(qtbot, window, path)
    assert not window.isWindowModified()
    percent = train.val_percent.value()
    centre = QPointF(train.val_percent.rect().center())
    turn = QWheelEvent(centre, train.val_percent.mapToGlobal(centre), QPoint(0, 0),
                       QPoint(0, -120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(train.val_percent, turn)   # scrolling the panel passes over it
    assert train.val_percent.value() == percent and not window.isWindowModified()
    train.train_range.editingFinished.emit()          # focus left the field: nothing changed
    assert not window.isWindowModified()
    window.session.settings.device = "cuda:0"         # a model trained on a GPU, opened here
    train._devices_found([("cpu", "CPU"), ("cuda:0", "GPU 0")], "")
    assert train.device.currentData() == "cuda:0" == window.session.settings.device
    train._devices_found([("cpu", "CPU")], "")       # a machine without it trains on the CPU
    assert window.session.settings.device == "cpu" and not window.isWindowModified()
    train.lr.setValue(0.005)
    assert window.isWindowModified() and window.session.settings.lr == 0.005
    assert window.save_to(path) and not window.isWindowModified()
    assert Session.open(path).settings.lr == 0.005


def test_an_output_with_more_classes_than_the_data_is_pointed_out(window, qtbot):
    window.load_graph(Session.from_template("lenet5").graph, None, Session.from_template("lenet5"))
    info = shown(qtbot, window)
    assert info.dataset.num_classes == 4   # lenet5's built-in example: the shapes
    text = window.training_panels["Train"].data_summary.text()
    assert "the Output tells 10 classes apart and the data has 4: outputs 4-9" in text


def test_a_changed_validation_share_is_saved_and_reopened(window, qtbot, tmp_path, dialogs):
    window.load_graph(Session.from_template("shapes").graph, None, Session.from_template("shapes"))
    shown(qtbot, window)
    train = window.training_panels["Train"]
    train.samples.setValue(600)
    train.val_percent.setValue(16)
    info = shown(qtbot, window, "shapes:600")
    assert info.train_range == (0, 504) and info.val_range == (504, 600)
    assert train_once(qtbot, window) == "completed"
    path = tmp_path / "m.h5"
    assert window.save_to(path)
    assert window.open_file(path)
    info = shown(qtbot, window, "shapes:600")
    assert train.val_percent.value() == 16 and info.val_range == (504, 600)


def test_closing_after_saving_a_trained_model_as_json_keeps_asking_for_a_model_file(
        window, qtbot, tmp_path, dialogs):
    """A .json holds the network only: Save of unsaved training goes to Save As (a model file),
    and a close whose save wrote only the graph again does not close."""
    window.load_graph(Session.from_template("shapes").graph, None, Session.from_template("shapes"))
    shown(qtbot, window)
    assert train_once(qtbot, window) == "completed"
    graph = tmp_path / "net.json"
    assert window.save_to(graph) and window.isWindowModified()   # the training is not in it
    dialogs.answer = QMessageBox.Save
    dialogs.save_path = str(graph)                    # Save As offered; the user keeps .json
    assert not window.maybe_save()                    # so the window does not close
    assert "a model file (.h5): net.json holds the network only" in dialogs.asked[-1][1]
    dialogs.save_path = str(tmp_path / "net.h5")
    assert window.maybe_save() and not window.isWindowModified()
    assert Session.open(tmp_path / "net.h5").trained


def test_a_generated_dataset_is_the_same_samples_as_on_the_command_line(window, qtbot):
    """The training seed shuffles and initialises; "shapes:120" names one set of samples."""
    window.load_graph(Session.from_template("shapes").graph, None, Session.from_template("shapes"))
    train = window.training_panels["Train"]
    train.seed.setValue(5)
    train.set_data_spec("shapes:120")
    info = shown(qtbot, window, "shapes:120")
    np.testing.assert_array_equal(info.dataset.x, load_dataset("shapes:120").x)


def test_an_undo_that_brings_a_set_aside_run_back_shows_it_at_once(window, qtbot, tmp_path,
                                                                     dialogs):
    """The panels follow the run the undo brought back (its curves, Resume or Start), not the
    edited network's run they showed before."""
    path = trained_file(tmp_path / "model.h5", epochs=2)
    train = open_trained(qtbot, window, path)
    curves = window.training_panels["Curves"]
    window.document.set_param("dense1", "units", 33)
    dialogs.answer = QMessageBox.Yes
    assert train_once(qtbot, window, epochs=3) == "completed"
    assert curves.epoch_count == 3
    window.document.undo_stack.undo()
    qtbot.waitUntil(lambda: curves.epoch_count == 2, timeout=FOLLOW)
    assert len(window.session.history["epoch"]) == 2
    assert train.progress.format() == "trained 2 epochs"
    assert window.weights_label.text().startswith("weights: trained 2 epochs")
    window.document.undo_stack.redo()   # and the edited network's run comes back with a redo
    qtbot.waitUntil(lambda: curves.epoch_count == 3, timeout=FOLLOW)


def test_renaming_a_trained_layer_keeps_the_run(window, qtbot, tmp_path, dialogs):
    """A rename is not an edit of the arrays: the status bar keeps "trained 2 epochs", Save asks
    nothing and writes the run with the layer's weights under its new id (it said "weights:
    invalidated by edits" and saved a fresh layer and no history)."""
    path = trained_file(tmp_path / "model.h5")
    trained = load_model(path).weights["dense2/weight"]
    assert window.open_file(path)
    window.document.rename_node("dense2", "head")
    assert window.weights_label.text().startswith("weights: trained 2 epochs")
    assert window.isWindowModified()
    assert window.save() and not dialogs.asked
    saved = load_model(path)
    assert len(saved.history["epoch"]) == 2
    np.testing.assert_array_equal(saved.weights["head/weight"], trained)


def test_a_graph_without_data_shows_the_data_it_trains_on(window, qtbot, tmp_path):
    """A model trained on shapes:300, then a graph JSON with no data choice: the Train panel's
    size shows the built-in default it loads (it kept 300 while 6000 samples trained)."""
    assert window.open_file(trained_file(tmp_path / "model.h5"))
    train = window.training_panels["Train"]
    shown(qtbot, window, "shapes:300")
    assert train.samples.value() == 300
    Session.from_template("shapes").graph.save_json(tmp_path / "plain.json")
    assert window.open_file(tmp_path / "plain.json")
    shown(qtbot, window, "shapes")
    assert train.samples.value() == 0 and train.data_spec() == "shapes"
