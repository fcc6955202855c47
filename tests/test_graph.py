"""Graph document: round trips, every validation error (naming node and value), shapes, counts."""
import json
import re

import pytest

from engine import Graph, GraphFormatError, GraphValidationError
from engine.templates import TEMPLATE_DIR, load_template, template_names


def doc(nodes, edges, name="t"):
    return {"format": "convdesigner.graph", "version": 1, "name": name,
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
            "edges": [{"from": a, "to": b, "port": port} for a, b, port in edges]}


def chain(*layers, shape=(1, 8, 8)):
    nodes = [("in", "Input", {"shape": list(shape)})]
    nodes += [(f"n{i}", t, p) for i, (t, p) in enumerate(layers)]
    nodes.append(("out", "Output", {"loss": "cross_entropy"}))
    ids = [n[0] for n in nodes]
    return Graph.from_dict(doc(nodes, [(a, b, 0) for a, b in zip(ids, ids[1:])]))


def errors(graph):
    return [(e.node_id, e.message) for e in graph.validate()]


def one_error(graph, node_id, *fragments):
    found = [m for n, m in errors(graph) if n == node_id]
    assert found, errors(graph)
    assert all(f in found[0] for f in fragments), found


@pytest.mark.parametrize("name", template_names())
def test_templates_round_trip_exactly(name):
    raw = json.loads((TEMPLATE_DIR / f"{name}.json").read_text())
    graph = Graph.from_dict(raw)
    assert graph.to_dict() == raw
    assert Graph.from_json(graph.to_json()) == graph
    assert graph.validate() == []


def test_save_and_load_json(tmp_path):
    graph = load_template("lenet5")
    graph.save_json(tmp_path / "g.json")
    assert Graph.load_json(tmp_path / "g.json") == graph


def test_lenet5_shapes_params_flops():
    analysis = load_template("lenet5").check()
    assert analysis.shapes["conv1"] == (6, 28, 28)
    assert analysis.shapes["pool2"] == (16, 5, 5)
    assert analysis.shapes["flatten1"] == (400,)
    assert analysis.param_counts["conv1"] == 6 * 25 + 6
    assert analysis.param_counts["dense1"] == 400 * 120 + 120
    assert sum(analysis.param_counts.values()) == 61706
    assert analysis.flops["conv1"] == 6 * 28 * 28 * (2 * 25 + 1)


@pytest.mark.parametrize("padding,kernel,dilation,expected", [
    ("same", 4, 1, 9), ("same", 3, 2, 9), (1, 3, 1, 9), ([0, 2], 3, 1, None)])
def test_conv_padding(padding, kernel, dilation, expected):
    graph = chain(("Conv2D", {"filters": 2, "kernel_size": kernel, "padding": padding,
                              "dilation": dilation}), ("Flatten", {}), shape=(1, 9, 9))
    shape = graph.check().shapes["n0"]
    if expected:
        assert shape == (2, expected, expected)
    else:
        assert shape == (2, 7, 11)


def test_unknown_type_and_param():
    graph = chain(("Conv9D", {}), ("Flatten", {}))
    one_error(graph, "n0", "unknown module type", "Conv9D")
    graph = chain(("Flatten", {"foo": 1}))
    one_error(graph, "n0", "unknown parameter 'foo'")


@pytest.mark.parametrize("params,fragment", [
    ({"filters": 2.5, "kernel_size": 3}, "filters must be an integer. Received: filters=2.5"),
    ({"filters": 0, "kernel_size": 3}, "filters must be >= 1. Received: filters=0"),
    ({"filters": 2, "kernel_size": [3, 3, 3]}, "kernel_size needs 2 values"),
    ({"filters": 2, "kernel_size": 3, "padding": "valid"}, "padding must be an int"),
    ({"filters": 2, "kernel_size": 3, "bias": 1}, "bias must be true or false"),
    ({"filters": 2}, "kernel_size is required"),
    ({"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same"},
     'padding "same" needs stride 1'),
])
def test_wrong_param_values(params, fragment):
    one_error(chain(("Conv2D", params), ("Flatten", {})), "n0", fragment)


