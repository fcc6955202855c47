"""JSON schemas of every attribute and JSON part of a model file (DESIGN.md 3.2), in one place.

check(part, value) validates with jsonschema and raises SchemaError("path.in.json: what is
wrong"); integers are JSON integers only (1.0 is not one).
"""
from __future__ import annotations

from functools import cache

from .optim import DEFAULTS, OPTIMIZERS, SCHEDULES

MAX_EPOCHS = 10**7  # also the longest history
MAX_COUNT = 10**12  # steps, batches, samples
MAX_SEED = 2**63 - 1

FINITE = {"type": "number", "minimum": -1e300, "maximum": 1e300}
NONNEG = {"type": "number", "minimum": 0, "maximum": 1e300}
UNIT = {"type": "number", "minimum": 0, "maximum": 1}


def integer(lo: int = 0, hi: int = MAX_COUNT) -> dict:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def closed(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


SCHEDULE = closed({"kind": {"enum": list(SCHEDULES)}, "step_size": integer(0, MAX_EPOCHS),
                   "gamma": NONNEG, "epochs": integer(0, MAX_EPOCHS), "min_lr": NONNEG,
                   "start": integer(0, MAX_EPOCHS)})
OPTIMIZER_KEYS = {"lr": NONNEG, "weight_decay": NONNEG, "momentum": UNIT,
                  "nesterov": {"type": "boolean"},
                  "beta1": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                  "beta2": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                  "eps": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}
AUGMENTATION = closed({"translate": integer(0, 10**4), "hflip": {"type": "boolean"},
                       "brightness": NONNEG, "contrast": UNIT})
RANGE = {"oneOf": [{"type": "null"},
                   {"type": "array", "items": integer(), "minItems": 2, "maxItems": 2}]}
CHANNEL_STATS = {"type": "array", "items": FINITE, "minItems": 1, "maxItems": 10**5}
SUMS = closed({"loss": NONNEG, "correct": integer(), "seen": integer(), "seconds": NONNEG},
              ("loss", "correct", "seen", "seconds"))

TEXT = {"type": "string", "maxLength": 1000}
SERIES = {"type": "array", "items": {"type": ["number", "null"], "minimum": -1e300,
                                     "maximum": 1e300}, "maxItems": MAX_EPOCHS}
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds",
               "samples_per_sec", "lr")
ENDINGS = ("completed", "stopped", "early stop", "diverged", "pruned", "failed")

SCHEMAS: dict[str, dict] = {
    "graph": {"type": "object"},  # its meaning is Graph.from_dict's to check
    "format_version": integer(1, 10**6),
    "created_by": {"type": "string", "maxLength": 1000},
    "saved_at": {"type": "string", "maxLength": 1000},
    "optimizer type": {"enum": list(OPTIMIZERS)},
    **{f"{kind} config": closed({**{key: OPTIMIZER_KEYS[key] for key in DEFAULTS[kind]},
                                 "schedule": SCHEDULE, "step": integer(),
                                 "epoch": integer(0, MAX_EPOCHS)})
       for kind in OPTIMIZERS},
    "data spec": closed({
        "source": {"type": "string", "maxLength": 4096},
        "input_shape": {"type": "array", "items": integer(1, 10**9), "minItems": 1,
                        "maxItems": 4},
        "class_names": {"type": "array", "items": {"type": "string", "maxLength": 1024},
                        "maxItems": 10**5},
        "normalization": closed({"mean": CHANNEL_STATS,
                                 "std": {**CHANNEL_STATS, "items": {
                                     "type": "number", "exclusiveMinimum": 0, "maximum": 1e300}}},
                                ("mean", "std")),
        "train_range": RANGE, "val_range": RANGE}),
    "training state": {
        **closed({"seed": integer(0, MAX_SEED),
                  "position": closed({"epoch": integer(0, MAX_EPOCHS),
                                      "batch": integer(0, 10**8), "sums": SUMS},
                                     ("epoch", "batch", "sums"))},
                 ("seed", "position")),
        # a run stopped inside an epoch has seen samples (the epoch's mean divides by them)
        "if": {"properties": {"position": {"properties": {"batch": {"minimum": 1}}}}},
        "then": {"properties": {"position": {"properties": {"sums": {"properties": {
            "seen": {"minimum": 1}}}}}}}},
    "training settings": closed({
        "optimizer": {"enum": list(OPTIMIZERS)}, "lr": NONNEG,
        "schedule": {"oneOf": [{"enum": list(SCHEDULES)}, SCHEDULE]},
        "weight_decay": NONNEG, "batch_size": integer(1, 10**7), "augmentation": AUGMENTATION,
        "seed": integer(0, MAX_SEED),
        "device": {"type": "string", "pattern": "^(cpu|cuda(:[0-9]{1,3})?)$"},
        "early_stop": {"oneOf": [{"type": "null"}, integer(1, MAX_EPOCHS)]},
        "keep_best": {"type": "boolean"}, "epochs": integer(1, MAX_EPOCHS),
        # the dataset the next run trains on (the Train panel's choice)
        "data": closed({
            "source": {"type": "string", "maxLength": 4096},
            "image_size": {"oneOf": [{"type": "null"}, {
                "type": "array", "items": integer(1, 10**5), "minItems": 2, "maxItems": 2}]},
            "color": {"enum": ["auto", "gray", "rgb", None]},
            "val_percent": {"type": "number", "minimum": 0, "maximum": 100},
            "train_range": {"type": "string", "maxLength": 100},
            "val_range": {"type": "string", "maxLength": 100}})}),
    "best epoch": integer(0, MAX_EPOCHS),
    # one training run (Start..Stop, a `train`, a sweep's trial); history: its epochs' rows,
    # null where not measured
    "run": closed({"started": TEXT, "ended": TEXT, "ended_how": {"enum": list(ENDINGS)},
                   "graph": {"type": "object"}, "settings": {"type": "object"},
                   "data": {"type": "string", "maxLength": 4096},
                   "history": closed({key: SERIES for key in HISTORY_KEYS}),
                   "trial": integer(0, 10**9)},
                  ("started", "ended", "ended_how", "graph", "settings", "history")),
    "best val_loss": FINITE,  # NaN passes any bound: the loader refuses it itself
}


class SchemaError(ValueError):
    """A value does not follow its part's schema; the message says where and why."""


@cache
def _validator(part: str):
    import jsonschema  # imported on first use: it costs ~60 ms at start-up

    strict = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=strict)
    return cls(SCHEMAS[part])


def warm() -> None:
    """Import jsonschema and build every validator now (e.g. while waiting for something)."""
    for part in SCHEMAS:
        _validator(part)


def check(part: str, value) -> None:
    """Raise SchemaError naming the path inside value and what is wrong with it."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(part).iter_errors(value))
    if error is None:
        return
    where = ".".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    raise SchemaError(f"{where}: {message}" if where else message)
