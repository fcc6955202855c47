"""HDF5 model files (DESIGN.md 3.2): atomic save, and a load that checks every part.

Loading executes nothing from the file (no pickle). Before any data is read, the file's structure
is checked: only the parts of the contract, hard links only, no external storage or virtual
datasets, no filter but fletcher32, declared shapes as the graph implies and no dataset larger than
the file. Every attribute and JSON part is then validated against its schema (engine/modelschema),
arrays must be finite, and a file that carries a digest must match it. The first read of a file
runs in a short-lived child process with a time and memory limit, so a file that crashes or hangs
libhdf5 gives one ModelFileError instead. A save checks the same and refuses what a load would.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
from h5py import h5a, h5d, h5l, h5o, h5z

from . import modelschema
from .atomic import atomic_replace, atomic_write_text, clean_stale_temps
from .graph import Graph, GraphFormatError, GraphValidationError
from .modules import REGISTRY
from .optim import SLOTS

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFile", "ModelFileError", "atomic_write_text",
           "expected_arrays", "load_model", "save_model"]

FORMAT = "convdesigner.model"
FORMAT_VERSION = 1
MAX_HISTORY = modelschema.MAX_EPOCHS
MAX_OBJECTS = 100_000
MAX_ATTR_BYTES = 64 * 2**20
PROBE_SECONDS = 5.0  # plus a second per 10 MB of file
PROBE_MEMORY = 2 * 2**30  # address space of the child, plus 4x the file size

ATTRS = {"/": ("format", "format_version", "graph", "created_by", "saved_at", "complete",
               "digest"),
         "/optimizer": ("type", "config"), "/data": ("spec",),
         "/training": ("state", "settings"), "/best": ("epoch", "val_loss")}
RUN = re.compile(r"/runs/[0-9]{1,6}")  # /runs/<n> attrs: run (JSON), one group per run
MAX_RUNS = 100_000
_NAME = r"[^/]+"
GROUPS = re.compile(rf"/(weights(/{_NAME})?|optimizer(/state(/{_NAME}){{0,2}})?|history|data"
                    rf"|training|best(/weights(/{_NAME})?)?|runs(/[0-9]{{1,6}})?)")
DATASETS = re.compile(rf"/(weights|best/weights|optimizer/state/{_NAME})/{_NAME}/{_NAME}"
                      rf"|/history/[A-Za-z0-9_]{{1,64}}")


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
    created_by: str = ""
    saved_at: str = ""
    settings: dict | None = None
    best: dict | None = None  # {"epoch", "val_loss", "weights": {key: array}}
    runs: list[dict] = field(default_factory=list)  # one dict per training run, oldest first


def _attr_names(group: str) -> tuple[str, ...]:
    """The attributes a group may have."""
    return ("run",) if RUN.fullmatch(group) else ATTRS.get(group, ())


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


# -- the content of a file, as a flat dict ---------------------------------------------------
# "/group@attr" -> str | int | float | bool and "/path/of/dataset" -> array: what a save writes
# and what a load reads, checked by one function (_model_from_raw) and hashed into the digest.

def _digest(raw: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(raw):
        value = raw[key]
        if key in ("/@digest", "/@complete"):
            continue
        if isinstance(value, np.ndarray):
            body = np.ascontiguousarray(value).reshape(-1).view(np.uint8)  # hashed in place
            head = f"a{value.dtype.str}{value.shape}".encode()
        elif isinstance(value, bool):
            head, body = b"b", str(int(value)).encode()
        elif isinstance(value, int):
            head, body = b"i", str(value).encode()
        elif isinstance(value, float):
            head, body = b"f", value.hex().encode()
        else:
            head, body = b"s", str(value).encode("utf-8", "surrogatepass")
        for part in (key.encode("utf-8", "surrogatepass"), head, body):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return "sha256:" + h.hexdigest()


def _json(raw: dict, key: str, where: str, part: str, schema: str):
    """The JSON string raw[key] parsed (no NaN or Infinity) and checked against its schema."""
    text = raw[key]
    if not isinstance(text, str):
        raise ModelFileError(f"{where}: {part} must be a JSON string")

    def refuse(constant):
        raise ValueError(f"{constant} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as err:
        raise ModelFileError(f"{where}: {part} is not valid JSON "
                             f"({str(err)[:200] or type(err).__name__})") from None
    _schema(value, where, part, schema)
    return value


def _schema(value, where: str, part: str, schema: str) -> None:
    try:
        modelschema.check(schema, value)
    except modelschema.SchemaError as err:
        raise ModelFileError(f"{where}: {part}: {err}") from None


def _finite(array: np.ndarray, where: str, key: str, allow_nan: bool = False) -> None:
    if array.dtype.kind != "f":
        return
    if not allow_nan and np.isnan(array).any():
        raise ModelFileError(f"{where}: {key} holds NaN")
    if np.isinf(array).any():
        raise ModelFileError(f"{where}: {key} holds Inf")


def _arrays(raw: dict, prefix: str, expected: dict, where: str) -> dict[str, np.ndarray]:
    """The float32 arrays below prefix ("/weights/"), exactly those the graph expects."""
    stored = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix) and "@" not in k}
    part = prefix.rstrip("/")
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing:
        raise ModelFileError(f"{where}: {part} is missing {', '.join(missing)}")
    if extra:
        raise ModelFileError(f"{where}: {part} has arrays the graph does not use: "
                             f"{', '.join(extra)}")
    for key, shape in expected.items():
        _check_float32(stored[key], shape, where, prefix + key)
    return {key: stored[key] for key in expected}


def _check_float32(array, shape, where: str, key: str) -> None:
    if array.dtype != np.float32:
        raise ModelFileError(f"{where}: {key} has dtype {array.dtype}, expected float32")
    if tuple(array.shape) != tuple(shape):
        raise ModelFileError(f"{where}: {key} has shape {list(array.shape)}, "
                             f"expected {list(shape)}")
    _finite(array, where, key)


def _header(raw: dict, where: str) -> None:
    fmt = raw.get("/@format")
    if fmt != FORMAT:
        raise ModelFileError(f"{where}: not a convdesigner model (format attribute is {fmt!r}, "
                             f"expected {FORMAT!r})")
    version = raw.get("/@format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{where}: format_version is missing or not an integer")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{where}: format_version {version} was written by a newer "
                             f"convdesigner (this one reads up to {FORMAT_VERSION})")
    _schema(version, where, "format_version", "format_version")
    if raw.get("/@complete") is not True:
        raise ModelFileError(f"{where}: the file is incomplete (its save did not finish)")
    for name in ("created_by", "saved_at"):
        _schema(raw.get(f"/@{name}", ""), where, name, name)
    if "/@graph" not in raw:
        raise ModelFileError(f"{where}: graph is missing its 'graph' attribute")


def _graph(raw: dict, where: str) -> tuple[Graph, dict]:
    doc = _json(raw, "/@graph", where, "graph", "graph")
    try:
        graph = Graph.from_dict(doc)
        return graph, expected_arrays(graph)
    except (GraphFormatError, GraphValidationError) as err:
        raise ModelFileError(f"{where}: graph: {err}") from None
    except RecursionError:
        raise ModelFileError(f"{where}: graph: nested too deeply") from None


def _model_from_raw(raw: dict, groups: set[str], where: str,
                    parsed: tuple[Graph, dict] | None = None) -> ModelFile:
    """Check everything the flat content holds and turn it into a ModelFile (parsed: the graph
    and its expected arrays, when the caller has them already)."""
    _header(raw, where)
    graph, expected = parsed or _graph(raw, where)
    if "/weights" not in groups:
        raise ModelFileError(f"{where}: /weights is missing")
    model = ModelFile(graph, _arrays(raw, "/weights/", expected, where),
                      created_by=raw.get("/@created_by", ""), saved_at=raw.get("/@saved_at", ""))

    if "/optimizer" in groups:
        model.optimizer = _optimizer(raw, expected, where)
    if "/history" in groups:
        model.history = _history(raw, where)
    if "/data" in groups:
        _require(raw, "/data", "spec", where)
        model.data_spec = _json(raw, "/data@spec", where, "/data spec", "data spec")
        norm = model.data_spec.get("normalization")
        channels = graph.input_node.params["shape"][0]
        if norm and not len(norm["mean"]) == len(norm["std"]) == channels:
            raise ModelFileError(f"{where}: /data spec: normalization has {len(norm['mean'])} "
                                 f"means and {len(norm['std'])} stds; the network's Input has "
                                 f"{channels} channel(s)")
    if "/training@state" in raw:
        model.training = _json(raw, "/training@state", where, "/training state",
                               "training state")
    if "/training@settings" in raw:
        model.settings = _json(raw, "/training@settings", where, "/training settings",
                               "training settings")
    if "/best" in groups:
        model.best = _best(raw, groups, expected, where)
    runs = sorted((g for g in groups if RUN.fullmatch(g)), key=lambda g: int(g[6:]))
    if [int(g[6:]) for g in runs] != list(range(len(runs))):
        raise ModelFileError(f"{where}: /runs must be numbered 0, 1, 2, ... without gaps")
    for group in runs:
        _require(raw, group, "run", where)
        run = _json(raw, f"{group}@run", where, f"{group} run", "run")
        _schema(run["settings"], where, f"{group} run: settings", "training settings")
        try:
            Graph.from_dict(run["graph"])
        except (GraphFormatError, GraphValidationError, RecursionError) as err:
            raise ModelFileError(f"{where}: {group} run: graph: {err}") from None
        model.runs.append(run)
    return model


def _require(raw: dict, group: str, name: str, where: str) -> None:
    if f"{group}@{name}" not in raw:
        raise ModelFileError(f"{where}: {group} is missing its {name!r} attribute")


def _optimizer(raw: dict, expected: dict, where: str) -> dict:
    _require(raw, "/optimizer", "type", where)
    kind = raw["/optimizer@type"]
    _schema(kind, where, "/optimizer type", "optimizer type")
    _require(raw, "/optimizer", "config", where)
    config = _json(raw, "/optimizer@config", where, "/optimizer config", f"{kind} config")
    slots: dict[str, dict] = {}
    prefix = "/optimizer/state/"
    for key in (k for k in raw if k.startswith(prefix)):
        param, _, slot = key[len(prefix):].rpartition("/")
        if param not in expected or slot not in SLOTS[kind]:
            raise ModelFileError(f"{where}: {key} does not belong to a {kind} optimizer "
                                 f"of this graph")
        _check_float32(raw[key], expected[param], where, key)
        slots.setdefault(param, {})[slot] = raw[key]
    return {"type": kind, "config": config, "slots": slots}


def _history(raw: dict, where: str) -> dict[str, np.ndarray]:
    history, length = {}, None
    for key in sorted(k for k in raw if k.startswith("/history/")):
        values = raw[key]
        if values.ndim != 1 or values.dtype.kind not in "fiu":
            raise ModelFileError(f"{where}: {key} must be a 1-D numeric dataset")
        if length is not None and len(values) != length:
            raise ModelFileError(f"{where}: {key} has {len(values)} entries, the others {length}")
        length = len(values)
        _finite(values, where, key, allow_nan=True)  # NaN: not measured (no validation data)
        history[key.rpartition("/")[2]] = values.astype(np.float64)
    return history


def _best(raw: dict, groups: set[str], expected: dict, where: str) -> dict:
    _require(raw, "/best", "epoch", where)
    _require(raw, "/best", "val_loss", where)
    if "/best/weights" not in groups:
        raise ModelFileError(f"{where}: /best/weights is missing")
    epoch, val_loss = raw["/best@epoch"], raw["/best@val_loss"]
    _schema(epoch, where, "/best epoch", "best epoch")
    _schema(val_loss, where, "/best val_loss", "best val_loss")
    if math.isnan(val_loss):
        raise ModelFileError(f"{where}: /best val_loss: NaN is not a number")
    return {"epoch": epoch, "val_loss": val_loss,
            "weights": _arrays(raw, "/best/weights/", expected, where)}


# -- saving ------------------------------------------------------------------------------------

def _dump(value, where: str, part: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{where}: cannot save: {part} is not plain JSON ({err})") from None


def save_model(path: str | Path, graph: Graph, weights: dict[str, np.ndarray],
               optimizer: dict | None = None, history: dict | None = None,
               data_spec: dict | None = None, training: dict | None = None,
               settings: dict | None = None, best: dict | None = None,
               runs: list[dict] | None = None) -> None:
    """Write a model file atomically; a file that a load would refuse is not written, and the
    old file stays intact if anything fails."""
    from . import __version__

    where = str(path)
    try:
        expected = expected_arrays(graph)
    except (GraphFormatError, GraphValidationError) as err:
        raise ModelFileError(f"{where}: cannot save, graph: {err}") from None
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ModelFileError(f"{where}: cannot save, weights missing for {', '.join(missing)}")
    raw: dict = {"/@format": FORMAT, "/@format_version": FORMAT_VERSION,
                 "/@graph": _dump(graph.to_dict(), where, "graph"),
                 "/@created_by": f"convdesigner {__version__}",
                 "/@saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "/@complete": True}
    groups = {"/weights"}
    for key in expected:
        raw[f"/weights/{key}"] = np.ascontiguousarray(weights[key], np.float32)
    if optimizer is not None:
        groups |= {"/optimizer", "/optimizer/state"}
        raw["/optimizer@type"] = optimizer["type"]
        raw["/optimizer@config"] = _dump(optimizer["config"], where, "/optimizer config")
        for key, slots in optimizer.get("slots", {}).items():
            for slot, value in slots.items():
                raw[f"/optimizer/state/{key}/{slot}"] = np.ascontiguousarray(value, np.float32)
    if history:
        groups.add("/history")
        for key, values in history.items():
            raw[f"/history/{key}"] = np.ascontiguousarray(values, np.float64)
    if data_spec is not None:
        groups.add("/data")
        raw["/data@spec"] = _dump(data_spec, where, "/data spec")
    if training is not None or settings is not None:
        groups.add("/training")
    if training is not None:
        raw["/training@state"] = _dump(training, where, "/training state")
    if settings is not None:
        raw["/training@settings"] = _dump(settings, where, "/training settings")
    if best is not None:
        groups |= {"/best", "/best/weights"}
        epoch = best.get("epoch")
        raw["/best@epoch"] = int(epoch) if isinstance(epoch, np.integer) else epoch
        val_loss = best.get("val_loss")
        raw["/best@val_loss"] = float(val_loss) if isinstance(val_loss, (int, float, np.number)) \
            and not isinstance(val_loss, bool) else val_loss
        for key, value in best.get("weights", {}).items():
            raw[f"/best/weights/{key}"] = np.ascontiguousarray(value, np.float32)
    if runs:
        if len(runs) > MAX_RUNS:
            raise ModelFileError(f"{where}: cannot save more than {MAX_RUNS} runs")
        groups.add("/runs")
        for i, run in enumerate(runs):
            groups.add(f"/runs/{i}")
            raw[f"/runs/{i}@run"] = _dump(run, where, f"/runs/{i} run")
    for key in raw:
        if "@" not in key and not DATASETS.fullmatch(key):
            raise ModelFileError(f"{where}: cannot save: {key!r} is not a valid array name")
    _model_from_raw(raw, groups, f"{where}: cannot save")
    raw["/@digest"] = _digest(raw)

    def write(tmp: str) -> None:
        # built in memory, then written as bytes: a disk that fills up fails one plain write
        # (libhdf5 failing mid-file printed its internals and could crash on closing)
        image = io.BytesIO()
        with h5py.File(image, "w", libver=("v108", "v110")) as f:
            for group in sorted(groups):
                f.require_group(group)
            for key, value in raw.items():
                if "@" in key:
                    group, _, name = key.partition("@")
                    if isinstance(value, str):  # fixed length: in the checksummed object header
                        data = value.encode("utf-8")
                        f.require_group(group).attrs.create(
                            name, data, dtype=h5py.string_dtype("utf-8", max(1, len(data))))
                    elif name != "complete":
                        f.require_group(group).attrs[name] = value
                else:
                    f.create_dataset(key, data=value, fletcher32=True)
            f.attrs["complete"] = True  # last: a file without it was not finished
        with open(tmp, "wb") as handle:
            handle.write(image.getbuffer())

    try:
        atomic_replace(path, write)
    except OSError as err:
        raise ModelFileError(f"{where}: cannot save: {err}") from None


# -- loading -----------------------------------------------------------------------------------

def _walk(f: h5py.File, where: str, file_size: int) -> tuple[set[str], dict[str, h5py.Dataset]]:
    """Every group and dataset of the file, checked before anything is read from them: hard
    links only, each object once, only the parts of the contract, no external storage, virtual
    datasets or filters but fletcher32, and no dataset or chunk declared larger than the file."""
    groups, datasets, seen = set(), {}, set()
    stack = [("", f)]
    while stack:
        prefix, group = stack.pop()
        for name in group.id:
            text = name.decode("utf-8")
            full = f"{prefix}/{text}"
            if len(groups) + len(datasets) >= MAX_OBJECTS:
                raise ModelFileError(f"{where}: more than {MAX_OBJECTS} objects")
            kind = group.id.links.get_info(name).type
            if kind != h5l.TYPE_HARD:
                what = {h5l.TYPE_SOFT: "a soft link", h5l.TYPE_EXTERNAL: "an external link"}
                raise ModelFileError(f"{where}: {full} is {what.get(kind, 'a user-defined link')};"
                                     f" a model file holds no links")
            if text in (".", "..") or "/" in text:
                raise ModelFileError(f"{where}: {full!r} is not a valid name")
            obj_id = h5o.open(group.id, name)
            info = h5o.get_info(obj_id)
            if info.addr in seen:
                raise ModelFileError(f"{where}: {full} is linked twice in the file")
            seen.add(info.addr)
            if info.type == h5o.TYPE_GROUP:
                if not GROUPS.fullmatch(full):
                    raise ModelFileError(f"{where}: {full} is not a part of a model file")
                groups.add(full)
                stack.append((full, group[text]))
            elif info.type == h5o.TYPE_DATASET:
                if not DATASETS.fullmatch(full):
                    raise ModelFileError(f"{where}: {full} is not a part of a model file")
                _check_storage(obj_id, f"{where}: {full}", file_size)
                datasets[full] = group[text]
            else:
                raise ModelFileError(f"{where}: {full} is neither a group nor a dataset")
            if not _attr_names(full) and info.num_attrs:
                raise ModelFileError(f"{where}: {full} has attributes; it should have none")
    return groups, datasets


def _check_storage(dsid, where: str, file_size: int) -> None:
    plist = dsid.get_create_plist()
    layout = plist.get_layout()
    if layout == h5d.VIRTUAL:
        raise ModelFileError(f"{where} is a virtual dataset; a model file never reads another "
                             f"file")
    if plist.get_external_count():
        raise ModelFileError(f"{where} has external storage; a model file never reads another "
                             f"file")
    for i in range(plist.get_nfilters()):
        if plist.get_filter(i)[0] != h5z.FILTER_FLETCHER32:
            raise ModelFileError(f"{where} uses an HDF5 filter other than fletcher32 "
                                 f"({plist.get_filter(i)[3].decode(errors='replace')!r})")
    itemsize = dsid.get_type().get_size()
    shape = dsid.shape or ()
    declared = math.prod(shape) * itemsize
    if declared > file_size:
        raise ModelFileError(f"{where} declares {list(shape)} ({declared:,} bytes), more than "
                             f"the whole file holds ({file_size:,} bytes)")
    if layout == h5d.CHUNKED and math.prod(plist.get_chunk()) * itemsize > max(file_size, 2**20):
        raise ModelFileError(f"{where} declares chunks larger than the file")


def _attr(obj, name: str, where: str, file_size: int):
    """A scalar attribute as str, int, float or bool; its size checked before reading."""
    aid = h5a.open(obj.id, name.encode())
    if aid.shape not in ((), None) and aid.shape != (1,):
        raise ModelFileError(f"{where}: attribute {name!r} must be a single value")
    if aid.get_storage_size() > min(file_size, MAX_ATTR_BYTES):
        raise ModelFileError(f"{where}: attribute {name!r} is larger than the file")
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == (1,):
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    raise ModelFileError(f"{where}: attribute {name!r} has an unsupported type "
                         f"({type(value).__name__})")


def _read(f: h5py.File, where: str, file_size: int) -> ModelFile:
    raw: dict = {}
    for name in f.attrs.keys():
        if name not in ATTRS["/"]:
            raise ModelFileError(f"{where}: the file has an unknown attribute {name!r}")
        raw[f"/@{name}"] = _attr(f, name, where, file_size)
    _header(raw, where)
    groups, datasets = _walk(f, where, file_size)
    for group in sorted(g for g in groups if _attr_names(g)):
        for name in f[group].attrs.keys():
            if name not in _attr_names(group):
                raise ModelFileError(f"{where}: {group} has an unknown attribute {name!r}")
            raw[f"{group}@{name}"] = _attr(f[group], name, f"{where}: {group}", file_size)
    graph, expected = _graph(raw, where)
    for key, dataset in datasets.items():  # declared shapes and types, before reading data
        part, _, rest = key[1:].partition("/")
        if dataset.shape is None:
            raise ModelFileError(f"{where}: {key} is empty (no dataspace)")
        if part == "history":
            if dataset.ndim != 1 or dataset.shape[0] > MAX_HISTORY \
                    or dataset.dtype.kind not in "fiu":
                raise ModelFileError(f"{where}: {key} must be a 1-D numeric dataset of at most "
                                     f"{MAX_HISTORY:,} entries. Received {dataset.dtype} "
                                     f"{list(dataset.shape)}")
            continue
        param = rest.partition("/")[2] if part == "best" else rest
        if part == "optimizer":
            param = param.partition("/")[2].rpartition("/")[0]
        if param in expected and dataset.shape != expected[param]:
            raise ModelFileError(f"{where}: {key} has shape {list(dataset.shape)}, "
                                 f"expected {list(expected[param])}")
        if dataset.dtype != np.float32:
            raise ModelFileError(f"{where}: {key} has dtype {dataset.dtype}, expected float32")
    for key, dataset in datasets.items():
        raw[key] = dataset[()]
    model = _model_from_raw(raw, groups, where, (graph, expected))
    if "/@digest" in raw and raw["/@digest"] != _digest(raw):
        raise ModelFileError(f"{where}: the content does not match its digest (the file is "
                             f"damaged)")
    return model


def _read_file(path: Path) -> tuple[ModelFile, tuple]:
    """Read and check path in this process; also returns the identity of the file read."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            signature = handle.read(8)
        if signature != b"\x89HDF\r\n\x1a\n" and not h5py.is_hdf5(path):
            raise ModelFileError(f"{where}: not an HDF5 file (a convdesigner model is HDF5)")
        with h5py.File(path, "r") as f:
            stat = os.fstat(f.id.get_vfd_handle())
            return _read(f, where, stat.st_size), _identity(stat)
    except ModelFileError:
        raise
    except (OSError, LookupError, ValueError, TypeError, RuntimeError, ArithmeticError,
            RecursionError) as err:
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        raise ModelFileError(f"{where}: the file is truncated or damaged ({detail})") from None
    except MemoryError:
        raise ModelFileError(f"{where}: the file asks for more memory than it can hold "
                             f"(it is damaged)") from None


