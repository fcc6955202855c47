"""Properties, Summary and the learner aids, driven through their widgets."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from designer.aids import dense_equivalent
from designer.properties import parse_size
from engine.templates import load_template


def type_into(editor, text: str) -> None:
    editor.selectAll()
    QTest.keyClick(editor, Qt.Key_Backspace)
    QTest.keyClicks(editor, text)
    QTest.keyClick(editor, Qt.Key_Return)


@pytest.fixture
def lenet(window):
    window.document.reset(load_template("lenet5"))
    return window


def test_properties_are_generated_from_the_param_specs(lenet):
    lenet.scene.select_nodes(["conv1"])
    editors = lenet.properties.editors
    assert list(editors) == ["filters", "kernel_size", "stride", "padding", "dilation", "groups",
                             "bias"]
    assert editors["filters"].value() == 6 and editors["filters"].minimum() == 1
    assert editors["kernel_size"].text() == "5"
    assert editors["stride"].text() == "" and "1 (default)" in editors["stride"].placeholderText()
    assert editors["bias"].isChecked()
    lenet.scene.select_nodes(["pool1"])
    assert lenet.properties.editors["mode"].currentText() == "max"
    assert lenet.properties.editors["stride"].placeholderText() == "2 (default)"


def test_editing_a_kernel_size_updates_downstream_shapes(lenet):
    doc = lenet.document
    assert doc.analysis.shapes["flatten1"] == (400,)
    lenet.scene.select_nodes(["conv2"])
    type_into(lenet.properties.editors["kernel_size"], "3")
    assert doc.graph.nodes["conv2"].params["kernel_size"] == 3
    assert doc.analysis.shapes["pool2"] == (16, 6, 6)
    assert doc.analysis.shapes["flatten1"] == (576,)
    labels = {e.src: w.label.text for e, w in lenet.scene.wire_items.items()}
    assert labels["conv2"] == "16x12x12" and labels["flatten1"] == "576"
    assert doc.undo_stack.undoText() == "Set conv2 kernel_size"
    type_into(lenet.properties.editors["kernel_size"], "3,5")
    assert doc.graph.nodes["conv2"].params["kernel_size"] == [3, 5]
    type_into(lenet.properties.editors["padding"], "same")
    assert doc.analysis.shapes["conv2"] == (16, 14, 14)
    type_into(lenet.properties.editors["filters"], "8")
    assert doc.analysis.shapes["conv2"] == (8, 14, 14)
    assert doc.undo_stack.count() == 4


@pytest.mark.parametrize("text, reason", [("abc", "kernel_size takes whole numbers"),
                                          ("0", "kernel_size must be >= 1"),
                                          ("3,3,3", "kernel_size needs 2 values"),
                                          ("", "kernel_size is required")])
def test_invalid_values_are_refused_with_the_reason(lenet, text, reason):
    before = lenet.document.graph.to_dict()
    lenet.scene.select_nodes(["conv1"])
    editor = lenet.properties.editors["kernel_size"]
    type_into(editor, text)
    assert lenet.document.graph.to_dict() == before
    assert reason in lenet.properties.reason.text()
    assert reason in lenet.statusBar().currentMessage()
    assert editor.text() == "5"  # the editor shows the value that still holds
    type_into(editor, "3")       # an accepted value takes the refusal down, here and below
    assert lenet.properties.reason.isHidden() and lenet.statusBar().currentMessage() == ""


def test_rename_and_reset_to_default(lenet):
    doc = lenet.document
    lenet.scene.select_nodes(["pool1"])
    type_into(lenet.properties.id_edit, "maxpool")
    assert "maxpool" in doc.graph.nodes and "pool1" not in doc.graph.nodes
    assert lenet.selected_node_id() == "maxpool"
    type_into(lenet.properties.id_edit, "conv1")
    assert "taken" in lenet.properties.reason.text()
    assert not lenet.properties.resets["mode"].isHidden()
    assert lenet.properties.resets["stride"].isHidden()  # not given: nothing to reset
    lenet.properties.resets["mode"].click()
    assert doc.graph.nodes["maxpool"].params == {"size": 2}
    lenet.scene.select_nodes(["relu1"])
    alpha_row = lenet.properties.editors["alpha"].parentWidget()
    assert alpha_row.isHidden()   # relu has no alpha
    lenet.properties.editors["function"].activated.emit(1)  # the user picks leaky_relu
    assert doc.graph.nodes["relu1"].params["function"] == "leaky_relu"
    assert lenet.properties.editors["alpha"].value() == pytest.approx(0.01)  # derived default
    assert not lenet.properties.editors["alpha"].parentWidget().isHidden()


def test_learner_aids_in_properties(lenet):
    lenet.scene.select_nodes(["conv1"])
    text = lenet.properties.info.text()
    assert "156" in text and "weight 6x1x5x5" in text
    assert "Weight sharing" in text
    assert f"{dense_equivalent((1, 28, 28), (6, 28, 28)):,}" in text
    lenet.scene.select_nodes(["pool2"])
    assert "receptive field</td><td>16x16" in lenet.properties.info.text()
    lenet.document.set_param("conv2", "kernel_size", 14)   # one output position: no sharing
    lenet.scene.select_nodes(["conv2"])
    assert "Weight sharing" not in lenet.properties.info.text()


def test_summary_table_totals_and_selection(lenet):
    model = lenet.summary.model_
    assert model.ids[:3] == ["input", "conv1", "relu1"]
    assert model.rowCount() == 15
    total = [model.index(14, c).data() for c in range(4)]
    assert total[:2] == ["Total", "14 layers"] and total[3] == "61,706"
    assert model.index(1, 2).data() == "6x28x28" and model.index(1, 5).data() == "5x5"
    lenet.summary.selectRow(4)
    assert lenet.selected_node_id() == "conv2"
    lenet.scene.select_nodes(["dense1"])
    rows = {i.row() for i in lenet.summary.selectionModel().selectedRows()}
    assert rows == {model.ids.index("dense1")}


def test_summary_marks_errors(lenet):
    lenet.document.set_param("conv2", "kernel_size", 15)
    model = lenet.summary.model_
    row = model.ids.index("conv2")
    assert model.index(row, 2).data() == "error"
    assert "larger than the padded input" in model.index(row, 0).data(Qt.ToolTipRole)


def test_parse_size():
    assert parse_size("5", "size", "k") == 5
    assert parse_size(" 5, 3 ", "size", "k") == [5, 3]
    assert parse_size("1x28x28", "shape", "shape") == [1, 28, 28]
    assert parse_size("4", "shape", "shape") == [4]
    assert parse_size("SAME", "padding", "padding") == "same"
    assert parse_size("", "size", "k") is None
    with pytest.raises(ValueError, match='or "same"'):
        parse_size("same-ish", "padding", "padding")


def test_another_model_shows_from_its_top_and_on_default_axes(window, qtbot):
    """The Summary kept the last model's scroll (its first rows hidden) and the Curves the last
    run's loss range."""
    from engine.templates import load_template

    window.load_graph(load_template("inception-mini"), None, None)
    summary = window.summary
    summary.resize(500, 150)
    summary.verticalScrollBar().setValue(summary.verticalScrollBar().maximum())
    assert summary.verticalScrollBar().value() > 0
    curves = window.training_panels["Curves"]
    curves.loss_plot.setYRange(0.8, 1.4, padding=0)
    window.load_graph(load_template("resnet-mini"), None, None)
    qtbot.waitUntil(lambda: summary.verticalScrollBar().value() == 0)
    assert curves.loss_plot.vb.viewRange()[1] == [0, 1]


