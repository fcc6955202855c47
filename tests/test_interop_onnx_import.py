"""ONNX import: files written by PyTorch's exporter and by our export predict what onnxruntime
predicts; what convdesigner cannot express is refused in one line naming the node."""
import numpy as np
import pytest
from interop_cases import NAMES, case_graph, inputs, predict, trained_like

from engine.cli import main as cli
from engine.modelfile import load_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript"),
              pytest.mark.filterwarnings("ignore:The feature will be removed")]


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name, tmp_path):
    """export then import gives the same graph (ids, params), weights and normalisation."""
    g = trained_like(name, tmp_path / "m.h5")
    assert cli(["export", str(tmp_path / "m.h5"), "--to", "onnx", "--out",
                str(tmp_path / "m.onnx"), "--quiet"]) == 0
    assert cli(["import", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "i.h5"),
                "--quiet"]) == 0
    original, imported = load_model(tmp_path / "m.h5"), load_model(tmp_path / "i.h5")
    a, b = original.graph.check(), imported.graph.check()
    output = g.output_node.id  # its loss follows the shape: cross_entropy when flat
    assert b.params[output]["loss"] == ("cross_entropy" if len(b.shapes[output]) == 1 else "mse")
    assert {n: (g.nodes[n].type, a.params[n]) for n in a.order if n != output} == \
        {n: (imported.graph.nodes[n].type, b.params[n]) for n in b.order if n != output}
    assert original.weights.keys() == imported.weights.keys()
    np.testing.assert_allclose(imported.data_spec["normalization"]["mean"],
                               original.data_spec["normalization"]["mean"], rtol=1e-6)
    x = inputs(case_graph(name))
    np.testing.assert_allclose(predict(tmp_path / "i.h5", x, tmp_path),
                               predict(tmp_path / "m.h5", x, tmp_path), atol=1e-5)


class Fire(nn.Module):
    """SqueezeNet's module: a 1x1 squeeze, then 1x1 and 3x3 expands joined by Concat."""

    def __init__(self, channels, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(channels, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1(x)), torch.relu(self.expand3(x))], 1)


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=2, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class FlatMatMul(nn.Module):
    """x.view(x.size(0), -1) @ W + b: Shape, Gather, Reshape, MatMul and Add in the file."""

    def __init__(self, features, units):
        super().__init__()
        self.w = nn.Parameter(torch.randn(features, units) * 0.1)
        self.b = nn.Parameter(torch.randn(units))

    def forward(self, x):
        return x.view(x.size(0), -1) @ self.w + self.b


def squeezenet1_1():
    """torchvision's SqueezeNet 1.1 layer for layer (random weights: nothing is downloaded)."""
    fires = [(64, 16, 64), (128, 16, 64), "pool", (128, 32, 128), (256, 32, 128), "pool",
             (256, 48, 192), (384, 48, 192), (384, 64, 256), (512, 64, 256)]
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        *(nn.MaxPool2d(3, 2, ceil_mode=True) if f == "pool" else Fire(*f) for f in fires),
        nn.Dropout(0.5), nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


def vgg19(width: int = 8):
    """torchvision's VGG-19 at 224x224 with every layer 1/width as wide (the real one holds
    548 MB of weights): 16 convs, 5 max pools, the adaptive pool to 7x7, three Linear."""
    layers, channels = [], 3
    for v in [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v // width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = v // width
    hidden = 4096 // width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                         nn.Linear(channels * 49, hidden), nn.ReLU(True), nn.Dropout(),
                         nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
                         nn.Linear(hidden, 1000))


TORCH_MODELS = {
    "squeezenet1_1": (squeezenet1_1, (3, 224, 224)),
    "vgg19-narrow": (vgg19, (3, 224, 224)),
    "squeezenet-like": (lambda: nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 4, 8), Fire(16, 4, 8), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16),
        nn.Dropout(0.5), nn.Conv2d(32, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten()), (3, 31, 31)),
    "vgg-like": (lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        Residual(8), nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.LeakyReLU(0.1),
        nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ELU(0.5),
        nn.Flatten(), nn.Linear(128, 32), nn.Tanh(), nn.Dropout(), nn.Linear(32, 16),
        nn.Sigmoid(), nn.Linear(16, 10), nn.Softplus(), nn.Softmax(dim=1)), (3, 16, 16)),
    "conv1d": (lambda: nn.Sequential(
        nn.Conv1d(2, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 8, 3), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, 4)), (2, 64)),
    "conv3d": (lambda: nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool3d(2), nn.Conv3d(4, 4, 3),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3)), (1, 8, 8, 8)),
    "matmul": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), FlatMatMul(144, 10)),
               (1, 8, 8)),
    "map": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sigmoid()), (3, 8, 8)),
}


