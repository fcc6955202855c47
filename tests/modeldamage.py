"""Ways to damage a model file (byte flips, truncation, zeroed blocks, edits made with h5py), and
what a loaded model holds, for comparing it with the original. Used by the fuzz test and by
benchmarks/modelfile_fuzz.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from engine.optim import Optimizer
from engine.session import Session, TrainingSettings
from engine.templates import load_template

SETTINGS = {"optimizer": "adam", "lr": 0.001, "schedule": "cosine", "weight_decay": 0.0,
            "batch_size": 64, "augmentation": {"translate": 2, "hflip": False}, "seed": 3,
            "device": "cpu", "early_stop": 5}


def model_with_every_part(steps: int = 1) -> dict:
    """save_model's arguments with every part of DESIGN.md 3.2 filled in (lenet5, adam)."""
    session = Session(load_template("lenet5"), TrainingSettings(seed=1))
    optimizer = session.optimizer = Optimizer("adam", lr=0.001)
    net = session.net
    x = np.random.default_rng(0).standard_normal((4, *net.input_shape)).astype(np.float32)
    for _ in range(steps):
        out = net.forward(x, training=True)
        net.backward(np.ones_like(out) / out.size)
        optimizer.step(net)
    weights = net.weights()
    return dict(
        graph=session.graph, weights=weights, optimizer=optimizer.state_dict(),
        history={"epoch": np.array([1.0, 2.0]), "val_loss": np.array([0.5, np.nan])},
        data_spec={"source": "shapes", "input_shape": [1, 28, 28], "class_names": ["a", "b"],
                   "normalization": {"mean": [0.1], "std": [0.3]}, "train_range": [0, 8],
                   "val_range": None},
        training={"seed": 1, "position": {"epoch": 2, "batch": 3, "sums": {
            "loss": 1.5, "correct": 3, "seen": 12, "seconds": 0.25}}},
        settings=SETTINGS,
        best={"epoch": 1, "val_loss": 0.5, "weights": {k: v * 0.5 for k, v in weights.items()}},
        runs=[{"started": "2026-01-01T00:00:00+00:00", "ended": "2026-01-01T00:01:00+00:00",
               "ended_how": "stopped", "graph": session.graph.to_dict(), "settings": SETTINGS,
               "data": "shapes", "history": {"epoch": [1.0, 2.0], "val_loss": [0.5, None]}}])


def flip(data: bytes, spots: list[tuple[int, int]]) -> bytes:
    """data with the byte at each offset (modulo its length) XORed with a nonzero mask."""
    out = bytearray(data)
    for offset, mask in spots:
        out[offset % len(out)] ^= mask or 1
    return bytes(out)


def truncate(data: bytes, size: int) -> bytes:
    return data[:size % len(data)]


def zero(data: bytes, offset: int, length: int) -> bytes:
    offset %= len(data)
    return data[:offset] + bytes(min(length, len(data) - offset)) + data[offset + length:]


def _replace(f, key, **kwargs):
    shape = f[key].shape
    del f[key]
    return f.create_dataset(key, shape, np.float32, **kwargs)


