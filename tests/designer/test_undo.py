"""Every edit is one undo step, and undo/redo restore graph.to_dict() exactly (order included),
with the canvas redrawn to match."""
import pytest
from PySide6.QtCore import QPointF

from engine.graph import Edge
from engine.templates import load_template

EDITS = {
    "add": lambda doc: doc.add_node("Conv2D", (10, 20)),
    "add wired": lambda doc: doc.add_node("Dropout", (0, 0), connect_from="stem_relu"),
    "delete nodes": lambda doc: doc.remove(["block1_bn2", "stem"]),
    "delete a wire into Add": lambda doc: doc.remove(edges=[Edge("block1_bn2", "block1_add", 0)]),
    "connect": lambda doc: doc.connect("stem_relu", "block2_add", 2),
    "disconnect": lambda doc: doc.disconnect(Edge("gpool", "dense", 0)),
    "reconnect": lambda doc: doc.reconnect(Edge("stem_relu", "block1_add", 1), "input",
                                           "block1_add", 1),
    "move": lambda doc: doc.move_nodes({"stem": (5, 7), "input": (-100, 3.5)}),
    "set params": lambda doc: doc.set_params("stem", {"filters": 4, "kernel_size": [3, 5],
                                                      "padding": "same"}),
    "reset a param": lambda doc: doc.set_param("stem_relu", "function", None),
    "rename": lambda doc: doc.rename_node("block1_add", "sum1"),
    "paste": lambda doc: doc.paste(doc.fragment(["block1_conv1", "block1_bn1", "block1_relu1"])),
    "arrange all": lambda doc: doc.arrange(),
    "arrange some": lambda doc: doc.arrange(["down", "down_bn", "down_relu"]),
}


def scene_matches(window) -> bool:
    graph, scene = window.document.graph, window.scene
    return (set(scene.node_items) == set(graph.nodes)
            and set(scene.wire_items) == set(graph.edges)
            and all(scene.node_items[i].pos() == QPointF(*n.pos) for i, n in graph.nodes.items())
            and all(len(scene.node_items[e.dst].inputs) > e.port for e in graph.edges))


@pytest.mark.parametrize("edit", EDITS)
def test_undo_and_redo_restore_the_document_exactly(window, edit):
    doc = window.document
    doc.reset(load_template("resnet-mini"))
    before = doc.graph.to_dict()
    EDITS[edit](doc)
    after = doc.graph.to_dict()
    assert after != before
    assert doc.undo_stack.count() == 1
    for _ in range(2):
        doc.undo_stack.undo()
        assert doc.graph.to_dict() == before
        assert scene_matches(window)
        doc.undo_stack.redo()
        assert doc.graph.to_dict() == after
        assert scene_matches(window)
    assert doc.analysis.shapes == doc.graph.analyze().shapes


def test_parameters_and_renames_are_checked_before_anything_changes(window):
    doc = window.document
    doc.reset(load_template("lenet5"))
    from engine.modules import ParamError

    with pytest.raises(ParamError) as err:
        doc.set_params("conv1", {"filters": 0, "kernel_size": 5, "colour": "red"})
    assert len(err.value.problems) == 2
    for bad in ("", "a/b", "conv2"):
        with pytest.raises(ValueError):
            doc.rename_node("conv1", bad)
    assert doc.undo_stack.count() == 0


def test_removing_an_Add_input_renumbers_the_rest_and_undo_puts_them_back(window):
    doc = window.document
    doc.reset(load_template("inception-mini"))
    concat = next(i for i, n in doc.graph.nodes.items() if n.type == "Concat")
    inputs = doc.graph.inputs_of(concat)
    before = doc.graph.to_dict()
    doc.remove([inputs[0].src])
    ports = [e.port for e in doc.graph.inputs_of(concat)]
    assert ports == list(range(len(inputs) - 1))
    doc.undo_stack.undo()
    assert doc.graph.to_dict() == before