def _identity(stat: os.stat_result) -> tuple:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


# -- the first read in a child process ---------------------------------------------------------
# A reader child imports what it needs, then waits for one request on stdin: the path and its
# limits. After each read a new child is started, so the next open finds one ready.

_READER = "from engine.modelfile import _reader_main\n_reader_main()\n"
_probed: dict[tuple, None] = {}  # identities of files a child has read without a problem
_spare: subprocess.Popen | None = None
_spare_lock = threading.Lock()


def _reader_main() -> None:
    """In the child: read one request, apply its limits, read the file completely and print
    one JSON line: {} or {"error": message}."""
    import resource

    modelschema.warm()
    line = sys.stdin.readline()
    if not line:
        return
    request = json.loads(line)
    resource.setrlimit(resource.RLIMIT_AS, (request["memory"], request["memory"]))
    path = request["path"]
    try:
        _read_file(Path(path))
        result = {}
    except ModelFileError as err:
        result = {"error": str(err)}
    except MemoryError:
        result = {"error": f"{path}: reading the file needs more memory than any model file "
                           f"of its size"}
    except Exception as err:  # noqa: BLE001 - one line for the parent, whatever went wrong
        result = {"error": f"{path}: the file cannot be read ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]})"}
    print(json.dumps(result), flush=True)