def test_choice_and_float_ranges():
    one_error(chain(("Activation", {"function": "swish"}), ("Flatten", {})), "n0",
              "function must be one of", "'swish'")
    one_error(chain(("Dropout", {"rate": 1.5}), ("Flatten", {})), "n0", "rate must be <= 0.99")


def test_unconnected_and_too_many_inputs():
    g = doc([("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 2}),
             ("add", "Add", {}), ("out", "Output", {})],
            [("in", "d", 0), ("d", "add", 0), ("add", "out", 0)])
    one_error(Graph.from_dict(g), "add", "unconnected input", "at least 2", "Received: 1")
    g["edges"] += [{"from": "in", "to": "d", "port": 1}]
    one_error(Graph.from_dict(g), "d", "too many inputs", "Received: 2")
    g2 = doc([("in", "Input", {"shape": [4]}), ("add", "Add", {}), ("out", "Output", {})],
             [("in", "add", 0), ("in", "add", 2), ("add", "out", 0)])
    one_error(Graph.from_dict(g2), "add", "unconnected input port 1")


def test_cycle_no_input_no_output_several_outputs():
    g = doc([("in", "Input", {"shape": [4]}), ("a", "Add", {}), ("b", "Activation", {}),
             ("out", "Output", {})],
            [("in", "a", 0), ("b", "a", 1), ("a", "b", 0), ("b", "out", 0)])
    one_error(Graph.from_dict(g), "a", "is part of a cycle")
    one_error(Graph.from_dict(g), "b", "is part of a cycle")
    one_error(Graph.from_dict(g), "out", "follows a cycle")   # downstream, not on the loop
    messages = [m for _, m in errors(Graph.from_dict(doc([("d", "Flatten", {})], [])))]
    assert "the graph has no Input node" in messages
    assert "the graph has no Output node" in messages
    g = doc([("in", "Input", {"shape": [4]}), ("o1", "Output", {}), ("o2", "Output", {})],
            [("in", "o1", 0), ("in", "o2", 0)])
    one_error(Graph.from_dict(g), "o2", "several Output nodes")


def test_add_and_concat_shapes():
    base = [("in", "Input", {"shape": [3, 8, 8]}),
            ("a", "Conv2D", {"filters": 4, "kernel_size": 3}),
            ("b", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1})]
    g = doc(base + [("j", "Add", {}), ("out", "Output", {"loss": "mse"})],
            [("in", "a", 0), ("in", "b", 0), ("a", "j", 0), ("b", "j", 1), ("j", "out", 0)])
    one_error(Graph.from_dict(g), "j", "same shape", "4x6x6, 4x8x8")
    g["nodes"][3]["type"] = "Concat"
    one_error(Graph.from_dict(g), "j", "same spatial size", "4x6x6, 4x8x8")
    g["nodes"][2]["params"]["filters"] = 5
    g["nodes"][1]["params"]["padding"] = 1
    assert Graph.from_dict(g).check().shapes["j"] == (9, 8, 8)


