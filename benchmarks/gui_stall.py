"""How training in the designer affects the window: the longest GUI event-loop stall (a 5 ms
QTimer recording the gaps between its ticks) while a model trains with the panels open (and,
apart, from the Stop to the run's end), and training samples/s with the panels open versus
headless, both from the second epoch on (rounds alternate, to share the noise).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_stall.py [--template vgg-small]
        [--data shapes-rgb:3000] [--epochs 3] [--rounds 2] [--layout all|tabbed] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import threading
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
    poll = QTimer(interval=100)
    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    if expired:
        raise TimeoutError("the benchmark waited too long")


def stamp_batches(trainer, stamps: list[tuple]) -> None:
    """Record (when, epoch, samples, the GUI thread's CPU time) as each of the trainer's batches
    ends, in the thread that trains: both sides are timed this way."""
    size, n = trainer.batch_size, len(trainer.x)
    gui_clock = time.pthread_getcpuclockid(threading.main_thread().ident)

    def listen(event):
        stamps.append((time.perf_counter(), event.epoch,
                       min(size, n - (event.batch - 1) * size), time.clock_gettime(gui_clock)))
    trainer.batch_listeners.insert(0, listen)


def rate_of(stamps: list[tuple]) -> float:
    """Samples/s over the batches of the second epoch on, each timed from the end of the batch
    before it in its epoch: the first epoch (kernels warming up, the window's first layout and
    paint) and the validation passes between epochs are left out, as in the command line's
    epoch rate."""
    samples = seconds = 0.0
    for (before, epoch_before, *_), (when, epoch, size, _) in zip(stamps, stamps[1:]):
        if epoch >= 1 and epoch == epoch_before:
            samples += size
            seconds += when - before
    return samples / seconds


def gui_share_of(stamps: list[tuple]) -> float:
    """The GUI thread's CPU time over the wall time from the second epoch's first batch on."""
    first = next(stamp for stamp in stamps if stamp[1] >= 1)
    return (stamps[-1][3] - first[3]) / (stamps[-1][0] - first[0])


def headless_rate(template: str, settings, info) -> float:
    """Samples/s of what `convdesigner train` runs, on this thread with no window: a fresh model
    of the template trained with the designer session's own settings (optimizer, batch size,
    augmentation, epochs, a validation pass each epoch)."""
    session = Session.open(template)
    session.settings = settings
    trainer = session.trainer(info.dataset, info.train_range, info.val_range)
    stamps: list[tuple] = []
    stamp_batches(trainer, stamps)
    trainer.run()
    return rate_of(stamps)


@contextlib.contextmanager
def stamped_designer_runs(stamps: list[tuple]):
    """Every trainer the designer's session makes meanwhile is timed as headless_rate's is."""
    make = Session.trainer

    def trainer(session, *args, **kwargs):
        made = make(session, *args, **kwargs)
        stamp_batches(made, stamps)
        return made
    Session.trainer = trainer
    try:
        yield
    finally:
        Session.trainer = make


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


def gui_run(app, controller, panels, epochs: int, per_epoch: int,
            probe: bool = True) -> dict:
    """Train `epochs` epochs through the Train panel from a fresh start; when `probe`, with a
    5 ms timer recording the gaps between its ticks (the timer wakes the GUI thread 200 times a
    second, which itself costs the training some throughput: rates are measured without it),
    and Stop pressed halfway through the last epoch."""
    train = panels["Train"]
    ticks = TickProbe()
    controller.reset()
    wait(app, lambda: controller.state == "idle" and controller.session.position.epoch == 0
         and controller.session.position.batch == 0, 60)
    train.smoke_first.setChecked(False)
    train.epochs.setValue(epochs)
    stamps: list[tuple] = []
    with stamped_designer_runs(stamps):
        train.start_button.click()
        if probe:
            ticks.start()
        stopped: list[float] = []

        def done() -> bool:
            if probe and not stopped and stamps and stamps[-1][1] == epochs - 1 \
                    and sum(stamp[1] == epochs - 1 for stamp in stamps) * 2 >= per_epoch:
                stopped.append(time.perf_counter())
                train.stop_button.click()
            return controller.state == "idle" and len(stamps) > 0
        wait(app, done, 3600)
    ticks.stop()
    gaps_ms, end_ms = ticks.split(stopped[0] if stopped else math.inf)
    result = {"samples_per_sec": rate_of(stamps), "gui_thread_cpu_share": gui_share_of(stamps)}
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
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per run; rates are taken over the second epoch on")
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
    if args.epochs < 2:
        parser.error("--epochs must be 2 or more: rates are taken over the second epoch on")
    info = controller.data
    per_epoch = -(-(info.train_range[1] - info.train_range[0]) // args.batch_size)
    settings = dataclasses.replace(controller.session.settings, epochs=args.epochs)
    headless_rate(args.template, settings, info)   # compile and warm the kernels

    idle = tick_gaps(app, 5.0)
    results = {"template": args.template, "data": args.data, "layout": args.layout,
               "batch_size": args.batch_size, "epochs": args.epochs,
               "idle_max_stall_ms": float(idle.max()),
               "idle_p99_stall_ms": float(np.percentile(idle, 99)), "rounds": []}
    if not args.json:
        print(f"not training: longest stall {idle.max():.1f} ms, p99 "
              f"{np.percentile(idle, 99):.1f} ms (the machine's own noise)", flush=True)
    for _ in range(args.rounds):
        headless = headless_rate(args.template, settings, info)
        rate = gui_run(app, controller, panels, args.epochs, per_epoch, probe=False)
        stalls = gui_run(app, controller, panels, args.epochs, per_epoch)
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
