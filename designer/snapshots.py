"""What the inspection panels ask the training worker for, as plain arrays: filters, histograms,
activations, saliency, the confusion matrix and a cell's samples (engine.inspect does the maths)."""
from __future__ import annotations

import numpy as np

from engine import inspect
from engine.data import DataError
from engine.train import normalize_into


class Snapshots:
    """Answers snapshot requests for one model (a Session) and the loaded data (a DataInfo).
    Runs on the training worker only."""

    def __init__(self):
        self.predictions: np.ndarray | None = None

    def samples(self, info) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        if info is None:
            raise DataError("load a dataset in the Train panel first")
        rng = info.val_range if info.val_range[1] > info.val_range[0] else info.train_range
        return info.dataset.x[slice(*rng)], info.dataset.y[slice(*rng)], rng

    def take(self, kind: str, params: dict, session, info, norm) -> dict:
        net = session.net
        step = session.optimizer.step_count if session.optimizer else 0
        if kind == "filters":
            convs = [n for n in net.order if net.graph.nodes[n].type.startswith("Conv")]
            if not convs:
                raise ValueError("the network has no convolution layer")
            node = params.get("node") if params.get("node") in convs else convs[0]
            return {"node": node, "conv_nodes": convs, "filters": inspect.filters(net, node),
                    "weight": net.backend.to_host(net.params[f"{node}/weight"]).copy(),
                    "type": net.graph.nodes[node].type, "step": step}
        if kind == "histograms":
            layers = [k.split("/")[0] for k in net.params if k.endswith("/weight")]
            if not layers:
                raise ValueError("the network has no layer with weights")
            node = params.get("node") if params.get("node") in layers else layers[0]
            return {"node": node, "layers": layers, "step": step,
                    "histograms": inspect.histograms(net, node_ids=[node])[node]}
        x, y, rng = self.samples(info)

        def prepared(batch):
            return normalize_into(np.empty(batch.shape, np.float32), batch, norm.mean, norm.std)

        if kind in ("activations", "saliency"):
            index = min(int(params.get("sample", 0)), len(x) - 1)
            sample = prepared(x[index:index + 1])
            payload = {"sample": index, "dataset_index": rng[0] + index, "input": x[index],
                       "label": int(y[index]), "class_names": info.dataset.class_names,
                       "step": step}
            if kind == "activations":
                node = params.get("node") or net.input_id
                if node not in net.order and node != net.input_id:
                    raise ValueError(f"{node!r} is not part of the compiled network (its output "
                                     f"does not reach the Output node, or it was added since)")
                acts = inspect.activations(net, sample[0], [node])
                logits = net.activation(net.sources[net.output_id][0])[0]
                fields = inspect.receptive_fields(net.graph)
                payload.update(node=node, type=net.graph.nodes[node].type,
                               activation=acts[node], field=fields.get(node), logits=logits)
                return payload
            logits = net.forward(sample, training=False)[0]
            chosen = params.get("class_index")
            chosen = int(np.argmax(logits)) if chosen is None else int(chosen)
            payload.update(logits=logits, class_index=chosen,
                           saliency=inspect.saliency(net, sample[0], chosen))
            return payload
        if kind == "confusion":
            if not session.trained:
                raise ValueError("the confusion matrix appears once the model has trained an "
                                 "epoch")
            predictions = params.get("predictions")   # the epoch's own validation pass
            if predictions is None or len(predictions) != len(y):
                predictions = inspect.predict_classes(net, x, normalization=norm)
            self.predictions = predictions
            names = list(info.dataset.class_names)
            # a network with more outputs than classes can still predict the extra ones
            columns = max(len(names), int(predictions.max(initial=0)) + 1)
            matrix = inspect.confusion_matrix(y, predictions, columns)[:len(names)]
            return {"matrix": matrix, "class_names": names,
                    "predicted_names": names + [f"output {k}" for k in range(len(names),
                                                                             columns)],
                    "step": step, "epoch": session.position.epoch,
                    "batch": session.position.batch}
        if kind == "cell_samples":
            if self.predictions is None or len(self.predictions) != len(y):
                raise ValueError("no confusion matrix yet: train an epoch first")
            true, predicted = int(params["true"]), int(params["predicted"])
            where = np.flatnonzero((y == true) & (self.predictions == predicted))
            where = where[:int(params.get("limit", 12))]
            maps = (inspect.saliency(net, prepared(x[where]), np.full(len(where), predicted))
                    if len(where) else np.zeros((0, *x.shape[1:]), np.float32))
            return {"true": true, "predicted": predicted, "indices": where, "inputs": x[where],
                    "saliency": maps, "class_names": info.dataset.class_names, "step": step}
        raise ValueError(f"unknown snapshot kind {kind!r}")


def health_tooltip(stats: dict[str, float], reasons: list[str]) -> str:
    """Plain-text tooltip for a node's badge: the statistics, then what is wrong."""
    lines = [f"activation mean {stats['mean']:.3g}, std {stats['std']:.3g}"]
    if "dead" in stats:
        lines.append(f"dead ReLUs {stats['dead']:.0%}")
    if "grad_norm" in stats:
        lines.append(f"gradient norm {stats['grad_norm']:.3g}")
    if "update_ratio" in stats:
        lines.append(f"update/weight {stats['update_ratio']:.2e} per step")
    return "\n".join(lines + [f"\u26a0 {r}" for r in reasons])
