import numpy as np
import pytest
from opcheck import OpHarness, check_op


def batchnorm_reference(ins, arrays, p, training):
    x = ins[0]
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = arrays["running_mean"], arrays["running_var"]
    normalised = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + p["eps"])
    return normalised * arrays["weight"].reshape(shape) + arrays["bias"].reshape(shape)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape, batch", [((3,), 4), ((2, 5), 1), ((3, 4, 3), 2),
                                          ((2, 2, 3, 2), 3)])
def test_batchnorm(shape, batch, training):
    check_op("BatchNorm", {"eps": 1e-3}, [shape], batch, batchnorm_reference, training=training)


def test_batchnorm_running_statistics_follow_pytorch():
    h = OpHarness("BatchNorm", {"momentum": 0.2}, [(3, 4)], 5)
    mean, var = h.arrays["running_mean"].copy(), h.arrays["running_var"].copy()
    rng = np.random.default_rng(5)
    for _ in range(2):
        x = rng.normal(3.0, 2.0, (5, 3, 4))
        h.forward([x])
        mean = 0.8 * mean + 0.2 * x.mean(axis=(0, 2))
        var = 0.8 * var + 0.2 * x.var(axis=(0, 2), ddof=1)
        np.testing.assert_allclose(h.op.state["running_mean"], mean, rtol=1e-12)
        np.testing.assert_allclose(h.op.state["running_var"], var, rtol=1e-12)
    h.forward([x], training=False)
    np.testing.assert_allclose(h.op.state["running_mean"], mean, rtol=1e-12)


def test_batchnorm_float32_variance_survives_a_large_mean():
    h = OpHarness("BatchNorm", {}, [(2, 1000)], 8, dtype=np.float32)
    x = np.random.default_rng(2).normal(1e4, 1.0, (8, 2, 1000))
    h.set_param("weight", np.ones(2))
    h.set_param("bias", np.zeros(2))
    y = h.forward([x])
    np.testing.assert_allclose(y.std(axis=(0, 2)), 1.0, rtol=1e-3)


def test_batchnorm_training_needs_two_values_per_channel():
    h = OpHarness("BatchNorm", {}, [(3,)], 1)
    with pytest.raises(ValueError, match="more than one value per channel"):
        h.forward()
    h.forward(training=False)


def dropout_reference(rate, seed=0):
    def reference(ins, arrays, p, training):
        # the op draws float64 uniforms from the harness's generator (seeded seed + 1)
        draws = np.random.default_rng(seed + 1).random(ins[0].shape)
        return np.where(draws >= rate, ins[0] / (1 - rate), 0.0) if training else ins[0]
    return reference


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_dropout(rate, training):
    check_op("Dropout", {"rate": rate}, [(4, 3)], 3, dropout_reference(rate), training=training)


def test_dropout_evaluation_is_the_identity():
    h = OpHarness("Dropout", {"rate": 0.5}, [(5,)], 2)
    x = np.ones((2, 5))
    assert h.op.forward([x], False) is x
    assert h.op.backward(x)[0] is x


def test_dropout_keeps_the_expected_share_scaled():
    h = OpHarness("Dropout", {"rate": 0.3}, [(100, 100)], 2, dtype=np.float32)
    y = h.forward([np.ones((2, 100, 100))])
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_dropout_masks_are_seeded_and_change_every_step():
    first, second = (OpHarness("Dropout", {"rate": 0.5}, [(50,)], 4, seed=3) for _ in range(2))
    x = np.ones((4, 50))
    a = first.op.forward([x], True).copy()
    np.testing.assert_array_equal(a, second.op.forward([x], True))
    assert not np.array_equal(a, first.op.forward([x], True))


def test_dropout_backward_uses_the_forward_mask():
    h = OpHarness("Dropout", {"rate": 0.4}, [(6, 7)], 3)
    y = h.forward([np.ones((3, 6, 7))])
    (dx,), _ = h.backward(np.full((3, 6, 7), 2.0))
    np.testing.assert_allclose(dx, 2.0 * y)
