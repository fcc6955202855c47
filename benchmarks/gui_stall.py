"""How training in the designer affects the window: the longest GUI event-loop stall (a 5 ms
QTimer recording the gaps between its ticks) while a model trains with the panels open (and,
apart, from the Stop to the run's end), and training samples/s with the panels open versus
headless (rounds alternate, to share the noise).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_stall.py [--template vgg-small]
        [--data shapes-rgb:3000] [--batches 40] [--rounds 2] [--layout all|tabbed] [--json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow  # noqa: E402

from designer.app import DOCK_OPTIONS  # noqa: E402
from designer.panels.docks import install_training_docks  # noqa: E402
from designer.training import TrainingController  # noqa: E402
from engine.session import Session  # noqa: E402

TICK_MS = 5


def wait(app: QApplication, condition, timeout: float) -> None:
    """Run the event loop (sleeping when idle, as the designer's does) until condition()."""
    if condition():
        return
    loop = QEventLoop()
    end = time.perf_counter() + timeout
    expired = []

    def check():
        if condition():
            loop.quit()
        elif time.perf_counter() > end:
            expired.append(True)
            loop.quit()
    poll = QTimer(interval=10)
    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    if expired:
        raise TimeoutError("the benchmark waited too long")


def headless_rate(template: str, settings, info, batches: int) -> float:
    """Samples/s of what `convdesigner train` runs, on this thread with no window: a fresh model
    of the template trained with the designer session's own settings (optimizer, batch size,
    augmentation, a validation pass each epoch), over batches 3..batches (wall clock)."""
    session = Session.open(template)
    session.settings = dataclasses.replace(settings, epochs=1000)
    trainer = session.trainer(info.dataset, info.train_range, info.val_range)
    stamps: list[float] = []

    def listen(event):
        stamps.append(time.perf_counter())
        if len(stamps) >= batches:
            trainer.stop()
    trainer.batch_listeners.append(listen)
    trainer.run()
    return (len(stamps) - 3) * settings.batch_size / (stamps[-1] - stamps[2])


class TickProbe:
    """Gaps (ms) between the ticks of a precise 5 ms timer: how long the event loop was held."""

    def __init__(self):
        self.gaps: list[float] = []
        self.ends: list[float] = []   # when each gap ended (perf_counter)
        self.clock = QElapsedTimer()
        self.timer = QTimer(interval=TICK_MS)
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.gaps.append(self.clock.nsecsElapsed() / 1e6)
        self.ends.append(time.perf_counter())
        self.clock.restart()

    def start(self) -> None:
        self.gaps.clear()
        self.ends.clear()
        self.clock.start()
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        return np.asarray(self.gaps[1:])

    def split(self, at: float) -> tuple[np.ndarray, np.ndarray]:
        """The gaps that ended before `at` and those after (the first tick's left out)."""
        gaps, ends = np.asarray(self.gaps[1:]), np.asarray(self.ends[1:])
        return gaps[ends < at], gaps[ends >= at]


def tick_gaps(app, seconds: float) -> np.ndarray:
    """Gaps between 5 ms timer ticks (ms) over `seconds` of an otherwise idle event loop."""
    probe = TickProbe()
    probe.start()
    end = time.perf_counter() + seconds
    wait(app, lambda: time.perf_counter() > end, seconds + 60)
    return probe.stop()


def gui_run(app, controller, panels, batches: int, probe: bool = True) -> dict:
    """Train through the Train panel for `batches` batches, with a 5 ms timer recording the
    gaps between its ticks when `probe` (the timer wakes the GUI thread 200 times a second,
    which itself costs the training some throughput: rates are measured without it)."""
    train = panels["Train"]
    received: list[tuple[float, int]] = []
    stopping: list[bool] = []
    ticks = TickProbe()

    def batch_done(payload):
        # the rate ends at the report that stops the run: the last one comes after the run's
        # end (recording it in the session), which no epoch of a longer run waits for
        if stopping:
            return
        received.append((time.perf_counter(), payload["step"]))
        # three reports at least: the rate runs from the second to the last
        if len(received) > 2 and payload["step"] - received[0][1] >= batches:
            stopping.append(time.perf_counter())
            controller.stop()

    controller.batch_done.connect(batch_done)
    controller.reset()   # from a fresh start, as the headless side: no epoch end in the window
    wait(app, lambda: controller.state == "idle" and controller.session.position.epoch == 0
         and controller.session.position.batch == 0, 60)
    train.smoke_first.setChecked(False)
    train.epochs.setValue(1000)
    start_step = (controller.session.optimizer.step_count
                  if controller.session and controller.session.optimizer else 0)
    train.start_button.click()
    wait(app, lambda: bool(received), 600)
    if probe:
        ticks.start()
    cpu, wall = time.thread_time(), time.perf_counter()
    wait(app, lambda: controller.state == "idle", 3600)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    ticks.stop()
    gaps_ms, end_ms = ticks.split(stopping[0] if stopping else math.inf)   # ended by itself
    controller.batch_done.disconnect(batch_done)
    (t0, s0), (t1, s1) = received[1], received[-1]
    batch = train.batch_size.value()
    result = {"samples_per_sec": (s1 - s0) * batch / (t1 - t0), "steps": s1 - start_step,
              "gui_thread_cpu_share": cpu / wall}
    if probe:
        result.update(max_stall_ms=float(gaps_ms.max()),
                      p99_stall_ms=float(np.percentile(gaps_ms, 99)),
                      stalls_over_50ms=int((gaps_ms > 50).sum()), ticks=len(gaps_ms),
                      run_end_max_stall_ms=float(end_ms.max(initial=0.0)))
    return result


def lay_out(window: QMainWindow, layout: str) -> None:
    """'all': every panel visible at once (the heaviest case); 'tabbed': as installed."""
    if layout != "all":
        return
    docks = window.findChildren(QDockWidget)
    left, right = docks[:len(docks) // 2], docks[len(docks) // 2:]
    for area, column in ((Qt.LeftDockWidgetArea, left), (Qt.RightDockWidgetArea, right)):
        for dock in column:   # adding an added dock moves it out of its tab group
            window.addDockWidget(area, dock, Qt.Vertical)
    for dock in docks:
        dock.show()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="vgg-small")
    parser.add_argument("--data", default="shapes-rgb:3000")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--layout", choices=("all", "tabbed"), default="all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    window = QMainWindow()
    window.setDockOptions(DOCK_OPTIONS)   # as the designer's window
    window.resize(1600, 1000)
    controller = TrainingController(Session.open(args.template).graph)
    panels = install_training_docks(window, controller)
    lay_out(window, args.layout)
    window.show()
    panels["Train"].batch_size.setValue(args.batch_size)
    panels["Train"].set_data_spec(args.data)
    wait(app, lambda: controller.data is not None and controller.state == "idle"
         and controller.data.dataset.source == args.data, 600)   # not the default one
    info = controller.data
    per_epoch = -(-(info.train_range[1] - info.train_range[0]) // args.batch_size)
    if args.batches >= per_epoch:
        parser.error(f"--batches must stay within one epoch ({per_epoch} batches), so that "
                     f"neither side's rate includes a validation pass")
    settings = controller.session.settings
    headless_rate(args.template, settings, info, 4)   # compile and warm the kernels

    idle = tick_gaps(app, 5.0)
    results = {"template": args.template, "data": args.data, "layout": args.layout,
               "batch_size": args.batch_size, "batches": args.batches,
               "idle_max_stall_ms": float(idle.max()),
               "idle_p99_stall_ms": float(np.percentile(idle, 99)), "rounds": []}
    if not args.json:
        print(f"not training: longest stall {idle.max():.1f} ms, p99 "
              f"{np.percentile(idle, 99):.1f} ms (the machine's own noise)", flush=True)
    for _ in range(args.rounds):
        headless = headless_rate(args.template, settings, info, args.batches)
        rate = gui_run(app, controller, panels, args.batches, probe=False)
        stalls = gui_run(app, controller, panels, args.batches)
        results["rounds"].append({"headless_samples_per_sec": headless,
                                  "panels_samples_per_sec": rate["samples_per_sec"],
                                  "gui_thread_cpu_share": rate["gui_thread_cpu_share"],
                                  "probed": stalls})
        if not args.json:
            print(f"headless {headless:6.1f} samples/s | panels open {rate['samples_per_sec']:6.1f}"
                  f" ({rate['samples_per_sec'] / headless - 1:+.1%}), GUI thread busy "
                  f"{rate['gui_thread_cpu_share']:.0%} | with the 5 ms probe: longest stall "
                  f"{stalls['max_stall_ms']:.1f} ms, p99 {stalls['p99_stall_ms']:.1f} ms, "
                  f"{stalls['stalls_over_50ms']} of {stalls['ticks']} ticks over 50 ms, "
                  f"{stalls['samples_per_sec']:.1f} samples/s; from Stop to idle: longest "
                  f"stall {stalls['run_end_max_stall_ms']:.1f} ms", flush=True)
    controller.shutdown()
    rounds = results["rounds"]
    results["max_stall_ms"] = max(r["probed"]["max_stall_ms"] for r in rounds)
    results["run_end_max_stall_ms"] = max(r["probed"]["run_end_max_stall_ms"] for r in rounds)
    results["panels_vs_headless"] = (sum(r["panels_samples_per_sec"] for r in rounds)
                                     / sum(r["headless_samples_per_sec"] for r in rounds) - 1)
    print(json.dumps(results, indent=1) if args.json else
          f"longest stall while training {results['max_stall_ms']:.1f} ms (from Stop to idle "
          f"{results['run_end_max_stall_ms']:.1f} ms); panels open vs headless "
          f"{results['panels_vs_headless']:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
