"""Inspection arithmetic: receptive fields on the input, confusion matrices, saliency."""
import numpy as np
import pytest

from engine import Graph, compile_network
from engine.data import load_dataset
from engine.inspect import confusion_matrix, receptive_fields, saliency, smoke_test
from engine.templates import load_template, template_info, template_names


def test_receptive_field_after_conv_pool_conv_is_14x14():
    fields = receptive_fields(load_template("lenet5"))
    assert fields["conv1"].size == (5, 5) and fields["conv1"].offset == (-2, -2)
    assert fields["pool1"].size == (6, 6) and fields["pool1"].jump == (2, 2)
    assert fields["conv2"].size == (14, 14) and fields["conv2"].jump == (2, 2)
    assert fields["conv2"].region((0, 0), (28, 28)) == (slice(0, 12), slice(0, 12))
    assert fields["conv2"].region((9, 9), (28, 28)) == (slice(16, 28), slice(16, 28))
    assert fields["dense1"].size is None and fields["dense1"].text() == "whole input"


def test_dilation_and_joins_take_the_widest_path():
    graph = Graph.from_dict({"format": "convdesigner.graph", "version": 1, "nodes": [
        {"id": "in", "type": "Input", "params": {"shape": [1, 16]}},
        {"id": "a", "type": "Conv1D", "params": {"filters": 2, "kernel_size": 3, "dilation": 2,
                                                  "padding": "same"}},
        {"id": "b", "type": "Conv1D", "params": {"filters": 2, "kernel_size": 1}},
        {"id": "j", "type": "Add", "params": {}},
        {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
        "edges": [{"from": "in", "to": "a"}, {"from": "in", "to": "b"},
                  {"from": "a", "to": "j", "port": 0}, {"from": "b", "to": "j", "port": 1},
                  {"from": "j", "to": "out"}]})
    fields = receptive_fields(graph)
    assert fields["a"].size == (5,) and fields["b"].size == (1,) and fields["j"].size == (5,)


def test_confusion_matrix_and_saliency_shape():
    counts = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    net = compile_network(load_template("lenet5"))
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    result = saliency(net, x, 3)
    assert result.shape == x.shape and np.all(result >= 0) and result.max() > 0


def _first_batch(name):
    data = load_dataset(template_info(name)["dataset"])
    x = data.x[:64]
    return ((x - x.mean()) / (x.std() + 1e-8)).astype(np.float32), data.y[:64]


@pytest.mark.parametrize("name", template_names())
def test_every_template_passes_the_smoke_test_on_its_own_data(name):
    """Start in the designer runs the smoke test first: it must let every template train on its
    built-in data (nin, inception-mini and alexnet-mini, with dropout, halved their loss in 40
    steps but were refused for not reaching a fifth)."""
    report = smoke_test(load_template(name), *_first_batch(name))
    assert report.ok, report.summary()


def test_the_smoke_test_says_when_a_network_does_not_learn():
    report = smoke_test(load_template("shapes"), *_first_batch("shapes"), overfit_steps=3)
    assert not report.ok and "cannot learn 10 samples in 3 steps" in report.summary()
