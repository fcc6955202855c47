import numpy as np
import pytest
from opcheck import check_op

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
