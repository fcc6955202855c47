"""Crash recovery: each window autosaves its unsaved graph to a file of its own (and, while its
trained state is unsaved, the whole model beside it), locked while the window lives; a file whose
lock is free at start-up was left by a crash and can be recovered."""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QLockFile, QStandardPaths

from engine import Graph

FORMAT = "convdesigner.recovery"


def recovery_folder() -> Path:
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "recovery"


class RecoveryFile:
    """This window's autosave file and the lock that marks it as in use."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or recovery_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex
        self.path = self.folder / f"{key}.json"
        self.model_path = self.folder / f"{key}.h5"
        self.lock = QLockFile(str(self.folder / f"{key}.lock"))
        self.lock.tryLock(0)

    def save(self, graph: Graph, source: str | None, with_model: bool = False) -> None:
        """Write the graph; with_model says that model_path holds (or is being given) the whole
        model, whose trained state its source file lacks."""
        data = {"format": FORMAT, "source": source, "saved_at": datetime.now().isoformat(
            timespec="seconds"), "graph": graph.to_dict(),
            "model": self.model_path.name if with_model else None}
        if not with_model:
            self.model_path.unlink(missing_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, self.path)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.model_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.discard()
        self.lock.unlock()


class Orphan:
    """An autosave left by a window that did not close (its lock is ours now)."""

    def __init__(self, path: Path, lock: QLockFile):
        self.path, self.lock = path, lock
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not a convdesigner recovery file")
        self.graph = Graph.from_dict(data.get("graph"))
        self.source = data.get("source")
        self.saved_at = data.get("saved_at", "")
        model = path.with_suffix(".h5")
        self.model = model if data.get("model") and model.is_file() else None

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".h5").unlink(missing_ok=True)
        self.lock.unlock()


def orphans(folder: Path | None = None) -> list[Orphan]:
    """Recovery files whose window is gone, newest first; unreadable ones are deleted."""
    folder = folder or recovery_folder()
    found = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        lock = QLockFile(str(path.with_suffix(".lock")))
        if not lock.tryLock(0):
            continue  # its window is still open (in this or another process)
        try:
            found.append(Orphan(path, lock))
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            lock.unlock()
    return found
