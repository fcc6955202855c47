import numpy as np
import pytest
from opcheck import OpHarness, check_op

ACTIVATIONS = {
    "relu": lambda x, a: np.maximum(x, 0),
    "leaky_relu": lambda x, a: np.where(x > 0, x, a * x),
    "elu": lambda x, a: np.where(x > 0, x, a * (np.exp(x) - 1)),
    "tanh": lambda x, a: np.tanh(x),
    "sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "softplus": lambda x, a: np.logaddexp(0, x),
}


@pytest.mark.parametrize("function", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3,), (2, 5), (3, 4, 5)])
def test_activation(function, shape):
    params = {"function": function}
    if function in ("leaky_relu", "elu"):
        params["alpha"] = 0.2
    check_op("Activation", params, [shape], 3,
             lambda ins, arrays, p, t: ACTIVATIONS[function](ins[0], p["alpha"]))


def test_flatten():
    check_op("Flatten", {}, [(3, 4, 5)], 2, lambda ins, arrays, p, t: ins[0].reshape(2, -1))


def softmax_reference(ins, arrays, p, training):
    shifted = np.exp(ins[0] - ins[0].max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes, batch", [(1, 2), (5, 3), (10, 1)])
def test_softmax(classes, batch):
    check_op("Softmax", {}, [(classes,)], batch, softmax_reference)


def test_softmax_is_stable_for_large_scores():
    h = OpHarness("Softmax", {}, [(3,)], 1, dtype=np.float32)
    np.testing.assert_allclose(h.forward([np.array([[1000.0, 1000.0, -1000.0]])]),
                               [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("shape", [(4,), (2, 3, 5)])
def test_add(count, shape):
    check_op("Add", {}, [shape] * count, 2, lambda ins, arrays, p, t: sum(ins))


def test_add_backward_skips_inputs_that_need_no_gradient():
    h = OpHarness("Add", {}, [(3,), (3,)], 2)
    h.op.needs_input_grad = [False, True]
    h.forward()
    dout = np.ones((2, 3))
    assert h.op.backward(dout) == [None, dout]


@pytest.mark.parametrize("shapes", [[(2,), (3,)], [(1, 4), (3, 4), (2, 4)], [(2, 3, 2), (1, 3, 2)]])
def test_concat(shapes):
    check_op("Concat", {}, shapes, 2, lambda ins, arrays, p, t: np.concatenate(ins, axis=1))


def test_concat_backward_returns_views_of_dout():
    h = OpHarness("Concat", {}, [(1, 3), (2, 3)], 2)
    h.forward()
    dout = np.arange(18.0).reshape(2, 3, 3)
    first, second = h.op.backward(dout)
    assert np.shares_memory(first, dout) and np.shares_memory(second, dout)
    np.testing.assert_array_equal(second, dout[:, 1:])
