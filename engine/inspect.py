"""What the inspection panels show, as plain arrays: filters, activations, saliency, receptive
fields, confusion matrices, per-layer health statistics and the one-batch smoke test."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import losses
from .graph import Graph
from .modules import REGISTRY
from .network import Network


@dataclass(frozen=True)
class ReceptiveField:
    """Unit i of a node sees input cells [offset + i*jump, offset + i*jump + size) per axis;
    size None: the whole input (once the spatial layout is gone)."""

    size: tuple[int, ...] | None
    jump: tuple[int, ...] = ()
    offset: tuple[int, ...] = ()

    def region(self, index, input_spatial) -> tuple[slice, ...]:
        """The input cells one unit sees, clipped to the input."""
        if self.size is None:
            return tuple(slice(0, n) for n in input_spatial)
        return tuple(slice(max(0, o + i * j), min(n, o + i * j + s))
                     for o, i, j, s, n in zip(self.offset, index, self.jump, self.size,
                                              input_spatial, strict=True))

    def text(self) -> str:
        return "whole input" if self.size is None else "x".join(map(str, self.size))


WHOLE_INPUT = ReceptiveField(None)


def receptive_fields(graph: Graph, analysis=None) -> dict[str, ReceptiveField]:
    """Every node's receptive field on the input, from the conv and pool arithmetic
    r_out = r_in + d(k - 1) j_in, j_out = j_in s, offset_out = offset_in - p j_in. Flat outputs
    (Flatten, Dense, GlobalPool) see the whole input; where paths join, the widest field wins."""
    analysis = analysis or graph.analyze()
    sources: dict[str, list[str]] = {}
    for edge in sorted(graph.edges, key=lambda e: e.port):
        sources.setdefault(edge.dst, []).append(edge.src)
    fields: dict[str, ReceptiveField] = {}
    for node_id in analysis.order:
        mt = REGISTRY[graph.nodes[node_id].type]
        dims = len(analysis.shapes[node_id]) - 1
        inputs = [fields[src] for src in sources.get(node_id, ())]
        if not inputs:
            fields[node_id] = ReceptiveField((1,) * dims, (1,) * dims, (0,) * dims) \
                if dims else WHOLE_INPUT
            continue
        if dims == 0 or any(f.size is None for f in inputs):
            fields[node_id] = WHOLE_INPUT
            continue
        field = max(inputs, key=lambda f: np.prod(f.size))
        if mt.kernel_geometry is not None:
            kernel, stride, pad_begin, dilation = mt.kernel_geometry(analysis.params[node_id])
            field = ReceptiveField(
                tuple(s + d * (k - 1) * j for s, k, d, j in
                      zip(field.size, kernel, dilation, field.jump, strict=True)),
                tuple(j * s for j, s in zip(field.jump, stride, strict=True)),
                tuple(o - p * j for o, p, j in zip(field.offset, pad_begin, field.jump,
                                                   strict=True)))
        fields[node_id] = field
    return fields


def filters(net: Network, node_id: str) -> np.ndarray:
    """A conv node's weights [filters, C/groups, *k], each filter scaled to [0, 1] on its own."""
    weight = net.backend.to_host(net.params[f"{node_id}/weight"]).astype(np.float32)
    flat = weight.reshape(weight.shape[0], -1)
    low, high = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    scaled = (flat - low) / np.maximum(high - low, 1e-12)
    return scaled.reshape(weight.shape)


def activations(net: Network, x: np.ndarray, node_ids: list[str]) -> dict[str, np.ndarray]:
    """The outputs of the given nodes for one sample x (no batch axis), in evaluation mode."""
    net.forward(x[None], training=False)
    return {node_id: net.activation(node_id)[0] for node_id in node_ids}


