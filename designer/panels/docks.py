"""The training panels as docks of a main window (the designer's, or a bare QMainWindow in the
tests and benchmarks)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QMessageBox

from . import make_panels
from .common import panel_dock


def install_training_docks(main_window, controller) -> dict:
    """Add the training panels to main_window as tabbed docks (through its add_panel when it has
    one) and ask before closing it during a run. Returns {title: panel widget}."""
    panels = make_panels(controller)
    docks = []
    for title, widget in panels.items():
        area = Qt.RightDockWidgetArea if title == "Train" else Qt.BottomDockWidgetArea
        if hasattr(main_window, "add_panel"):
            dock = main_window.add_panel(widget, title, area)
        else:
            dock = panel_dock(main_window, widget, title)
            main_window.addDockWidget(area, dock)
            same_area = [d for d in docks if main_window.dockWidgetArea(d) == area]
            if same_area:
                main_window.tabifyDockWidget(same_area[-1], dock)
        docks.append(dock)
    next(d for d in docks if d.windowTitle() == "Curves").raise_()

    class CloseGuard(QObject):
        def eventFilter(self, watched, event):
            if event.type() != QEvent.Close or not controller.busy:
                return False
            answer = QMessageBox.question(
                main_window, "Training is running",
                "Training is still running. Stop it (keeping the weights reached) and close?",
                QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
            if answer != QMessageBox.Yes:
                event.ignore()
                return True
            controller.stop_and_wait()
            return False

    main_window.installEventFilter(CloseGuard(main_window))
    return panels
