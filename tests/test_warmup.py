"""engine.warmup: one tiny training step op by op, with progress, that leaves nothing for a real
training step to compile; and the key that says when a changed graph needs another warm-up."""
import importlib
import pkgutil
import threading

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import engine.data
import engine.kernels.cpu
from engine.graph import GraphValidationError
from engine.optim import Optimizer
from engine.session import Session
from engine.templates import load_template
from engine.train import Trainer
from engine.warmup import kernel_key, warm_up


def compiled_signatures() -> set:
    """Every (module, kernel, signature) numba has compiled or loaded in this process."""
    modules = [importlib.import_module(f"engine.kernels.cpu.{info.name}")
               for info in pkgutil.iter_modules(engine.kernels.cpu.__path__)] + [engine.data]
    return {(module.__name__, name, str(signature))
            for module in modules for name, value in vars(module).items()
            if isinstance(value, CPUDispatcher) for signature in value.signatures}


def test_progress_counts_every_step_up_to_the_total():
    graph = load_template("shapes")
    calls = []
    assert warm_up(graph, progress=lambda *call: calls.append(call)) is True
    ops = [n for n in graph.topological_order() if graph.nodes[n].type not in ("Input", "Output")]
    total = 2 * len(ops) + 3
    assert [done for done, _, _ in calls] == list(range(total + 1))
    assert {t for _, t, _ in calls} == {total}
    labels = [label for _, _, label in calls]
    assert labels[0] == "conv1 (Conv2D) forward"
    assert labels[len(ops):len(ops) + 2] == ["dense2 (Dense) backward",
                                             "relu3 (Activation) backward"]
    assert labels[-4:] == ["evaluation forward", "cross_entropy loss", "adam update", ""]


@pytest.mark.parametrize("template", ["shapes", "resnet-mini", "inception-mini"])
def test_a_training_step_after_the_warm_up_compiles_nothing_new(template):
    graph = load_template(template)
    warm_up(graph)
    before = compiled_signatures()
    session = Session(graph)
    rng = np.random.default_rng(1)
    x = rng.random((48, *session.net.input_shape), dtype=np.float32)
    y = rng.integers(0, session.net.output_shape[0], len(x))
    Trainer(session.net, Optimizer("adam"), x[:32], y[:32], x[32:], y[32:], epochs=1,
            batch_size=16).run()
    assert compiled_signatures() - before == set()


def test_stop_ends_it_between_steps():
    stop = threading.Event()
    calls = []

    def progress(done, total, label):
        calls.append(done)
        if done == 3:
            stop.set()
    assert warm_up(load_template("lenet5"), progress=progress, stop=stop) is False
    assert calls == [0, 1, 2, 3]


def test_an_invalid_graph_has_no_key_and_raises():
    graph = load_template("shapes")
    graph.edges = [e for e in graph.edges if e.dst != "dense2"]
    assert kernel_key(graph) is None
    with pytest.raises(GraphValidationError):
        warm_up(graph)


def test_the_key_ignores_sizes_but_not_kernel_choices():
    graph = load_template("shapes")
    key = kernel_key(graph)
    resized = graph.copy()
    resized.nodes["conv1"].params["filters"] = 12
    assert kernel_key(resized) == key
    tanh = graph.copy()
    tanh.nodes["relu1"].params["function"] = "tanh"
    assert kernel_key(tanh) != key
    assert kernel_key(graph, optimizer="sgd") != key
