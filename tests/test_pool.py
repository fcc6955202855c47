import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from opcheck import OpHarness, check_op


def pool_reference(ins, arrays, p, training):
    x, size, stride, padding = ins[0], p["size"], p["stride"], p["padding"]
    dims = len(size)
    fill = -np.inf if p["mode"] == "max" else 0.0
    padded = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in padding], constant_values=fill)
    windows = sliding_window_view(padded, size, axis=tuple(range(2, 2 + dims)))
    windows = windows[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]
    axes = tuple(range(-dims, 0))
    if p["mode"] == "max":
        return windows.max(axis=axes)
    if p["mode"] == "avg":
        return windows.mean(axis=axes)
    return np.sqrt((windows ** 2).sum(axis=axes))


CASES = [
    ([3, 8, 8], {"size": 2}, 2),                                      # the max pairs path
    ([2, 7, 9], {"size": 2}, 1),                                      # pairs, odd sizes
    ([2, 4, 6, 5], {"size": [1, 2, 2]}, 2),                           # pairs in 3D
    ([2, 5, 4, 7], {"size": 2}, 2),                                   # pairs, 2x2x2, odd
    ([1, 4, 5, 4], {"size": [2, 1, 2]}, 2),                           # pairs, 2x1x2
    ([2, 11], {"size": 2}, 2),                                        # pairs in 1D
    ([1, 3, 5], {"size": [1, 2]}, 2),                                 # pairs, one row
    ([2, 13], {"size": 4}, 2),                                        # the rows path (1D)
    ([2, 3, 10], {"size": [1, 3]}, 1),                                # rows path in 2D
    ([1, 2, 2, 7], {"size": [1, 1, 3]}, 2),                           # rows path in 3D
    ([2, 9], {"size": 3, "stride": 2, "padding": 1}, 3),
    ([1, 7, 8], {"size": [3, 2], "stride": [2, 1], "padding": [1, 0]}, 1),
    ([2, 5, 6, 5], {"size": [2, 3, 2], "stride": [1, 2, 3], "padding": [1, 1, 0]}, 2),
    ([1, 6, 5], {"size": 3, "stride": 1, "padding": 1}, 2),
]


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("shape, params, batch", CASES)
def test_pool(mode, shape, params, batch):
    check_op(f"Pool{len(shape) - 1}D", {"mode": mode, **params}, [shape], batch, pool_reference)


@st.composite
def pool_cases(draw):
    dims = draw(st.integers(1, 3))
    sizes, kernels, strides, paddings = [], [], [], []
    for _ in range(dims):
        k = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        sizes.append(draw(st.integers(max(1, k - 2 * p), 6)))
        kernels.append(k)
        strides.append(draw(st.integers(1, 3)))
        paddings.append(p)
    params = {"mode": draw(st.sampled_from(["max", "avg", "l2"])), "size": kernels,
              "stride": strides, "padding": paddings}
    return [draw(st.integers(1, 3)), *sizes], params, draw(st.integers(1, 3))


@settings(max_examples=25, deadline=None)
@given(pool_cases())
def test_pool_random(case):
    shape, params, batch = case
    check_op(f"Pool{len(shape) - 1}D", params, [shape], batch, pool_reference, samples=6)


@pytest.mark.parametrize("params", [{"size": 2}, {"mode": "avg", "size": 3, "padding": 1}])
def test_pool_backward_accepts_strided_gradient(params):
    """A Concat downstream hands back a channel slice of its gradient, not a contiguous array."""
    h = OpHarness("Pool2D", params, [(2, 7, 6)], 3)
    y = h.forward()
    wide = np.random.default_rng(1).standard_normal((3, 5, *y.shape[2:]))
    strided, = h.op.backward(wide[:, 1:3])
    contiguous, = h.op.backward(np.ascontiguousarray(wide[:, 1:3]))
    np.testing.assert_array_equal(strided, contiguous)


def test_max_pool_routes_gradient_to_each_maximum():
    h = OpHarness("Pool1D", {"size": 3, "stride": 2, "padding": 1}, [(1, 5)], 1)
    x = np.array([[[1.0, 5.0, 2.0, 0.5, 3.0]]])
    np.testing.assert_array_equal(h.forward([x]), [[[5.0, 5.0, 3.0]]])
    (dx,), _ = h.backward(np.array([[[1.0, 2.0, 4.0]]]))
    np.testing.assert_array_equal(dx, [[[0.0, 3.0, 0.0, 0.0, 4.0]]])


def test_l2_pool_gradient_is_zero_where_the_window_is_zero():
    h = OpHarness("Pool2D", {"mode": "l2", "size": 2}, [(1, 2, 4)], 1)
    x = np.array([[[[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 4.0]]]])
    np.testing.assert_allclose(h.forward([x]), [[[[0.0, 5.0]]]])
    (dx,), _ = h.backward(np.ones((1, 1, 1, 2)))
    np.testing.assert_allclose(dx, [[[[0.0, 0.0, 0.6, 0.0], [0.0, 0.0, 0.0, 0.8]]]])


def channel_pool_reference(ins, arrays, p, training):
    x = ins[0]
    groups = x.reshape(x.shape[0], x.shape[1] // p["size"], p["size"], *x.shape[2:])
    if p["mode"] == "max":
        return groups.max(axis=2)
    if p["mode"] == "avg":
        return groups.mean(axis=2)
    return np.sqrt((groups ** 2).sum(axis=2))


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("shape, size, batch", [((6,), 2, 3), ((6, 5), 3, 1), ((4, 3, 5), 4, 2),
                                                ((3, 2, 3, 2), 1, 2)])
def test_channel_pool(mode, shape, size, batch):
    check_op("ChannelPool", {"mode": mode, "size": size}, [shape], batch, channel_pool_reference)


def global_pool_reference(ins, arrays, p, training):
    flat = ins[0].reshape(*ins[0].shape[:2], -1)
    return flat.max(axis=2) if p["mode"] == "max" else flat.mean(axis=2)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape, batch", [((3, 7), 2), ((2, 5, 3), 1), ((2, 3, 2, 3), 3)])
def test_global_pool(mode, shape, batch):
    check_op("GlobalPool", {"mode": mode}, [shape], batch, global_pool_reference)


def test_global_avg_pool_float32_sum_is_accurate():
    h = OpHarness("GlobalPool", {"mode": "avg"}, [(2, 100_000)], 2, dtype=np.float32)
    x = np.random.default_rng(3).uniform(100, 101, (2, 2, 100_000))
    np.testing.assert_allclose(h.forward([x]), x.mean(axis=2), rtol=1e-6)
