"""ONNX export: onnx.checker accepts every network and onnxruntime computes what predict does."""
import numpy as np
import pytest
from interop_cases import NAMES, case_graph, inputs, predict, trained_like

from engine.cli import main as cli
from engine.modelfile import load_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", NAMES)
def test_export_matches_predict(name, tmp_path):
    g = trained_like(name, tmp_path / "m.h5")
    assert cli(["export", str(tmp_path / "m.h5"), "--to", "onnx", "--out",
                str(tmp_path / "m.onnx"), "--quiet"]) == 0
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    assert proto.graph.input[0].name == g.input_node.id
    assert proto.graph.output[0].name == g.output_node.id
    assert set(g.nodes) - {g.input_node.id} <= {n.name for n in proto.graph.node}
    assert set(load_model(tmp_path / "m.h5").weights) <= {i.name for i in proto.graph.initializer}
    x = inputs(g, n=5)  # the batch axis is dynamic: 5 and 1 both run
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), predict(tmp_path / "m.h5", x,
                                                                          tmp_path), atol=1e-4)
    assert run_onnx(tmp_path / "m.onnx", x[:1]).shape[0] == 1


def test_raw_inputs_leave_the_normalisation_out(tmp_path):
    g = trained_like("lenet5", tmp_path / "m.h5")
    assert cli(["export", str(tmp_path / "m.h5"), "--to", "onnx", "--out",
                str(tmp_path / "m.onnx"), "--raw-inputs", "--quiet"]) == 0
    spec = load_model(tmp_path / "m.h5").data_spec["normalization"]
    x = inputs(g)
    normalised = (x - np.float32(spec["mean"][0])) / np.float32(spec["std"][0])
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", normalised),
                               predict(tmp_path / "m.h5", x, tmp_path), atol=1e-4)
    assert not any(n.op_type in ("Sub", "Div") for n in onnx.load(tmp_path / "m.onnx").graph.node)


def test_best_weights_unless_last(tmp_path, monkeypatch):
    """A file that keeps /best exports those weights; --weights last the others."""
    import engine.session
    from engine.interop import open_model

    trained_like("shapes", tmp_path / "m.h5")
    model = load_model(tmp_path / "m.h5")
    model.best = {"epoch": 1, "val_loss": 0.5,
                  "weights": {k: v + 1 for k, v in model.weights.items()}}
    monkeypatch.setattr(engine.session, "load_source", lambda source: (model.graph, model))
    best, last = open_model(tmp_path / "m.h5"), open_model(tmp_path / "m.h5", "last")
    key = next(iter(model.weights))
    np.testing.assert_array_equal(best.weights[key], model.weights[key] + 1)
    np.testing.assert_array_equal(last.weights[key], model.weights[key])


def test_export_errors_are_one_line(tmp_path, capsys):
    assert cli(["export", "no-such-model", "--to", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert cli(["export", "lenet5", "--to", "onnx", "--out",
                str(tmp_path / "missing" / "m.onnx")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("convdesigner export: error:") for line in lines)


def test_every_module_type_has_its_converters():
    """A new module type fails here until engine/interop maps it (DESIGN.md 2: interop/)."""
    from engine.interop.onnx import EXPORTERS
    from engine.interop.pytorch import LAYERS
    from engine.modules import REGISTRY

    assert set(REGISTRY) - {"Input"} <= set(EXPORTERS)
    assert set(REGISTRY) - {"Input", "Output"} <= set(LAYERS)
    used = {node.type for name in NAMES for node in case_graph(name).nodes.values()}
    assert set(REGISTRY) <= used  # and the test networks use every one of them


def test_export_needs_no_onnx_package_and_import_says_what_to_install(tmp_path, monkeypatch,
                                                                      capsys):
    import sys

    for name in ("onnx", "onnx.reference", "onnx.numpy_helper"):
        monkeypatch.setitem(sys.modules, name, None)  # import onnx now raises ImportError
    assert cli(["export", "nin", "--to", "onnx", "--out", str(tmp_path / "n.onnx"),
                "--quiet"]) == 0
    assert cli(["import", str(tmp_path / "n.onnx"), "--out", str(tmp_path / "n.h5")]) == 2
    assert "needs the onnx package: pip install onnx" in capsys.readouterr().err
    monkeypatch.undo()
    onnx.checker.check_model(onnx.load(tmp_path / "n.onnx"), full_check=True)


def test_the_designer_exports_its_session_as_the_command_line_does(tmp_path):
    from engine.interop import Model, open_model
    from engine.interop.onnx import to_onnx
    from engine.session import Session

    trained_like("resnet-mini", tmp_path / "m.h5")
    session = Session.open(tmp_path / "m.h5")
    assert to_onnx(Model.from_session(session)) == to_onnx(open_model(tmp_path / "m.h5"))
