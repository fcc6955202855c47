"""Training inside the designer: the controller and its panels on a bare QMainWindow, driven as a
person would (Train panel buttons), with assertions on the model and on what the panels show."""
import math

import numpy as np
import pytest
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox

from designer.panels import ActivationsPanel, CurvesPanel
from designer.panels.activations import MAX_PLOTS
from designer.panels.docks import install_training_docks
from designer.run_watch import RunWatch
from designer.training import TrainingController
from engine import Graph, compile_network
from engine.data import Normalization, load_dataset
from engine.inspect import filters, receptive_fields, saliency, smoke_test
from engine.session import Session
from engine.templates import load_template

RUN = 60_000   # ms; generous for a loaded two-core machine


@pytest.fixture
def rig(qtbot):
    window = QMainWindow()
    window.resize(1300, 850)
    controller = TrainingController(load_template("shapes"))
    panels = install_training_docks(window, controller)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    train = panels["Train"]
    train.set_data_spec("shapes:600")
    qtbot.waitUntil(lambda: controller.data is not None and controller.state == "idle",
                    timeout=RUN)
    train.batch_size.setValue(64)
    yield window, controller, panels
    controller.shutdown()


def show(window, title):
    dock = next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == title)
    dock.raise_()
    return dock.widget()


def shown(qtbot, panel, **expected):
    """Wait until the panel shows a snapshot whose payload has the expected values."""
    qtbot.waitUntil(lambda: panel.payload is not None and all(
        panel.payload.get(k) == v for k, v in expected.items()), timeout=RUN)


def activations_panel(qtbot, graph, source):
    """A controller for graph with its data loaded from source, and a shown Activations panel
    (the caller shuts the controller down)."""
    controller = TrainingController(graph)
    panel = ActivationsPanel(controller)
    qtbot.addWidget(panel)
    panel.show()
    controller.session.settings.data = {"source": source}
    with qtbot.waitSignal(controller.data_loaded, timeout=RUN):
        controller.load_data()
    return controller, panel


def test_train_shows_curves_and_current_filters_and_reopens(qtbot, rig, tmp_path):
    window, controller, panels = rig
    train, curves = panels["Train"], panels["Curves"]
    health = []
    controller.node_health.connect(health.append)
    train.epochs.setValue(1)
    with qtbot.waitSignal(controller.finished, timeout=RUN) as finished:
        train.start_button.click()
    assert finished.args == ["completed"]
    assert curves.batch_count == 8 and curves.epoch_count == 1   # 480 samples, batches of 64
    assert np.isfinite(curves.epochs["val_loss"]).all()
    assert train.progress.format() == "trained 1 epoch"
    assert any(entry["stats"] for report in health for entry in report.values())

    panel = show(window, "Filters")
    qtbot.waitUntil(lambda: panel.shown is not None and not panel._outstanding, timeout=RUN)
    assert panel.shown_node == "conv1"
    np.testing.assert_allclose(panel.shown, filters(controller.session.net, "conv1"))

    path = tmp_path / "trained.h5"
    controller.save(path)
    reopened = TrainingController()
    try:
        again = CurvesPanel(reopened)
        with qtbot.waitSignal(reopened.history_changed, timeout=RUN):
            reopened.set_session(Session.open(path))
        assert again.epoch_count == 1
        assert again.epochs["train_loss"] == pytest.approx(curves.epochs["train_loss"])
        # the file keeps per-epoch history only: the legend names no per-batch curve
        assert legend_names(again) == ["train (epoch)", "validation (epoch)"]
    finally:
        reopened.shutdown()


