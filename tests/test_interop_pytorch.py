"""PyTorch export: model.py loads with torch, computes what predict does, and trains."""
import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest
from interop_cases import NAMES, inputs, predict, trained_like

from engine.cli import main as cli
from engine.interop.pytorch import MODULE_ATTRS

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def load_exported(folder):
    spec = importlib.util.spec_from_file_location(f"exported_{folder.parent.name}",
                                                  folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_export_matches_predict_and_trains(name, tmp_path):
    g = trained_like(name, tmp_path / "m.h5")
    assert cli(["export", str(tmp_path / "m.h5"), "--to", "pytorch", "--out",
                str(tmp_path / "net"), "--quiet"]) == 0
    module = load_exported(tmp_path / "net")
    net = module.load_model()
    assert not net.training
    x = inputs(g, n=5)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, predict(tmp_path / "m.h5", x, tmp_path), atol=1e-4)

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = torch.from_numpy(got).softmax(1).argmax(1) if got.ndim == 2 else None
    for _ in range(3):
        optimizer.zero_grad()
        out = net(torch.from_numpy(x))
        loss = (torch.nn.functional.cross_entropy(out, target)
                if g.output_node.params.get("loss", "cross_entropy") == "cross_entropy"
                else out.square().mean())
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)


def test_code_is_plain_python(tmp_path):
    """One line per layer, lint-clean, and the normalisation as buffers."""
    assert cli(["export", "resnet-mini", "--to", "pytorch", "--out", str(tmp_path),
                "--quiet"]) == 0
    source = (tmp_path / "model.py").read_text()
    assert source.count("nn.Conv2d(") == 6 and source.count("nn.BatchNorm2d(") == 6
    assert "x = x + stem_relu" in source  # the skip connection as a tensor op
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(sys.prefix) + "/bin")
    if ruff:
        result = subprocess.run([ruff, "check", "--line-length", "100", "--select",
                                 "E,F,W,I", str(tmp_path / "model.py")], capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stdout


def test_node_ids_become_safe_names(tmp_path):
    from engine.graph import Graph
    from engine.interop import Model
    from engine.interop.pytorch import build_torch_model, identifiers

    assert identifiers(["conv 1", "1x", "forward", "x", "class", "in", "conv_1"]) == {
        "conv 1": "conv_1", "1x": "n1x", "forward": "forward_", "x": "x_", "class": "class_",
        "in": "in_", "conv_1": "conv_1_"}
    doc = {"format": "convdesigner.graph", "version": 1, "nodes": [
        {"id": "input", "type": "Input", "params": {"shape": [4]}},
        {"id": "train", "type": "Dense", "params": {"units": 3}},
        {"id": "out", "type": "Output"}],
        "edges": [{"from": "input", "to": "train"}, {"from": "train", "to": "out"}]}
    net = build_torch_model(Graph.from_dict(doc))
    assert net(torch.zeros(2, 4)).shape == (2, 3)
    assert isinstance(Model(Graph.from_dict(doc), {}).graph, Graph)


def test_module_attribute_list_matches_torch():
    assert {a for a in dir(torch.nn.Module) if not a.startswith("_")} <= MODULE_ATTRS
