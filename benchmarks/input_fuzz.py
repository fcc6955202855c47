"""Bad datasets, graphs and command lines, each run as `convdesigner ...` in a child process bounded
in time and memory; counts hangs, crashes, memory blow-ups, tracebacks, errors over more than one
stderr line, bad input accepted and good input refused.

    PYTHONPATH=/path/to/tree python benchmarks/input_fuzz.py [--jobs 2] [--only data] [--verbose]

PYTHONPATH picks the tree under test (default: this one). Exit status 1 when any run failed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
MEMORY_LIMIT = 3 << 30  # address space of each child
RSS_LIMIT = 1 << 30  # a run that grew past this blew up, whatever it printed
OUTCOMES = ("hang", "crash", "memory", "traceback", "multi-line", "accepted", "refused", "pass")


@dataclass
class Case:
    group: str
    name: str
    args: list[str]
    expect: str  # "error": exit 2 with one line; "ok": exit 0; "any": either, cleanly
    timeout: float = 60.0


@dataclass
class Result:
    case: Case
    outcome: str
    code: int | None
    seconds: float
    rss_mb: float
    stderr: str


# Files ---------------------------------------------------------------------------------------

def npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.tobytes()


def idx_pair(folder: Path, x: np.ndarray, y: np.ndarray, gz: bool = False) -> str:
    folder.mkdir()
    ext = ".gz" if gz else ""
    for name, array in (("images-idx3-ubyte", x), ("labels-idx1-ubyte", y)):
        raw = idx_bytes(array)
        (folder / f"train-{name}{ext}").write_bytes(gzip.compress(raw) if gz else raw)
    return str(folder / f"train-images-idx3-ubyte{ext}")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A grayscale PNG of zeros, compressed row by row (a 10000x10000 one is about 100 KB); only
    the first `rows` rows when given."""
    z, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    parts += [z.compress(row) for _ in range(height if rows is None else rows)]
    parts.append(z.flush())
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                                  0, 0, 0))
            + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b""))


