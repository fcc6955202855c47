"""Session, the one record of a model: following edits (and their undo), what a dataset must fit,
which normalisation a run uses, and what a file restores."""
import numpy as np
import pytest

from engine import Graph, GraphValidationError
from engine.data import load_dataset
from engine.modelfile import load_model
from engine.session import Session, data_choice


def trained(epochs=1):
    session = Session.from_template("shapes")
    session.settings.optimizer, session.settings.lr = "momentum", 0.05
    data = load_dataset("shapes:120")
    session.trainer(data, (0, 100), (100, 120), epochs=epochs).run()
    return session, data


def test_an_edit_that_changes_arrays_sets_the_run_aside_and_its_undo_brings_it_back():
    session, _ = trained()
    weights, history = session.weights(), session.history
    edited = session.graph.copy()
    edited.nodes["dense2"].params["units"] = 5
    session.adopt(edited)
    assert not session.history["epoch"] and session.optimizer is None and session.modified
    kept = session.weights()
    assert np.array_equal(kept["conv1/weight"], weights["conv1/weight"])   # what still fits
    assert kept["dense2/weight"].shape[0] == 5
    session.adopt(Session.from_template("shapes").graph)   # the undo
    assert session.history is history and session.optimizer is not None
    for key, value in weights.items():
        np.testing.assert_array_equal(session.weights()[key], value)


def test_moving_a_node_keeps_everything():
    session, _ = trained()
    moved = session.graph.copy()
    moved.nodes["conv1"].pos = [500, 500]
    session.adopt(moved)
    assert session.graph.nodes["conv1"].pos == [500, 500] and session.history["epoch"] == [1]
    assert not session.modified


def renamed(graph, old, new):
    doc = graph.to_dict()
    for item, ends in [(node, ("id",)) for node in doc["nodes"]] + [
            (edge, ("from", "to")) for edge in doc["edges"]]:
        for end in ends:
            item[end] = new if item[end] == old else item[end]
    return Graph.from_dict(doc)


def test_renaming_a_trained_layer_keeps_its_weights_slots_best_and_history(tmp_path):
    """A rename changes no array: the weights, the optimizer's slots and the best epoch follow
    the new id (they were set aside as for an edited layer, and the run went with them)."""
    session, data = trained()
    session.settings.keep_best = True
    trainer = session.trainer(data, (0, 100), (100, 120), epochs=1)
    trainer.run()
    session.finish(trainer)
    weights, slots = session.weights(), session.optimizer.slots["dense2/weight"]["velocity"]
    graph = renamed(session.graph, "dense2", "head")
    assert session.renames(graph) == {"dense2": "head"} and session.keeps_run(graph)
    session.adopt(graph)
    assert session.history["epoch"] == [1, 2] and session.modified
    np.testing.assert_array_equal(session.weights()["head/weight"], weights["dense2/weight"])
    np.testing.assert_array_equal(session.optimizer.slots["head/weight"]["velocity"], slots)
    assert "head/weight" in session.best.weights
    session.trainer(data, (0, 100), (100, 120), epochs=1).run()   # and trains on from there
    session.save(tmp_path / "m.h5")
    assert len(load_model(tmp_path / "m.h5").history["epoch"]) == 3
    other = renamed(session.graph, "head", "conv1x")   # taken by nothing, but not a rename of
    other.nodes["conv1x"].params["units"] = 5           # the same layer: its array changes
    assert session.renames(other) == {} and not session.keeps_run(other)


def test_data_problems_name_both_sides_and_the_fixes_that_fit():
    session, data = trained()
    assert session.data_problem(data) is None
    signals = load_dataset("signals:10")
    problem = session.data_problem(signals)
    assert "1x1024" in problem.message and "1x28x28" in problem.message
    assert problem.fixes == ("model_data",)          # no Input fix across ranks
    rgb = load_dataset("shapes-rgb:10")
    assert session.data_problem(rgb).fixes == ("model_data", "input_shape")
    renamed = load_dataset("shapes:120")
    renamed.source, renamed.class_names = "other", ["p", "q", "r", "s"]
    problem = session.data_problem(renamed)
    assert "trained on shapes:120" in problem.message and "reset" in problem.fixes
    session.reset()
    assert session.data_problem(renamed) is None and not session.trained


