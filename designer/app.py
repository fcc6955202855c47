"""The designer's main window (palette, canvas, properties, summary and log docks; menus, toolbar,
status bar; clipboard; its file actions, autosave and recovery come from file_actions.py) and
main(), the `convdesigner` entry point."""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from html import escape
from pathlib import Path

from PySide6.QtCore import QMimeData, QSettings, QSize, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStyle,
    QTabWidget,
    QToolButton,
)

from engine import Graph
from engine.session import Session

from . import recovery
from .canvas.scene import GraphScene
from .canvas.view import GraphView
from .collector import collector
from .document import CLIPBOARD_MIME, GraphDocument, parse_fragment
from .file_actions import FileActions, unplaced
from .icons import action_icon
from .layout import guess_direction
from .log import LogPanel, install_excepthook
from .palette import Palette
from .panels.common import panel_dock
from .panels.docks import install_training_docks
from .problems import ProblemsPanel
from .properties import PropertiesPanel, count_text, flops_text
from .run_watch import epoch_text
from .summary import SummaryPanel
from .templates import TemplateGallery, list_templates
from .training import TrainingController
from .warmup import KernelWarmup, WarmupIndicator

AUTOSAVE_MS = 60_000
_windows: list[MainWindow] = []
_numbers = itertools.count(1)


DOCK_OPTIONS = QMainWindow.AllowTabbedDocks | QMainWindow.AllowNestedDocks
"""Not AnimatedDocks: every relayout of the window (a panel's text changing its size hint, a
few times a second while training) then animates each dock: 500 animations and 0.57 s of the
GUI thread in one benchmarks/gui_stall.py run of lenet5."""


