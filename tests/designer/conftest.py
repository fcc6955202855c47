"""Designer test fixtures: private settings and data folders, scripted dialogs, a main window."""
import pytest
from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog, QMessageBox

from designer import recovery
from designer.app import MainWindow, clipboard_to_plain_text


class Dialogs:
    """Stands in for the modal dialogs: records what was asked and answers as told."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []
        self.answer = QMessageBox.Discard
        self.save_path = ""

    def question(self, parent, title, text, *args, **kwargs):
        self.asked.append(("question", text))
        return self.answer

    def message(self, kind):
        def show(parent, title, text, *args, **kwargs):
            self.asked.append((kind, text))
            return QMessageBox.Ok
        return show

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.asked]


@pytest.fixture(autouse=True, scope="session")
def plain_clipboard_at_exit(qapp):
    """As the designer does when it quits (the tests never quit the application)."""
    yield
    clipboard_to_plain_text()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, qapp):
    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("convdesigner-tests")
    QCoreApplication.setApplicationName("convdesigner-tests")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    monkeypatch.setattr(recovery, "recovery_folder", lambda: tmp_path / "recovery")


@pytest.fixture(autouse=True)
def dialogs(monkeypatch):
    scripted = Dialogs()
    monkeypatch.setattr(QMessageBox, "question", scripted.question)
    for kind in ("critical", "warning", "information"):
        monkeypatch.setattr(QMessageBox, kind, scripted.message(kind))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (scripted.save_path, "Graph JSON (*.json)"))
    return scripted


@pytest.fixture
def window(qtbot):
    main = MainWindow()
    qtbot.addWidget(main)
    main.resize(1400, 860)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.document.undo_stack.setClean()
