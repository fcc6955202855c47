"""A run started in the designer lands in the Runs panel; the Sweep dialog runs trials on a local
Dask cluster, fills the Runs panel and opens the best trial."""
from PySide6.QtCore import Qt

from designer.sweep import suggestions
from engine.session import Session
from engine.templates import load_template

RUN = 120_000


def test_designer_runs_and_a_sweep_from_the_train_panel(window, qtbot, tmp_path):
    window.document.reset(load_template("lenet5"))
    train, runs = window.training_panels["Train"], window.training_panels["Runs"]
    train.set_data_spec("shapes:200")
    qtbot.waitUntil(lambda: train.data_shown is not None and window.training.state == "idle",
                    timeout=RUN)
    train.smoke_first.setChecked(False)
    train.epochs.setValue(1)
    with qtbot.waitSignal(window.training.finished, timeout=RUN):
        train.start_button.click()
    assert runs.table.rowCount() == 1 and runs.table.item(0, 3).text() == "completed"

    train.sweep_button.click()
    dialog = window.sweep_dialog
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert names[:2] == ["lr", "batch_size"] and "conv1.filters" in names
    dialog.table.item(names.index("conv1.filters"), 0).setCheckState(Qt.Checked)
    dialog.table.item(names.index("conv1.filters"), 1).setText("4,8")
    dialog.trials.setValue(3)
    dialog.epochs.setValue(1)
    dialog.workers.setValue(1)
    dialog.folder.setText(str(tmp_path / "sweep"))
    with qtbot.waitSignal(dialog._done, timeout=RUN) as done:
        dialog.start_button.click()
    assert done.args == [""] and dialog.results.rowCount() == 3
    assert len(dialog.plots.ci.items) == 2    # lr and conv1.filters against the loss
    assert runs.table.rowCount() == 4          # this model's run and the 3 trials
    assert dialog.best_button.isEnabled() and dialog.status.text().startswith("best: trial ")
    assert dialog.folder.text() != str(tmp_path / "sweep")   # a second Start writes anew
    dialog.best_button.click()
    assert window.session.path == tmp_path / "sweep" / "best.h5"
    assert window.session.runs[-1]["trial"] in range(3)

    # another model: the dialog offers its parameters (it kept the first network's rows)
    other = Session.from_template("signal1d")
    window.load_graph(other.graph, None, other)
    train.sweep_button.click()
    rows = [(dialog.table.item(r, 0).text(), dialog.table.item(r, 1).text())
            for r in range(dialog.table.rowCount())]
    assert rows == suggestions(window.session)
    assert dialog.epochs.value() == window.session.settings.epochs


def test_a_bad_term_is_shown_in_one_line(window, qtbot):
    window.document.reset(load_template("lenet5"))
    train = window.training_panels["Train"]
    train.set_data_spec("shapes:100")
    qtbot.waitUntil(lambda: train.data_shown is not None, timeout=RUN)
    train.sweep_button.click()
    dialog = window.sweep_dialog
    dialog.table.item(0, 1).setText("1e-2..1e-4")
    dialog.start_button.click()
    assert dialog.status.text() == "SPACE term 'lr=1e-2..1e-4': the range is empty (0.01 is not " \
                                   "below 0.0001)"
    assert not dialog.running and dialog.start_button.isEnabled()