def _first_slot(f) -> h5py.Dataset:
    found = []
    f["optimizer/state"].visititems(
        lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found[0]


def _virtual(f, folder):
    shape = f["weights/conv1/bias"].shape
    layout = h5py.VirtualLayout(shape, np.float32)
    layout[:] = h5py.VirtualSource(str(folder / "other.h5"), "/weights/conv1/bias", shape)
    del f["weights/conv1/bias"]
    f.create_virtual_dataset("weights/conv1/bias", layout)


def _fifo(f, folder):
    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    _replace(f, "weights/conv1/bias", external=[(str(fifo), 0, 24)])


def _set(obj, name, value):
    obj.attrs[name] = value


def _json_attr(group, name, change):
    def edit(f, folder):
        value = json.loads(f[group].attrs[name])
        change(value)
        f[group].attrs[name] = json.dumps(value)
    return edit


def _nan(key, index=0):
    def edit(f, folder):
        data = f[key][()]
        data.flat[index] = np.nan
        f[key][...] = data
    return edit


POSITION = {"epoch": 0, "batch": 0, "sums": {"loss": 0.0, "correct": 0, "seen": 0,
                                              "seconds": 0.0}}

# name -> edit(f, folder): each leaves a file that a load must refuse (folder holds other.h5,
# a valid model file that links and virtual datasets point at).
STRUCTURAL = {
    "external storage on /etc/passwd": lambda f, d: _replace(
        f, "weights/conv1/bias", external=[("/etc/passwd", 0, 24)]),
    "external storage on a FIFO": _fifo,
    "external link": lambda f, d: (f["weights/conv1"].__delitem__("bias"), f["weights/conv1"].
                                   __setitem__("bias", h5py.ExternalLink(
                                       str(d / "other.h5"), "/weights/conv1/bias"))),
    "soft link": lambda f, d: (f["weights/conv1"].__delitem__("bias"),
                               f["weights/conv1"].__setitem__("bias",
                                                              h5py.SoftLink("/weights/conv2/bias"))),
    "virtual dataset": _virtual,
    "hard link twice": lambda f, d: f["weights"].__setitem__("again", f["weights/conv1"]),
    "unknown part": lambda f, d: f.create_group("extra"),
    "huge chunked history": lambda f, d: (f["history"].__delitem__("epoch"), f.create_dataset(
        "history/epoch", (2_000_000_000,), np.float64, chunks=(1024,))),
    "2-D history": lambda f, d: (f["history"].__delitem__("epoch"), f.create_dataset(
        "history/epoch", data=np.zeros((2, 2)))),
    "float64 weight": lambda f, d: (f["weights/conv1"].__delitem__("bias"), f.create_dataset(
        "weights/conv1/bias", data=np.zeros(6))),
    "gzip weight": lambda f, d: _replace(f, "weights/conv1/bias", compression="gzip"),
    "NaN weight": _nan("weights/conv1/weight", 7),
    "NaN best weight": _nan("best/weights/dense3/bias"),
    "Inf optimizer state": lambda f, d: _first_slot(f).__setitem__((0,), np.inf),
    "no complete attribute": lambda f, d: f.attrs.__delitem__("complete"),
    "unknown attribute": lambda f, d: _set(f, "extra", 1),
    "graph is a list": lambda f, d: _set(f, "graph", "[1]"),
    "graph nested 100000 deep": lambda f, d: _set(f, "graph", "[" * 100_000 + "]" * 100_000),
    "graph 5000-digit integer": lambda f, d: _set(f, "graph", "9" * 5000),
    "training state [1]": lambda f, d: _set(f["training"], "state", "[1]"),
    "position.batch 10**9": _json_attr("training", "state",
                                       lambda v: v["position"].__setitem__("batch", 10**9)),
    "seed -1": _json_attr("training", "state", lambda v: v.__setitem__("seed", -1)),
    "unknown optimizer key": _json_attr("optimizer", "config",
                                        lambda v: v.__setitem__("bogus", 1)),
    "schedule kind bogus": _json_attr("optimizer", "config",
                                      lambda v: v["schedule"].__setitem__("kind", "bogus")),
    "3-channel normalisation": _json_attr("data", "spec", lambda v: v.__setitem__(
        "normalization", {"mean": [0.1] * 3, "std": [0.3] * 3})),
    "NaN in JSON": lambda f, d: _set(f["data"], "spec", '{"source": NaN}'),
    "settings with unknown key": _json_attr("training", "settings",
                                            lambda v: v.__setitem__("bogus", 1)),
    "best val_loss NaN": lambda f, d: _set(f["best"], "val_loss", np.nan),
    "saved_at changed (digest)": lambda f, d: _set(f, "saved_at", "yesterday"),
}


def edit(path: Path, name: str, folder: Path) -> None:
    with h5py.File(path, "r+") as f:
        STRUCTURAL[name](f, folder)


def content(model) -> dict:
    """Everything a ModelFile holds, as plain comparable data."""
    def arrays(d):
        return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in (d or {}).items()}

    optimizer = model.optimizer and {
        "type": model.optimizer["type"], "config": model.optimizer["config"],
        "slots": {k: arrays(v) for k, v in model.optimizer["slots"].items()}}
    best = model.best and {**model.best, "weights": arrays(model.best["weights"])}
    return {"graph": model.graph.to_dict(), "weights": arrays(model.weights),
            "optimizer": optimizer, "history": arrays(model.history),
            "data_spec": model.data_spec, "training": model.training,
            "settings": model.settings, "best": best, "created_by": model.created_by,
            "saved_at": model.saved_at, "runs": model.runs}
