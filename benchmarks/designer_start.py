"""How long the designer takes to start, as `convdesigner [FILE]` starts it (designer.launch.main),
each run in a fresh child process. Two times per run, in seconds since the process was started:

    window   the main window is shown and the event loop is idle for the first time (about to
             wait for input: QAbstractEventDispatcher.aboutToBlock)
    kernels  the background kernel warm-up is done: training's numba kernels are loaded

One run before the measured ones fills numba's cache and saves the window layout, so the figures
are for a warm start of a returning user (--cold gives every run an empty numba cache instead:
the first start's compilation). Settings and data go to a temporary folder; QT_QPA_PLATFORM
defaults to offscreen. Prints each run and min-median-max.

    .venv/bin/python benchmarks/designer_start.py [--runs 7] [--file net.json] [--cold] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600


def child(start: float, argv: list[str]) -> None:
    """Start the designer on argv and print the times once the warm-up is done."""
    sys.path.insert(0, str(ROOT))
    from designer.launch import main  # first, as the console script imports it

    # isort: split
    from PySide6.QtCore import QAbstractEventDispatcher, QTimer
    from PySide6.QtWidgets import QApplication

    from designer import app as designer_app

    # main() takes this instance over; it exists early only so that the loop can be watched
    app = QApplication.instance() or QApplication([sys.argv[0]])
    times: dict[str, float] = {}

    def idle() -> None:
        windows = designer_app._windows
        if "window" in times or not windows or not windows[0].isVisible():
            return
        times["window"] = time.monotonic() - start
        poll.start()

    def kernels() -> None:
        window = designer_app._windows[0]
        if not window.warmup.busy:
            times["kernels"] = time.monotonic() - start
            poll.stop()
            print(json.dumps(times), flush=True)
            window.close()   # saves the layout the next run restores

    poll = QTimer(interval=5, timeout=kernels)
    QAbstractEventDispatcher.instance().aboutToBlock.connect(idle)
    main(argv)
    app.quit()


def run_once(argv: list[str], env: dict) -> dict:
    start = time.monotonic()   # CLOCK_MONOTONIC: the same clock in the child
    result = subprocess.run([sys.executable, __file__, "--child", repr(start), *argv], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the designer did not start (exit {result.returncode}):\n"
                           f"{result.stderr[-2000:]}")
    return json.loads(lines[-1])


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{statistics.median(values):.2f}-{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--file", help="open this .json graph or .h5 model instead of the example")
    parser.add_argument("--cold", action="store_true",
                        help="an empty numba cache for every run (the first start)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    argv = [str(Path(args.file).resolve())] if args.file else []
    with tempfile.TemporaryDirectory(prefix="designer-start-") as home:
        env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_DATA_HOME": f"{home}/data"}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        runs = []
        for index in range(args.runs + 1):
            if args.cold:
                env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-", dir=home)
            times = run_once(argv, env)
            if index == 0:
                first = times
            else:
                runs.append(times)
            if not args.json:
                label = "first (not counted)" if index == 0 else f"run {index}"
                print(f"{label:>20}: window {times['window']:.2f} s, "
                      f"kernels {times['kernels']:.2f} s", flush=True)
    summary = {key: {"min": min(r[key] for r in runs),
                     "median": statistics.median(r[key] for r in runs),
                     "max": max(r[key] for r in runs)} for key in ("window", "kernels")}
    if args.json:
        print(json.dumps({"first": first, "runs": runs, "summary": summary}))
        return
    cache = "cold" if args.cold else "warm"
    print(f"{len(runs)} starts, {cache} numba cache, seconds min-median-max:")
    print(f"  window shown and idle: {spread([r['window'] for r in runs])}")
    print(f"  kernels ready:         {spread([r['kernels'] for r in runs])}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(float(sys.argv[2]), sys.argv[3:])
    else:
        main()