def torch_to_onnx(name, path, dynamic=True):
    factory, shape = TORCH_MODELS[name]
    torch.manual_seed(0)
    model = factory().eval()
    with torch.no_grad():  # give BatchNorm running statistics that are not the identity
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    # without constant folding, BatchNormalization stays and x.size(0) is a Shape subgraph
    torch.onnx.export(model, torch.rand(2, *shape), str(path), dynamo=False,
                      input_names=["image"], output_names=["scores"],
                      dynamic_axes={"image": {0: "batch"}} if dynamic else None,
                      do_constant_folding=name not in ("vgg-like", "conv1d", "matmul"))
    return shape


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_pytorch_exports_import_and_match(name, tmp_path):
    shape = torch_to_onnx(name, tmp_path / "t.onnx")
    assert cli(["import", str(tmp_path / "t.onnx"), "--out", str(tmp_path / "t.h5"),
                "--quiet"]) == 0
    x = np.random.default_rng(0).random((5, *shape), dtype=np.float32)
    expected = run_onnx(tmp_path / "t.onnx", x)
    assert expected.std() > 1e-3  # a comparison worth making
    np.testing.assert_allclose(predict(tmp_path / "t.h5", x, tmp_path), expected, atol=1e-4)
    model = load_model(tmp_path / "t.h5")
    loss = model.graph.output_node.params["loss"]
    assert loss == ("mse" if name == "map" else "cross_entropy")


def one_node_model(path, op_type, attrs, initializers=(), extra_inputs=()):
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(op_type, ["x", *extra_inputs], ["y"], name="suspect", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


WEIGHT = [("w", np.ones((2, 2, 3, 3)))]
REFUSED = {
    "asymmetric pads": ("Conv", {"pads": [0, 0, 1, 1]}, WEIGHT, ["w"], "attribute pads"),
    "ceil_mode": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (), (),
                  "attribute ceil_mode"),
    "dilated pooling": ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 2]}, (), (),
                        "attribute dilations"),
    "count_include_pad": ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (), (),
                          "attribute count_include_pad"),
    "auto_pad": ("AveragePool", {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}, (), (),
                 "attribute auto_pad"),
    "lp norm": ("LpPool", {"kernel_shape": [2, 2], "p": 3}, (), (), "attribute p"),
    "unsupported op": ("Mul", {}, [("k", 2.0)], ["k"], "unsupported operation"),
    "pad op": ("Pad", {}, (), (), "unsupported operation"),
    "gelu's erf": ("Erf", {}, (), (), "as in GELU"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_in_one_line_naming_node_and_attribute(case, tmp_path, capsys):
    op_type, attrs, inits, extra, expected = REFUSED[case]
    one_node_model(tmp_path / "s.onnx", op_type, attrs, inits, extra)
    assert cli(["import", str(tmp_path / "s.onnx"), "--out", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convdesigner import: error: ")
    assert f"node 'suspect' ({op_type})" in err and expected in err
    assert not (tmp_path / "s.h5").exists()


def test_unreadable_sources_are_one_line(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not protobuf\xff" * 10)
    (tmp_path / "model.txt").write_text("hello")
    for source in ("junk.onnx", "model.txt", "missing.onnx"):
        assert cli(["import", str(tmp_path / source), "--out", str(tmp_path / "o.h5")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("convdesigner import: error:") for line in lines)


def test_a_pytorch_gelu_is_refused_as_gelu(tmp_path, capsys):
    """PyTorch writes GELU as Div, Erf, Add, Mul: the refusal names the GELU, not the Div."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.GELU())
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), tmp_path / "g.onnx", dynamo=False,
                      opset_version=17)   # before opset 20 GELU has no op of its own
    assert cli(["import", str(tmp_path / "g.onnx"), "--out", str(tmp_path / "g.h5")]) == 2
    err = capsys.readouterr().err
    assert "(Erf)" in err and "as in GELU" in err, err
