"""Kernel warm-up in the main window: after a network is opened its kernels are prepared on a
background thread with progress in the status bar, while the window keeps serving events and
training can start; each set of kernels is warmed once, and a half-edited graph never."""
import time

import pytest
from PySide6.QtCore import QTimer

import designer.warmup
from engine.templates import load_template
from engine.warmup import warm_up

RUN = 60_000   # ms; generous for a loaded two-core machine
STEP_SECONDS = 0.05


@pytest.fixture
def slow_steps(monkeypatch):
    """Every warm-up step takes STEP_SECONDS at least, as compiling does on a first start, so
    that the window is seen while the thread works (kernels already loaded take no time)."""
    def slow_warm_up(graph, progress, **kwargs):
        def slow(done, total, label):
            progress(done, total, label)
            time.sleep(STEP_SECONDS)
        return warm_up(graph, progress=slow, **kwargs)
    monkeypatch.setattr(designer.warmup, "warm_up", slow_warm_up)


class Watcher:
    """What the status bar showed at each progress report, and how often a 10 ms GUI timer ran
    meanwhile (the window's event loop at work)."""

    def __init__(self, window):
        self.window = window
        self.reports: list[tuple] = []
        self.ticks = 0
        self.timer = QTimer(interval=10, timeout=self._tick)
        window.warmup.progress.connect(self._progress)
        window.warmup.started.connect(self.timer.start)
        window.warmup.finished.connect(self.timer.stop)

    def _tick(self):
        self.ticks += 1

    def _progress(self, done, total, label):
        indicator = self.window.warmup_indicator
        self.reports.append((done, total, label, indicator.isVisible(),
                             indicator.label.text(), self.ticks))


def test_opening_a_template_prepares_its_kernels_with_progress(qtbot, window, slow_steps):
    watcher = Watcher(window)
    indicator = window.warmup_indicator
    assert not indicator.isVisible()
    with qtbot.waitSignal(window.warmup.finished, timeout=RUN):
        window.load_graph(load_template("shapes"), None, None)
        qtbot.waitUntil(indicator.isVisible, timeout=RUN)
        assert indicator.label.text().startswith("Preparing kernels")
    reports = watcher.reports
    total = reports[-1][1]
    assert total == 23 and reports[-1][:3] == (23, 23, "")
    done = [r[0] for r in reports]
    assert done == sorted(done) and len(set(done)) > 3   # seen step by step, never backwards
    assert all(visible for *_, visible, _, _ in reports)
    assert all(text == f"Preparing kernels: {label}" for _, _, label, _, text, _ in reports[:-1])
    ticks = [r[-1] for r in reports]
    assert ticks[-1] > ticks[0]            # the event loop ran while the thread worked
    assert not indicator.isVisible() and indicator.bar.value() == 23
    assert not window.warmup.busy


def test_kernels_are_warmed_once_per_kernel_set_and_never_for_a_broken_graph(qtbot, window):
    started = []
    window.warmup.started.connect(lambda: started.append(True))
    with qtbot.waitSignal(window.warmup.finished, timeout=RUN):
        window.load_graph(load_template("shapes"), None, None)
    doc = window.document

    doc.set_param("conv1", "filters", 12)         # sizes only: the same kernels
    qtbot.waitUntil(lambda: not window.warmup.busy, timeout=RUN)
    assert len(started) == 1

    doc.set_param("relu1", "function", "tanh")    # a kernel not warmed yet
    with qtbot.waitSignal(window.warmup.finished, timeout=RUN):
        pass
    assert len(started) == 2

    edge = next(e for e in doc.graph.edges if e.dst == "dense2")
    doc.disconnect(edge)                          # mid-edit: the Output is cut off
    doc.set_param("relu2", "function", "sigmoid")
    qtbot.waitUntil(lambda: not window.warmup.busy, timeout=RUN)
    assert len(started) == 2 and not window.warmup_indicator.isVisible()
    assert not any("warm" in message for message in window.log_panel.messages())


def test_starting_training_during_the_warm_up_trains(qtbot, window, slow_steps):
    train = window.training_panels["Train"]
    errors, finished = [], []
    window.training.error.connect(errors.append)
    window.training.finished.connect(finished.append)
    with qtbot.waitSignal(window.warmup.started, timeout=RUN):
        window.load_graph(load_template("shapes"), None, None)
    train.samples.setValue(200)
    train.epochs.setValue(1)
    with qtbot.waitSignals([window.training.finished, window.warmup.finished], timeout=RUN):
        train.start_button.click()
        assert window.warmup.busy
    assert finished == ["completed"] and errors == []
    assert len(window.training.session.history["epoch"]) == 1
    assert not window.warmup_indicator.isVisible()


def test_gpus_are_looked_for_once_the_window_is_up(qtbot, window):
    train = window.training_panels["Train"]
    qtbot.waitUntil(lambda: train.device_note.text() != "Looking for GPUs…", timeout=RUN)
    assert train.device.itemData(0) == "cpu" and "cores" in train.device.itemText(0)
    assert train.device.currentData() == "cpu"
