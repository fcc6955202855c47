"""The Trainer: epochs of seeded mini-batches, metrics, events, pause/resume/stop, divergence guard,
the best epoch's weights and early stopping.

All randomness of a step (shuffling, augmentation, dropout) derives from (seed, epoch, batch), so a
run resumed from a saved position continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import losses
from .modelschema import HISTORY_KEYS
from .network import Network
from .optim import Optimizer

# a loss this many times the run's first one counts as exploding: such a step's weights are
# never kept as the "last good" ones
EXPLODING = 1000.0


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the network and the optimizer hold the last good weights
    and state again."""


@dataclass
class Best:
    """The epoch with the lowest validation loss so far and its weights (host copies)."""

    epoch: int
    val_loss: float
    weights: dict

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "val_loss": self.val_loss, "weights": self.weights}

    @classmethod
    def from_dict(cls, d: dict | None) -> Best | None:
        return None if d is None else cls(int(d["epoch"]), float(d["val_loss"]),
                                          dict(d["weights"]))


@dataclass
class BatchEvent:
    epoch: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    samples_per_sec: float
    lr: float
    step: int


@dataclass
class Position:
    """Where a run is: the next epoch and batch to run (saved in the model file to resume)."""

    epoch: int = 0
    batch: int = 0
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "correct": 0, "seen": 0,
                                                 "seconds": 0.0})


def normalize_into(out: np.ndarray, x: np.ndarray, mean, std) -> np.ndarray:
    """out = (x - mean) / std per channel (or a plain copy without statistics)."""
    if mean is None:
        np.copyto(out, x)
        return out
    shape = (1, -1) + (1,) * (x.ndim - 2)
    np.subtract(x, np.reshape(mean, shape), out=out)
    np.divide(out, np.reshape(std, shape), out=out)
    return out


def evaluate(net: Network, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
             normalization=None, keep_predictions: bool = False) -> dict:
    """Loss and accuracy over a whole dataset, in evaluation mode; with keep_predictions and
    class labels also "predictions", each sample's predicted class (what a confusion matrix
    counts)."""
    mean, std = (normalization.mean, normalization.std) if normalization else (None, None)
    buffer = np.empty((min(batch_size, len(x)), *x.shape[1:]), net.dtype)
    total_loss, predictions = 0.0, []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        inputs = normalize_into(buffer[:len(xb)], xb, mean, std)
        out = net.backend.to_host(net.run_forward(net.backend.stage(inputs, "input", net.dtype),
                                                  False))
        loss, _ = losses.compute(net.loss_name, out, yb)
        total_loss += loss * len(xb)
        if out.ndim == 2 and y.ndim == 1:
            predictions.append(np.argmax(out, axis=1))
    n = max(1, len(x))
    result = {"loss": total_loss / n, "accuracy": 0.0, "samples": len(x)}
    if predictions:
        classes = np.concatenate(predictions)
        result["accuracy"] = int(np.sum(classes == y)) / n
        if keep_predictions:
            result["predictions"] = classes
    return result


