"""Whole templates against PyTorch (the exported model.py's Net) with the same weights; torch
comes with the test extra."""
import numpy as np
import pytest

from engine import compile_network
from engine.templates import load_template, template_names

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", template_names())
def test_template_matches_pytorch_in_evaluation(name):
    from engine.interop.pytorch import build_torch_model

    graph = load_template(name)
    net = compile_network(graph, seed=3)
    model = build_torch_model(graph, net.weights()).eval()
    x = np.random.default_rng(0).standard_normal((3, *net.input_shape)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-4, atol=1e-4)
