"""What the bounded first read costs on the designer's Open (designer/files.load_document) for a
model file: the first open in a process (the reader child starts from nothing), a later open of
another file (a reader child is already waiting) and a second open of an unchanged file (no child).

    python benchmarks/modelfile_open.py [MODEL.h5] [--repeat 5]

Without MODEL, lenet5 is trained for one epoch on the MNIST sample (or `shapes`) first.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-10k"

MEASURE = """
import shutil, sys, time
from pathlib import Path
from designer.files import load_document
from engine import modelfile
path, copy = Path(sys.argv[1]), Path(sys.argv[2])
t = time.perf_counter(); load_document(path); first = time.perf_counter() - t
t = time.perf_counter(); modelfile._read_file(path); in_process = time.perf_counter() - t
time.sleep(2)  # the user picks the next file; meanwhile the next reader child gets ready
shutil.copy(path, copy)
t = time.perf_counter(); load_document(copy); warm = time.perf_counter() - t
t = time.perf_counter(); load_document(copy); cached = time.perf_counter() - t
print(first, warm, cached, in_process)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelfile-open-"))
    model = work / "lenet5.h5"
    if args.model:
        shutil.copy(args.model, model)
    else:
        data = str(MNIST) if MNIST.exists() else "shapes"
        subprocess.run([sys.executable, "-m", "engine.cli", "train", "lenet5", "--data", data,
                        "--epochs", "1", "--out", str(model), "--quiet"], cwd=ROOT, check=True)
    size = model.stat().st_size
    rows = []
    for _ in range(args.repeat):
        done = subprocess.run([sys.executable, "-c", MEASURE, str(model), str(work / "copy.h5")],
                              cwd=ROOT, check=True, capture_output=True, text=True)
        rows.append([float(v) for v in done.stdout.split()])
    shutil.rmtree(work)
    names = ("first open in a process", "open with a reader waiting", "unchanged file again",
             "in-process read alone")
    print(f"{size:,} bytes; median of {args.repeat} runs (min-max), seconds:")
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        print(f"  {name:<28} {statistics.median(values):.3f} "
              f"({min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    main()
