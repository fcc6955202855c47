"""Compile a Graph into an execution plan: ordered ops, their parameters, preallocated buffers.

The plan owns every array: parameters and gradients (one array per "node/name" key), BatchNorm
state, and the ops' per-batch buffers, allocated for the largest batch seen so far.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .backend import get_backend
from .graph import Analysis, Graph, GraphError, GraphValidationError
from .modules import REGISTRY, OpSpec


class Network:
    """The executable form of a graph (DESIGN.md 3.4): forward, backward, params, grads, state.

    params, grads and state hold the backend's arrays: numpy on "cpu", numba device arrays on
    "cuda" (np.asarray(net.params[key]) copies one to the host, assigning to a slice of it writes
    through; weights() gives them all as numpy).

    Every node's last output stays available to activation() (what the designer's panels show)
    unless keep_outputs is False: then an op that computes the ReLU after it writes only the
    ReLU's output, as PyTorch keeps only what backward needs (less memory; the command line).
    """

    def __init__(self, graph: Graph, backend: str = "cpu", seed: int = 0, dtype=np.float32,
                 keep_outputs: bool = True):
        self.graph = graph.copy()
        self.keep_outputs = keep_outputs
        self.analysis = self.graph.check()
        check_memory(self.graph, analysis=self.analysis, dtype=dtype)
        self.backend = get_backend(backend)
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.input_id = self.graph.input_node.id
        self.output_id = self.graph.output_node.id
        self.loss_name = self.analysis.params[self.output_id]["loss"]
        self.input_shape = self.analysis.shapes[self.input_id]
        self.output_shape = self.analysis.shapes[self.output_id]

        needed = self.graph.ancestors(self.output_id)
        self.order = [n for n in self.analysis.order
                      if n in needed and n not in (self.input_id, self.output_id)]
        self.sources = {n: [e.src for e in edges]
                        for n, edges in self.graph.inputs_by_node().items()}
        fanout: dict[str, int] = {}
        for node_id in self.order + [self.output_id]:
            for src in self.sources[node_id]:
                fanout[src] = fanout.get(src, 0) + 1
        self._shared = {n for n, count in fanout.items() if count > 1}

        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.ops = {}
        init_rng = np.random.default_rng(seed)
        for node_id in self.order:
            self.ops[node_id] = self._build_op(node_id, init_rng)
        self._not_kept: set[str] = set()  # nodes whose output buffer holds the next ReLU's
        self._fuse_relus(fanout)
        self.capacity = 0
        self._grad_buffers: dict[str, np.ndarray] = {}
        self._input_grad = True
        self._acts: dict = {}
        self._forward_shape: tuple | None = None   # of the last forward(): what backward takes

    # -- building -----------------------------------------------------------------------------
    def _build_op(self, node_id: str, init_rng: np.random.Generator):
        node = self.graph.nodes[node_id]
        mt = REGISTRY[node.type]
        params = self.analysis.params[node_id]
        in_shapes = self.analysis.in_shapes[node_id]
        spec = OpSpec(node_id, params, in_shapes, self.analysis.shapes[node_id],
                      self.backend.name, self.rng, self.dtype.type)
        op = mt.op(spec)
        values = mt.init(params, in_shapes, init_rng) if mt.init else {}
        learnable, state = mt.arrays(params, in_shapes), mt.state(params, in_shapes)
        for name, value in values.items():
            key = f"{node_id}/{name}"
            array = self.backend.to_device(value, self.dtype)
            if name in learnable:
                self.params[key] = op.params[name] = array
                self.grads[key] = op.grads[name] = self.backend.zeros(value.shape, self.dtype)
            elif name in state:
                self.state[key] = op.state[name] = array
        op.needs_input_grad = [True] * len(in_shapes)
        return op

    def _fuse_relus(self, fanout: dict[str, int]) -> None:
        """Let an op that can (ConvOp.fuse_relu) compute the ReLU that alone consumes it; its own
        output stays there to inspect unless keep_outputs is False."""
        for node_id in self.order:
            if (self.graph.nodes[node_id].type != "Activation"
                    or self.analysis.params[node_id]["function"] != "relu"):
                continue
            (src,) = self.sources[node_id]
            producer = self.ops.get(src)
            if hasattr(producer, "fuse_relu") and fanout[src] == 1:
                producer.fuse_relu(self.ops[node_id], keep_output=self.keep_outputs)
                if not self.keep_outputs:
                    self._not_kept.add(src)

    def allocate(self, batch: int) -> None:
        """Make every buffer hold at least `batch` samples (grows only)."""
        if batch <= self.capacity:
            return
        for op in self.ops.values():
            op.allocate(batch)
        self._grad_buffers = {
            n: self.backend.zeros((batch, *self.analysis.shapes[n]), self.dtype)
            for n in self._shared}
        self.capacity = batch

    def set_input_grad(self, needed: bool) -> None:
        """Skip the gradient with respect to the network input (training never needs it)."""
        self._input_grad = needed
        for node_id, op in self.ops.items():
            op.needs_input_grad = [needed or src != self.input_id for src in self.sources[node_id]]

    # -- execution ----------------------------------------------------------------------------
    def run_forward(self, x, training: bool):
        """Forward on backend arrays; returns the op's own output buffer (no copy)."""
        self.allocate(x.shape[0])
        self._acts = {self.input_id: x}
        for node_id in self.order:
            inputs = [self._acts[src] for src in self.sources[node_id]]
            self._acts[node_id] = self.ops[node_id].forward(inputs, training)
        return self._acts[self.sources[self.output_id][0]]

    def run_backward(self, dy):
        """Backward on backend arrays from the gradient at the Output's input."""
        n = dy.shape[0]
        pending: dict[str, object] = {}
        self._accumulate(pending, self.sources[self.output_id][0], dy, n)
        for node_id in reversed(self.order):
            dout = pending.pop(node_id, None)
            if dout is None:
                continue
            for src, grad in zip(self.sources[node_id], self.ops[node_id].backward(dout)):
                if grad is not None:
                    self._accumulate(pending, src, grad, n)
        return pending.get(self.input_id)

    def _accumulate(self, pending: dict, node_id: str, grad, n: int) -> None:
        if node_id not in self._shared:
            pending[node_id] = grad
        elif node_id in pending:
            self.backend.add_into(pending[node_id], grad)
        else:
            buffer = self._grad_buffers[node_id][:n]
            self.backend.copy_into(buffer, grad)
            pending[node_id] = buffer

    def output_kept(self, node_id: str) -> bool:
        return node_id not in self._not_kept

    def activation(self, node_id: str) -> np.ndarray:
        """The last forward's output of a node, as a host array (what the panels show)."""
        if node_id not in self.ops and node_id != self.input_id:
            raise ValueError(f"no node {node_id!r} computes in this network. Its nodes: "
                             f"{', '.join([self.input_id, *self.order])}")
        if node_id not in self._acts:
            raise ValueError(f"node {node_id!r} has no output yet: run forward first")
        if not self.output_kept(node_id):
            raise ValueError(f"node {node_id!r}: its output is not kept (the network was "
                             f"compiled with keep_outputs=False)")
        return self.backend.to_host(self._acts[node_id]).copy()

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """numpy in, numpy out: the input of the Output node."""
        x = np.asarray(x)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, self.input_shape))}]."
                             f" Received: {list(x.shape)}")
        if not len(x):
            raise ValueError(f"input must hold at least one sample. Received: {list(x.shape)}")
        y = self.run_forward(self.backend.stage(x, "input", self.dtype), training)
        self._forward_shape = tuple(y.shape)
        return self.backend.to_host(y).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """The gradient with respect to the network input, after forward (training=True for
        the training step; saliency differentiates the evaluation-mode forward)."""
        dy = np.asarray(dy)
        shape = self._forward_shape
        if shape is None:
            raise ValueError("backward follows a forward of the same batch: run forward first")
        if dy.shape != shape:
            raise ValueError(f"dy must have the shape of the last forward's output "
                             f"{list(shape)}. Received: {list(dy.shape)}")
        if not self._input_grad:
            self.set_input_grad(True)
        dx = self.run_backward(self.backend.stage(dy, "dy", self.dtype))
        return self.backend.to_host(dx).copy()

    # -- weights ------------------------------------------------------------------------------
    def weights(self) -> dict[str, np.ndarray]:
        """Parameters and state as host arrays, keyed "node/name" (what the model file stores)."""
        return {k: self.backend.to_host(v).copy() for k, v in {**self.params, **self.state}.items()}

    def load_weights(self, arrays: dict[str, np.ndarray]) -> None:
        targets = {**self.params, **self.state}
        for key, value in arrays.items():
            self.backend.copy_into(targets[key], np.asarray(value, self.dtype))

    def to(self, backend: str) -> Network:
        """This network on another backend ("cpu" or "cuda"): same graph, weights and state."""
        moved = Network(self.graph, backend=backend, seed=self.seed, dtype=self.dtype,
                        keep_outputs=self.keep_outputs)
        moved.load_weights(self.weights())
        moved.rng.bit_generator.state = self.rng.bit_generator.state
        moved.set_input_grad(self._input_grad)
        return moved

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(v.shape)) for v in self.params.values())


