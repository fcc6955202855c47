"""Layered layout and routed wires on every template: no node on another, no wire through a box."""
import json

import pytest
from ui_driver import path_points

from designer.canvas.items import NODE_WIDTH
from designer.canvas.scene import GraphScene
from designer.document import GraphDocument
from designer.layout import layered_layout, route
from designer.templates import list_templates
from engine.templates import load_template

TEMPLATES = {t.key: t.graph for t in list_templates()}


def laid_out_scene(graph, direction):
    doc = GraphDocument()
    doc.direction = direction
    graph = graph.copy()
    for node in graph.nodes.values():
        node.pos = None
    doc.reset(graph)
    return GraphScene(doc)


def overlaps(a, b, margin=0.0):
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin \
        and b[1] < a[3] + margin


@pytest.mark.parametrize("direction", ["TB", "LR"])
@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_template_layout_keeps_nodes_apart_and_wires_off_boxes(qapp, key, direction):
    scene = laid_out_scene(TEMPLATES[key], direction)
    boxes = scene.node_boxes()
    ids = list(boxes)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            assert not overlaps(boxes[a], boxes[b], margin=10), (a, b)
    for edge, wire in scene.wire_items.items():
        for point in path_points(wire.path()):
            for node_id, (left, top, right, bottom) in boxes.items():
                if node_id not in (edge.src, edge.dst):
                    assert not (left < point.x() < right and top < point.y() < bottom), \
                        (edge, node_id)


def test_top_to_bottom_puts_layers_below_and_branches_side_by_side():
    graph = TEMPLATES["inception-mini"]
    pos = layered_layout(graph)
    for edge in graph.edges:
        assert pos[edge.dst][1] > pos[edge.src][1]  # every wire runs downwards
    fans = [e.dst for e in graph.edges if e.src == "stem_pool"]
    assert len(fans) == 4 and len({pos[i][1] for i in fans}) == 1  # branches share a layer
    assert len({pos[i][0] for i in fans}) == 4  # side by side


def test_route_goes_round_a_box_in_the_way_and_straight_when_clear():
    box = (-65.0, 100.0, 65.0, 166.0)
    assert route((0, 66), (0, 300), []) == [(0, 66), (0, 300)]
    points = route((0, 66), (0, 300), [box])
    assert len(points) > 2
    assert all(not (box[0] <= x <= box[2]) for x, y in points[2:-2])


def test_wires_fanning_out_of_a_node_show_its_shape_once(qapp):
    scene = laid_out_scene(TEMPLATES["inception-mini"], "TB")
    fan = [w for e, w in scene.wire_items.items() if e.src == "stem_pool"]
    assert len(fan) == 4 and [w.label.isVisibleTo(w) for w in fan].count(True) == 1
    single = [w for e, w in scene.wire_items.items() if e.src == "stem"]
    assert single[0].label.isVisibleTo(single[0]) and single[0].label.text == "16x28x28"


def test_a_saved_layout_opens_in_its_own_direction(window, tmp_path):
    path = tmp_path / "lenet.json"
    path.write_text(json.dumps(load_template("lenet5").to_dict()))  # stored left to right
    assert window.open_file(path)
    assert window.document.direction == "LR"
    assert window.scene.node_items["input"].output.pos().x() == NODE_WIDTH
    window.arrange_action.trigger()  # L: top to bottom
    assert window.document.direction == "TB"
    assert window.scene.node_items["input"].output.pos().y() > 0