def image_folder(folder: Path, files: dict[str, bytes]) -> str:
    """Class folders "a" and "b" of small PNGs, plus the given files (relative paths)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in ("a", "b"):
        (folder / k).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                folder / k / f"{i}.png")
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return str(folder)


def flipped(raw: bytes, seed: int, count: int = 4) -> bytes:
    rng = np.random.default_rng(seed)
    data = bytearray(raw)
    for at in rng.integers(0, len(data), count):
        data[at] ^= int(rng.integers(1, 256))
    return bytes(data)


def graph(nodes: list[tuple[str, str, dict]], name: str = "fuzz") -> dict:
    """A chain graph document from (id, type, params) triples."""
    return {"format": "convdesigner.graph", "version": 1, "name": name,
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
            "edges": [{"from": a[0], "to": b[0], "port": 0} for a, b in zip(nodes, nodes[1:])]}


def small_net(dense_id: str = "fc") -> dict:
    return graph([("in", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
                  (dense_id, "Dense", {"units": 10}), ("out", "Output", {})])


# Cases ---------------------------------------------------------------------------------------

def data_cases(d: Path) -> list[Case]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 28, 28), dtype=np.uint8)
    y = np.arange(16) % 10
    good = Path(npz(d / "good.npz", x=x, y=y))
    cases: list[tuple[str, str, str] | tuple[str, str, str, str]] = []

    def add(name, spec, expect="error", model="lenet5"):
        cases.append((name, spec, expect, model))

    raw = good.read_bytes()
    for k, share in enumerate((0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)):
        (d / f"trunc{k}.npz").write_bytes(raw[:int(len(raw) * share)])
        add(f"npz truncated at {share:.0%}", str(d / f"trunc{k}.npz"))
    for k in range(12):
        (d / f"flip{k}.npz").write_bytes(flipped(raw, k))
        add(f"npz with flipped bytes #{k}", str(d / f"flip{k}.npz"), "any")
    np.save(d / "plain.npy", x)
    (d / "plain.npz").write_bytes((d / "plain.npy").read_bytes())
    add(".npy named .npz", str(d / "plain.npz"))
    add("0-d x", npz(d / "zerod.npz", x=np.float32(1), y=np.int64(0)))
    add("1-d x", npz(d / "oned.npz", x=np.zeros(16, np.float32), y=y))
    add("6-d x", npz(d / "sixd.npz", x=np.zeros((2, 1, 1, 1, 1, 1), np.float32), y=y[:2]))
    add("string x", npz(d / "strx.npz", x=np.array(["a"] * 16), y=y))
    add("no samples", npz(d / "empty.npz", x=np.zeros((0, 28, 28)), y=np.zeros(0, int)))
    add("x and y lengths differ", npz(d / "ragged.npz", x=x, y=y[:5]))
    add("label == outputs (npz)", npz(d / "lab10.npz", x=x, y=np.full(16, 10)))
    add("label 1e9 (npz)", npz(d / "lab1e9.npz", x=x, y=np.r_[y[:-1], 10**9]))
    add("negative label", npz(d / "labneg.npz", x=x, y=np.r_[y[:-1], -1]))
    add("label 1.5", npz(d / "labfrac.npz", x=x, y=np.r_[y[:-1], 1.5]))
    add("NaN label", npz(d / "labnan.npz", x=x, y=np.r_[y[:-1], np.nan]))
    add("NaN pixel", npz(d / "nanx.npz", x=np.where(np.arange(28) == 3, np.nan, x / 255), y=y))
    add("x [N, 1, 1024] for a [1, 1024] Input",
        npz(d / "sig3.npz", x=rng.random((16, 1, 1024), np.float32), y=y % 2), "ok", "signal1d")
    add("x [N, 1024] for a [1, 1024] Input",
        npz(d / "sig2.npz", x=rng.random((16, 1024), np.float32), y=y % 2), "ok", "signal1d")
    add("x [N, 1, 28, 28] for a [1, 28, 28] Input",
        npz(d / "img4.npz", x=x[:, None], y=y), "ok")
    add("x [N, 16, 16, 16] for a [1, 16, 16, 16] Input",
        npz(d / "vol4.npz", x=rng.random((16, 16, 16, 16), np.float32), y=y % 3), "ok",
        "volume3d")
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (10**6, 10**6)
    with open(d / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    import zipfile
    with zipfile.ZipFile(d / "huge.npz", "w") as z:
        z.write(d / "huge.npy", "x.npy")
        z.writestr("y.npy", (d / "plain.npy").read_bytes())
    add("npz declaring a 4 TB x", str(d / "huge.npz"))

    xi, yi = x, y.astype(np.uint8)
    add("idx label == outputs", idx_pair(d / "idx10", xi, np.full(16, 10, np.uint8)))
    folder = Path(idx_pair(d / "idxgz", xi, yi, gz=True)).parent
    images = folder / "train-images-idx3-ubyte.gz"
    gz = images.read_bytes()
    for k in range(6):
        bad = d / f"idxflip{k}"
        bad.mkdir()
        (bad / images.name).write_bytes(flipped(gz, k + 100) if k < 3 else gz[:len(gz) * k // 6])
        (bad / "train-labels-idx1-ubyte.gz").write_bytes(
            (folder / "train-labels-idx1-ubyte.gz").read_bytes())
        add(f"damaged IDX gzip #{k}", str(bad / images.name), "any")
    big = d / "idxbig"
    big.mkdir()
    (big / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(
        ">3I", 2**31, 2**16, 2**16))
    (big / "train-labels-idx1-ubyte").write_bytes(idx_bytes(yi))
    add("IDX header declaring 2^63 bytes", str(big / "train-images-idx3-ubyte"))

    x5 = (rng.random((16, 28, 28)) * 255).astype(np.uint8)
    with h5py.File(d / "good.h5", "w") as f:
        f["x"], f["y"] = x5, y
    add("HDF5 data (good)", str(d / "good.h5"), "ok")
    h5raw = (d / "good.h5").read_bytes()
    for k in range(8):
        bad = h5raw[:len(h5raw) * (k + 1) // 10] if k < 4 else flipped(h5raw, k, 8)
        (d / f"h5bad{k}.h5").write_bytes(bad)
        add(f"damaged HDF5 data #{k}", str(d / f"h5bad{k}.h5"), "any")
    with h5py.File(d / "h5lab.h5", "w") as f:
        f["x"], f["y"] = x5, np.full(16, 12)
    add("h5 label == outputs", str(d / "h5lab.h5"))
    with h5py.File(d / "h5ext.h5", "w") as f:
        f.create_dataset("x", (16, 28, 28), np.uint8, external=[("/etc/passwd", 0, 16 * 784)])
        f["y"] = y
    add("h5 x stored in /etc/passwd", str(d / "h5ext.h5"))
    with h5py.File(d / "h5huge.h5", "w") as f:
        f.create_dataset("x", (2 * 10**9, 28, 28), np.uint8, chunks=(1, 28, 28))
        f.create_dataset("y", (2 * 10**9,), np.uint8, chunks=(1024,))
    add("h5 declaring 1.5 TB unwritten", str(d / "h5huge.h5"))
    for fixture in ("segfault.h5", "hang.h5"):
        if (FIXTURES / fixture).is_file():
            add(f"kept fixture {fixture} as data", str(FIXTURES / fixture))

    rows = [",".join(map(str, [k % 10, *range(784)])) for k in range(16)]
    csvs = {
        "header cell over 128 KB": "label," + "p" * 200_000 + "\n" + "\n".join(rows[:2]),
        "label 1e9 (csv)": "\n".join(rows[:-1] + ["1000000000" + rows[0][1:]]),
        "label == outputs (csv)": "\n".join(["10" + r[1:] for r in rows]),
        "negative label (csv)": "\n".join(rows[:-1] + ["-3" + rows[0][1:]]),
        "ragged row": "\n".join(rows[:-1] + ["1,2,3"]),
        "text cell": "\n".join(rows[:-1] + ["1,abc" + rows[0][3:]]),
        "unbalanced quote": "\n".join(rows[:-1] + ['1,"2' + rows[0][3:]]),
    }
    for k, (name, text) in enumerate(csvs.items()):
        (d / f"c{k}.csv").write_text(text + "\n")
        add(name, str(d / f"c{k}.csv"))
    (d / "latin1.csv").write_bytes(b"label,\xe9t\xe9\n1,2\n")
    add("non-UTF-8 CSV", str(d / "latin1.csv"))

    png = (Path(image_folder(d / "ok_img", {})) / "a" / "0.png").read_bytes()
    ps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n{} loop\n"
    folders = {
        "images (good)": ({}, "ok"),
        "truncated PNG": ({"a/t.png": png[:len(png) // 2]}, "error"),
        "flipped PNG": ({"a/f.png": flipped(png, 3, 6)}, "any"),
        "text named .png": ({"b/t.png": b"hello, world\n"}, "error"),
        "PostScript named 0.png": ({"a/0.png": ps}, "error"),
        "four 10000x10000 PNGs": ({f"a/huge{k}.png": blank_png(10000, 10000) for k in range(4)},
                                  "error"),
        "one 100000x100000 PNG": ({"b/bomb.png": blank_png(100000, 100000, 1)}, "error"),
    }
    for k, (name, (files, expect)) in enumerate(folders.items()):
        add(name, image_folder(d / f"img{k}", files), expect)
    fifo_folder = Path(image_folder(d / "imgfifo", {}))
    os.mkfifo(fifo_folder / "a" / "pipe.png")
    add("FIFO named .png", str(fifo_folder))
    classes = d / "manyclasses"
    for k in range(3):
        (classes / f"c{k}").mkdir(parents=True)
        (classes / f"c{k}" / "0.png").write_bytes(png)
    add("image folder with 3 classes, label 2 ok", str(classes), "ok")

    add("/proc/self/mem", "/proc/self/mem")
    (d / "nothing").mkdir()
    add("a directory of nothing", str(d / "nothing"))
    out = []
    for name, spec, expect, model in cases:
        out.append(Case("data", f"train: {name}", ["train", model, "--data", spec, "--epochs",
                                                   "1", "--batch-size", "8", "--quiet"], expect))
        if "outputs" in name or "1e9" in name:
            out.append(Case("data", f"evaluate: {name}", ["evaluate", str(d.parent / "lenet5.h5"),
                                                          "--data", spec], expect))
    return out


def graph_cases(d: Path) -> list[Case]:
    cases = []

    def add(name, text: str | bytes, expect="error", train=True, timeout=60.0, info=None):
        """info: what `info` must do when it differs from train (a huge network is described)."""
        path = d / f"g{len(cases)}.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        cases.append(Case("graphs", f"info: {name}", ["info", str(path)], info or expect,
                          timeout))
        if train:
            cases.append(Case("graphs", f"train: {name}", [
                "train", str(path), "--data", "shapes:32", "--epochs", "1", "--batch-size", "8",
                "--quiet", "--out", str(d / f"{path.stem}.h5")], expect, timeout))

    for bad in (".", "..", "a/b", "a\0b", "a\nb", "a\tb", " fc", "fc ", "x" * 65, "\x7f", "a\\b",
                "", "a:b\u202e"):
        add(f"node id {bad!r}", json.dumps(small_net(bad)))
    add("node id 'fc-1_é' (fine)", json.dumps(small_net("fc-1_é")), "ok")
    add("nested 100,000 deep", "[" * 100_000 + "]" * 100_000, train=False)
    add("nested 100,000 deep in params", json.dumps(small_net()).replace(
        '"units": 10', '"units": ' + "[" * 100_000 + "]" * 100_000), train=False)
    add("5000-digit integer", json.dumps(small_net()).replace('"units": 10', '"units": '
                                                              + "9" * 5000))
    add("5000-digit version", '{"format": "convdesigner.graph", "version": ' + "1" * 5000 + "}",
        train=False)
    add("non-UTF-8", b'{"format": "convdesigner.graph", "name": "\xff\xfe"}', train=False)
    add("not an object", "[1, 2, 3]", train=False)
    add("a number", "1e400", train=False)
    add("empty file", "", train=False)
    add("NaN position", json.dumps(small_net()).replace('"params": {}', '"params": {}, "pos": '
                                                        '[NaN, 1]', 1), train=False)
    add("two Dense layers of 2^20 units", json.dumps(graph([
        ("in", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
        ("d1", "Dense", {"units": 2**20}), ("d2", "Dense", {"units": 2**20}),
        ("out", "Output", {})])), info="ok")
    add("Input 1x30000x30000", json.dumps(graph([
        ("in", "Input", {"shape": [1, 30000, 30000]}), ("c", "Conv2D", {"filters": 64,
                                                                         "kernel_size": 3}),
        ("g", "GlobalPool", {}), ("out", "Output", {})])), info="ok")
    n = 20_000
    chain = graph([("in", "Input", {"shape": [4]})]
                  + [(f"a{k}", "Activation", {}) for k in range(n)] + [("out", "Output", {})])
    add(f"{n}-node chain (fine, under 5 s)", json.dumps(chain), "ok", train=False, timeout=5.0)
    (d / "chain.json").write_text(json.dumps(chain))  # main() saves it as chain.h5
    cases.append(Case("graphs", f"info: {n}-node model file (fine, under 5 s)",
                      ["info", str(d / "chain.h5")], "ok", 5.0))
    return cases


def argument_cases(d: Path) -> list[Case]:
    model, x = str(d.parent / "lenet5.h5"), d / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.float32))
    np.save(d / "empty.npy", np.zeros((0, 1, 28, 28), np.float32))
    np.save(d / "zerod.npy", np.float32(1))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.save(d / "nan.npy", np.full((2, 1, 28, 28), np.nan, np.float32))
    np.save(d / "pixels.npy", np.zeros((2, 1, 28, 28), np.uint8))
    np.savez(d / "x.npz", x=np.zeros((2, 28, 28), np.float32))   # [N, 28, 28] for [1, 28, 28]
    (d / "sweep-stopped").mkdir(exist_ok=True)
    (d / "sweep-stopped" / "trial-000.h5").write_bytes(b"a stopped sweep's trial")
    (d / "a-folder").mkdir(exist_ok=True)
    sweep = ["sweep", "lenet5", "--data", "shapes:64", "--space", "lr=0.01,0.1", "--trials", "2"]
    train = ["train", "lenet5", "--data", "shapes:32", "--quiet"]
    bad = [
        ("--batch-size 0", ["--batch-size", "0"]), ("--batch-size -5", ["--batch-size", "-5"]),
        ("--batch-size 10**12", ["--batch-size", str(10**12)]),
        ("--seed -1", ["--seed", "-1"]), ("--seed 2**32", ["--seed", str(2**32)]),
        ("--epochs 0", ["--epochs", "0"]), ("--epochs -1", ["--epochs", "-1"]),
        ("--epochs abc", ["--epochs", "abc"]),
        ("--lr -1", ["--lr", "-1"]), ("--lr 0", ["--lr", "0"]), ("--lr nan", ["--lr", "nan"]),
        ("--lr inf", ["--lr", "inf"]), ("--translate 1000", ["--translate", "1000"]),
        ("--translate -1", ["--translate", "-1"]), ("--train-range 5:2", ["--train-range", "5:2"]),
        ("--val-range x", ["--val-range", "x"]), ("--device tpu", ["--device", "tpu"]),
        ("--bogus-option", ["--bogus-option"]), ("--data /proc/self/mem",
                                                 ["--data", "/proc/self/mem"]),
        ("--train-range past the end", ["--train-range", "0:500"]),
        ("--val-range overlapping the default training range", ["--val-range", "0:8"]),
        ("--out in a missing folder", ["--out", str(d / "no" / "such" / "m.h5")]),
        ("--data shapes:10**11", ["--data", "shapes:100000000000"]),
    ]
    cases = [Case("arguments", f"train {name}", train + extra, "error") for name, extra in bad]
    cases += [Case("arguments", "train --epochs 1 (fine)", train + ["--epochs", "1"], "ok")]
    cases += [Case("arguments", name, args, expect) for name, args, expect in [
        ("train without --data", ["train", "lenet5"], "error"),
        ("evaluate --range 9:3", ["evaluate", model, "--data", "shapes:32", "--range", "9:3"],
         "error"),
        ("evaluate --data /proc/self/mem", ["evaluate", model, "--data", "/proc/self/mem"],
         "error"),
        ("predict on an empty array", ["predict", model, "--input", str(d / "empty.npy"),
                                       "--output", str(d / "y.npy")], "error"),
        ("predict on a 0-d array", ["predict", model, "--input", str(d / "zerod.npy"),
                                    "--output", str(d / "y.npy")], "error"),
        ("predict on strings", ["predict", model, "--input", str(d / "strings.npy"),
                                "--output", str(d / "y.npy")], "error"),
        ("predict --input /proc/self/mem", ["predict", model, "--input", "/proc/self/mem",
                                            "--output", str(d / "y.npy")], "error"),
        ("predict (fine)", ["predict", model, "--input", str(x), "--output", str(d / "y.npy")],
         "ok"),
        ("predict on NaN samples", ["predict", model, "--input", str(d / "nan.npy"),
                                    "--output", str(d / "y.npy")], "error"),
        ("predict on uint8 pixels", ["predict", model, "--input", str(d / "pixels.npy"),
                                     "--output", str(d / "y.npy")], "error"),
        ("predict into a folder", ["predict", model, "--input", str(x),
                                   "--output", str(d / "a-folder")], "error"),
        ("predict on an .npz's x of [N, 28, 28] (fine)",
         ["predict", model, "--input", str(d / "x.npz"), "--output", str(d / "y.npy")], "ok"),
        ("evaluate --range past the end", ["evaluate", model, "--data", "shapes:32", "--range",
                                           "0:64"], "error"),
        ("sweep --out a file", sweep + ["--out", model], "error"),
        ("sweep --out a stopped sweep's folder", sweep + ["--out", str(d / "sweep-stopped")],
         "error"),
        ("sweep --scheduler not an address", sweep + ["--out", str(d / "sweep-new"),
                                                      "--scheduler", "notanaddress"], "error"),
        ("export --out the model itself", ["export", model, "--to", "onnx", "--out", model],
         "error"),
        ("import --out its own source", ["import", str(d / "nan.npy"), "--out",
                                         str(d / "nan.npy")], "error"),
        ("train --out a .json name", train + ["--out", str(d / "m.json")], "error"),
        ("predict --output its input", ["predict", model, "--input", str(x),
                                        "--output", str(x)], "error"),
        ("train --metrics-json in a missing folder",
         train + ["--metrics-json", str(d / "no" / "m.json")], "error"),
        ("bench --batch-size 0", ["bench", "--batch-size", "0"], "error"),
        ("bench --model bogus", ["bench", "--model", "bogus"], "error"),
        ("bench --threads 0", ["bench", "--threads", "0"], "error"),
        ("frobnicate", ["frobnicate"], "error"),
        ("frobnicate --help", ["frobnicate", "--help"], "error"),
        ("info with no model", ["info"], "error"),
    ]]
    return cases


# Running -------------------------------------------------------------------------------------

def run(case: Case, cwd: Path, env: dict) -> Result:
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    argv = [sys.executable, "-m", "designer.launch", *case.args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, start_new_session=True, preexec_fn=limit)
        hung = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > case.timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                hung = True
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    rss = usage.ru_maxrss / 1024
    lines = [line for line in stderr.splitlines() if line.strip()]
    memory = any(s in stderr for s in ("MemoryError", "Unable to allocate", "bad_alloc",
                                       "Cannot allocate memory")) or rss > RSS_LIMIT >> 20
    if hung:
        outcome = "hang"
    elif code < 0:
        outcome = "crash"
    elif memory:
        outcome = "memory"
    elif "Traceback (most recent call last)" in stderr:
        outcome = "traceback"
    elif code != 0 and len(lines) > 1:
        outcome = "multi-line"
    elif code == 0 and case.expect == "error":
        outcome = "accepted"
    elif code != 0 and (case.expect == "ok" or code != 2):
        outcome = "refused"
    else:
        outcome = "pass"
    return Result(case, outcome, code, seconds, rss, stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--only", choices=("data", "graphs", "arguments"))
    parser.add_argument("--verbose", action="store_true", help="one line per run")
    parser.add_argument("--json", help="write every run's outcome to this file")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.setdefault("PYTHONPATH", str(ROOT))
    env.pop("QT_QPA_PLATFORM", None)
    env["NUMBA_NUM_THREADS"] = "2"
    tree = env["PYTHONPATH"].split(os.pathsep)[0]
    with tempfile.TemporaryDirectory(prefix="input_fuzz-") as tmp:
        d = Path(tmp)
        subprocess.run([sys.executable, "-c", "import sys; from engine.session import Session; "
                        "Session.open('lenet5').save(sys.argv[1])", str(d / "lenet5.h5")],
                       env=env, check=True)
        makers = {"data": data_cases, "graphs": graph_cases, "arguments": argument_cases}
        cases = []
        for group, make in makers.items():
            folder = d / group
            folder.mkdir()
            made = make(folder)
            if args.only in (None, group):
                cases += made
        subprocess.run([sys.executable, "-c", "import sys; from engine.session import Session; "
                        "Session.open(sys.argv[1]).save(sys.argv[2])", str(d / "graphs/chain.json"),
                        str(d / "graphs/chain.h5")], env=env, check=True, timeout=600)
        print(f"{len(cases)} runs of `convdesigner` from {tree}", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda c: run(c, d, env), cases))
    counts = {group: dict.fromkeys(OUTCOMES, 0) for group in makers}
    for r in results:
        counts[r.case.group][r.outcome] += 1
        if args.verbose or r.outcome != "pass":
            last = (r.stderr.strip().splitlines() or [""])[-1][:150]
            print(f"{r.outcome:>10}  {r.case.group:<9} {r.case.name[:60]:<60} exit {r.code} "
                  f"{r.seconds:5.1f}s {r.rss_mb:6.0f} MB  {last}")
    print(f"\n{'':<10}" + "".join(f"{o:>11}" for o in OUTCOMES))
    for group, row in counts.items():
        if any(row.values()):
            print(f"{group:<10}" + "".join(f"{row[o]:>11}" for o in OUTCOMES))
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"group": r.case.group, "case": r.case.name, "outcome": r.outcome, "exit": r.code,
              "seconds": round(r.seconds, 2), "rss_mb": round(r.rss_mb), "stderr": r.stderr}
             for r in results], indent=1))
    return int(any(r.outcome != "pass" for r in results))


if __name__ == "__main__":
    sys.exit(main())