def compile_network(graph: Graph, backend: str = "cpu", seed: int = 0, dtype=np.float32,
                    keep_outputs: bool = True) -> Network:
    return Network(graph, backend=backend, seed=seed, dtype=dtype, keep_outputs=keep_outputs)


# Memory ------------------------------------------------------------------------------------------

def memory_parts(graph: Graph, batch_size: int | None = None, training: bool = True,
                 optimizer_slots: int = 2, dtype=np.float32,
                 analysis: Analysis | None = None) -> dict[str, int]:
    """Bytes the network's arrays will take, by part: parameters, gradients, state and, with a
    batch size, activations (and their gradients and optimizer_slots arrays per parameter when
    training; Adam keeps 2). A lower bound: ops' scratch buffers are not counted."""
    analysis = analysis or graph.check()
    size = np.dtype(dtype).itemsize
    params = sum(analysis.param_counts.values()) * size
    state = 0
    for node_id, node_params in analysis.params.items():
        if node_id in analysis.in_shapes:
            mt = REGISTRY[graph.nodes[node_id].type]
            shapes = mt.state(node_params, analysis.in_shapes[node_id]).values()
            state += sum(math.prod(s) for s in shapes) * size
    parts = {"parameters": params, "gradients": params, "state": state}
    if batch_size is not None:
        activations = sum(math.prod(s) for s in analysis.shapes.values()) * batch_size * size
        parts["activations"] = activations * (2 if training else 1)
        if training:
            parts["optimizer state"] = params * optimizer_slots
    return parts


