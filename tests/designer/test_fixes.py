"""One-click fixes: each shape error the analysis reports offers fixes; each fix is one undo step
that clears the error, and undoing it restores the graph JSON exactly."""
import pytest
from PySide6.QtWidgets import QPushButton

from designer.document import GraphDocument
from designer.problems import find_problems
from engine import Graph


def graph(nodes, edges):
    """nodes: (id, type, params); edges: (src, dst[, port]); laid out in a column."""
    return Graph.from_dict({
        "format": "convdesigner.graph", "version": 1, "name": "t",
        "nodes": [{"id": i, "type": t, "params": p, "pos": [0, 120 * n]}
                  for n, (i, t, p) in enumerate(nodes)],
        "edges": [{"from": e[0], "to": e[1], "port": e[2] if len(e) > 2 else 0} for e in edges]})


IN = ("in", "Input", {"shape": [3, 8, 8]})
OUT = ("out", "Output", {})
HEAD = [("flat", "Flatten", {}), ("fc", "Dense", {"units": 4}), OUT]
HEAD_EDGES = [("flat", "fc"), ("fc", "out")]

CASES = {
    "dense on a non-flat input": (
        [IN, ("fc", "Dense", {"units": 4}), OUT], [("in", "fc"), ("fc", "out")],
        ["Insert Flatten before fc", "Insert GlobalPool before fc"]),
    "kernel larger than its input": (
        [IN, ("c", "Conv2D", {"filters": 4, "kernel_size": 11}), *HEAD],
        [("in", "c"), ("c", "flat"), *HEAD_EDGES],
        ["Set kernel_size to 8 on c", 'Set padding to "same" on c']),
    "pool window larger than its input": (
        [IN, ("p", "Pool2D", {"size": 9}), *HEAD], [("in", "p"), ("p", "flat"), *HEAD_EDGES],
        ["Set size to 8 on p"]),
    "add with different channels": (
        [IN, ("a", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": 1}),
         ("b", "Conv2D", {"filters": 4, "kernel_size": 1}), ("add", "Add", {}), *HEAD],
        [("in", "a"), ("in", "b"), ("a", "add", 0), ("b", "add", 1), ("add", "flat"),
         *HEAD_EDGES],
        ["Insert a 1x1 Conv2D (8 filters, stride 1) on the b path",
         "Set filters to 8 to match on b"]),
    "add with a downsampled main path": (
        [IN, ("a", "Conv2D", {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1}),
         ("add", "Add", {}), *HEAD],
        [("in", "a"), ("a", "add", 0), ("in", "add", 1), ("add", "flat"), *HEAD_EDGES],
        ["Insert a 1x1 Conv2D (8 filters, stride 2) on the in path"]),
    "concat with different spatial sizes": (
        [IN, ("a", "Conv2D", {"filters": 8, "kernel_size": 2, "stride": 2}),
         ("cat", "Concat", {}), *HEAD],
        [("in", "a"), ("a", "cat", 0), ("in", "cat", 1), ("cat", "flat"), *HEAD_EDGES],
        ["Insert Pool2D (size 2) on the in path"]),
    "output loss that does not fit": (
        [IN, ("c", "Conv2D", {"filters": 4, "kernel_size": 3}), OUT],
        [("in", "c"), ("c", "out")],
        ["Insert Flatten before out", "Insert GlobalPool before out", "Use the mse loss on out"]),
    "no output": (
        [IN, ("flat", "Flatten", {}), ("fc", "Dense", {"units": 4})],
        [("in", "flat"), ("flat", "fc")],
        ["Add an Output (cross_entropy) after fc"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_fix_clears_the_error_in_one_step_and_undo_restores_the_file(qapp, case):
    nodes, edges, expected = CASES[case]
    doc = GraphDocument(graph(nodes, edges))
    (problem,) = find_problems(doc)
    assert [fix.text for fix in problem.fixes] == expected
    before = doc.graph.to_dict()
    for index in range(len(expected)):
        fix = find_problems(doc)[0].fixes[index]
        fix.apply(doc)
        assert doc.undo_stack.count() == 1
        assert doc.analysis.ok, (fix.text, doc.analysis.errors)
        doc.undo_stack.undo()
        assert doc.graph.to_dict() == before
        doc.undo_stack.clear()


def dense_without_flatten(window):
    nodes, edges, _ = CASES["dense on a non-flat input"]
    window.load_graph(graph(nodes, edges), None, None)
    return window.document.graph.to_dict()


def test_problems_table_lists_each_problem_and_its_fix_button_applies_it(window):
    before = dense_without_flatten(window)
    table = window.problems_panel
    assert table.rowCount() == 1
    assert table.item(0, 1).text() == "fc" and "flat input" in table.item(0, 0).text()
    buttons = table.fix_buttons(0)
    assert [b.text() for b in buttons] == ["Insert Flatten before fc",
                                           "Insert GlobalPool before fc"]
    buttons[0].click()
    assert window.document.analysis.ok and table.rowCount() == 0
    assert "flatten1" in window.document.graph.nodes
    window.undo_action.trigger()
    assert window.document.graph.to_dict() == before and table.rowCount() == 1


def test_node_context_menu_and_properties_offer_the_fixes(window):
    dense_without_flatten(window)
    centre = window.scene.node_items["fc"].sceneBoundingRect().center()
    menu = window.view.context_menu(centre)
    fixes = [a for a in menu.actions() if a.text().startswith("Fix: ")]
    assert [a.text() for a in fixes] == ["Fix: Insert Flatten before fc",
                                         "Fix: Insert GlobalPool before fc"]
    assert window.arrange_action in menu.actions()  # the canvas actions follow
    assert "Right-click to fix" in window.scene.node_items["fc"].toolTip()
    fixes[1].trigger()
    assert window.document.analysis.shapes["fc"] == (4,)
    window.undo_action.trigger()
    window.scene.select_nodes(["fc"])
    (button,) = [b for b in window.properties.fix_box.findChildren(QPushButton)
                 if b.text() == "Fix: Insert Flatten before fc"]
    button.click()
    assert window.document.analysis.ok