def test_panels_behind_a_tab_neither_ask_nor_draw_until_brought_forward(qtbot, rig):
    window, controller, panels = rig   # Curves in front of the other bottom panels
    train, curves, filters = panels["Train"], panels["Curves"], panels["Filters"]
    assert curves.seen() and not filters.seen() and not panels["Confusion"].seen()
    # the panels' first requests, from when the window opened
    qtbot.waitUntil(lambda: not any(getattr(p, "_outstanding", False) for p in panels.values()),
                    timeout=RUN)
    asked = []
    controller.snapshot_ready.connect(lambda kind, _payload: asked.append(kind))
    train.smoke_first.setChecked(False)
    train.epochs.setValue(3)
    with qtbot.waitSignal(controller.finished, timeout=RUN):
        train.start_button.click()
    assert asked == [] and not controller.confusion_at_epoch_end
    assert curves.batch_count == 24
    qtbot.waitUntil(lambda: curves.loss_raw.xData is not None and curves.loss_raw.xData.size == 24)

    before = filters.snapshots
    show(window, "Filters")   # the trained filters, asked for as the tab comes forward
    qtbot.waitUntil(lambda: filters.snapshots > before, timeout=RUN)
    assert asked == ["filters"] and filters.seen() and not curves.seen()
    show(window, "Confusion")
    assert controller.confusion_at_epoch_end


def test_a_not_learning_warning_is_withdrawn_once_the_run_learns(qtbot, rig):
    """A first epoch at chance warns (stop and lower the learning rate); a later epoch clearly
    above chance withdraws the warning and its Stop button, so nobody stops a run that learns."""
    from types import SimpleNamespace

    window, controller, panels = rig
    train = panels["Train"]
    said = []
    controller.warning_withdrawn.connect(said.append)
    controller._trainer = SimpleNamespace(best=None, val_predictions=None,
                                          optimizer=SimpleNamespace(step_count=75))
    controller._watch = RunWatch(controller._trainer, chance=0.255)
    epoch = {"epoch": 1, "train_loss": 1.38, "train_acc": 0.243, "val_loss": 1.37,
             "val_acc": 0.25, "seconds": 1.0, "samples_per_sec": 1.0, "lr": 0.01}
    try:
        controller._after_epoch(epoch)
        qtbot.waitUntil(lambda: "Not learning" in train.warning.text() and
                        not train.warning.isHidden())
        controller._after_epoch({**epoch, "epoch": 2, "train_acc": 0.29})   # not clearly yet
        qtbot.wait(50)
        assert said == [] and not train.warning.isHidden()
        controller._after_epoch({**epoch, "epoch": 3, "train_acc": 0.396})
        qtbot.waitUntil(lambda: train.warning.isHidden())
        assert said == ["Learning after all: training accuracy 39.6% after epoch 3, above the "
                        "25.5% of guessing."]
        assert train.stop_now.isHidden()
    finally:
        controller._trainer = controller._watch = None


def test_a_run_watch_sends_points_in_bunches_and_warns_of_a_diverging_loss_once():
    from types import SimpleNamespace

    from engine.train import BatchEvent

    trainer = SimpleNamespace(batch_size=10, x=range(25), epochs=2,
                              optimizer=SimpleNamespace(lr=0.5, step_count=0))
    watch = RunWatch(trainer, chance=0.5)
    losses = [1.0, 2.0, 40.0, 90.0, 120.0, 150.0]
    said = [watch.batch(BatchEvent(k // 3, k % 3 + 1, 3, loss, 0.5, 100.0, 0.5, k + 1))
            for k, loss in enumerate(losses)]
    assert [bool(s) for s in said] == [False, False, False, True, False, False]
    assert "diverging" in said[3] and "(now 0.5)" in said[3]
    payload = watch.take_points(watch.last_event)
    assert [p[0] for p in payload["points"]] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert payload["epoch"] == 2 and payload["fraction"] == 1.0 and payload["step"] == 6
    assert watch.take_points() is None   # sent once


def test_pause_then_resume_continues_from_the_same_step(qtbot, rig):
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(20)
    steps = []
    controller.batch_done.connect(lambda p: steps.extend(point[4] for point in p["points"]))
    train.start_button.click()
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=RUN)
    train.pause_button.click()
    qtbot.waitUntil(lambda: controller.state == "paused", timeout=RUN)
    paused_at = controller.session.optimizer.step_count
    assert steps[-1] == paused_at and train.pause_button.text() == "Resume"
    qtbot.wait(600)
    assert controller.session.optimizer.step_count == paused_at and steps[-1] == paused_at
    seen = len(steps)
    train.pause_button.click()
    qtbot.waitUntil(lambda: len(steps) > seen, timeout=RUN)
    assert steps[seen] == paused_at + 1
    with qtbot.waitSignal(controller.finished, timeout=RUN) as finished:
        train.stop_button.click()
    assert finished.args == ["stopped"]


def test_start_while_the_data_loads_keeps_the_run_state(qtbot, rig):
    """Start pressed while the data still loads: the load's end does not put the panel back to
    idle under the waiting run (where a second Start queued a second run)."""
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(1)
    states = []
    controller.state_changed.connect(states.append)
    train.set_data_spec("shapes:700")
    assert controller.state == "loading"
    with qtbot.waitSignal(controller.finished, timeout=RUN) as finished:
        train.start_button.click()
    assert finished.args == ["completed"]
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=RUN)
    assert states == ["loading", "training", "idle"]