def estimate_memory(graph: Graph, batch_size: int | None = None, **options) -> int:
    """Bytes the network will need at batch_size (parameters only when None); see memory_parts."""
    return sum(memory_parts(graph, batch_size, **options).values())


def machine_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its address-space limit when
    lower; None where the system does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except ImportError:
        return total
    return total if limit == resource.RLIM_INFINITY else min(total, limit)


def format_bytes(count: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    k = 0
    while count >= 1024 and k < len(units) - 1:
        count, k = count / 1024, k + 1
    return f"{count:.0f} bytes" if k == 0 else f"{count:.1f} {units[k]}"


def check_memory(graph: Graph, batch_size: int | None = None, training: bool = True,
                 available: int | None = None, optimizer_slots: int = 2, **options) -> int:
    """The estimate of memory_parts, or GraphValidationError on the node that needs the most when
    it exceeds `available` bytes (default: machine_memory())."""
    analysis = options.pop("analysis", None) or graph.check()
    parts = memory_parts(graph, batch_size, training, optimizer_slots, analysis=analysis,
                         **options)
    total = sum(parts.values())
    available = machine_memory() if available is None else available
    if available is None or total <= available:
        return total
    slots = optimizer_slots if training and batch_size is not None else 0

    def need(n: str) -> int:  # in elements, weighted as memory_parts counts them
        return (analysis.param_counts[n] * (2 + slots)
                + math.prod(analysis.shapes[n]) * (batch_size or 0) * (2 if training else 1))

    node_id = max(analysis.shapes, key=need)
    where = f" at batch {batch_size}" if batch_size is not None else ""
    detail = ", ".join(f"{name} {format_bytes(value)}" for name, value in parts.items() if value)
    raise GraphValidationError([GraphError(
        node_id, f"the network needs about {format_bytes(total)} of memory{where} ({detail}), "
                 f"more than the {format_bytes(available)} this machine has; make this node "
                 f"({analysis.param_counts[node_id]:,} parameters, output "
                 f"{'x'.join(map(str, analysis.shapes[node_id]))}){' or the batch' * bool(where)} "
                 f"smaller")])
