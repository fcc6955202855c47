"""Kernel warm-up: run one tiny training step of a network op by op, so that every numba kernel the
step calls is compiled (first use) or loaded from numba's cache now, with progress, instead of
stalling the first batch of a run. The designer runs it in the background after opening a network.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np

from . import losses
from .graph import Graph
from .network import Network, compile_network
from .optim import Optimizer

WARM_BATCH = 2    # the smallest batch on which BatchNorm's training statistics are defined

Progress = Callable[[int, int, str], None]


def kernel_key(graph: Graph, backend: str = "cpu", optimizer: str = "adam") -> frozenset | None:
    """What picks the kernels (and their numba signatures) that a training step of graph calls:
    per node on the way to the Output its type, the ranks of its inputs and output and its
    categorical params (mode, function, loss, bias...). Sizes are left out, so an edit that only
    resizes layers needs no new warm-up. None when the graph is not valid (nothing to warm)."""
    analysis = graph.analyze()
    if not analysis.ok:
        return None
    needed = graph.ancestors(graph.output_node.id) | {graph.output_node.id}
    nodes = set()
    for node_id in analysis.order:
        if node_id not in needed:
            continue
        choices = tuple(sorted((name, value) for name, value in analysis.params[node_id].items()
                               if isinstance(value, (str, bool))))
        ranks = tuple(len(shape) for shape in analysis.in_shapes[node_id])
        nodes.add((graph.nodes[node_id].type, ranks, len(analysis.shapes[node_id]), choices))
    return frozenset({("backend", backend), ("optimizer", optimizer), *nodes})


def warm_up(graph: Graph, progress: Progress | None = None, backend: str = "cpu",
            optimizer: str = "adam", stop: threading.Event | None = None) -> bool:
    """Compile graph and run a training step on WARM_BATCH random samples one op at a time: each
    op's forward, each op's backward (as Trainer.run does, without the input's gradient), an
    evaluation forward and an `optimizer` update.

    progress(done, total, label) is called before each step, with the steps done so far and the
    label of the step about to run ("conv2 (Conv2D) forward"), and once more at the end with
    done == total and label "". stop, checked between steps, ends the warm-up early (returns
    False). An invalid graph raises GraphValidationError, as compile_network does."""
    net = compile_network(graph, backend=backend)
    total = 2 * len(net.order) + 3
    for done, label in enumerate(_steps(net, optimizer)):
        if stop is not None and stop.is_set():
            return False
        if progress is not None:
            progress(done, total, label)
    if progress is not None:
        progress(total, total, "")
    return True


def _steps(net: Network, optimizer: str) -> Iterator[str]:
    """Yield each step's label, then run that step when asked for the next one."""
    backend = net.backend
    net.set_input_grad(False)
    net.allocate(WARM_BATCH)
    sample = np.random.default_rng(0).standard_normal((WARM_BATCH, *net.input_shape))
    x = backend.stage(sample.astype(net.dtype), "input", net.dtype)
    names = {node_id: f"{node_id} ({net.graph.nodes[node_id].type})" for node_id in net.order}

    outputs = {net.input_id: x}
    for node_id in net.order:
        yield f"{names[node_id]} forward"
        inputs = [outputs[src] for src in net.sources[node_id]]
        outputs[node_id] = net.ops[node_id].forward(inputs, True)

    last = net.sources[net.output_id][0]
    dy = np.full(outputs[last].shape, 1.0 / WARM_BATCH, net.dtype)
    pending = {last: [backend.stage(dy, "dy", net.dtype)]}
    for node_id in reversed(net.order):
        yield f"{names[node_id]} backward"
        grads = pending.pop(node_id, [])
        if not grads:
            continue
        dout = grads[0]
        if len(grads) > 1:   # a node feeding several others gets the sum, in a buffer of its own
            dout = backend.zeros(grads[0].shape, net.dtype)
            for grad in grads:
                backend.add_into(dout, grad)
        for src, grad in zip(net.sources[node_id], net.ops[node_id].backward(dout)):
            if grad is not None:
                pending.setdefault(src, []).append(grad)

    yield "evaluation forward"
    out = backend.to_host(net.run_forward(x, False))
    yield f"{net.loss_name} loss"
    losses.compute(net.loss_name, out, np.zeros(len(out), np.int64) if out.ndim == 2
                   else np.zeros_like(out))
    yield f"{optimizer} update"
    Optimizer(optimizer).step(net)
