"""One helper that checks any module's op against a plain-numpy reference and finite differences.

A reference is reference(inputs, arrays, params, training) -> output, in float64 numpy, where
arrays holds the op's learnable arrays by name and params the resolved parameters.
"""
from __future__ import annotations

import numpy as np

from engine.backend import get_backend
from engine.modules import REGISTRY, OpSpec, resolve_params


class OpHarness:
    """Builds one op with random parameters; runs forward/backward on host arrays."""

    def __init__(self, type_name, params, in_shapes, batch, *, backend="cpu", dtype=np.float64,
                 seed=0, capacity=None):
        mt = REGISTRY[type_name]
        rng = np.random.default_rng(seed)
        self.params = resolve_params(mt, params)
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.out_shape = tuple(mt.infer(self.params, self.in_shapes))
        self.backend = get_backend(backend)
        self.dtype = dtype
        self.op_rng = np.random.default_rng(seed + 1)
        self.op = mt.op(OpSpec("node", self.params, self.in_shapes, self.out_shape, backend,
                               self.op_rng, dtype))
        self.op.needs_input_grad = [True] * len(in_shapes)
        self.arrays = {}
        learnable = mt.arrays(self.params, self.in_shapes)
        state = mt.state(self.params, self.in_shapes)
        values = mt.init(self.params, self.in_shapes, rng) if mt.init else {}
        for name, value in values.items():
            value = value.astype(np.float64)
            if name in learnable:  # random, so a zero-initialised bias is still checked
                value = value + rng.standard_normal(value.shape) * 0.5
                self.arrays[name] = value
                self.op.params[name] = self.backend.to_device(value, dtype)
                self.op.grads[name] = self.backend.zeros(value.shape, dtype)
            elif name in state:
                if name == "running_var":
                    value = value + rng.uniform(0.2, 1.0, value.shape)
                else:
                    value = value + rng.standard_normal(value.shape) * 0.3
                self.arrays[name] = value
                self.op.state[name] = self.backend.to_device(value, dtype)
        self.inputs = [rng.standard_normal((batch, *s)) for s in self.in_shapes]
        self.op.allocate(capacity or batch)
        self._rng_state = self.op_rng.bit_generator.state

    def set_param(self, name, value):
        self.arrays[name] = value
        self.backend.copy_into(self.op.params[name], np.asarray(value, self.dtype))

    def forward(self, inputs=None, training=True):
        self.op_rng.bit_generator.state = self._rng_state  # same dropout mask every call
        inputs = self.inputs if inputs is None else inputs
        device_inputs = [self.backend.to_device(x, self.dtype) for x in inputs]
        return self.backend.to_host(self.op.forward(device_inputs, training)).astype(np.float64)

    def backward(self, dout):
        grads = self.op.backward(self.backend.to_device(dout, self.dtype))
        input_grads = [None if g is None else self.backend.to_host(g).astype(np.float64)
                       for g in grads]
        param_grads = {k: self.backend.to_host(v).astype(np.float64)
                       for k, v in self.op.grads.items()}
        return input_grads, param_grads


def check_op(type_name, params, in_shapes, batch, reference, *, backend="cpu", training=True,
             seed=0, samples=12, rtol=1e-5, atol=1e-6):
    """Forward vs reference (float64 and float32), backward vs central finite differences."""
    h = OpHarness(type_name, params, in_shapes, batch, backend=backend, seed=seed,
                  capacity=batch + 2)
    y = h.forward(training=training)
    expected = reference([x.copy() for x in h.inputs], dict(h.arrays), h.params, training)
    assert y.shape == (batch, *h.out_shape), (y.shape, h.out_shape)
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol, err_msg="float64 forward")

    h32 = OpHarness(type_name, params, in_shapes, batch, backend=backend, seed=seed,
                    dtype=np.float32)
    np.testing.assert_allclose(h32.forward(training=training), expected, rtol=2e-3, atol=2e-4,
                               err_msg="float32 forward")

    rng = np.random.default_rng(seed + 7)
    weights = rng.standard_normal(y.shape)
    h.forward(training=training)
    input_grads, param_grads = h.backward(weights.copy())

    def loss() -> float:
        return float(np.sum(h.forward(training=training) * weights))

    eps = 1e-6
    targets = [(f"input {i}", x, input_grads[i]) for i, x in enumerate(h.inputs)]
    targets += [(f"param {k}", h.arrays[k], param_grads[k]) for k in param_grads]
    for label, array, analytic in targets:
        assert analytic is not None, f"no gradient for {label}"
        assert analytic.shape == array.shape, (label, analytic.shape, array.shape)
        flat = array.reshape(-1)
        for index in rng.choice(flat.size, size=min(samples, flat.size), replace=False):
            original = flat[index]
            flat[index] = original + eps
            if label.startswith("param"):
                h.set_param(label[6:], array)
            plus = loss()
            flat[index] = original - eps
            if label.startswith("param"):
                h.set_param(label[6:], array)
            minus = loss()
            flat[index] = original
            if label.startswith("param"):
                h.set_param(label[6:], array)
            numeric = (plus - minus) / (2 * eps)
            got = analytic.reshape(-1)[index]
            assert abs(got - numeric) <= 1e-4 * max(1.0, abs(numeric)), \
                f"{type_name} {params}: d/d {label}[{index}] analytic {got} vs numeric {numeric}"
    return h
