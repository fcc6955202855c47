"""The Runs panel, driven through its table: overlaid curves and the difference of two runs."""
import copy

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from designer.panels.runs import RunsPanel
from designer.training import TrainingController
from engine.session import Session, TrainingSettings, run_graph


def run(graph, lr, losses, started):
    return {"started": started, "ended": started, "ended_how": "completed", "graph": graph,
            "settings": TrainingSettings(lr=lr).to_dict(), "data": "shapes",
            "history": {"epoch": [float(i + 1) for i in range(len(losses))],
                        "train_loss": losses, "val_loss": [v + 0.1 for v in losses]}}


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session.open("lenet5")
    base = run_graph(session.graph)
    wider = copy.deepcopy(base)
    next(n for n in wider["nodes"] if n["id"] == "conv1")["params"]["filters"] = 12
    wider["nodes"].append({"id": "drop1", "type": "Dropout", "params": {"rate": 0.3}})
    session.runs = [run(base, 0.001, [1.0, 0.8, 0.7], "2026-01-01T00:00:00+00:00"),
                    run(wider, 0.01, [0.9, 0.6], "2026-01-02T00:00:00+00:00")]
    other = Session.open("lenet5")
    other.runs = [run(base, 0.003, [1.2, 0.9], "2026-01-03T00:00:00+00:00")]
    model = tmp_path / "other.h5"
    other.save(model)
    controller = TrainingController(session=session)
    widget = RunsPanel(controller)
    qtbot.addWidget(widget)
    widget.resize(1200, 500)
    widget.show()
    widget.add_file(model)
    yield widget
    controller.shutdown()


def click_row(panel, row, modifier=Qt.NoModifier):
    table = panel.table
    rect = table.visualRect(table.model().index(row, 1))
    QTest.mouseClick(table.viewport(), Qt.LeftButton, modifier, rect.center())


def test_runs_overlay_and_the_difference_of_two(panel, tmp_path):
    assert panel.table.rowCount() == 3
    assert [panel.table.item(r, 0).text() for r in range(3)] == ["this model", "this model",
                                                                "other.h5"]
    panel.table.sortItems(6, Qt.DescendingOrder)          # by learning rate
    assert [panel.table.item(r, 6).text() for r in range(3)] == ["0.01", "0.003", "0.001"]
    for row in range(3):
        click_row(panel, row, Qt.ControlModifier if row else Qt.NoModifier)
    assert len(panel.selected()) == 3
    names = [label.text for _, label in panel.legend.items]
    assert names == ["this model #1 train", "this model #1 val", "other.h5 #0 train",
                     "other.h5 #0 val", "this model #0 train", "this model #0 val"]
    curves = panel.plot.getPlotItem().listDataItems()
    assert [list(c.getData()[1]) for c in curves[:2]] == [[0.9, 0.6], [1.0, 0.7]]
    assert panel.diff.count() == 0

    click_row(panel, 0)
    click_row(panel, 2, Qt.ControlModifier)                # the two runs of this model
    lines = [panel.diff.item(i).text() for i in range(panel.diff.count())]
    assert panel.diff_title.text() == "From this model #1 to this model #0"
    assert lines == ["- drop1", "~ conv1.filters: 12 -> 6", "~ lr: 0.01 -> 0.001"]
    assert panel.diff.item(0).foreground().color().name() == "#e06c75"
    panel.grab().save(str(tmp_path / "runs-panel.png"))


def test_run_figures_show_four_significant_digits():
    from designer.panels.runs import _number

    assert _number(1.303315944990802).text() == "1.303" and _number(1e-5).text() == "1e-05"
    assert _number(64).text() == "64" and _number(None).text() == "-"


def test_adding_the_open_model_s_own_file_lists_its_runs_once(qtbot, tmp_path):
    session = Session.open("lenet5")
    session.runs = [run(run_graph(session.graph), 0.01, [1.0, 0.8], "2026-01-01T00:00:00+00:00")]
    session.save(tmp_path / "m.h5")
    controller = TrainingController(session=Session.open(str(tmp_path / "m.h5")))
    try:
        widget = RunsPanel(controller)
        qtbot.addWidget(widget)
        widget.add_file(tmp_path / "m.h5")   # the file open in this window: listed twice before
        assert len(widget.entries) == 1
    finally:
        controller.shutdown()
