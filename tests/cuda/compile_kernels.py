"""Compile every CUDA kernel the simulator tests launched to PTX for real GPUs, without one.

The simulator runs kernels as Python, so it never type-checks them the way the GPU compiler
does. This does: record the launches, then compile each with its recorded argument types.

    CONVDESIGNER_RECORD_KERNELS=/tmp/kernels.json pytest tests/cuda
    python tests/cuda/compile_kernels.py /tmp/kernels.json [--cc 7.5 --cc 9.0]

Needs numba-cuda's NVVM and NVRTC libraries (the CUDA toolkit, or the pip packages that
numba-cuda[cu12]/[cu13] brings), not a driver. Reports, per kernel, float64 instructions in
float32 kernels (slow on consumer GPUs) and local-memory use (registers spilled). Kernels the
tests ran in float64 only are compiled in float32 too.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "0"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("signatures")
    parser.add_argument("--cc", action="append", help="compute capabilities (default 7.5, 9.0)")
    args = parser.parse_args()
    from types import SimpleNamespace

    from numba import cuda
    from numba.cuda import dispatcher

    failures = 0
    rows = [tuple(row) for row in json.load(open(args.signatures))]
    # a kernel the tests only ran in float64 (gradients are checked there) also gets float32
    single = {name for _, name, signature in rows if "float32[" in signature}
    rows += [(module, name, signature.replace("float64", "float32"))
             for module, name, signature in rows if name not in single]
    for cc in args.cc or ["7.5", "9.0"]:
        major, minor = (int(v) for v in cc.split("."))
        # device functions are compiled for "the current device": there is none here
        device = SimpleNamespace(compute_capability=(major, minor))
        dispatcher.get_current_device = lambda device=device: device
        for module_name, name, signature in rows:
            kernel = getattr(importlib.import_module(module_name), name)
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, f"void({signature})", cc=(major, minor))
            except Exception as err:  # noqa: BLE001 - report every kernel, then fail
                failures += 1
                print(f"FAIL sm_{major}{minor} {name}({signature}): {err}")
                continue
            notes = []
            if "float64" not in signature:
                f64 = len(re.findall(r"\.f64\b", ptx))
                if f64:
                    notes.append(f"{f64} f64 ops")
            if re.search(r"\.local\b", ptx):
                notes.append("local memory")
            print(f"ok   sm_{major}{minor} {name}({signature})"
                  + (f"  [{', '.join(notes)}]" if notes else ""))
    print(f"{len(rows)} signatures, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
