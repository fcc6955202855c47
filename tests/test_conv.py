"""Conv1D/2D/3D on the CPU against a plain-numpy reference, on every algorithm path."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opcheck import OpHarness, check_op

import engine.kernels.cpu.conv as conv


def conv_reference(inputs, arrays, params, training):
    """Cross-correlation as a sum over kernel taps of strided slices of the zero-padded input."""
    (x,) = inputs
    weight = arrays["weight"]
    kernel, stride, dilation = params["kernel_size"], params["stride"], params["dilation"]
    if params["padding"] == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        begin = [t // 2 for t in total]  # an odd extra cell goes at the end, as in PyTorch
    else:
        begin = list(params["padding"])
        total = [2 * p for p in begin]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(b, t - b) for b, t in zip(begin, total, strict=True)])
    out = [(n + t - d * (k - 1) - 1) // s + 1
           for n, t, k, s, d in zip(x.shape[2:], total, kernel, stride, dilation,
                                    strict=True)]
    groups = params["groups"]
    channels_per_group = x.shape[1] // groups
    filters = weight.shape[0]
    filters_per_group = filters // groups
    y = np.zeros((x.shape[0], filters, *out))
    for tap in np.ndindex(*kernel):
        window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                       for t, d, o, s in zip(tap, dilation, out, stride, strict=True))
        patch = padded[(slice(None), slice(None)) + window]
        for g in range(groups):
            fs = slice(g * filters_per_group, (g + 1) * filters_per_group)
            cs = slice(g * channels_per_group, (g + 1) * channels_per_group)
            y[:, fs] += np.einsum("nc...,fc->nf...", patch[:, cs], weight[(fs, slice(None)) + tap])
    if params["bias"]:
        y += arrays["bias"].reshape((1, filters) + (1,) * len(kernel))
    return y


@pytest.fixture(params=conv.ALGORITHMS)
def algorithm(request, monkeypatch):
    monkeypatch.setattr(conv, "FORCE_ALGORITHM", request.param)
    return request.param


CASES = [
    ("Conv1D", {"filters": 3, "kernel_size": 3}, (2, 9), 2),
    ("Conv1D", {"filters": 4, "kernel_size": 4, "stride": 2, "padding": 2, "dilation": 2},
     (3, 13), 3),
    ("Conv1D", {"filters": 2, "kernel_size": 4, "padding": "same", "bias": False}, (1, 7), 1),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}, (3, 6, 5), 2),
    ("Conv2D", {"filters": 3, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0],
                "dilation": [1, 2]}, (2, 7, 6), 3),
    ("Conv2D", {"filters": 6, "kernel_size": 3, "groups": 2, "padding": "same", "bias": False},
     (4, 5, 5), 2),
    ("Conv2D", {"filters": 4, "kernel_size": 4, "padding": "same", "dilation": 2}, (2, 9, 8), 1),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 4, "padding": 1}, (4, 5, 6), 2),
    ("Conv2D", {"filters": 3, "kernel_size": 3}, (2, 7, 5), 2),
    ("Conv2D", {"filters": 2, "kernel_size": 3, "padding": [2, 0], "bias": False}, (3, 4, 6), 1),
    ("Conv2D", {"filters": 2, "kernel_size": 3, "padding": 3}, (2, 3, 4), 2),
    ("Conv2D", {"filters": 2, "kernel_size": 1, "stride": 2}, (3, 5, 5), 2),
    ("Conv3D", {"filters": 2, "kernel_size": [2, 3, 2], "padding": [1, 0, 1]}, (2, 4, 5, 3), 2),
    ("Conv3D", {"filters": 3, "kernel_size": 2, "stride": [1, 2, 1], "groups": 3,
                "dilation": [2, 1, 1]}, (3, 5, 4, 3), 1),
    ("Conv3D", {"filters": 2, "kernel_size": 2, "padding": "same"}, (2, 3, 4, 3), 2),
    # 3x3 on one plane, padded in depth: three planes out (not a 2-D conv for Winograd)
    ("Conv3D", {"filters": 2, "kernel_size": [1, 3, 3], "padding": 1}, (3, 1, 5, 4), 2),
]


@pytest.mark.parametrize("type_name, params, shape, batch", CASES)
def test_conv_matches_reference(algorithm, type_name, params, shape, batch):
    h = check_op(type_name, params, [shape], batch, conv_reference)
    if any(s != 1 for s in h.params["stride"]):
        expected = dict.fromkeys(("forward", "grad_input", "grad_weight"), "im2col")
    elif algorithm == "winograd" and h.op.winograd_ok:
        expected = dict.fromkeys(("forward", "grad_input", "grad_weight"), "winograd")
    else:
        forced = "gemm" if algorithm == "winograd" else algorithm
        expected = dict.fromkeys(("forward", "grad_input", "grad_weight"), forced)
    assert h.op.algorithms == expected


@settings(max_examples=12, deadline=None)
@given(channels=st.integers(1, 4), groups=st.sampled_from([1, 2]), filters=st.integers(1, 3),
       size=st.tuples(st.integers(1, 7), st.integers(1, 7)), kernel=st.tuples(
           st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 2),
                                                                   st.integers(1, 2)),
       dilation=st.integers(1, 2), pad=st.integers(0, 2), bias=st.booleans(),
       batch=st.integers(1, 3), algorithm=st.sampled_from(conv.ALGORITHMS))
def test_conv2d_random_shapes(channels, groups, filters, size, kernel, stride, dilation, pad,
                              bias, batch, algorithm):
    span = [dilation * (k - 1) + 1 for k in kernel]
    if any(s > n + 2 * pad for s, n in zip(span, size, strict=True)):
        return
    params = {"filters": filters * groups, "kernel_size": list(kernel), "stride": list(stride),
              "dilation": dilation, "padding": pad, "groups": groups, "bias": bias}
    previous, conv.FORCE_ALGORITHM = conv.FORCE_ALGORITHM, algorithm
    try:
        check_op("Conv2D", params, [(channels * groups, *size)], batch, conv_reference, samples=6)
    finally:
        conv.FORCE_ALGORITHM = previous


@pytest.mark.parametrize("params", [{"filters": 4, "kernel_size": 3, "padding": 1},
                                    {"filters": 4, "kernel_size": 3, "groups": 2, "stride": 2}])
def test_weight_grads_without_input_grad(algorithm, params):
    """needs_input_grad=False: no input gradient, the same weight gradients (float32 too)."""
    grads = {}
    for dtype in (np.float64, np.float32):
        for need in (True, False):
            h = OpHarness("Conv2D", params, [(4, 6, 7)], 3, dtype=dtype, capacity=5)
            h.op.needs_input_grad = [need]
            h.forward()
            dy = np.random.default_rng(3).standard_normal((3, *h.out_shape))
            input_grads, grads[dtype, need] = h.backward(dy)
            assert (input_grads[0] is None) == (not need)
    for name, value in grads[np.float64, True].items():
        np.testing.assert_allclose(grads[np.float64, False][name], value, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads[np.float32, False][name], value, rtol=1e-4, atol=1e-4)


def test_batch_splits_over_workers_and_tiles(algorithm, monkeypatch):
    """One sample per column tile, so both workers run several tiles each."""
    monkeypatch.setattr(conv, "COLUMN_BYTES", 1)
    h = check_op("Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}, [(2, 5, 5)], 7,
                 conv_reference, samples=4)
    assert h.op.chunk == 1


def test_input_grad_asked_for_between_forward_and_backward(algorithm):
    """A layer allocated without its input gradient (as the Trainer leaves a first layer) and
    asked for it after a forward (the Python API's backward): the same gradients as a layer
    that always had it (the direct weight gradient read a padded input made again as zeros)."""
    grads = []
    for late in (False, True):
        h = OpHarness("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}, [(2, 6, 7)], 3,
                      capacity=5)
        if late:
            h.op.needs_input_grad = [False]
            h.op.allocate(5)
        h.forward()
        h.op.needs_input_grad = [True]
        grads.append(h.backward(np.random.default_rng(3).standard_normal((3, *h.out_shape))))
    (inputs, weights), (late_inputs, late_weights) = grads
    np.testing.assert_allclose(late_inputs[0], inputs[0], rtol=1e-12, atol=1e-12)
    for name, value in weights.items():
        np.testing.assert_allclose(late_weights[name], value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding, out_span", [(0, 22), (1, 46)])
def test_tiles_of_two_images_stay_exact(algorithm, monkeypatch, padding, out_span):
    """Two images per column tile (a batch of 7 leaves a tile of one); grad-input sums its
    columns back onto the input itself (unpadded) or onto a padded grid first."""
    monkeypatch.setattr(conv, "COLUMN_BYTES", 2 * 8 * 28 * out_span)  # float64, 3*9+1 rows
    monkeypatch.setattr(conv, "worker_count", lambda n, work=None: min(2, n))  # any machine
    h = check_op("Conv2D", {"filters": 5, "kernel_size": 3, "padding": padding}, [(3, 6, 6)],
                 7, conv_reference, samples=4)
    if {"gemm", "im2col"} & set(h.op.algorithms.values()):
        assert h.op.chunk == 2


def _relu_op(shape, batch, dtype=np.float64):
    from engine.modules import REGISTRY, OpSpec, resolve_params

    params = resolve_params(REGISTRY["Activation"], {"function": "relu"})
    op = REGISTRY["Activation"].op(OpSpec("relu", params, [shape], shape, "cpu",
                                          np.random.default_rng(0), dtype))
    op.needs_input_grad = [True]
    op.allocate(batch)
    return op


@pytest.mark.parametrize("keep_output", [True, False])
@pytest.mark.parametrize("type_name, params, shape, batch", [
    CASES[0], CASES[1], CASES[3], CASES[5], CASES[8], CASES[12], CASES[14]])
def test_fused_relu_matches_conv_then_relu(algorithm, type_name, params, shape, batch,
                                           keep_output):
    """ConvOp.fuse_relu: the conv's output (kept, or replaced by the ReLU's), the ReLU's output
    and every gradient are those of the conv followed by a separate ReLU, on every path."""
    fused, plain = (OpHarness(type_name, params, [shape], batch, capacity=batch + 1)
                    for _ in range(2))
    relu = _relu_op(fused.out_shape, batch + 1)
    fused.op.fuse_relu(relu, keep_output=keep_output)
    y, expected = fused.forward(), plain.forward()
    relu_y = relu.forward([y], True)
    np.testing.assert_array_equal(y, expected if keep_output else np.maximum(expected, 0))
    np.testing.assert_array_equal(relu_y, np.maximum(expected, 0))
    dout = np.random.default_rng(5).standard_normal((batch, *fused.out_shape))
    (passed,) = relu.backward(dout)
    assert passed is dout
    fused_inputs, fused_grads = fused.backward(dout)
    plain_inputs, plain_grads = plain.backward(dout * (expected > 0))
    np.testing.assert_allclose(fused_inputs[0], plain_inputs[0], rtol=1e-12, atol=1e-12)
    for name, value in plain_grads.items():
        np.testing.assert_allclose(fused_grads[name], value, rtol=1e-12, atol=1e-12)


def test_network_fuses_a_relu_only_when_it_alone_consumes_the_conv():
    from engine import Graph, compile_network

    def graph(extra_consumer):
        nodes = [{"id": "in", "type": "Input", "params": {"shape": [2, 6, 6]}},
                 {"id": "c", "type": "Conv2D", "params": {"filters": 3, "kernel_size": 3}},
                 {"id": "r", "type": "Activation", "params": {"function": "relu"}},
                 {"id": "f", "type": "Flatten", "params": {}},
                 {"id": "d", "type": "Dense", "params": {"units": 2}},
                 {"id": "out", "type": "Output", "params": {}}]
        edges = [("in", "c"), ("c", "r"), ("r", "f"), ("f", "d"), ("d", "out")]
        if extra_consumer:
            nodes.insert(3, {"id": "sum", "type": "Add", "params": {}})
            edges = [("in", "c"), ("c", "r"), ("r", "sum"), ("c", "sum", 1), ("sum", "f"),
                     ("f", "d"), ("d", "out")]
        return Graph.from_dict({"format": "convdesigner.graph", "version": 1, "nodes": nodes,
                                "edges": [{"from": e[0], "to": e[1], "port": e[2] if len(e) > 2
                                           else 0} for e in edges]})

    assert compile_network(graph(False)).ops["c"].relu is not None
    assert compile_network(graph(True)).ops["c"].relu is None


def test_network_without_kept_outputs_trains_identically():
    """keep_outputs=False (the command line's setting) changes memory, not results: the same
    outputs, gradients and updates as a network that keeps every output; the conv's own output
    is then refused by activation() with a message."""
    from engine import compile_network, losses
    from engine.inspect import layer_health
    from engine.templates import load_template

    graph = load_template("vgg-small")
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    labels = np.arange(5) % 10
    results = []
    for keep in (True, False):
        net = compile_network(graph, keep_outputs=keep)
        logits = net.forward(x, training=True)
        net.backward(losses.cross_entropy(logits, labels)[1])
        results.append((logits, {k: v.copy() for k, v in net.grads.items()}, net))
    (kept_logits, kept_grads, kept), (logits, grads, net) = results
    np.testing.assert_array_equal(logits, kept_logits)
    for key, value in kept_grads.items():
        np.testing.assert_array_equal(grads[key], value)
    np.testing.assert_array_equal(net.activation("relu2"), kept.activation("relu2"))
    assert net.ops["conv2"].y is None and kept.ops["conv2"].y is not None
    with pytest.raises(ValueError, match="'conv2': its output is not kept"):
        net.activation("conv2")
    health = layer_health(net)
    assert "mean" not in health["conv2"] and health["conv2"]["grad_norm"] > 0


def test_thin_layers_take_their_input_gradient_directly():
    """A GEMM with as few rows as the layer has channels (1-4) runs far below BLAS's rate: the
    first layers of the templates get their input gradient (the API's dx) from the direct
    kernel; wider layers keep BLAS or Winograd."""
    for channels, filters, taps in ((1, 6, 25), (1, 16, 9), (3, 32, 9), (4, 64, 9)):
        assert conv.choose_algorithms((1, 1, 1), channels, filters, taps)["grad_input"] == "direct"
    assert conv.choose_algorithms((1, 1, 1), 6, 16, 25)["grad_input"] == "gemm"
    assert conv.choose_algorithms((1, 1, 1), 32, 32, 9, True)["grad_input"] == "winograd"
    assert conv.choose_algorithms((1, 1, 1), 16, 32, 9, True)["forward"] == "winograd"
    assert conv.choose_algorithms((1, 1, 1), 16, 16, 9, True)["forward"] == "gemm"