def test_dense_needs_flatten_kernel_too_large_groups():
    one_error(chain(("Dense", {"units": 3})), "n0", "insert Flatten", "[1, 8, 8]")
    one_error(chain(("Conv2D", {"filters": 2, "kernel_size": 11}), ("Flatten", {})), "n0",
              "larger than the padded input", "8x8")
    one_error(chain(("Conv2D", {"filters": 2, "kernel_size": 3, "stride": 8}),
                    ("Pool2D", {"size": 2}), ("Flatten", {})), "n1",   # the stride upstream
              "larger than the padded input", "its input comes from n0 (2x1x1)")
    one_error(chain(("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 3}), ("Flatten", {}),
                    shape=(6, 8, 8)), "n0", "groups must divide filters",
              "groups=3, filters=4")
    one_error(chain(("Conv2D", {"filters": 6, "kernel_size": 3, "groups": 4}), ("Flatten", {}),
                    shape=(6, 8, 8)), "n0", "groups must divide the input channels")
    one_error(chain(("Conv1D", {"filters": 2, "kernel_size": 3}), ("Flatten", {})), "n0",
              "Conv1D expects an input of shape [C, L]. Received: [1, 8, 8]")


def test_all_errors_reported_at_once():
    graph = chain(("Conv2D", {"filters": 0, "kernel_size": 3}), ("Dense", {"units": -1}),
                  ("Pool2D", {"mode": "median"}))
    nodes = {n for n, _ in errors(graph)}
    assert {"n0", "n1", "n2"} <= nodes
    with pytest.raises(GraphValidationError) as info:
        graph.infer_shapes()
    assert len(info.value.errors) >= 3


@pytest.mark.parametrize("bad,fragment", [
    ([], "JSON object"),
    ({"format": "other", "version": 1}, "format must be"),
    ({"format": "convdesigner.graph", "version": 9}, "version"),
    ({"format": "convdesigner.graph", "version": 1, "nodes": [{"id": "a"}, {"id": "a",
      "type": "Input"}]}, "string type"),
    ({"format": "convdesigner.graph", "version": 1,
      "nodes": [{"id": "a", "type": "Input"}, {"id": "a", "type": "Input"}]}, "duplicate node id"),
    ({"format": "convdesigner.graph", "version": 1, "nodes": [],
      "edges": [{"from": "x", "to": "y"}]}, "does not exist"),
    ({"format": "convdesigner.graph", "version": 1, "extra": 1}, "unknown graph fields"),
])
def test_format_errors(bad, fragment):
    with pytest.raises(GraphFormatError, match=fragment):
        Graph.from_dict(bad)


# Ids, malformed files, size, memory ---------------------------------------------------------------

def dense_net(node_id="fc", units=10):
    return doc([("in", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
                (node_id, "Dense", {"units": units}), ("out", "Output", {})],
               [("in", "flat", 0), ("flat", node_id, 0), (node_id, "out", 0)])


@pytest.mark.parametrize("node_id,fragment", [
    (".", "cannot be '.' or '..'"), ("..", "cannot be '.' or '..'"),
    ("a/b", "cannot hold '/' (U+002F, SOLIDUS)"), ("a\0b", "cannot hold '\\x00' (U+0000"),
    ("a\nb", "cannot hold '\\n' (U+000A"), ("a\u202eb", "U+202E, RIGHT-TO-LEFT OVERRIDE"),
    ("a:b", "cannot hold ':'"), (" fc", "whitespace"), ("fc ", "whitespace"),
    ("x" * 65, "at most 64 characters"), ("", "non-empty string"), (3, "non-empty string"),
])
def test_node_ids_hold_only_what_hdf5_paths_and_file_names_can(node_id, fragment):
    from engine.graph import Edge

    with pytest.raises(GraphFormatError) as caught:
        Graph.from_dict(dense_net(node_id))
    message = str(caught.value)
    assert fragment in message and "Received: " in message and "\n" not in message
    graph = Graph.from_dict(dense_net("fc-1_é"))  # letters beyond ASCII are fine
    if isinstance(node_id, str) and node_id:  # renamed in place as the designer does: analyze
        graph.nodes = {(node_id if k == "fc-1_é" else k): n for k, n in graph.nodes.items()}
        graph.nodes[node_id].id = node_id
        graph.edges = [Edge(*(node_id if end == "fc-1_é" else end for end in (e.src, e.dst)))
                       for e in graph.edges]
        assert any(fragment in m for m in graph.analyze().errors_by_node()[node_id])


@pytest.mark.parametrize("text,fragment", [
    (b'{"format": "convdesigner.graph", "name": "\xff"}', "not UTF-8 text: byte 0xff"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format": "convdesigner.graph", "version": 1, "nodes": [{"id": "a", "type": "Input", '
     '"params": {"shape": ' + "[" * 5000 + "]" * 5000 + "}}]}", "nested too deeply"),
    ('{"version": ' + "9" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    ('{"x": NaN}', "NaN is not a number a graph can hold"),
    ('{"x": 1e400}', "1e400 is out of range"),
    ("[1, 2]", "a graph document is a JSON object. Received: list"),
])
def test_malformed_graph_files_are_one_format_error(tmp_path, text, fragment):
    path = tmp_path / "g.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(GraphFormatError) as caught:
        Graph.load_json(path)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)
    assert "\n" not in str(caught.value) and "set_int_max_str_digits" not in str(caught.value)


def test_analysis_is_linear_in_nodes_and_edges():
    class Edges(list):
        """Counts the passes over the edges (ancestors made one per node: 20,000 nodes, 18 s)."""
        passes = 0

        def __iter__(self):
            Edges.passes += 1
            return super().__iter__()

    n = 2000
    ids = ["in", *(f"a{k}" for k in range(n)), "out"]
    nodes = [("in", "Input", {"shape": [4]}), *((i, "Activation", {}) for i in ids[1:-1]),
             ("out", "Output", {})]
    graph = Graph.from_dict(doc(nodes, [(a, b, 0) for a, b in zip(ids, ids[1:])]))
    graph.edges = Edges(graph.edges)
    analysis = graph.check()
    assert len(graph.ancestors("out")) == n + 2 and len(analysis.order) == n + 2
    assert len(graph.inputs_by_node()) == n + 2
    assert Edges.passes <= 5


def test_memory_is_estimated_and_a_network_that_cannot_fit_is_refused():
    import numpy as np

    from engine import compile_network
    from engine.network import check_memory, estimate_memory, memory_parts

    lenet = load_template("lenet5")
    params = sum(lenet.check().param_counts.values()) * 4
    activations = sum(np.prod(s) for s in lenet.check().shapes.values()) * 4
    assert estimate_memory(lenet) == 2 * params
    assert memory_parts(lenet, 8)["activations"] == 2 * 8 * activations
    assert estimate_memory(lenet, 8, optimizer_slots=2) == 4 * params + 2 * 8 * activations
    assert estimate_memory(lenet, 8, training=False) == 2 * params + 8 * activations
    with pytest.raises(GraphValidationError, match=r"node 'conv1': the network needs about "
                       r"[\d.]+ GiB of memory at batch 1000000 .* more than the 1\.0 GiB"):
        check_memory(lenet, 10**6, available=1 << 30)
    huge = doc([("in", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
                ("d1", "Dense", {"units": 2**20}), ("d2", "Dense", {"units": 2**20}),
                ("out", "Output", {})],
               [("in", "flat", 0), ("flat", "d1", 0), ("d1", "d2", 0), ("d2", "out", 0)])
    with pytest.raises(GraphValidationError) as caught:
        compile_network(Graph.from_dict(huge))  # refused before allocating 4 TiB
    message = str(caught.value)
    assert message.startswith("node 'd2': the network needs about 8.0 TiB of memory") \
        and "this machine has" in message and "\n" not in message


def test_the_python_api_says_what_is_wrong_in_one_line():
    """Mistakes in the small Python API raise one ValueError naming the mistake (they raised
    numpy's reshape and matmul errors, an AttributeError and a bare KeyError)."""
    import numpy as np

    from engine import compile_network, losses
    from engine.templates import load_template

    net = compile_network(load_template("lenet5"))
    cases = [(lambda: net.backward(np.zeros((2, 10))), "run forward first"),
             (lambda: net.activation("conv1"), "has no output yet"),
             (lambda: net.forward(np.zeros((0, 1, 28, 28))), "at least one sample"),
             (lambda: net.activation("nope"), "no node 'nope'"),
             (lambda: losses.mse(np.zeros((3, 4), np.float32), np.zeros((3, 5))),
              "targets of the outputs' shape [3, 4]")]
    for call, fragment in cases:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            call()
    net.forward(np.zeros((3, 1, 28, 28)), training=True)
    with pytest.raises(ValueError, match=re.escape("output [3, 10]. Received: [2, 10]")):
        net.backward(np.zeros((2, 10)))
    assert net.backward(np.ones((3, 10))).shape == (3, 1, 28, 28)