def test_trained_weights_keep_their_normalisation_fresh_ones_are_fitted():
    session, data = trained()
    stored = session.data_spec["normalization"]
    other = load_dataset("shapes:60", seed=9)
    assert session.normalization_for(other, (0, 60)).to_dict() == stored
    session.reset()
    assert session.normalization_for(other, (0, 60)).to_dict() != stored


def test_a_saved_model_reopens_with_its_settings_and_data_choice(tmp_path):
    session, _ = trained(epochs=2)
    session.settings.data = {"source": "shapes:120", "train_range": "0:100"}
    session.save(tmp_path / "m.h5")
    assert not session.modified and session.path == tmp_path / "m.h5"
    again = Session.open(tmp_path / "m.h5")
    assert again.settings == session.settings and again.history == session.history
    assert again.trained and not again.interrupted
    assert data_choice(load_model(tmp_path / "m.h5").data_spec) == {
        "source": "shapes:120", "train_range": "0:100", "val_range": "100:120"}


def test_two_edits_then_two_undos_bring_the_trained_state_back():
    session, _ = trained()
    history = session.history
    graphs = []
    for units in (65, 66):
        edited = session.graph.copy()
        edited.nodes["dense1"].params["units"] = units
        graphs.append(edited)
        session.adopt(edited)
    session.adopt(graphs[0])
    session.adopt(Session.from_template("shapes").graph)
    assert session.trained and session.history is history


def test_a_run_without_keep_best_drops_an_older_best():
    session, data = trained()
    session.settings.keep_best = True
    trainer = session.trainer(data, (0, 100), (100, 120), epochs=1)
    trainer.run()
    session.finish(trainer)
    assert session.best is not None
    session.settings.keep_best = False
    trainer = session.trainer(data, (0, 100), (100, 120), epochs=1)
    trainer.run()
    session.finish(trainer)
    assert session.best is None


def test_an_empty_validation_range_is_no_range():
    assert data_choice({"source": "x", "train_range": [0, 800], "val_range": [0, 0]}) == {
        "source": "x", "train_range": "0:800"}


def test_a_graph_that_cannot_train_changes_nothing_and_its_undo_finds_the_run():
    session, _ = trained()
    weights, history = session.weights(), session.history
    doc = session.graph.to_dict()
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "relu1"]
    doc["edges"] = [e for e in doc["edges"] if "relu1" not in (e["from"], e["to"])]
    broken = Graph.from_dict(doc)
    with pytest.raises(GraphValidationError, match="pool1"):
        session.adopt(broken)   # Start refused: "pool1: unconnected input"
    assert session.fits(Session.from_template("shapes").graph) and session.history is history
    session.adopt(Session.from_template("shapes").graph)   # the undo
    assert session.history is history and session.trained
    for key, value in weights.items():
        np.testing.assert_array_equal(session.weights()[key], value)


def test_an_inserted_dropout_keeps_the_run_and_list_order_does_not_matter():
    session, _ = trained()
    doc = session.graph.to_dict()
    doc["nodes"].append({"id": "drop1", "type": "Dropout", "params": {"rate": 0.2}, "pos": [0, 0]})
    doc["edges"] = [e for e in doc["edges"] if e["from"] != "relu3"] + [
        {"from": "relu3", "to": "drop1", "port": 0}, {"from": "drop1", "to": "dense2", "port": 0}]
    with_dropout = Graph.from_dict(doc)
    assert session.keeps_run(with_dropout) and not session.fits(with_dropout)
    edited = session.graph.copy()
    edited.nodes["dense1"].params["units"] = 33
    assert not session.keeps_run(edited)
    reordered = session.graph.to_dict()
    reordered["nodes"].reverse()
    reordered["edges"].reverse()
    assert session.fits(Graph.from_dict(reordered))   # an undo may put them back elsewhere
    session.adopt(with_dropout)
    assert session.history["epoch"] == [1] and session.trained


def test_a_settings_change_survives_the_undo_that_brings_a_saved_run_back(tmp_path):
    session, data = trained()
    session.save(tmp_path / "m.h5")
    original = session.graph.copy()
    edited = session.graph.copy()
    edited.nodes["dense1"].params["units"] = 33
    session.adopt(edited)                       # the run is set aside with "saved" state
    session.trainer(data, (0, 100), (100, 120), epochs=2).run()
    assert session.epochs_for(original) == 1 and session.epochs_for(edited) == 2
    session.settings.lr = 0.005
    session.settings_changed()
    session.adopt(original)                     # the undo
    assert session.modified and session.settings.lr == 0.005 and session.history["epoch"] == [1]
