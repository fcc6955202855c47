"""What the designer tells the user about a run besides the Trainer's own figures: the batches'
points, sent in bunches with the wall-clock rate and the time left, and the warnings a learner
needs (a diverging loss, an accuracy stuck at guessing) with their withdrawal. Plain Python: the
TrainingController turns its answers into signals."""
from __future__ import annotations

import math
import time

DIVERGING = 10.0          # a smoothed loss this many times the run's first one: warn
CHANCE_AFTER_STEPS = 50   # accuracy still at chance at an epoch's end after this many: warn
LEARNING_MARGIN = 0.05    # a later epoch this far above chance withdraws that warning


def epoch_text(row: dict) -> str:
    """An epoch's history row as the Train panel and the Log say it."""
    val = (f", validation loss {row['val_loss']:.4f} accuracy {row['val_acc']:.1%}"
           if math.isfinite(row["val_loss"]) else "")
    return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} accuracy "
            f"{row['train_acc']:.1%}{val}")


class RunWatch:
    """One run of `trainer`; chance is the accuracy of always guessing the largest class."""

    def __init__(self, trainer, chance: float):
        self.trainer, self.chance = trainer, chance
        self.points: list[tuple] = []   # (x in epochs, loss, accuracy, lr, step) not sent yet
        self.last_event = None
        self.rate = math.nan            # samples/s by the wall clock (listeners and all)
        self._rate_mark = (time.perf_counter(), 0)
        self._seen = 0
        self._first_loss = self._smoothed = None
        self._warned: set[str] = set()
        self._standing: str | None = None   # the kind of the last warning given

    def batch(self, event) -> str | None:
        """Record a finished batch; returns the warning to give, once, when the smoothed loss
        climbs DIVERGING times above the run's first one."""
        trainer = self.trainer
        self.last_event = event
        self._seen += min(trainer.batch_size, len(trainer.x) - (event.batch - 1)
                          * trainer.batch_size)
        self.points.append((event.epoch + event.batch / event.batches, event.loss,
                            event.accuracy, event.lr, event.step))
        now = time.perf_counter()
        mark_time, mark_seen = self._rate_mark
        if now - mark_time >= 1.0:   # smoothed, for the time left
            rate = (self._seen - mark_seen) / (now - mark_time)
            self.rate = rate if math.isnan(self.rate) else 0.5 * self.rate + 0.5 * rate
            self._rate_mark = (now, self._seen)
        if self._first_loss is None:
            self._first_loss = self._smoothed = event.loss
            return None
        self._smoothed = 0.8 * self._smoothed + 0.2 * event.loss
        if self._smoothed <= DIVERGING * max(self._first_loss, 1e-3) or "loss" in self._warned:
            return None
        self._warned.add("loss")
        self._standing = "loss"
        return (f"The loss is diverging: {self._smoothed:.3g}, up from {self._first_loss:.3g} "
                f"at the start. Stop and lower the learning rate (now {trainer.optimizer.lr:g}).")

    def resumed(self) -> None:
        """After a pause: the rate counts from now."""
        self._rate_mark = (time.perf_counter(), self._seen)

    def take_points(self, event=None) -> dict | None:
        """The points not sent yet, with where the run stands after `event` (epoch, batch,
        rate, time left, fraction done); None when there are none."""
        if not self.points:
            return None
        points, self.points = self.points, []
        payload = {"points": points, "step": points[-1][4]}
        if event is not None:
            trainer, n = self.trainer, len(self.trainer.x)
            done = event.epoch * n + min(event.batch * trainer.batch_size, n)
            rate = self.rate if not math.isnan(self.rate) else event.samples_per_sec
            payload.update(epoch=event.epoch + 1, epochs=trainer.epochs, batch=event.batch,
                           batches=event.batches, samples_per_sec=rate,
                           eta=(trainer.epochs * n - done) / max(rate, 1e-9),
                           fraction=done / (trainer.epochs * n))
        return payload

    def epoch(self, row: dict) -> tuple[str | None, str | None]:
        """(a warning to give, a warning to withdraw) after an epoch: an accuracy still at what
        guessing gives after CHANCE_AFTER_STEPS steps, or a later epoch clearly above it."""
        accuracy, epoch = row["train_acc"], row["epoch"]
        if accuracy <= self.chance + 0.02 and "chance" not in self._warned \
                and self.trainer.optimizer.step_count >= CHANCE_AFTER_STEPS:
            self._warned.add("chance")
            self._standing = "chance"
            return (f"Not learning: training accuracy {accuracy:.1%} after epoch {epoch} is what "
                    f"always guessing the largest class gives ({self.chance:.1%}). Stop, then "
                    f"lower the learning rate or check the labels."), None
        if self._standing == "chance" and accuracy > self.chance + LEARNING_MARGIN:
            self._standing = None
            return None, (f"Learning after all: training accuracy {accuracy:.1%} after epoch "
                          f"{epoch}, above the {self.chance:.1%} of guessing.")
        return None, None
