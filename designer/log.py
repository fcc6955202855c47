"""The Log panel, the "convdesigner" logger that feeds it and a log file, and the global
sys.excepthook that turns any uncaught exception into a logged error instead of a crash."""
from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem

logger = logging.getLogger("convdesigner")
LEVEL_COLOURS = {logging.DEBUG: "#7b8794", logging.INFO: "#1f2933", logging.WARNING: "#b26a00",
                 logging.ERROR: "#c62828", logging.CRITICAL: "#c62828"}


class _Relay(QObject):
    record = Signal(int, str, str)  # level, message, node id ("" when none)


class QtLogHandler(logging.Handler):
    """Forwards log records to the GUI thread through a queued signal (safe from any thread)."""

    def __init__(self):
        super().__init__()
        self.relay = _Relay()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self.relay.record.emit(record.levelno, message, getattr(record, "node_id", "") or "")


class LogPanel(QListWidget):
    """Time-stamped messages of one window's logger (and the program-wide ones, such as uncaught
    exceptions); an entry that names a node selects it when activated."""

    node_activated = Signal(str)
    error_logged = Signal(str)
    MAX_ENTRIES = 2000

    def __init__(self, window_logger: logging.Logger, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.handler = QtLogHandler()
        self.handler.addFilter(lambda record: record.name in (logger.name, window_logger.name))
        self.handler.relay.record.connect(self.append, Qt.QueuedConnection)
        logger.addHandler(self.handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        self.itemActivated.connect(self._activated)

    def detach(self) -> None:
        """Stop receiving records (the window is closing)."""
        logger.removeHandler(self.handler)

    def append(self, level: int, message: str, node_id: str = "") -> None:
        first_line = message.splitlines()[0] if message else ""
        item = QListWidgetItem(f"{time.strftime('%H:%M:%S')}  {first_line}")
        item.setForeground(QColor(LEVEL_COLOURS.get(level, "#1f2933")))
        item.setToolTip(message)
        item.setData(Qt.UserRole, node_id)
        self.addItem(item)
        while self.count() > self.MAX_ENTRIES:
            self.takeItem(0)
        self.scrollToBottom()
        if level >= logging.ERROR:
            self.error_logged.emit(first_line)

    def messages(self) -> list[str]:
        return [self.item(i).toolTip() for i in range(self.count())]

    def _activated(self, item: QListWidgetItem) -> None:
        node_id = item.data(Qt.UserRole)
        if node_id:
            self.node_activated.emit(node_id)


def install_excepthook(log_file: Path | None):
    """Log uncaught exceptions (to the Log panel and log_file) instead of letting them end the
    program; returns the hook that was replaced, so a caller (a test) can put it back."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_file
                   for h in logger.handlers):
            handler = logging.FileHandler(log_file, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        logger.error(f"Unexpected error: {kind.__name__}: {value}", exc_info=(kind, value, tb))

    sys.excepthook = hook
    return previous
