"""Uncaught exceptions are logged to the Log panel and the log file, never a crash; errors in the
graph show on their nodes and in the Log."""
import sys

import pytest
from PySide6.QtCore import QTimer

from designer.log import install_excepthook, logger


@pytest.fixture
def hook(tmp_path):
    log_file = tmp_path / "logs" / "convdesigner.log"
    previous = install_excepthook(log_file)
    yield log_file
    sys.excepthook = previous
    for handler in [h for h in logger.handlers if getattr(h, "baseFilename", None)]:
        logger.removeHandler(handler)
        handler.close()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_logged_not_fatal(window, qtbot, hook):
    def broken():
        raise RuntimeError("a bug in a slot")

    QTimer.singleShot(0, broken)
    qtbot.waitUntil(lambda: any("a bug in a slot" in m for m in window.log_panel.messages()))
    entry = next(m for m in window.log_panel.messages() if "a bug in a slot" in m)
    assert entry.startswith("Unexpected error: RuntimeError") and "Traceback" in entry
    assert "a bug in a slot" in window.statusBar().currentMessage()
    text = hook.read_text()
    assert "ERROR Unexpected error: RuntimeError: a bug in a slot" in text
    assert "in broken" in text


def test_keyboard_interrupt_still_reaches_the_previous_hook(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: seen.append(kind))
    install_excepthook(None)  # monkeypatch puts the original hook back afterwards
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    sys.excepthook(ValueError, ValueError("logged instead"), None)
    assert seen == [KeyboardInterrupt]


def test_graph_errors_show_on_the_node_and_in_the_log(window, qtbot):
    doc = window.document
    doc.add_node("Input", (0, 0))
    doc.add_node("Dense", (250, 0))
    doc.connect("input", "dense1")
    item = window.scene.node_items["dense1"]
    assert item.errors == ["Dense needs a flat input [features]; insert Flatten before it. "
                           "Received: [1, 28, 28]"]
    assert "insert Flatten" in item.toolTip()
    qtbot.waitUntil(lambda: any("dense1: Dense needs a flat input" in m
                                for m in window.log_panel.messages()))
    assert window.problems_button.text() == "\u26a0 2 problems"  # and: no Output node
    window.select_next_problem()
    assert window.selected_node_id() == "dense1"
    doc.undo_stack.undo()
    assert window.scene.node_items["dense1"].errors == ["unconnected input: Dense needs 1 input. "
                                                        "Received: 0"]