class Trainer:
    """Trains a Network on arrays. Listeners are plain callables:
    batch_listeners get a BatchEvent, epoch_listeners the epoch's history row (a dict)."""

    def __init__(self, net: Network, optimizer: Optimizer, x_train: np.ndarray,
                 y_train: np.ndarray, x_val: np.ndarray | None = None,
                 y_val: np.ndarray | None = None, *, epochs: int = 10, batch_size: int = 64,
                 seed: int = 0, normalization=None, augmentation=None,
                 history: dict | None = None, position: Position | None = None,
                 early_stop: int | None = None, keep_best: bool = False,
                 best: Best | None = None):
        if len(x_train) != len(y_train):
            raise ValueError(f"x_train has {len(x_train)} samples but y_train has {len(y_train)}")
        if len(x_train) == 0:
            raise ValueError("the training range is empty")
        self.net, self.optimizer = net, optimizer
        self.x, self.y, self.x_val, self.y_val = x_train, y_train, x_val, y_val
        self.val_predictions: np.ndarray | None = None   # the last validation pass's classes
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.normalization, self.augmentation = normalization, augmentation
        self.history = history if history is not None else {k: [] for k in HISTORY_KEYS}
        self.position = position or Position(epoch=len(self.history.get("epoch", [])))
        self.early_stop = early_stop
        self.keep_best = keep_best or bool(early_stop)
        self.best = best
        self.batch_listeners: list[Callable[[BatchEvent], None]] = []
        self.epoch_listeners: list[Callable[[dict], None]] = []
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self.stopped_reason: str | None = None
        batch = min(batch_size, len(x_train))
        self._inputs = np.empty((batch, *x_train.shape[1:]), net.dtype)
        self._augmented = np.empty((batch, *x_train.shape[1:]), x_train.dtype)
        self._first_loss: float | None = None
        # weights, state and optimizer slots at the start of this step, and of the last step
        # whose loss was finite and not exploding
        self._copies: dict[str, dict] = {}

    # -- control from any thread --------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def batches_per_epoch(self) -> int:
        """Every sample once per epoch, except that a last batch of one sample is skipped
        (BatchNorm needs two values per channel; the shuffle skips a different one each time)."""
        n = len(self.x)
        return n // self.batch_size + (n % self.batch_size > 1) if n > 1 else 1

    # -- the loop -----------------------------------------------------------------------------
    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def run(self) -> dict:
        """Train until `epochs` epochs are done or stop() is called; returns the history."""
        self.net.set_input_grad(False)
        self.net.allocate(self._inputs.shape[0])
        pos = self.position
        while pos.epoch < self.epochs and not self._stop.is_set() and not self._patience_out():
            self.optimizer.epoch = pos.epoch
            order = self._rng(pos.epoch).permutation(len(self.x))
            while pos.batch < self.batches_per_epoch:
                self._running.wait()
                if self._stop.is_set():
                    break
                self._step(order, pos)
            else:
                self._end_epoch(pos)
        if self._stop.is_set():
            self.stopped_reason = "stopped"
        elif self._patience_out() and pos.epoch < self.epochs:
            self.stopped_reason = (f"early stop: the validation loss has not improved for "
                                   f"{self.early_stop} epochs (best {self.best.val_loss:.4f} at "
                                   f"epoch {self.best.epoch})")
        return self.history

    def _patience_out(self) -> bool:
        """No better validation loss for early_stop epochs (each run, from its schedule's start,
        gets that many at least)."""
        return bool(self.early_stop and self.best is not None and self.position.epoch
                    - max(self.best.epoch, self.optimizer.schedule.start) >= self.early_stop)

    def _step(self, order: np.ndarray, pos: Position) -> None:
        start = time.perf_counter()
        index = np.sort(order[pos.batch * self.batch_size:(pos.batch + 1) * self.batch_size])
        xb, yb = self.x[index], self.y[index]
        n = len(index)
        if self.augmentation is not None and self.augmentation.enabled:
            xb = self.augmentation.apply(xb, self._rng(pos.epoch, pos.batch, 1),
                                         out=self._augmented[:n])
        mean, std = ((self.normalization.mean, self.normalization.std) if self.normalization
                     else (None, None))
        inputs = normalize_into(self._inputs[:n], xb, mean, std)
        net = self.net
        net.rng.bit_generator.state = np.random.PCG64([self.seed, pos.epoch, pos.batch, 2]).state
        self._copy_arrays("current")
        with np.errstate(all="ignore"):  # a non-finite loss is reported once, below
            out = net.backend.to_host(net.run_forward(
                net.backend.stage(inputs, "input", net.dtype), True))
            loss, dy = losses.compute(net.loss_name, out, yb)
        if not math.isfinite(loss):
            self._diverged(pos, loss)
        if self._first_loss is None:
            self._first_loss = loss
        if loss <= EXPLODING * max(self._first_loss, 1e-3):
            self._copies["good"], self._copies["current"] = (self._copies["current"],
                                                             self._copies.get("good"))
        net.run_backward(net.backend.stage(dy, "dy", net.dtype))
        self.optimizer.step(net)
        correct = int(np.sum(np.argmax(out, axis=1) == yb)) if out.ndim == 2 else 0
        seconds = time.perf_counter() - start
        sums = pos.sums
        sums["loss"] += loss * n
        sums["correct"] += correct
        sums["seen"] += n
        sums["seconds"] += seconds
        pos.batch += 1
        event = BatchEvent(pos.epoch, pos.batch, self.batches_per_epoch, loss, correct / n,
                           n / seconds, self.optimizer.lr, self.optimizer.step_count)
        for listener in self.batch_listeners:
            listener(event)

    def _arrays(self) -> dict:
        """The network's weights and state and the optimizer's slots: what a step changes."""
        arrays = {f"w:{k}": v for k, v in {**self.net.params, **self.net.state}.items()}
        for key, slots in self.optimizer.slots.items():
            arrays.update({f"o:{key}/{name}": value for name, value in slots.items()})
        return arrays

    def _copy_arrays(self, name: str) -> None:
        """Copy the arrays a step changes (the forward included: BatchNorm's statistics)."""
        arrays, net = self._arrays(), self.net
        copy = self._copies.get(name)
        if copy is None or copy["arrays"].keys() != arrays.keys():
            copy = self._copies[name] = {
                "arrays": {k: net.backend.zeros(v.shape, net.dtype) for k, v in arrays.items()}}
        for key, value in arrays.items():
            net.backend.copy_into(copy["arrays"][key], value)
        copy["step"] = self.optimizer.step_count

    def _diverged(self, pos: Position, loss: float) -> None:
        """Put back the weights and optimizer state of the last step whose loss was finite and
        not exploding, and stop with one message."""
        where = f"epoch {pos.epoch + 1}, batch {pos.batch + 1}"
        good = self._copies.get("good")
        if good is not None:
            for key, value in self._arrays().items():
                self.net.backend.copy_into(value, good["arrays"][key])
            self.optimizer.step_count = good["step"]
            kept = "the weights and optimizer state of the last good step were kept"
        else:
            kept = "the weights are those the run started with"
        first = f" (it started at {self._first_loss:.4g})" if self._first_loss else ""
        self.stopped_reason = (f"training diverged: the loss became {loss} at {where}{first}; "
                               f"{kept}. Try a lower learning rate.")
        raise TrainingDiverged(self.stopped_reason)

    def _end_epoch(self, pos: Position) -> None:
        sums = pos.sums
        row = {"epoch": pos.epoch + 1, "train_loss": sums["loss"] / sums["seen"],
               "train_acc": sums["correct"] / sums["seen"], "val_loss": math.nan,
               "val_acc": math.nan, "seconds": sums["seconds"],
               "samples_per_sec": sums["seen"] / max(sums["seconds"], 1e-9),
               "lr": self.optimizer.lr}
        if self.x_val is not None and len(self.x_val):
            with np.errstate(all="ignore"):
                result = evaluate(self.net, self.x_val, self.y_val,
                                  normalization=self.normalization, keep_predictions=True)
            row["val_loss"], row["val_acc"] = result["loss"], result["accuracy"]
            self.val_predictions = result.get("predictions")
            if self.keep_best and math.isfinite(row["val_loss"]) and (
                    self.best is None or row["val_loss"] < self.best.val_loss):
                self.best = Best(pos.epoch + 1, row["val_loss"], self.net.weights())
        for key in HISTORY_KEYS:
            self.history.setdefault(key, []).append(row[key])
        pos.epoch, pos.batch = pos.epoch + 1, 0
        pos.sums = Position().sums
        self.optimizer.epoch = pos.epoch
        for listener in self.epoch_listeners:
            listener(row)