def test_the_progress_bar_says_where_the_model_stands_once_a_run_ends(qtbot, rig):
    """After Stop or the last epoch the bar reads as for a reopened model, not the run's last
    rate and "0:00 left"."""
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(1)
    train.batch_size.setValue(16)
    with qtbot.waitSignal(controller.finished, timeout=RUN):
        train.start_button.click()
        qtbot.waitUntil(lambda: controller.session.optimizer is not None
                        and controller.session.optimizer.step_count >= 3, timeout=RUN)
        train.stop_button.click()
    batch = controller.session.position.batch
    assert train.progress.format() == f"stopped at epoch 1, batch {batch}"
    with qtbot.waitSignal(controller.finished, timeout=RUN):
        train.start_button.click()
    assert train.progress.format() == "trained 1 epoch"
    assert train.progress.value() == train.progress.maximum()


def test_the_filters_panel_opens_on_the_layer_picked_before_it_was_shown(qtbot, rig):
    """A conv picked on the canvas before the Filters tab was first shown: the tab opens on it
    (it opened on conv1: its list was not filled yet, so the pick was dropped)."""
    window, controller, panels = rig
    controller.node_selected.emit("conv2")
    panel = show(window, "Filters")
    qtbot.waitUntil(lambda: panel.shown is not None and not panel._outstanding, timeout=RUN)
    assert panel.shown_node == "conv2" and panel.node.currentText() == "conv2"


def test_stop_keeps_the_weights_reached(qtbot, rig):
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(20)
    train.start_button.click()
    qtbot.waitUntil(lambda: controller.state == "training" and controller.session is not None
                    and controller.session.optimizer is not None
                    and controller.session.optimizer.step_count >= 2, timeout=RUN)
    with qtbot.waitSignal(controller.finished, timeout=RUN) as finished:
        train.stop_button.click()
    assert finished.args == ["stopped"]
    session = controller.session
    fresh = compile_network(load_template("shapes"), seed=session.settings.seed)
    trained = session.net.weights()
    assert not np.allclose(trained["conv1/weight"], fresh.params["conv1/weight"])
    assert session.position.batch == session.optimizer.step_count % 8
    assert session.modified and session.interrupted
    assert train.start_button.text() == "Resume run"
    train.show_session()   # as when the saved model is opened again
    position, epochs = session.position, len(session.history["epoch"])
    assert train.progress.format() == (
        f"stopped at epoch {position.epoch + 1}, batch {position.batch}" if position.batch
        else f"trained {epochs} epoch{'s' * (epochs != 1)}")


def test_activation_panel_shows_one_map_per_channel(qtbot, rig):
    window, controller, panels = rig
    panel = show(window, "Activations")
    for node_id, maps in (("conv2", 16), ("pool1", 8), ("dense1", 1)):
        controller.select_node(node_id)
        shown(qtbot, panel, node=node_id)
        assert panel.maps_shown == maps
    controller.select_node("conv1")
    shown(qtbot, panel, node="conv1")
    region = panel.show_unit(0, (10, 10))
    assert [s.stop - s.start for s in region] == [3, 3]
    assert panel.input_view.marks   # the receptive field lit up on the input


