"""Every module's CUDA op against the CPU tests' references and finite differences, tiny shapes."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opcheck import OpHarness, check_op
from test_dense import dense_reference
from test_elementwise import ACTIVATIONS, softmax_reference
from test_norm import batchnorm_reference
from test_pool import channel_pool_reference, global_pool_reference, pool_reference


def cuda_check(type_name, params, in_shapes, batch, reference, **kw):
    return check_op(type_name, params, in_shapes, batch, reference, backend="cuda",
                    samples=kw.pop("samples", 3), **kw)


def conv_reference(ins, arrays, p, training):
    """Cross-correlation with stride, padding (incl. "same"), dilation and groups, in float64."""
    x, weight = ins[0], arrays["weight"]
    dims = x.ndim - 2
    kernel, stride, dilation = p["kernel_size"], p["stride"], p["dilation"]
    if p["padding"] == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        pads = [(t // 2, t - t // 2) for t in total]
    else:
        pads = [(q, q) for q in p["padding"]]
    padded = np.pad(x, [(0, 0), (0, 0), *pads])
    out = [(n + a + b - d * (k - 1) - 1) // s + 1
           for n, (a, b), k, s, d in zip(x.shape[2:], pads, kernel, stride, dilation,
                                                 strict=True)]
    groups, filters = p["groups"], weight.shape[0]
    cg, fg = x.shape[1] // groups, filters // groups
    y = np.zeros((x.shape[0], filters, *out))
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                       for t, d, o, s in zip(tap, dilation, out, stride, strict=True))
        for g in range(groups):
            cells = padded[(slice(None), slice(g * cg, (g + 1) * cg), *window)]
            taps = weight[(slice(g * fg, (g + 1) * fg), slice(None), *tap)]
            y[:, g * fg:(g + 1) * fg] += np.einsum("nc...,fc->nf...", cells, taps)
    if p["bias"]:
        y += arrays["bias"].reshape(1, -1, *(1,) * dims)
    return y


@pytest.mark.parametrize("function", ACTIVATIONS)
def test_activation(function):
    params = {"function": function}
    if function in ("leaky_relu", "elu"):
        params["alpha"] = 0.2
    cuda_check("Activation", params, [(2, 3)], 2,
               lambda ins, arrays, p, t: ACTIVATIONS[function](ins[0], p["alpha"]))


@pytest.mark.parametrize("classes, batch", [(1, 2), (5, 3)])
def test_softmax(classes, batch):
    cuda_check("Softmax", {}, [(classes,)], batch, softmax_reference)


def test_flatten():
    cuda_check("Flatten", {}, [(3, 2, 2)], 2, lambda ins, arrays, p, t: ins[0].reshape(2, -1))


@pytest.mark.parametrize("count", [2, 3])
def test_add(count):
    cuda_check("Add", {}, [(2, 3)] * count, 2, lambda ins, arrays, p, t: sum(ins))


@pytest.mark.parametrize("shapes", [[(2,), (3,)], [(1, 2, 2), (2, 2, 2), (1, 2, 2)]])
def test_concat(shapes):
    cuda_check("Concat", {}, shapes, 2, lambda ins, arrays, p, t: np.concatenate(ins, axis=1))


def test_concat_backward_gives_each_input_its_slice():
    h = OpHarness("Concat", {}, [(1, 3), (2, 3)], 2, backend="cuda")
    h.op.needs_input_grad = [False, True]
    h.forward()
    dout = np.arange(18.0).reshape(2, 3, 3)
    (first, second), _ = h.backward(dout)
    assert first is None
    np.testing.assert_array_equal(second, dout[:, 1:])


CONV_CASES = [
    ("Conv1D", [2, 7], {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1}, 2),
    ("Conv2D", [3, 5, 4], {"filters": 2, "kernel_size": 3, "padding": "same", "dilation": 2}, 1),
    ("Conv2D", [2, 5, 5], {"filters": 4, "kernel_size": [3, 2], "stride": [2, 1], "padding": 1,
                           "groups": 2}, 2),
    ("Conv2D", [3, 4, 3], {"filters": 3, "kernel_size": 2, "groups": 3, "bias": False}, 2),
    ("Conv2D", [2, 3, 3], {"filters": 5, "kernel_size": 1}, 3),
    ("Conv3D", [2, 3, 4, 3], {"filters": 2, "kernel_size": [2, 3, 2], "stride": [1, 2, 1],
                              "padding": [1, 0, 1], "dilation": [1, 1, 2]}, 2),
]


@pytest.mark.parametrize("type_name, shape, params, batch", CONV_CASES)
def test_conv(type_name, shape, params, batch):
    cuda_check(type_name, params, [shape], batch, conv_reference)


@st.composite
def conv_cases(draw):
    dims = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2]))
    sizes, kernels, strides, paddings, dilations = [], [], [], [], []
    for _ in range(dims):
        kernels.append(draw(st.integers(1, 3)))
        dilations.append(draw(st.integers(1, 2)))
        paddings.append(draw(st.integers(0, 1)))
        span = dilations[-1] * (kernels[-1] - 1) + 1
        sizes.append(draw(st.integers(max(1, span - 2 * paddings[-1]), 5)))
        strides.append(draw(st.integers(1, 2)))
    params = {"filters": groups * draw(st.integers(1, 2)), "kernel_size": kernels,
              "stride": strides, "padding": paddings, "dilation": dilations, "groups": groups,
              "bias": draw(st.booleans())}
    return f"Conv{dims}D", [groups * draw(st.integers(1, 2)), *sizes], params


@settings(max_examples=6, deadline=None)
@given(conv_cases(), st.integers(1, 2))
def test_conv_random(case, batch):
    type_name, shape, params = case
    cuda_check(type_name, params, [shape], batch, conv_reference, samples=2)


def test_conv_weight_gradient_splits_agree_with_one_pass(monkeypatch):
    """Split-K folds partial weight gradients; the result must not depend on the split."""
    from engine.kernels.cuda import conv

    monkeypatch.setattr(conv, "multiprocessors", lambda: 64)  # a big GPU: many splits pay
    h = OpHarness("Conv2D", {"filters": 2, "kernel_size": 3, "padding": 1}, [(2, 4, 4)], 3,
                  backend="cuda")
    dout = np.random.default_rng(3).standard_normal((3, 2, 4, 4))
    h.forward()
    assert h.op._split(3)[0] > 2
    _, split = h.backward(dout)
    monkeypatch.setattr(conv, "MIN_SPLIT_K", 10 ** 9)
    h.forward()
    _, whole = h.backward(dout)
    np.testing.assert_allclose(split["weight"], whole["weight"], rtol=1e-12)


def test_gemm_kernels_with_the_gpu_tile_shape():
    """The simulator's tests use small tiles; run conv and dense once with the GPU's 16x16-thread
    tiles so their load and store patterns are exercised too."""
    from engine.kernels.cuda import gemm

    previous = gemm.TX, gemm.TM, gemm.BK
    gemm.configure(*gemm.GPU_TILES)
    try:
        for type_name, shape, params, reference in [
                ("Conv2D", (2, 6, 5), {"filters": 3, "kernel_size": 3, "stride": 2,
                                       "padding": 1}, conv_reference),
                ("Dense", (70,), {"units": 66}, dense_reference)]:
            h = OpHarness(type_name, params, [shape], 2, backend="cuda")
            y = h.forward()
            expected = reference([x.copy() for x in h.inputs], dict(h.arrays), h.params, True)
            np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
            dout = np.random.default_rng(1).standard_normal(y.shape)
            (dx,), grads = h.backward(dout)
            reference_grads = numeric_linear_grads(h, reference, dout)
            np.testing.assert_allclose(dx, reference_grads["input"], rtol=1e-8, atol=1e-9)
            np.testing.assert_allclose(grads["weight"], reference_grads["weight"], rtol=1e-8,
                                       atol=1e-9)
    finally:
        gemm.configure(*previous)


def numeric_linear_grads(h, reference, dout):
    """Exact gradients of sum(reference * dout) for an op linear in its input and weight:
    one reference evaluation per basis vector (fine for these sizes)."""
    grads = {}
    for name, array in [("input", h.inputs[0]), ("weight", h.arrays["weight"])]:
        grad = np.zeros(array.size)
        for i in range(array.size):
            basis = np.zeros(array.size)
            basis[i] = 1.0
            inputs = [basis.reshape(array.shape)] if name == "input" else [h.inputs[0]]
            arrays = {**h.arrays, "bias": 0 * h.arrays["bias"]}
            if name == "weight":
                arrays["weight"] = basis.reshape(array.shape)
            grad[i] = np.sum(reference(inputs, arrays, h.params, True) * dout)
        grads[name] = grad.reshape(array.shape)
    return grads


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("features, units, batch", [(5, 3, 4), (1, 7, 1)])
def test_dense(features, units, batch, bias):
    cuda_check("Dense", {"units": units, "bias": bias}, [(features,)], batch, dense_reference)


def test_dense_skips_the_input_gradient_when_not_needed():
    h = OpHarness("Dense", {"units": 3}, [(4,)], 2, backend="cuda")
    h.op.needs_input_grad = [False]
    h.forward()
    (dx,), grads = h.backward(np.ones((2, 3)))
    assert dx is None
    np.testing.assert_allclose(grads["bias"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(grads["weight"], np.tile(h.inputs[0].sum(axis=0), (3, 1)))


POOL_CASES = [
    ([2, 5, 4], {"size": 2}, 2),
    ([2, 7], {"size": 3, "stride": 2, "padding": 1}, 1),
    ([1, 5, 4], {"size": [3, 2], "stride": [2, 1], "padding": [1, 0]}, 2),
    ([1, 3, 4, 3], {"size": [2, 3, 2], "stride": [1, 2, 3], "padding": [1, 1, 0]}, 1),
]


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("shape, params, batch", POOL_CASES)
def test_pool(mode, shape, params, batch):
    cuda_check(f"Pool{len(shape) - 1}D", {"mode": mode, **params}, [shape], batch,
               pool_reference)


def test_max_pool_routes_gradient_to_each_maximum():
    h = OpHarness("Pool1D", {"size": 3, "stride": 2, "padding": 1}, [(1, 5)], 1, backend="cuda")
    x = np.array([[[1.0, 5.0, 2.0, 0.5, 3.0]]])
    np.testing.assert_array_equal(h.forward([x]), [[[5.0, 5.0, 3.0]]])
    (dx,), _ = h.backward(np.array([[[1.0, 2.0, 4.0]]]))
    np.testing.assert_array_equal(dx, [[[0.0, 3.0, 0.0, 0.0, 4.0]]])


def test_l2_pool_gradient_is_zero_where_the_window_is_zero():
    h = OpHarness("Pool2D", {"mode": "l2", "size": 2}, [(1, 2, 4)], 1, backend="cuda")
    x = np.array([[[[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 4.0]]]])
    np.testing.assert_allclose(h.forward([x]), [[[[0.0, 5.0]]]])
    (dx,), _ = h.backward(np.ones((1, 1, 1, 2)))
    np.testing.assert_allclose(dx, [[[[0.0, 0.0, 0.6, 0.0], [0.0, 0.0, 0.0, 0.8]]]])


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("shape, size, batch", [((6,), 2, 3), ((4, 3, 2), 4, 2)])
def test_channel_pool(mode, shape, size, batch):
    cuda_check("ChannelPool", {"mode": mode, "size": size}, [shape], batch,
               channel_pool_reference)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape, batch", [((3, 5), 2), ((2, 2, 3, 2), 1)])
def test_global_pool(mode, shape, batch):
    cuda_check("GlobalPool", {"mode": mode}, [shape], batch, global_pool_reference)


def test_global_avg_pool_float32_sum_is_accurate():
    h = OpHarness("GlobalPool", {"mode": "avg"}, [(1, 3000)], 1, backend="cuda", dtype=np.float32)
    x = np.random.default_rng(3).uniform(100, 101, (1, 1, 3000))
    np.testing.assert_allclose(h.forward([x]), x.mean(axis=2), rtol=1e-6)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape, batch", [((3,), 4), ((2, 3, 2), 2)])
def test_batchnorm(shape, batch, training):
    cuda_check("BatchNorm", {"eps": 1e-3}, [shape], batch, batchnorm_reference,
               training=training)


def test_batchnorm_running_statistics_follow_pytorch():
    h = OpHarness("BatchNorm", {"momentum": 0.2}, [(2, 3)], 3, backend="cuda")
    mean, var = h.arrays["running_mean"].copy(), h.arrays["running_var"].copy()
    rng = np.random.default_rng(5)
    for _ in range(2):
        x = rng.normal(3.0, 2.0, (3, 2, 3))
        h.forward([x])
        mean = 0.8 * mean + 0.2 * x.mean(axis=(0, 2))
        var = 0.8 * var + 0.2 * x.var(axis=(0, 2), ddof=1)
        np.testing.assert_allclose(h.backend.to_host(h.op.state["running_mean"]), mean,
                                   rtol=1e-12)
        np.testing.assert_allclose(h.backend.to_host(h.op.state["running_var"]), var,
                                   rtol=1e-12)


def test_batchnorm_float32_variance_survives_a_large_mean():
    h = OpHarness("BatchNorm", {}, [(1, 100)], 4, backend="cuda", dtype=np.float32)
    x = np.random.default_rng(2).normal(1e4, 1.0, (4, 1, 100))
    h.set_param("weight", np.ones(1))
    h.set_param("bias", np.zeros(1))
    np.testing.assert_allclose(h.forward([x]).std(axis=(0, 2)), 1.0, rtol=1e-3)


def test_batchnorm_training_needs_two_values_per_channel():
    h = OpHarness("BatchNorm", {}, [(3,)], 1, backend="cuda")
    with pytest.raises(ValueError, match="more than one value per channel"):
        h.forward()
    h.forward(training=False)


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_dropout_forward_and_backward_use_one_mask(rate):
    h = OpHarness("Dropout", {"rate": rate}, [(4, 3)], 3, backend="cuda")
    x = h.inputs[0]
    y = h.forward()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-12)
    dout = np.random.default_rng(4).standard_normal(y.shape)
    (dx,), _ = h.backward(dout)
    np.testing.assert_allclose(dx, np.where(kept, dout / (1 - rate), 0.0), rtol=1e-12)
    if rate == 0:
        assert kept.all()


def test_dropout_evaluation_is_the_identity():
    h = OpHarness("Dropout", {"rate": 0.5}, [(5,)], 2, backend="cuda")
    x = h.backend.to_device(np.ones((2, 5)), np.float64)
    assert h.op.forward([x], False) is x
    assert h.op.backward(x)[0] is x


def test_dropout_keeps_the_expected_share_and_is_seeded():
    first, second = (OpHarness("Dropout", {"rate": 0.3}, [(400,)], 2, backend="cuda",
                               dtype=np.float32, seed=3) for _ in range(2))
    ones = [np.ones((2, 400))]
    a = first.forward(ones)
    assert abs((a != 0).mean() - 0.7) < 0.05
    np.testing.assert_allclose(a[a != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(a, second.forward(ones))
    first._rng_state = first.op_rng.bit_generator.state  # the next step draws a new mask
    assert not np.array_equal(a, first.forward(ones))