class MainWindow(FileActions, QMainWindow):
    """One document in one window.

    The document (.document) owns the graph being edited; the model being worked on (weights,
    optimizer, data, settings, history: an engine Session) is .session, the one record that the
    training worker, the panels, Save, Open and recovery all use. Training panels plug in with
    add_panel(widget, title) and follow selection_changed or selected_node_id()."""

    selection_changed = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.number = next(_numbers)
        self.log = logging.getLogger(f"convdesigner.window{self.number}")
        self.document = GraphDocument(parent=self)
        self.file_path: Path | None = None
        self._weights_fit = True
        self._logged_errors: set = set()
        self.recovery = recovery.RecoveryFile()
        self.warmup = KernelWarmup(self)

        self.scene = GraphScene(self.document, self)
        self.scene.set_direction(QSettings().value("canvas/direction", "TB"))
        self.view = GraphView(self.scene)
        self.setCentralWidget(self.view)
        self.palette_panel = Palette()
        self.properties = PropertiesPanel(self.document)
        self.summary = SummaryPanel(self.document)
        self.log_panel = LogPanel(self.log)
        self.setDockOptions(DOCK_OPTIONS)
        self.setTabPosition(Qt.AllDockWidgetAreas, QTabWidget.North)
        self.docks: dict[str, QDockWidget] = {}
        self._dock(self.palette_panel, "Palette", Qt.LeftDockWidgetArea)
        self._dock(self.properties, "Properties", Qt.RightDockWidgetArea)
        self._dock(self.summary, "Summary", Qt.BottomDockWidgetArea)
        self._dock(self.log_panel, "Log", Qt.BottomDockWidgetArea)
        self.problems_panel = ProblemsPanel(self.document)
        self._dock(self.problems_panel, "Problems", Qt.BottomDockWidgetArea)
        self.docks["Summary"].raise_()
        self.resizeDocks([self.docks["Palette"], self.docks["Properties"]], [170, 340],
                         Qt.Horizontal)
        self.resizeDocks([self.docks["Summary"]], [220], Qt.Vertical)

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._make_status_bar()
        self._connect()
        self._install_training()
        self._default_state = self.saveState()
        self._restore_layout()
        self.autosave_timer = QTimer(self, interval=AUTOSAVE_MS, timeout=self.autosave)
        self.autosave_timer.start()
        self._update_title()
        self._analysis_changed()
        _windows.append(self)
        collector().window_opened()

    # -- construction ---------------------------------------------------------------------
    def _dock(self, widget, title: str, area) -> QDockWidget:
        dock = panel_dock(self, widget, title)
        others = [d for d in self.docks.values() if self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if others:
            self.tabifyDockWidget(others[-1], dock)
        self.docks[title] = dock
        return dock

    def add_panel(self, widget, title: str, area=Qt.BottomDockWidgetArea) -> QDockWidget:
        """Add a dockable panel (tabbed with the panels already in area) and list it in View."""
        dock = self._dock(widget, title, area)
        self.view_menu.insertAction(self._panels_end, dock.toggleViewAction())
        dock.raise_()
        return dock

    def _action(self, text: str, slot, shortcut=None, icon=None, canvas=False,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if icon is not None:
            action.setIcon(icon)
        if tip:
            action.setStatusTip(tip)
        if canvas:
            # canvas keys (Del, F, L, Ctrl+C...) act only while the canvas has the focus, so
            # that they never steal keys from the text fields of the panels
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        return action

    def _make_actions(self) -> None:
        style = self.style()
        std = style.standardIcon
        self.new_action = self._action("&New…", self.new_document, QKeySequence.New,
                                       std(QStyle.SP_FileIcon), tip="Start from a template")
        self.new_window_action = self._action("New &Window", self.new_window, "Ctrl+Shift+N")
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.Open,
                                        std(QStyle.SP_DialogOpenButton))
        self.save_action = self._action("&Save", self.save, QKeySequence.Save,
                                        std(QStyle.SP_DialogSaveButton))
        self.save_as_action = self._action("Save &As…", self.save_as, "Ctrl+Shift+S")
        self.import_action = self._action("&Import…", self.import_dialog, "Ctrl+I",
                                          tip="Open an ONNX model or a Keras .h5/.keras file")
        self.export_action = self._action("&Export…", self.export_dialog, "Ctrl+E",
                                          tip="Write the model as ONNX or as PyTorch code")
        self.close_action = self._action("&Close Window", self.close, QKeySequence.Close)
        self.quit_action = self._action("&Quit", self.quit_all, QKeySequence.Quit)

        stack = self.document.undo_stack
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.undo_action.setIcon(std(QStyle.SP_ArrowBack))
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setIcon(std(QStyle.SP_ArrowForward))
        self.cut_action = self._action("Cu&t", self.cut, "Ctrl+X", canvas=True)
        self.copy_action = self._action("&Copy", self.copy, "Ctrl+C", canvas=True)
        self.paste_action = self._action("&Paste", self.paste, "Ctrl+V", canvas=True)
        self.duplicate_action = self._action("D&uplicate", self.duplicate, "Ctrl+D", canvas=True)
        self.delete_action = self._action("&Delete", self.delete_selection,
                                          ["Delete", "Backspace"], std(QStyle.SP_TrashIcon),
                                          canvas=True)
        self.select_all_action = self._action("Select &All", self.select_all, "Ctrl+A")
        self.group_action = self._action("&Group as Block", self.group_selection, "Ctrl+G",
                                         canvas=True, tip="Make the selected nodes one block")
        self.add_module_action = self._action("Add &Module…\tTab", self.view.open_quick_add)

        self.fit_action = self._action("&Fit to View", self.view.fit_all, "F",
                                       action_icon("fit"), canvas=True)
        self.zoom_in_action = self._action("Zoom &In", lambda: self.view.set_zoom(
            self.view.zoom() * 1.25), ["Ctrl++", "Ctrl+="])
        self.zoom_out_action = self._action("Zoom &Out", lambda: self.view.set_zoom(
            self.view.zoom() / 1.25), "Ctrl+-")
        self.zoom_reset_action = self._action("&Actual Size", lambda: self.view.set_zoom(1.0),
                                              "Ctrl+0")
        self.arrange_action = self._action("A&rrange Top to Bottom", lambda: self.arrange("TB"),
                                           "L", action_icon("arrange"), canvas=True,
                                           tip="Lay out the selection (or everything) in layers")
        self.arrange_lr_action = self._action("Arrange &Left to Right",
                                              lambda: self.arrange("LR"), "Ctrl+L", canvas=True,
                                              tip="Lay out in layers from left to right")
        self.about_action = self._action("&About convdesigner", self.about)
        self.shortcuts_action = self._action("&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self.reset_layout_action = self._action("&Reset Layout", self.reset_layout,
                                                tip="Put every panel back where it started")

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.new_action, self.new_window_action, self.open_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addActions([self.import_action, self.export_action])
        file_menu.addSeparator()
        file_menu.addActions([self.close_action, self.quit_action])

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.cut_action, self.copy_action, self.paste_action,
                              self.duplicate_action, self.delete_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.select_all_action, self.add_module_action,
                              self.group_action])

        self.view_menu = bar.addMenu("&View")
        self.view_menu.addActions([self.fit_action, self.zoom_in_action, self.zoom_out_action,
                                   self.zoom_reset_action, self.arrange_action,
                                   self.arrange_lr_action])
        self.view_menu.addSeparator()
        for dock in self.docks.values():
            self.view_menu.addAction(dock.toggleViewAction())
        self._panels_end = self.view_menu.addSeparator()
        self.view_menu.addAction(self.reset_layout_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.shortcuts_action, self.about_action])

        for action in (self.add_module_action, None, self.cut_action, self.copy_action,
                       self.paste_action, self.duplicate_action, self.delete_action,
                       self.group_action, None,
                       self.arrange_action, self.arrange_lr_action, self.fit_action):
            if action is None:
                action = QAction(self)
                action.setSeparator(True)
            self.view.addAction(action)

    def _make_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("toolbar-main")
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        bar.addActions([self.new_action, self.open_action, self.save_action])
        bar.addSeparator()
        bar.addActions([self.undo_action, self.redo_action, self.delete_action])
        for action in (self.undo_action, self.redo_action):
            # their text names the step ("Undo Set conv1 filters"): a tooltip, not a label
            bar.widgetForAction(action).setToolButtonStyle(Qt.ToolButtonIconOnly)
        bar.addSeparator()
        bar.addActions([self.arrange_action, self.fit_action])

    def _make_status_bar(self) -> None:
        status = self.statusBar()
        self.problems_button = QToolButton(autoRaise=True)
        self.problems_button.setToolTip("Click to select the next node with a problem")
        self.problems_button.clicked.connect(self.select_next_problem)
        self.weights_label = QLabel()
        self.totals_label = QLabel()
        self.zoom_label = QLabel("100 %")
        self.warmup_indicator = WarmupIndicator(self.warmup)
        for widget in (self.warmup_indicator, self.problems_button, self.weights_label,
                       self.totals_label, self.zoom_label):
            status.addPermanentWidget(widget)

    def _connect(self) -> None:
        doc = self.document
        doc.shapes_changed.connect(self._analysis_changed)
        doc.shapes_changed.connect(lambda: self.warmup.request(doc.graph))
        doc.undo_stack.cleanChanged.connect(self._update_title)
        doc.undo_stack.indexChanged.connect(self._update_title)
        self.scene.selectionChanged.connect(self._selection_changed)
        self.scene.status.connect(self._show_status)
        self.scene.node_activated.connect(self.focus_node)
        self.properties.problem.connect(self._show_refusal)
        self.summary.nodes_selected.connect(self._summary_selected)
        self.log_panel.node_activated.connect(self.focus_node)
        self.problems_panel.node_activated.connect(self.focus_node)
        self.log_panel.error_logged.connect(lambda text: self._show_status(text))
        self.palette_panel.block_requested.connect(self.view.paste_block)
        self.view.save_block_requested.connect(self.save_block)
        self.palette_panel.add_requested.connect(
            lambda name: self.view.reveal(
                self.scene.add_module(name, self.view.centre_scene_pos(), chain=True)))
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self._selection_changed()

    def _install_training(self) -> None:
        """The training controller and its panels, following this window's graph and selection;
        the title and the weights label follow the model's trained state."""
        self.training = TrainingController(session=Session(self.document.graph), parent=self)
        self.training_panels = install_training_docks(self, self.training)
        self.document.shapes_changed.connect(
            lambda: self.training.set_graph(self.document.graph))
        self.selection_changed.connect(
            lambda ids: self.training.select_node(ids[0] if len(ids) == 1 else None))
        self.training.input_shape_requested.connect(self._set_input_shape)
        self.training.modified_changed.connect(self._model_changed)
        self.training.epoch_done.connect(lambda _: self._check_weights())
        self.training.warning.connect(self._training_message)
        self.training.warning_withdrawn.connect(
            lambda message: self._training_message(message, logging.INFO))
        self.training.diverged.connect(self._training_message)
        self.training.error.connect(self.log.error)
        self._run_state = "idle"
        self.training.state_changed.connect(self._log_run_start)
        self.training.epoch_done.connect(self._log_epoch)
        self.training.finished.connect(lambda reason: self.log.info(f"training {reason}"))
        self.training.node_health.connect(self.scene.show_health)
        # room for the stacked curves and the image panels below the canvas
        self.training_panels["Curves"].setMinimumHeight(170)
        self.training_panels["Train"].sweep_requested.connect(self.open_sweep)
        self.sweep_dialog = None

    def open_sweep(self) -> None:
        """The Sweep dialog (one per window): its trials fill the Runs panel."""
        from .sweep import SweepDialog

        if self.sweep_dialog is None:
            self.sweep_dialog = SweepDialog(self.training, self)
            self.sweep_dialog.trial_file.connect(self.training_panels["Runs"].add_file)
            self.sweep_dialog.open_requested.connect(self.open_file)
        elif not self.sweep_dialog.running:
            self.sweep_dialog.refresh()
        self.sweep_dialog.show()
        self.sweep_dialog.raise_()

    @property
    def session(self):
        """The model being worked on (an engine Session)."""
        return self.training.session

    def _model_changed(self) -> None:
        self._update_title()
        self._check_weights()

    def _training_message(self, message: str, level: int = logging.WARNING) -> None:
        """A message about the run in the Log and, for 15 s, the status bar."""
        self.log.log(level, message)
        self.statusBar().showMessage(message, 15000)

    def _log_run_start(self, state: str) -> None:
        """The Log keeps a run's story: its start with the settings, each epoch, its end."""
        previous, self._run_state = self._run_state, state
        if state != "training" or previous == "paused" or self.training.session is None:
            return
        s = self.training.session.settings
        self.log.info(f"training {self.document.graph.name}: {s.optimizer}, lr {s.lr:g}, batch "
                      f"{s.batch_size}, {s.epochs} epoch{'s' * (s.epochs != 1)} on "
                      f"{s.data.get('source', '?')}")

    def _log_epoch(self, row: dict) -> None:
        self.log.info(f"{epoch_text(row)}, {row['samples_per_sec']:,.0f} samples/s")

    def _set_input_shape(self, shape: list) -> None:
        inputs = self.document.graph.nodes_of_type("Input")
        if len(inputs) == 1:
            self.document.set_param(inputs[0].id, "shape", list(shape))

    # -- selection ------------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        return self.scene.selected_node_ids()

    def selected_node_id(self) -> str | None:
        """The one selected node (None when none or several are selected)."""
        ids = self.scene.selected_node_ids()
        return ids[0] if len(ids) == 1 else None

    def _selection_changed(self) -> None:
        ids = self.scene.selected_node_ids()
        self.properties.set_node(ids[0] if len(ids) == 1 else None, selected=len(ids))
        self.summary.show_selection(ids)
        anything = bool(ids or self.scene.selected_edges())
        for action in (self.cut_action, self.copy_action, self.duplicate_action):
            action.setEnabled(bool(ids))
        self.delete_action.setEnabled(anything)
        self.selection_changed.emit(ids)

    def _summary_selected(self, ids: list[str]) -> None:
        self.scene.select_nodes(ids)
        if ids:
            self.view.ensureVisible(self.scene.node_items[ids[0]], 60, 60)

    def focus_node(self, node_id: str) -> None:
        """Select a node, bring it into view and show its properties."""
        if node_id not in self.scene.node_items:
            return
        self.scene.select_nodes([node_id])
        self.view.ensureVisible(self.scene.node_items[node_id], 60, 60)
        self.docks["Properties"].show()
        self.docks["Properties"].raise_()

    def select_next_problem(self) -> None:
        order = [i for i in self.document.graph.nodes
                 if i in self.document.analysis.errors_by_node()]
        if not order:
            return
        current = self.selected_node_id()
        after = order[(order.index(current) + 1) % len(order)] if current in order else order[0]
        self.focus_node(after)

    # -- analysis feedback ----------------------------------------------------------------
    def _analysis_changed(self) -> None:
        analysis, graph = self.document.analysis, self.document.graph
        # an empty canvas lacks Input and Output, which is no news: log nothing for it
        errors = {(e.node_id, e.message) for e in analysis.errors} if graph.nodes else set()
        if errors or self._logged_errors:
            for node_id, message in sorted(errors - self._logged_errors, key=str):
                self.log.warning(f"{node_id}: {message}" if node_id else message,
                                 extra={"node_id": node_id or ""})
            for node_id, message in sorted(self._logged_errors - errors, key=str):
                if node_id is None or node_id in graph.nodes:
                    self.log.info(f"resolved: {node_id + ': ' if node_id else ''}{message}",
                                  extra={"node_id": node_id or ""})
        self._logged_errors = errors
        count, unused = len(analysis.errors), len(analysis.unused)
        self.problems_button.setText(
            "empty network" if not graph.nodes else
            f"\u26a0 {count} problem{'s' * (count != 1)}" if count else
            f"\u26a0 {unused} unused node{'s' * (unused != 1)}" if unused else
            "\u2713 no problems")
        self.problems_button.setStyleSheet("color: #5f6b76;" if not graph.nodes else
                                           "color: #c62828;" if count else
                                           "color: #b26a00;" if unused else "color: #2e7d32;")
        self.problems_button.setToolTip(
            "\n".join(str(e) for e in analysis.errors)
            or (f"Reaching no Output, so neither trained nor counted: "
                f"{', '.join(analysis.unused)}" if unused else
                "The network is complete and every shape fits."))
        params, flops = analysis.totals()
        partial = "+" if count else ""   # layers past a problem have no shapes to count
        self.totals_label.setText(f"{count_text(params)}{partial} weights · "
                                  f"{flops_text(flops)}{partial} FLOPs")
        self.totals_label.setToolTip("Counted up to the problems: the layers past them have no "
                                     "shape yet." if count else "")
        self._check_weights()

    def _check_weights(self) -> None:
        session = self.session
        if session is None:
            return
        trained = session.trained
        fit = not trained or session.keeps_run(self.document.graph)
        if trained and self._weights_fit and not fit:
            self.log.warning("this edit changed the network: the trained weights of the layers "
                             "it changed no longer fit (undo to keep them)")
        self._weights_fit = fit
        self.weights_label.setVisible(trained)
        if trained:
            epochs = session.epochs_for(self.document.graph)
            done = ("trained elsewhere" if not epochs and session.trained_elsewhere
                    else f"trained {epochs} epoch{'s' * (epochs != 1)}")
            self.weights_label.setText(
                (f"weights: {done}" if fit
                 else "weights: invalidated by edits (undo to keep them)")
                + (" · unsaved" if session.modified else ""))
            self.weights_label.setStyleSheet("" if fit else "color: #b26a00;")

    def _show_refusal(self, text: str) -> None:
        """A Properties refusal in the status bar, taken down with it (never another message)."""
        if text:
            self._show_status(text)
        elif self.statusBar().currentMessage().startswith("Not applied"):
            self.statusBar().clearMessage()

    def _show_status(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text, 8000)
        else:
            self.statusBar().clearMessage()

    @property
    def unsaved(self) -> bool:
        """Edits, or trained state (a run, a reset, loaded weights), not in the file yet."""
        session = self.session
        return not self.document.undo_stack.isClean() or bool(session and session.modified)

    def _update_title(self) -> None:
        name = self.file_path.name if self.file_path else self.document.graph.name
        self.setWindowTitle(f"{name}[*] \u2014 convdesigner")
        self.setWindowModified(self.unsaved)

    # -- editing --------------------------------------------------------------------------
    def delete_selection(self) -> None:
        self.document.remove(self.scene.selected_node_ids(), self.scene.selected_edges())

    def copy(self) -> None:
        ids = self.scene.selected_node_ids()
        if not ids:
            return
        text = json.dumps(self.document.fragment(ids))
        mime = QMimeData()
        mime.setData(CLIPBOARD_MIME, text.encode())
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
        self._show_status(f"Copied {len(ids)} node{'s' * (len(ids) != 1)}")

    def cut(self) -> None:
        ids = self.scene.selected_node_ids()
        if ids:
            self.copy()
            self.document.remove(ids, text=f"Cut {len(ids)} node{'s' * (len(ids) != 1)}")

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        text = bytes(mime.data(CLIPBOARD_MIME)).decode() if mime.hasFormat(CLIPBOARD_MIME) \
            else mime.text()
        fragment = parse_fragment(text)
        if fragment is None:
            self._show_status("The clipboard holds no convdesigner nodes")
            return
        cursor = self.view.viewport().mapFromGlobal(QCursor.pos())
        at = None
        if self.view.viewport().rect().contains(cursor):
            point = self.view.mapToScene(cursor)
            at = (point.x(), point.y())
        pasted = self.document.paste(fragment, at=at)
        self.scene.select_nodes(pasted)
        self._show_status(f"Pasted {len(pasted)} node{'s' * (len(pasted) != 1)}")

    def duplicate(self) -> None:
        ids = self.scene.selected_node_ids()
        if ids:
            self.scene.select_nodes(self.document.paste(self.document.fragment(ids)))

    def save_block(self, group_id: str) -> None:
        """Keep a block in the palette (My Blocks) as a module of its own."""
        group = next(g for g in self.document.graph.groups if g.id == group_id)
        self.palette_panel.add_block(group.name, self.document.fragment(group.nodes))
        self._show_status(f"{group.name} is in the palette under My Blocks")

    def group_selection(self) -> None:
        """The selected nodes become one named block (two or more, none in a block yet)."""
        ids = self.scene.selected_node_ids()
        if len(ids) < 2:
            self._show_status("Select two nodes or more to make a block")
            return
        try:
            self.document.group(ids)
        except ValueError as err:
            self._show_status(f"Cannot make a block: {err}")

    def select_all(self) -> None:
        self.scene.select_nodes(self.document.graph.nodes)

    def arrange(self, direction: str | None = None) -> None:
        """Lay out the selection (two nodes or more) or everything; a direction given becomes
        the canvas's (remembered for the next windows)."""
        if direction is not None and direction != self.document.direction:
            self.scene.set_direction(direction)
            QSettings().setValue("canvas/direction", direction)
        ids = self.scene.selected_node_ids()
        self.document.arrange(ids if len(ids) > 1 else None, sizes=self.scene.node_sizes())
        if len(ids) <= 1:
            self.view.fit_all()

    # -- files ----------------------------------------------------------------------------
    def load_graph(self, graph: Graph, path: Path | None, session: Session | None) -> None:
        """Make graph this window's document and session its model (a fresh one for graph when
        None), replacing the current ones without asking."""
        self.file_path = path
        self._logged_errors = set()
        self._weights_fit = False   # no "edit invalidated the weights" while the two change
        self.training.set_session(session or Session(graph))
        # a saved layout keeps its direction; an unplaced graph takes the canvas's preference
        self.scene.set_direction(guess_direction(graph)
                                 or QSettings().value("canvas/direction", "TB"))
        # its shapes_changed runs the analysis feedback and hands the graph to training
        self.document.reset(graph)
        self._update_title()
        self.view.fit_all()

    def new_document(self) -> None:
        gallery = TemplateGallery(list_templates(), self)
        if gallery.exec() != TemplateGallery.Accepted or not self.maybe_save():
            return
        graph, key = gallery.chosen()
        self.load_graph(unplaced(graph), None, Session.from_template(key) if key else None)
        self.log.info(f"new network from template {key}" if key else "new blank network")

    def new_window(self) -> MainWindow:
        window = MainWindow()
        window.show()
        return window

    # -- window ---------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        settings = QSettings()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:   # 1400x860, or what the screen has room for
            room = self.screen().availableGeometry()
            self.resize(min(1400, room.width()), min(860, room.height()))
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        self.autosave_timer.stop()
        self.warmup.stop()
        self.training.shutdown()  # its worker must not outlive the window that owns it
        self.recovery.close()
        self.log_panel.detach()
        if self in _windows:
            _windows.remove(self)
            collector().window_closed()
        event.accept()

    def quit_all(self) -> None:
        for window in list(_windows):
            if not window.close():
                return

    def reset_layout(self) -> None:
        """Every panel back in its first place and size, each shown."""
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.show()
        self.docks["Summary"].raise_()

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(what, keys) for every action with a shortcut, from the actions themselves."""
        rows = {}
        for action in self.findChildren(QAction):
            keys = ", ".join(k.toString(QKeySequence.NativeText) for k in action.shortcuts())
            text = action.text().split("\t")
            if len(text) > 1:  # "Add Module…\tTab": a key the canvas handles itself
                keys = ", ".join(filter(None, [keys, text[1]]))
            name = text[0].replace("&", "").rstrip("…")
            if action in (self.undo_action, self.redo_action):
                name = name.split()[0]  # not the step it would undo now
            if keys:
                rows[name] = keys
        return sorted(rows.items())

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{escape(name)}</td><td style='padding-left:16px'><b>"
                       f"{escape(keys)}</b></td></tr>" for name, keys in self.shortcut_rows())
        box = QMessageBox(QMessageBox.NoIcon, "Keyboard shortcuts",
                          f"<table>{rows}</table><p>On the canvas: Space+drag or the middle "
                          "button pans, the wheel zooms, Shift+wheel scrolls, Esc cancels a "
                          "wire, right-click a node in error for its fixes.</p>",
                          QMessageBox.Close, self)
        box.exec()

    def about(self) -> None:
        from engine import __version__

        QMessageBox.about(self, "About convdesigner",
                          f"convdesigner {__version__}\n\nDesign convolutional networks by wiring "
                          "modules, train them on your data and keep them as HDF5 files.")


def clipboard_to_plain_text() -> None:
    """Leave copied nodes on the clipboard as plain text (their graph-JSON, which paste() reads
    too): Qt deletes the clipboard's data after the interpreter has ended, and a QMimeData made
    in Python then crashed the process on its way out."""
    clipboard = QApplication.clipboard()
    mime = clipboard.mimeData()
    if mime is not None and mime.hasFormat(CLIPBOARD_MIME):
        clipboard.setText(mime.text())


def main(argv=None) -> int:
    """Open the designer, optionally with FILE (.h5 model or .json graph)."""
    parser = argparse.ArgumentParser(prog="convdesigner", description="Open the designer.")
    parser.add_argument("file", nargs="?", help=".h5 model or .json graph to open")
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setOrganizationName("convdesigner")
    app.setApplicationName("convdesigner")
    app.setStyle("Fusion")
    app.aboutToQuit.connect(clipboard_to_plain_text)
    data = Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
    install_excepthook(data / "convdesigner.log")
    window = MainWindow()
    window.show()
    if args.file:
        window.open_file(args.file)
    else:  # an example network with its built-in dataset, ready to train
        session = Session.from_template("shapes")
        window.load_graph(unplaced(session.graph), None, session)
    window.offer_recovery()
    return app.exec()