def test_receptive_field_after_conv5_pool2_conv5_is_14(qtbot):
    doc = {"format": "convdesigner.graph", "version": 1, "name": "rf",
           "nodes": [{"id": "in", "type": "Input", "params": {"shape": [1, 28, 28]}},
                     {"id": "c1", "type": "Conv2D", "params": {"filters": 2, "kernel_size": 5}},
                     {"id": "p1", "type": "Pool2D", "params": {"size": 2}},
                     {"id": "c2", "type": "Conv2D", "params": {"filters": 2, "kernel_size": 5}},
                     {"id": "f", "type": "Flatten"},
                     {"id": "d", "type": "Dense", "params": {"units": 4}},
                     {"id": "out", "type": "Output"}],
           "edges": [{"from": a, "to": b} for a, b in
                     (("in", "c1"), ("c1", "p1"), ("p1", "c2"), ("c2", "f"), ("f", "d"),
                      ("d", "out"))]}
    graph = Graph.from_dict(doc)
    field = receptive_fields(graph)["c2"]
    assert field.size == (14, 14) and field.jump == (2, 2)
    assert [s.stop - s.start for s in field.region((3, 3), (28, 28))] == [14, 14]

    controller, panel = activations_panel(qtbot, graph, "shapes:40")
    try:
        controller.select_node("c2")
        shown(qtbot, panel, node="c2")
        region = panel.show_unit(1, (4, 4))
        assert [s.stop - s.start for s in region] == [14, 14]
        assert panel.input_view.marks[0].rect().width() == 14
    finally:
        controller.shutdown()


def test_line_plots_of_1d_maps_are_updated_in_place(qtbot):
    """A 1-D network's per-channel plots are built once and then given new data: rebuilding
    them on every snapshot held the window for 300 ms at a time during a run."""
    controller, panel = activations_panel(qtbot, load_template("signal1d"), "signals:40")
    try:
        controller.select_node("conv1")
        shown(qtbot, panel, node="conv1", sample=0)
        plots = list(panel.maps_plots.plots)
        assert len(plots) == panel.maps_shown == 16
        controller.select_sample(1)
        shown(qtbot, panel, node="conv1", sample=1)
        assert panel.maps_plots.plots == plots   # the same PlotItems, new data
        drawn = plots[3].listDataItems()[0].getData()[1]
        np.testing.assert_array_equal(drawn, panel.payload["activation"][3])
        controller.select_node("conv2")
        shown(qtbot, panel, node="conv2")
        assert len(panel.maps_plots.plots) == panel.maps_shown == min(32, MAX_PLOTS)   # anew
    finally:
        controller.shutdown()


def test_saliency_has_the_input_shape(qtbot, rig):
    window, controller, panels = rig
    panel = show(window, "Saliency")
    controller.select_sample(3)
    shown(qtbot, panel, sample=3)
    assert panel.shown_saliency.shape == (1, 28, 28)
    net = compile_network(load_template("vgg-small"))
    x = np.random.default_rng(0).random((2, 3, 32, 32), np.float32)
    assert saliency(net, x, [1, 2]).shape == x.shape
    assert saliency(net, x[0], 1).shape == x.shape[1:]


