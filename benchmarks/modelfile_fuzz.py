"""Damaged model files against the command line: N damaged copies of a trained LeNet-5 file (byte
flips, truncation, zeroed blocks, structural edits made with h5py), each given to
`convdesigner info` and `convdesigner evaluate` in a child process with a time and memory limit.
Counts crashes, hangs, tracebacks, silent loads (exit 0 with content or output other than the
original's), memory blow-ups, and clean refusals (exit 2, one line).

    python benchmarks/modelfile_fuzz.py [-n 300] [--data SPEC] [--workers 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from modeldamage import SETTINGS, STRUCTURAL, content, edit, flip, truncate, zero  # noqa: E402

from engine.modelfile import ModelFileError, load_model, save_model  # noqa: E402

MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"
BLOWUP_BYTES = 2 * 2**30  # a run whose peak memory passes this is a memory blow-up


# The command in the child: limit its address space, run the CLI, report its peak memory.
CHILD = """import resource, runpy, sys
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv[0] = "convdesigner"
try:
    runpy.run_module("engine.cli", run_name="__main__")
finally:
    sys.stderr.write("\\n@@maxrss %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(args: list[str], timeout: float, memory: int) -> dict:
    """One command in a child process: exit code (negative: signal; None: ran past the timeout),
    output, peak memory in bytes, time."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(memory), *args], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"code": None, "out": "", "err": "", "rss": 0, "seconds": timeout}
    err, _, rss = err.decode(errors="replace").rpartition("\n@@maxrss ")
    return {"code": child.returncode, "out": out.decode(errors="replace"), "err": err,
            "rss": int(rss or 0) * 1024, "seconds": time.perf_counter() - start}


def classify(result: dict, expected_out: str, loads_like_original) -> str:
    if result["code"] is None:
        return "hang"
    if result["code"] < 0:
        return "crash"
    if "MemoryError" in result["err"] or result["rss"] > BLOWUP_BYTES:
        return "memory blow-up"
    if "Traceback (most recent call last)" in result["err"]:
        return "traceback"
    if result["code"] == 0:
        return "loaded as the original" if result["out"] == expected_out and \
            loads_like_original() else "silent load"
    if result["code"] == 2 and len(result["err"].strip().splitlines()) == 1:
        return "refused (one line)"
    return f"other (exit {result['code']})"


def damaged_copies(data: bytes, n: int, rng: np.random.Generator):
    """(kind, description, bytes or structural edit name) for n damaged copies."""
    names = sorted(STRUCTURAL)
    for i in range(n):
        kind = str(rng.choice(["flip", "flips", "truncate", "zero", "structural"],
                              p=[0.35, 0.15, 0.15, 0.15, 0.20]))
        if kind == "flip":
            spot = int(rng.integers(len(data)))
            yield kind, f"flip byte {spot}", flip(data, [(spot, int(rng.integers(1, 256)))])
        elif kind == "flips":
            spots = [(int(rng.integers(len(data))), int(rng.integers(1, 256)))
                     for _ in range(int(rng.integers(2, 20)))]
            yield kind, f"flip {len(spots)} bytes", flip(data, spots)
        elif kind == "truncate":
            size = int(rng.integers(len(data)))
            yield kind, f"truncate to {size}", truncate(data, size)
        elif kind == "zero":
            offset, length = int(rng.integers(len(data))), int(rng.integers(1, 4096))
            yield kind, f"zero {length} bytes at {offset}", zero(data, offset, length)
        else:
            yield kind, f"edit: {names[i % len(names)]}", names[i % len(names)]


def add_every_part(path: Path) -> None:
    """Give the file the parts the trainer may not write yet (/training settings, /best), so
    that every structural edit applies."""
    model = load_model(path)
    val_loss = model.history.get("val_loss", [np.nan])[-1]
    save_model(path, model.graph, model.weights, model.optimizer, model.history, model.data_spec,
               model.training, settings=model.settings or SETTINGS, best=model.best or {
                   "epoch": len(model.history.get("epoch", [])),
                   "val_loss": float(val_loss) if np.isfinite(val_loss) else 0.0,
                   "weights": model.weights})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="damaged copies (default 300)")
    parser.add_argument("--model", help="a trained model file (default: train lenet5 1 epoch)")
    parser.add_argument("--data", default=str(MNIST) if MNIST.exists() else "shapes")
    parser.add_argument("--range", default="-500:", help="evaluate's range (default -500:)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per command")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address space per command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="folder to keep the files of bad outcomes in")
    args = parser.parse_args()
    memory = int(args.memory_gb * 2**30)
    work = Path(tempfile.mkdtemp(prefix="modelfile-fuzz-"))
    base = work / "base.h5"
    if args.model:
        shutil.copy(args.model, base)
    else:
        trained = run(["train", "lenet5", "--data", args.data, "--epochs", "1", "--train-range",
                       "0:4000", "--val-range", "4000:5000", "--out", str(base), "--quiet"],
                      600, memory)
        if trained["code"] != 0:
            sys.exit(f"training the base model failed: {trained['err']}")
    add_every_part(base)
    data = base.read_bytes()
    original = content(load_model(base))
    commands = {"info": ["info"], "evaluate": ["evaluate", "--data", args.data,
                                               f"--range={args.range}", "--json", "--quiet"]}
    expected = {name: run([*cmd[:1], str(base), *cmd[1:]], args.timeout, memory)["out"]
                for name, cmd in commands.items()}
    shutil.copy(base, work / "other.h5")  # what external links and virtual datasets point at

    def one(item):
        i, (kind, description, damaged) = item
        path = work / f"damaged{i:05d}.h5"
        if isinstance(damaged, str):
            path.write_bytes(data)
            edit(path, damaged, work)
        else:
            path.write_bytes(damaged)

        def loads_like_original():
            try:
                return content(load_model(path)) == original
            except ModelFileError:
                return False

        outcomes = {}
        for name, cmd in commands.items():
            result = run([*cmd[:1], str(path), *cmd[1:]], args.timeout, memory)
            outcomes[name] = classify(result, expected[name], loads_like_original)
            if not outcomes[name].startswith(("refused", "loaded as")):
                outcomes[name] += f": {result['err'].strip().splitlines()[-1:] or ''}"
        if args.keep and any(not o.startswith(("refused", "loaded as"))
                             for o in outcomes.values()):
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(args.keep) / path.name)
        path.unlink()
        return kind, description, outcomes

    rng = np.random.default_rng(args.seed)
    counts = {name: Counter() for name in commands}
    kinds = Counter()
    start = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        for done, (kind, description, outcomes) in enumerate(
                pool.map(one, enumerate(damaged_copies(data, args.n, rng))), 1):
            kinds[kind] += 1
            for name, outcome in outcomes.items():
                counts[name][outcome.split(":")[0]] += 1
                if not outcome.startswith(("refused", "loaded as")):
                    print(f"{description}: {name}: {outcome}", flush=True)
            if done % 25 == 0:
                print(f"{done}/{args.n} files, {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
    shutil.rmtree(work)
    print(json.dumps({"files": args.n, "base_bytes": len(data), "data": args.data,
                      "damage": dict(kinds), "counts": {k: dict(v) for k, v in counts.items()}},
                     indent=1))


if __name__ == "__main__":
    main()