def test_a_dead_end_branch_is_pointed_out_and_left_out_of_the_totals(window):
    """A pasted conv+relu wired from pool1 and going nowhere read "no problems" while its 9
    million weights were counted."""
    from engine.templates import load_template

    window.load_graph(load_template("lenet5"), None, None)
    params_before = window.totals_label.text()
    doc = window.document
    extra = doc.add_node("Conv2D", (0, 0), {"filters": 64, "kernel_size": 3},
                         connect_from="pool1")
    assert doc.analysis.unused == [extra] and doc.analysis.ok
    assert window.problems_button.text() == "\u26a0 1 unused node"
    assert window.totals_label.text() == params_before
    problems = window.problems_panel.problems
    assert [(p.node_id, p.fixes[0].text) for p in problems] == [(extra, f"delete {extra}")]
    problems[0].fixes[0].apply(doc)
    assert extra not in doc.graph.nodes and window.problems_button.text() == "\u2713 no problems"


def test_totals_past_a_problem_say_they_are_partial(window):
    """A kernel too large for its input: the layers past it have no shapes, so the status bar's
    totals are marked as counted so far ("80 weights" read as the network's size)."""
    from engine.templates import load_template

    window.load_graph(load_template("shapes"), None, None)
    assert "+" not in window.totals_label.text()
    window.document.set_param("conv2", "kernel_size", 20)
    assert window.totals_label.text().endswith("+ FLOPs") and "+ weights" in \
        window.totals_label.text()
    assert window.totals_label.toolTip().startswith("Counted up to the problems")
