"""LeNet-5 built with the palette, the mouse and the Properties panel equals the template."""
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import drop_module, wire

from engine.modules import REGISTRY, resolve_params
from engine.templates import load_template

LAYOUT = [("Input", {"shape": "1,28,28"}),
          ("Conv2D", {"filters": 6, "kernel_size": "5", "padding": "2"}),
          ("Activation", {"function": "relu"}), ("Pool2D", {"mode": "max", "size": "2"}),
          ("Conv2D", {"filters": 16, "kernel_size": "5"}), ("Activation", {}),
          ("Pool2D", {}), ("Flatten", {}), ("Dense", {"units": 120}), ("Activation", {}),
          ("Dense", {"units": 84}), ("Activation", {}), ("Dense", {"units": 10}),
          ("Output", {"loss": "cross_entropy"})]


def set_in_properties(window, name, value) -> None:
    editor = window.properties.editors[name]
    if hasattr(editor, "setCurrentText"):
        editor.activated.emit(editor.findText(value))
        return
    editor.selectAll()
    QTest.keyClick(editor, Qt.Key_Backspace)
    QTest.keyClicks(editor, str(value))
    QTest.keyClick(editor, Qt.Key_Return)


def semantic(graph):
    """Types, resolved params and wiring in topological order (ids and positions aside)."""
    order = graph.topological_order()
    index = {node_id: i for i, node_id in enumerate(order)}
    nodes = [(graph.nodes[i].type, resolve_params(REGISTRY[graph.nodes[i].type],
                                                   graph.nodes[i].params)) for i in order]
    edges = sorted((index[e.src], index[e.dst], e.port) for e in graph.edges)
    return nodes, edges


def test_lenet5_built_through_the_ui_equals_the_template(window):
    previous = None
    for step, (type_name, params) in enumerate(LAYOUT):
        node_id = drop_module(window, type_name, (step * 220, (step % 2) * 60))
        assert window.selected_node_id() == node_id
        for name, value in params.items():
            set_in_properties(window, name, value)
        if previous is not None:
            wire(window, previous, node_id)
        previous = node_id
    doc = window.document
    assert doc.analysis.ok, doc.analysis.errors
    assert semantic(doc.graph) == semantic(load_template("lenet5"))
    assert sum(doc.analysis.param_counts.values()) == 61706
    assert window.problems_button.text() == "\u2713 no problems"
    # adds, wires, and the parameter edits that changed something (filters 16 and units 10
    # and the Input's shape are what a new node has already)
    assert doc.undo_stack.count() == 14 + 13 + 10