def test_smoke_test_flags_a_dead_relu(qtbot, rig):
    data = load_dataset("shapes:64")
    x = Normalization.fit(data.x).apply(data.x)
    net = compile_network(load_template("shapes"))
    assert smoke_test(net, x, data.y).ok
    net.params["conv1/bias"][:] = -1e6
    report = smoke_test(net, x, data.y)
    assert not report.ok
    assert "dead ReLU" in report.problems["relu1"][0]
    assert "no gradient" in report.problems["conv1"][0]
    assert net.params["conv1/bias"][0] == -1e6   # the check worked on a copy

    window, controller, panels = rig
    controller.load_weights({"conv1/bias": np.full(8, -1e6, np.float32)})
    problems = []
    controller.node_health.connect(problems.append)
    with qtbot.waitSignal(controller.smoke_done, timeout=RUN) as done:
        panels["Train"].smoke_button.click()
    assert not done.args[0].ok
    qtbot.waitUntil(lambda: bool(problems), timeout=RUN)
    assert problems[-1]["relu1"]["level"] == "bad"
    assert "dead ReLU" in panels["Train"].status.text()
    assert panels["Train"].start_anyway.isVisible()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverging_run_stops_with_a_message_and_keeps_good_weights(qtbot, rig):
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.optimizer.setCurrentText("sgd")
    train.lr.setValue(0.1)
    train.epochs.setValue(5)
    # logits near 1e18: the first steps stay finite, then the updates overflow
    weight = compile_network(load_template("shapes")).params["dense2/weight"]
    controller.load_weights({"dense2/weight": weight * 1e18})
    messages = []
    controller.diverged.connect(messages.append)
    with qtbot.waitSignal(controller.finished, timeout=RUN) as finished:
        train.start_button.click()
    assert finished.args == ["diverged"]
    assert "diverged" in messages[0] and "diverged" in train.status.text()
    assert all(np.isfinite(w).all() for w in controller.session.net.weights().values())


def test_closing_during_training_asks_then_stops(qtbot, rig, dialogs):
    window, controller, panels = rig
    train = panels["Train"]
    train.smoke_first.setChecked(False)
    train.epochs.setValue(20)
    batches = []
    controller.batch_done.connect(batches.append)
    train.start_button.click()
    qtbot.waitUntil(lambda: bool(batches), timeout=RUN)
    dialogs.answer = QMessageBox.Cancel
    assert not window.close() and window.isVisible() and controller.busy
    dialogs.answer = QMessageBox.Yes
    assert window.close()
    qtbot.waitUntil(lambda: not controller.busy, timeout=RUN)
    assert controller.session.optimizer.step_count > 0
    assert [kind for kind, _ in dialogs.asked] == ["question", "question"]


def test_a_data_shape_mismatch_is_explained_with_a_one_click_fix(qtbot, rig):
    window, controller, panels = rig
    train = panels["Train"]
    show(window, "Train")
    asked = []
    controller.input_shape_requested.connect(asked.append)
    train.set_data_spec("shapes-rgb:40")
    # the panel shows the new data (an earlier load may still be answering first)
    qtbot.waitUntil(lambda: train.data_shown is not None
                    and train.data_shown.dataset.source == "shapes-rgb:40", timeout=RUN)
    assert train.fix_shape.isVisible() and "3x32x32" in train.mismatch.text()
    # the data is shown before the controller's "idle" arrives, which enables the button
    qtbot.waitUntil(train.fix_shape.isEnabled, timeout=RUN)
    train.fix_shape.click()
    assert asked == [[3, 32, 32]]   # the main window applies it to its document
    controller.input_shape_requested.disconnect(asked.append)
    train.fix_shape.click()         # no main window listening: the controller's graph takes it
    assert controller.graph.input_node.params["shape"] == [3, 32, 32]
    assert not train.fix_shape.isVisible()


