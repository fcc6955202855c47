"""HDF5 model files (DESIGN.md 3.2): atomic save, and a load that checks every part.

Loading executes nothing from the file (no pickle): only JSON strings and numeric datasets are read,
and each problem raises one ModelFileError naming the part at fault.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from .graph import Graph, GraphFormatError, GraphValidationError
from .modules import REGISTRY
from .optim import OPTIMIZERS, SLOTS

FORMAT = "convdesigner.model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file cannot be read or written; the message names the file and the part."""


@dataclass
class ModelFile:
    graph: Graph
    weights: dict[str, np.ndarray]
    optimizer: dict | None = None
    history: dict[str, np.ndarray] = field(default_factory=dict)
    data_spec: dict | None = None
    training: dict | None = None
    settings: dict | None = None
    best: dict | None = None
    created_by: str = ""
    saved_at: str = ""


def expected_arrays(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Every weight the graph's modules need ("node/name" -> shape): learnable and state."""
    analysis = graph.check()
    used = graph.ancestors(graph.output_node.id)
    shapes = {}
    for node_id in (n for n in analysis.order if n in used):
        mt = REGISTRY[graph.nodes[node_id].type]
        params, ins = analysis.params[node_id], analysis.in_shapes.get(node_id, [])
        for name, shape in {**mt.arrays(params, ins), **mt.state(params, ins)}.items():
            shapes[f"{node_id}/{name}"] = tuple(shape)
    return shapes


def _atomic_replace(path: Path, write) -> None:
    """write(tmp_path) into a temporary file beside path, then rename it over path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_replace(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_model(path: str | Path, graph: Graph, weights: dict[str, np.ndarray],
               optimizer: dict | None = None, history: dict | None = None,
               data_spec: dict | None = None, training: dict | None = None,
               settings: dict | None = None, best: dict | None = None) -> None:
    """Write a model file atomically: the old file stays intact if anything fails."""
    from . import __version__

    expected = expected_arrays(graph)
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ModelFileError(f"{path}: cannot save, weights missing for {', '.join(missing)}")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["graph"] = json.dumps(graph.to_dict())
            f.attrs["created_by"] = f"convdesigner {__version__}"
            f.attrs["saved_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            group = f.create_group("weights")
            for key in expected:
                group.create_dataset(key, data=np.asarray(weights[key], np.float32))
            if optimizer is not None:
                opt = f.create_group("optimizer")
                opt.attrs["type"] = optimizer["type"]
                opt.attrs["config"] = json.dumps(optimizer["config"])
                state = opt.create_group("state")
                for key, slots in optimizer.get("slots", {}).items():
                    for slot, value in slots.items():
                        state.create_dataset(f"{key}/{slot}", data=np.asarray(value, np.float32))
            if history:
                hist = f.create_group("history")
                for key, values in history.items():
                    hist.create_dataset(key, data=np.asarray(values, np.float64))
            if data_spec is not None:
                f.create_group("data").attrs["spec"] = json.dumps(data_spec)
            if training is not None or settings is not None:
                group = f.create_group("training")
                if training is not None:
                    group.attrs["state"] = json.dumps(training)
                if settings is not None:
                    group.attrs["settings"] = json.dumps(settings)
            if best is not None:
                group = f.create_group("best")
                group.attrs["epoch"] = int(best["epoch"])
                group.attrs["val_loss"] = float(best["val_loss"])
                for key in expected:
                    group.create_dataset(f"weights/{key}",
                                         data=np.asarray(best["weights"][key], np.float32))
            f.attrs["complete"] = True

    try:
        _atomic_replace(Path(path), write)
    except OSError as err:
        raise ModelFileError(f"{path}: cannot save: {err}") from None


def _json_attr(obj, name: str, part: str):
    try:
        raw = obj.attrs[name]
    except KeyError:
        raise ModelFileError(f"{part} is missing its {name!r} attribute") from None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise ModelFileError(f"{part}: {name!r} must be a JSON string")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{part}: {name!r} is not valid JSON ({err})") from None


def _str_attr(obj, name: str) -> str | None:
    value = obj.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _read_float_array(dataset, part: str, shape=None) -> np.ndarray:
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{part} is not a dataset")
    if dataset.dtype != np.float32:
        raise ModelFileError(f"{part} has dtype {dataset.dtype}, expected float32")
    if shape is not None and tuple(dataset.shape) != tuple(shape):
        raise ModelFileError(f"{part} has shape {list(dataset.shape)}, expected {list(shape)}")
    return np.array(dataset[()], np.float32)


def _datasets(group, prefix: str = "") -> dict[str, object]:
    """Every dataset below group, keyed by its relative path (without visititems' recursion
    into external links)."""
    found = {}
    for name, item in group.items():
        key = f"{prefix}{name}"
        if isinstance(item, h5py.Group):
            found.update(_datasets(item, key + "/"))
        else:
            found[key] = item
    return found


def load_model(path: str | Path) -> ModelFile:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        if not h5py.is_hdf5(path):
            raise ModelFileError(f"{path}: not an HDF5 file (a convdesigner model is HDF5)")
        with h5py.File(path, "r") as f:
            return _read(f, path)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
        raise ModelFileError(f"{path}: the file is truncated or damaged ({err})") from None


def _read(f: h5py.File, path: Path) -> ModelFile:
    fmt = _str_attr(f, "format")
    if fmt != FORMAT:
        raise ModelFileError(f"{path}: not a convdesigner model (format attribute is {fmt!r}, "
                             f"expected {FORMAT!r})")
    version = f.attrs.get("format_version")
    if not isinstance(version, (int, np.integer)):
        raise ModelFileError(f"{path}: format_version is missing or not an integer")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format_version {version} was written by a newer "
                             f"convdesigner (this one reads up to {FORMAT_VERSION})")
    if "complete" not in f.attrs:
        raise ModelFileError(f"{path}: the file is incomplete (its save did not finish)")
    doc = _json_attr(f, "graph", f"{path}: graph")
    try:
        graph = Graph.from_dict(doc)
        expected = expected_arrays(graph)
    except (GraphFormatError, GraphValidationError) as err:
        raise ModelFileError(f"{path}: graph: {err}") from None

    if "weights" not in f or not isinstance(f["weights"], h5py.Group):
        raise ModelFileError(f"{path}: /weights is missing")
    stored = _datasets(f["weights"])
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing:
        raise ModelFileError(f"{path}: /weights is missing {', '.join(missing)}")
    if extra:
        raise ModelFileError(f"{path}: /weights has arrays the graph does not use: "
                             f"{', '.join(extra)}")
    weights = {key: _read_float_array(stored[key], f"{path}: /weights/{key}", shape)
               for key, shape in expected.items()}

    model = ModelFile(graph, weights, created_by=_str_attr(f, "created_by") or "",
                      saved_at=_str_attr(f, "saved_at") or "")
    if "optimizer" in f:
        model.optimizer = _read_optimizer(f["optimizer"], path, expected)
    if "history" in f:
        model.history = _read_history(f["history"], path)
    if "data" in f:
        model.data_spec = _json_attr(f["data"], "spec", f"{path}: /data")
    if "training" in f:
        if "state" in f["training"].attrs:
            model.training = _json_attr(f["training"], "state", f"{path}: /training")
        if "settings" in f["training"].attrs:
            model.settings = _json_attr(f["training"], "settings", f"{path}: /training")
    if "best" in f:
        best = f["best"]
        stored = _datasets(best["weights"]) if "weights" in best else {}
        if set(stored) != set(expected):
            raise ModelFileError(f"{path}: /best/weights does not hold the graph's arrays")
        model.best = {"epoch": int(best.attrs["epoch"]), "val_loss": float(best.attrs["val_loss"]),
                      "weights": {key: _read_float_array(stored[key],
                                                         f"{path}: /best/weights/{key}", shape)
                                  for key, shape in expected.items()}}
    return model


def _read_optimizer(group, path: Path, expected: dict) -> dict:
    part = f"{path}: /optimizer"
    kind = _str_attr(group, "type")
    if kind not in OPTIMIZERS:
        raise ModelFileError(f"{part}: unknown type {kind!r} (known: {', '.join(OPTIMIZERS)})")
    config = _json_attr(group, "config", part)
    if not isinstance(config, dict):
        raise ModelFileError(f"{part}: config must be a JSON object")
    slots: dict[str, dict] = {}
    stored = _datasets(group["state"]) if "state" in group else {}
    for key, dataset in stored.items():
        param, _, slot = key.rpartition("/")
        if param not in expected or slot not in SLOTS[kind]:
            raise ModelFileError(f"{part}/state/{key} does not belong to a {kind} optimizer "
                                 f"of this graph")
        slots.setdefault(param, {})[slot] = _read_float_array(
            dataset, f"{part}/state/{key}", expected[param])
    return {"type": kind, "config": config, "slots": slots}


def _read_history(group, path: Path) -> dict[str, np.ndarray]:
    history, length = {}, None
    for key, dataset in group.items():
        part = f"{path}: /history/{key}"
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 \
                or not np.issubdtype(dataset.dtype, np.number):
            raise ModelFileError(f"{part} must be a 1-D numeric dataset")
        if length is not None and dataset.shape[0] != length:
            raise ModelFileError(f"{part} has {dataset.shape[0]} entries, the others {length}")
        length = dataset.shape[0]
        history[key] = np.array(dataset[()], np.float64)
    return history
