import numpy as np
import pytest
from opcheck import OpHarness, check_op


def dense_reference(ins, arrays, p, training):
    y = ins[0] @ arrays["weight"].T
    return y + arrays["bias"] if p["bias"] else y


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("features, units, batch", [(5, 3, 4), (1, 7, 1), (9, 1, 2)])
def test_dense(features, units, batch, bias):
    check_op("Dense", {"units": units, "bias": bias}, [(features,)], batch, dense_reference)


def test_dense_skips_the_input_gradient_when_not_needed():
    h = OpHarness("Dense", {"units": 3}, [(4,)], 2)
    h.op.needs_input_grad = [False]
    h.forward()
    (dx,), grads = h.backward(np.ones((2, 3)))
    assert dx is None
    np.testing.assert_allclose(grads["bias"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(grads["weight"], np.tile(h.inputs[0].sum(axis=0), (3, 1)))


def test_dense_backward_accepts_strided_gradient():
    h = OpHarness("Dense", {"units": 3}, [(4,)], 2)
    h.forward()
    wide = np.random.default_rng(1).standard_normal((2, 7))
    strided, = h.op.backward(wide[:, 2:5])
    weight_grad = h.op.grads["weight"].copy()
    contiguous, = h.op.backward(np.ascontiguousarray(wide[:, 2:5]))
    np.testing.assert_allclose(strided, contiguous)
    np.testing.assert_allclose(weight_grad, h.op.grads["weight"])


@pytest.mark.parametrize("features, units, batch", [(601, 403, 5), (97, 41, 301)])
def test_dense_split_over_workers_matches_numpy(features, units, batch, monkeypatch):
    """Big enough for two workers: by units (more units than samples) or by samples, and the
    gradients by units and by input features (float32 against float64 numpy)."""
    import engine.kernels.cpu.dense as dense

    monkeypatch.setattr(dense, "worker_count", lambda n, work=None: min(2, n))
    h = OpHarness("Dense", {"units": units}, [(features,)], batch, dtype=np.float32)
    y = h.forward()
    x, weight = h.inputs[0], h.arrays["weight"]
    np.testing.assert_allclose(y, x @ weight.T + h.arrays["bias"], rtol=1e-4, atol=1e-4)
    dy = np.random.default_rng(2).standard_normal((batch, units))
    (dx,), grads = h.backward(dy)
    np.testing.assert_allclose(dx, dy @ weight, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads["weight"], dy.T @ x, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(grads["bias"], dy.sum(axis=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("keep_output", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_relu_matches_dense_then_relu(keep_output, bias):
    """DenseOp.fuse_relu: the outputs and every gradient of a dense layer followed by a ReLU."""
    from test_conv import _relu_op

    fused, plain = (OpHarness("Dense", {"units": 6, "bias": bias}, [(5,)], 4) for _ in range(2))
    relu = _relu_op((6,), 4)
    fused.op.fuse_relu(relu, keep_output=keep_output)
    y, expected = fused.forward(), plain.forward()
    np.testing.assert_array_equal(y, expected if keep_output else np.maximum(expected, 0))
    np.testing.assert_array_equal(relu.forward([y], True), np.maximum(expected, 0))
    dout = np.random.default_rng(4).standard_normal((4, 6))
    (passed,) = relu.backward(dout)
    fused_inputs, fused_grads = fused.backward(passed)
    plain_inputs, plain_grads = plain.backward(dout * (expected > 0))
    np.testing.assert_allclose(fused_inputs[0], plain_inputs[0], rtol=1e-12, atol=1e-12)
    for name, value in plain_grads.items():
        np.testing.assert_allclose(fused_grads[name], value, rtol=1e-12, atol=1e-12)