def test_confusion_counts_are_updated_in_place(qtbot):
    """Each epoch's matrix rewrites the cells' counts; their ~120 text items are built only when
    the classes change (building them held the window a tenth of a second every epoch)."""
    from PySide6.QtGui import QFontMetrics

    from designer.panels import ConfusionPanel

    controller = TrainingController(load_template("lenet5"))
    try:
        panel = ConfusionPanel(controller)
        qtbot.addWidget(panel)
        names = [str(k) for k in range(10)]
        rng = np.random.default_rng(0)
        payloads = [{"matrix": rng.integers(0, 50, (10, 10)), "class_names": names,
                     "predicted_names": names, "epoch": epoch, "step": epoch}
                    for epoch in (1, 2)]
        panel.show_snapshot(payloads[0])
        cells = [list(row) for row in panel._cells]
        panel.show_snapshot(payloads[1])
        assert panel._cells == cells
        assert [[item.textItem.toPlainText() for item in row] for row in cells] == \
            payloads[1]["matrix"].astype(str).tolist()
        panel.show_snapshot({**payloads[1], "class_names": names[:3],
                             "matrix": payloads[1]["matrix"][:3, :3],
                             "predicted_names": names[:3]})
        assert len(panel._cells) == 3 and panel._cells[0][0] is not cells[0][0]
        assert panel.info.text().startswith("validation after epoch 2:")
        # the slanted column names fit above the matrix at the dock's default height
        shapes = ["circle", "square", "triangle", "cross"]
        panel.resize(1390, 190)
        panel.show()
        panel.show_snapshot({**payloads[1], "class_names": shapes, "predicted_names": shapes,
                             "matrix": payloads[1]["matrix"][:4, :4]})
        qtbot.wait(50)
        box = panel.matrix_view.box
        (x0, x1), (y0, y1) = box.viewRange()
        metrics = QFontMetrics(panel._texts[0].textItem.font())
        above = -y0 * box.height() / (y1 - y0)   # pixels above the first row
        assert above >= metrics.horizontalAdvance("triangle") * 0.7 + metrics.height()
        # a model stopped mid-epoch (reopened) predicts with the weights it stopped at
        panel.show_snapshot({**payloads[1], "epoch": 15, "batch": 71})
        assert panel.info.text().startswith("validation with the weights at epoch 16, batch 71:")
    finally:
        controller.shutdown()


def legend_names(curves) -> list[str]:
    """The entries a user sees (the others are faded out)."""
    return [label.text for _, label in curves.legend.items if label.opacity() > 0]


def test_legend_names_only_the_curves_drawn(qtbot):
    """A run without validation data names no validation curve; a fresh panel names none."""
    controller = TrainingController(load_template("lenet5"))
    try:
        curves = CurvesPanel(controller)
        qtbot.addWidget(curves)
        assert legend_names(curves) == []
        curves.add_batches({"points": [(0.5, 2.3, 0.1, 0.01, 1)], "epochs": 1})
        curves._redraw_batches()
        curves.add_epoch({"epoch": 1, "train_loss": 2.0, "train_acc": 0.5,
                          "val_loss": math.nan, "val_acc": math.nan, "lr": 0.01})
        curves._redraw()
        assert legend_names(curves) == ["train (epoch)", "train (per batch, smoothed)"]
    finally:
        controller.shutdown()


def test_loss_axis_moves_only_when_the_curves_leave_it(qtbot):
    """Each redraw keeps the loss axis while the curves stay inside it and fill half of it (an
    axis repaint costs the window more than the curves); it re-ranges when they leave it."""
    controller = TrainingController(load_template("lenet5"))
    try:
        curves = CurvesPanel(controller)
        qtbot.addWidget(curves)

        def batches(first, losses):
            return {"points": [(first + k / 100, loss, 0.5, 0.01, first * 100 + k)
                               for k, loss in enumerate(losses)], "epochs": 3}
        curves.add_batches(batches(0, [2.3, 2.0, 1.8]))
        curves._redraw_batches()
        low, high = curves.loss_plot.vb.viewRange()[1]
        assert low <= 1.8 and high >= 2.3
        curves.add_batches(batches(1, [1.9, 2.1]))
        curves._redraw_batches()
        assert curves.loss_plot.vb.viewRange()[1] == [low, high]
        curves.add_batches(batches(2, [3.5]))
        curves._redraw_batches()
        assert curves.loss_plot.vb.viewRange()[1][1] >= 3.5
        curves.add_epoch({"epoch": 1, "train_loss": 2.0, "train_acc": 0.5, "val_loss": 5.0,
                          "val_acc": 0.4, "lr": 0.01})
        curves._redraw()
        assert curves.loss_plot.vb.viewRange()[1][1] >= 5.0
    finally:
        controller.shutdown()


