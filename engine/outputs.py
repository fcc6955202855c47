"""What a command says about its outputs: checks made before any work (so that no run is lost to
them), and the note for weights asked for that the file does not keep."""
from __future__ import annotations

import os
from pathlib import Path

from .atomic import writable
from .errors import UsageError

MODEL_SUFFIXES = (".h5", ".hdf5")


def check_output(path: str, *inputs: str, suffixes: tuple[str, ...] = (),
                 folder: bool = False) -> None:
    """Refuse before any work an output whose folder is missing or read-only, that is a folder
    where a file is written (or a file where a folder is), a read-only file, that would replace
    one of the command's inputs, or whose name lacks the suffix it is read back by."""
    target = Path(path)
    parent = target.resolve().parent
    if folder:   # made with its parents
        if target.exists() and not target.is_dir():
            raise UsageError(f"cannot write {path}: it is a file, and a folder is written there")
    elif not parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {parent} does not exist")
    elif not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder {parent} is not writable")
    elif target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder")
    elif target.is_file() and not writable(target):
        raise UsageError(f"cannot write {path}: the file is read-only (or locked)")
    for source in inputs:
        if target.exists() and Path(source).exists() and target.samefile(source):
            raise UsageError(f"cannot write {path}: it is this command's input; choose another "
                             f"name")
    if suffixes and target.suffix.lower() not in suffixes:
        raise UsageError(f"cannot write {path}: the file must end in {' or '.join(suffixes)} "
                         f"to be read back")


def weights_note(model: str, trained: bool, weights: str | None, has_best: bool) -> str | None:
    """What evaluate, predict and export say of the weights they use: a model never trained (a
    graph, a template), or `--weights best` for a file that keeps no best epoch."""
    if not trained:
        return f"note: {model} has not been trained: its weights are as initialised"
    if weights == "best" and not has_best:
        return (f"note: {model} keeps no best epoch (train with --early-stop or keep the best "
                f"epoch), so its last weights are used")
    return None