def saliency(net: Network, x: np.ndarray, class_index) -> np.ndarray:
    """|d score[class] / d input| for one sample x (no batch axis), or for a batch x [N, ...]
    with one class per sample: which input cells the class score is sensitive to. Same shape
    as x. Evaluation mode, so the samples of a batch do not affect each other. The network's
    parameter gradients are left as the last training step made them."""
    single = x.ndim == len(net.input_shape)
    batch = x[None] if single else x
    classes = np.atleast_1d(np.asarray(class_index, np.int64))
    needed_before = net._input_grad
    kept = {k: net.backend.to_host(g).copy() for k, g in net.grads.items()}
    logits = net.forward(batch, training=False)
    dy = np.zeros_like(logits)
    dy[np.arange(len(batch)), classes] = 1.0
    grad = np.abs(net.backward(dy))
    # Training skips the input gradient; leave the network as the Trainer set it.
    net.set_input_grad(needed_before)
    for key, value in kept.items():
        net.backend.copy_into(net.grads[key], value)
    return grad[0] if single else grad


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def predict_classes(net: Network, x: np.ndarray, batch_size: int = 256,
                    normalization=None) -> np.ndarray:
    from .train import normalize_into

    mean, std = (normalization.mean, normalization.std) if normalization else (None, None)
    buffer = np.empty((min(batch_size, len(x)), *x.shape[1:]), net.dtype)
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        inputs = normalize_into(buffer[:len(chunk)], chunk, mean, std)
        out.append(np.argmax(net.forward(inputs), axis=1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def layer_health(net: Network, before: dict[str, np.ndarray] | None = None,
                 samples: int | None = None) -> dict[str, dict[str, float]]:
    """From the last training forward/backward: activation mean/std, share of dead (never
    positive) ReLU units, and for layers with weights, gradient norm and gradient-to-weight norm
    ratio. With `before` (the parameters before the last optimizer step) also the
    update-to-weight ratio |w - before| / |before|. `samples` limits the activation statistics
    to the first samples of the batch (they are the costly part on big layers)."""
    health: dict[str, dict[str, float]] = {}
    for node_id in net.order:
        stats = {}
        if net.output_kept(node_id):
            act = net.backend.to_host(net._acts[node_id])[:samples]
            stats = {"mean": float(act.mean()), "std": float(act.std())}
            node = net.graph.nodes[node_id]
            if node.type == "Activation" and net.analysis.params[node_id]["function"] == "relu":
                per_unit_alive = (act > 0).any(axis=0)
                stats["dead"] = float(1.0 - per_unit_alive.mean())
        key = f"{node_id}/weight"
        if key in net.params:
            weight = net.backend.to_host(net.params[key])
            grad = net.backend.to_host(net.grads[key])
            weight_norm = float(np.linalg.norm(weight))
            stats["grad_norm"] = float(np.linalg.norm(grad))
            stats["grad_to_weight"] = stats["grad_norm"] / max(weight_norm, 1e-12)
            if before is not None and key in before:
                old = np.asarray(before[key])
                stats["update_ratio"] = float(np.linalg.norm(weight - old)
                                              / max(np.linalg.norm(old), 1e-12))
        health[node_id] = stats
    return health


# Thresholds for health_alerts: rules of thumb (an update of about 1e-3 of the weights per step is
# the usual healthy pace; far above, training oscillates or explodes; far below, the layer idles).
DEAD_WARN, DEAD_BAD = 0.5, 0.9
UPDATE_WARN, UPDATE_BAD, UPDATE_IDLE = 3e-2, 0.3, 1e-6
STD_VANISHING, STD_EXPLODING = 1e-4, 1e3
GRAD_VANISHING = 1e-7


def health_alerts(stats: dict[str, float]) -> tuple[str, list[str]]:
    """Grade one node's layer_health statistics: ("ok" | "warn" | "bad", reasons in words)."""
    bad: list[str] = []
    warn: list[str] = []
    if not (math.isfinite(stats["mean"]) and math.isfinite(stats["std"])):
        bad.append("activations are NaN or infinite")
    elif stats["std"] > STD_EXPLODING:
        bad.append(f"activations exploding (std {stats['std']:.3g})")
    elif stats["std"] < STD_VANISHING and stats.get("dead", 0.0) < DEAD_BAD:
        warn.append(f"activations vanishing (std {stats['std']:.2g})")
    dead = stats.get("dead")
    if dead is not None and dead >= DEAD_BAD:
        bad.append(f"{dead:.0%} of ReLU units are dead (never positive on this batch)")
    elif dead is not None and dead >= DEAD_WARN:
        warn.append(f"{dead:.0%} of ReLU units are dead (never positive on this batch)")
    grad = stats.get("grad_norm")
    if grad is not None and not math.isfinite(grad):
        bad.append("gradient is NaN or infinite")
    elif grad is not None and grad < GRAD_VANISHING:
        warn.append(f"gradient vanishing (norm {grad:.2g})")
    update = stats.get("update_ratio")
    if update is not None and math.isfinite(update):
        if update > UPDATE_BAD:
            bad.append(f"each step changes the weights by {update:.0%}: exploding; lower the "
                       f"learning rate")
        elif update > UPDATE_WARN:
            warn.append(f"each step changes the weights by {update:.1%}: large; the learning "
                        f"rate may be too high")
        elif update < UPDATE_IDLE:
            warn.append(f"each step changes the weights by only {update:.1e}: the layer "
                        f"barely learns")
    return ("bad" if bad else "warn" if warn else "ok"), bad + warn


def histograms(net: Network, bins: int = 40, node_ids=None
               ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per layer with weights (or those of node_ids): {"weight": (counts, edges),
    "grad": (counts, edges)} of the finite values of the weight array and of its gradient from
    the last backward, and "zero": the kinds whose values are all 0 (no backward yet, or a dead
    layer)."""
    result: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for key, weight in net.params.items():
        node_id, name = key.split("/", 1)
        if name != "weight" or (node_ids is not None and node_id not in node_ids):
            continue
        entry = {"zero": []}
        for kind, array in (("weight", weight), ("grad", net.grads[key])):
            values = net.backend.to_host(array).ravel()
            entry[kind] = np.histogram(values[np.isfinite(values)], bins=bins)   # maybe none
            if not values.any():
                entry["zero"].append(kind)
        result[node_id] = entry
    return result


# Smoke test ---------------------------------------------------------------------------------------

@dataclass
class SmokeReport:
    """What one forward/backward on a batch and a short overfit run found.

    problems: node id -> what is wrong there (None: the network as a whole); empty when all is
    well. grad_norms: per node with parameters, the norm of all its gradients on the batch.
    """

    loss: float = math.nan
    overfit_losses: list[float] = field(default_factory=list)
    overfit_accuracy: float = math.nan
    grad_norms: dict[str, float] = field(default_factory=dict)
    problems: dict[str | None, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, node_id: str | None, message: str) -> None:
        self.problems.setdefault(node_id, []).append(message)

    def summary(self) -> str:
        if self.ok:
            return (f"smoke test passed: loss {self.loss:.4g}, every layer gets a gradient, "
                    f"{len(self.overfit_losses)} steps overfit the small batch (loss "
                    f"{self.overfit_losses[0]:.3g} -> {self.overfit_losses[-1]:.3g})")
        return "smoke test failed:\n" + "\n".join(
            f"{node_id or 'network'}: {message}"
            for node_id, messages in self.problems.items() for message in messages)


def _copy_network(net: Network) -> Network:
    copy = Network(net.graph, backend=net.backend.name, seed=net.seed, dtype=net.dtype)
    copy.load_weights(net.weights())
    return copy


def smoke_test(model: Graph | Network, x: np.ndarray, y: np.ndarray, *,
               overfit_samples: int = 10, overfit_steps: int = 40, lr: float = 3e-3,
               backend: str = "cpu", seed: int = 0) -> SmokeReport:
    """One forward/backward on the batch (x already normalised as training will see it, y its
    labels): the loss must be finite, no layer may output NaN or a dead all-zero ReLU, and every
    layer with parameters must get a non-zero gradient. Then `overfit_steps` Adam steps on the
    first `overfit_samples` samples must show it learns them (all classified right, or the loss
    down to half: deeper templates with dropout reach a quarter to a half in 40 steps, a net that
    cannot learn stays near its first loss). Works on a copy: the given network's weights are
    left as they are."""
    report = SmokeReport()
    if isinstance(model, Graph):
        errors = model.validate()
        for error in errors:
            report.add(error.node_id, error.message)
        if errors:
            return report
        net = Network(model, backend=backend, seed=seed)
    else:
        net = _copy_network(model)
    x = np.asarray(x, net.dtype)
    if tuple(x.shape[1:]) != tuple(net.input_shape):
        report.add(net.input_id, f"the data has samples of shape {list(x.shape[1:])} but the "
                                 f"Input expects {list(net.input_shape)}")
        return report
    net.set_input_grad(False)
    out = net.backend.to_host(net.run_forward(net.backend.to_device(x, net.dtype), True))
    dead: list[str] = []
    for node_id in net.order:
        act = net.activation(node_id)
        if not np.isfinite(act).all():
            report.add(node_id, "outputs NaN or infinity on this batch")
        elif (net.graph.nodes[node_id].type == "Activation"
              and net.analysis.params[node_id]["function"] == "relu" and not (act > 0).any()):
            upstream = [d for d in dead if d in net.graph.ancestors(node_id)]
            report.add(node_id, "dead ReLU: every output is zero on this batch, so no gradient "
                                "flows back through it " + (
                                    f"(it only receives what dead {upstream[0]} lets through)"
                                    if upstream else "(check the bias or initialisation "
                                                     "before it)"))
            dead.append(node_id)
    loss, dy = losses.compute(net.loss_name, out, y)
    report.loss = float(loss)
    if not math.isfinite(loss):
        report.add(net.output_id, f"the loss is {loss} on the first batch")
        return report
    net.run_backward(net.backend.to_device(dy, net.dtype))
    norms: dict[str, float] = {}
    for key, grad in net.grads.items():
        node_id = key.split("/", 1)[0]
        norms[node_id] = math.hypot(norms.get(node_id, 0.0),
                                    float(np.linalg.norm(net.backend.to_host(grad))))
    report.grad_norms = norms
    for node_id, norm in norms.items():
        if not math.isfinite(norm):
            report.add(node_id, "its gradient is NaN or infinite")
        elif norm == 0.0:
            after = [d for d in dead if node_id in net.graph.ancestors(d)]
            report.add(node_id, "gets no gradient, so its parameters cannot learn: " + (
                f"dead {after[-1]} after it blocks the gradient" if after
                else "nothing it computes reaches the loss"))
    if not report.ok:
        return report
    _overfit(net, x[:overfit_samples], y[:overfit_samples], overfit_steps, lr, report)
    return report


def _overfit(net: Network, x: np.ndarray, y: np.ndarray, steps: int, lr: float,
             report: SmokeReport) -> None:
    from .optim import Optimizer

    optimizer = Optimizer("adam", lr=lr)
    classify = net.loss_name == "cross_entropy"
    device_x = net.backend.to_device(x, net.dtype)
    for step in range(steps):
        net.rng.bit_generator.state = np.random.PCG64([step]).state
        out = net.backend.to_host(net.run_forward(device_x, True))
        loss, dy = losses.compute(net.loss_name, out, y)
        report.overfit_losses.append(float(loss))
        if not math.isfinite(loss):
            report.add(None, f"the loss became {loss} after {step} steps on {len(x)} samples "
                             f"(Adam, lr {lr:g}): training is unstable")
            return
        if classify:
            report.overfit_accuracy = float(np.mean(np.argmax(out, axis=1) == y))
        if step >= 5 and (report.overfit_accuracy == 1.0 or
                          loss < 0.5 * report.overfit_losses[0]):
            return
        net.run_backward(net.backend.to_device(dy, net.dtype))
        optimizer.step(net)
    report.add(None, f"cannot learn {len(x)} samples in {steps} steps (Adam, lr {lr:g}): the "
                     f"loss went from {report.overfit_losses[0]:.3g} to "
                     f"{report.overfit_losses[-1]:.3g}, not below half; the network may be too "
                     f"constrained, or the labels may not match the inputs")