def test_an_epoch_is_drawn_with_the_next_redraw_and_at_a_run_s_end(qtbot):
    """A panel in view draws a new epoch's points with the batches' next redraw (one repaint for
    both), and within REDRAW_MS when no batch follows (the run's last epoch); a panel behind
    another tab draws them when it comes to the front."""
    controller = TrainingController(load_template("lenet5"))
    try:
        curves = CurvesPanel(controller)
        qtbot.addWidget(curves)
        curves.set_in_front(False)
        curves.show()
        row = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.5, "val_loss": 2.1,
               "val_acc": 0.4, "lr": 0.01}
        curves.add_epoch(row)
        assert curves.loss_epoch.getData()[0] is None or not len(curves.loss_epoch.getData()[0])
        curves.set_in_front(True)
        assert list(curves.loss_epoch.getData()[1]) == [2.0]
        curves.add_batches({"points": [(1.5, 1.9, 0.6, 0.01, 150)], "epochs": 3})
        curves.add_epoch({**row, "epoch": 2, "train_loss": 1.5})
        assert list(curves.loss_epoch.getData()[1]) == [2.0]   # not yet: one repaint for both
        qtbot.waitUntil(lambda: list(curves.loss_epoch.getData()[1]) == [2.0, 1.5], timeout=2000)
        assert list(curves.loss_smooth.getData()[1]) == [1.9]
    finally:
        controller.shutdown()


def test_the_rate_line_of_a_run_resumed_mid_epoch_has_no_gap(qtbot):
    controller = TrainingController(load_template("lenet5"))
    try:
        curves = CurvesPanel(controller)
        qtbot.addWidget(curves)
        curves.set_history({"epoch": [1, 2], "train_loss": [2.0, 1.5], "train_acc": [0.5, 0.6],
                            "val_loss": [2.1, 1.6], "val_acc": [0.4, 0.5], "lr": [0.01, 0.01]})
        curves.add_batches({"points": [(2.75, 1.4, 0.6, 0.001, 275)], "epochs": 3})
        curves._redraw_batches()
        curves._redraw_epochs()
        x, _ = curves.lr_epochs.getData()
        batch_x, batch_lr = curves.lr_curve.getData()
        # the resumed epoch's (stepped-down) rate from the epoch's start, where it changed
        assert x[-1] == 2.0 == batch_x[0] and list(batch_lr) == [0.001, 0.001]
    finally:
        controller.shutdown()


def test_the_form_names_the_built_in_dataset_it_loaded(qtbot):
    """With no dataset chosen, the built-in one the Input fits is loaded and the form says which
    (it showed the first of the list, shapes, over signal data)."""
    window = QMainWindow()
    controller = TrainingController(load_template("signal1d"))
    try:
        train = install_training_docks(window, controller)["Train"]
        qtbot.addWidget(window)
        qtbot.waitUntil(lambda: train.data_shown is not None, timeout=RUN)   # the panel asked
        assert train.data_shown.dataset.source.startswith("signals")
        assert train.source.currentData() == "signals" and train.samples.isEnabled()
        assert controller.session.settings.data["source"] == "signals"   # form and model agree
    finally:
        controller.shutdown()


def test_layer_histograms_say_when_there_is_no_gradient_yet(qtbot):
    """A model just opened has no gradients: its histogram says so instead of showing a range
    of -0.5 .. 0.5 around a spike of zeros."""
    from designer.panels.layers import LayersPanel
    from engine.inspect import histograms

    controller = TrainingController(load_template("lenet5"))
    try:
        panel = LayersPanel(controller)
        qtbot.addWidget(panel)
        net = compile_network(load_template("lenet5"))
        panel.show_snapshot({"node": "conv1", "histograms": histograms(net)["conv1"]})
        assert "conv1: gradients: all 150 are 0" in panel.grad_plot.titleLabel.text
        assert "conv1: weights (150 values" in panel.weight_plot.titleLabel.text
        net.grads["conv1/weight"][:] = np.nan   # a diverged step
        panel.show_snapshot({"node": "conv1", "histograms": histograms(net)["conv1"]})
        assert "conv1: gradients: none is finite" in panel.grad_plot.titleLabel.text
    finally:
        controller.shutdown()