def _start_reader() -> subprocess.Popen:
    # -S: no site start-up (.pth hooks cost ~50 ms); this process's sys.path is passed instead
    paths = [str(Path(__file__).resolve().parents[1]), *(p for p in sys.path if p)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-S", "-c", _READER], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _forget_spare() -> None:
    """In a forked child: the spare reader belongs to the parent."""
    global _spare, _spare_lock
    _spare, _spare_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_spare)


@atexit.register
def _stop_spare() -> None:
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        spare.kill()
        spare.communicate()


def prepare_reader() -> None:
    """Start a reader child now, so that the next load_model finds one ready (the designer can
    call this at start-up; otherwise the first load of a process starts one and waits for it)."""
    global _spare
    with _spare_lock:
        if _spare is None or _spare.poll() is not None:
            try:
                _spare = _start_reader()
            except OSError:
                _spare = None


def _probe(path: Path, size: int) -> None:
    """Read path in a child process with a time and memory limit; raise ModelFileError if it
    finds a problem, crashes or does not finish."""
    global _spare
    with _spare_lock:
        reader, _spare = _spare, None
    start = time.monotonic()
    seconds = PROBE_SECONDS + size / 10e6
    try:
        request = json.dumps({"path": str(path), "memory": PROBE_MEMORY + 4 * size}).encode()
        try:
            reader.stdin.write(request + b"\n")
            reader.stdin.flush()
        except (AttributeError, BrokenPipeError):  # no spare, or it died: start one
            reader = _start_reader()
            reader.stdin.write(request + b"\n")
            reader.stdin.flush()
        modelschema.warm()  # this process validates next: get ready while the child reads
        out, errors = reader.communicate(timeout=max(0.1, seconds - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        reader.kill()
        reader.communicate()
        raise ModelFileError(f"{path}: reading the file did not finish within {seconds:.0f} s "
                             f"(it is damaged)") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot start the reader process ({err})") from None
    finally:
        prepare_reader()
    if reader.returncode < 0:
        name = signal.Signals(-reader.returncode).name if -reader.returncode in \
            signal.valid_signals() else f"signal {-reader.returncode}"
        raise ModelFileError(f"{path}: the file is damaged: reading it crashed the HDF5 library "
                             f"({name})")
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " ".join(errors.decode(errors="replace").split())[-200:]
        raise ModelFileError(f"{path}: the file could not be read ({tail or 'no answer'})") \
            from None
    if result.get("error"):
        raise ModelFileError(result["error"])


def load_model(path: str | Path) -> ModelFile:
    """Read and check a model file; any problem raises one ModelFileError naming the part."""
    path = Path(path)
    try:
        stat = os.stat(path)
    except OSError:
        raise ModelFileError(f"{path}: no such file") from None
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: not a regular file")
    clean_stale_temps(Path(os.path.realpath(path)).parent)
    for _ in range(3):  # the file may be replaced between the child's read and ours
        if _identity(stat) not in _probed:
            _probe(path, stat.st_size)
            _probed[_identity(stat)] = None
        model, identity = _read_file(path)
        if identity == _identity(stat):
            return model
        stat = os.stat(path)
    raise ModelFileError(f"{path}: the file keeps changing while it is read")
