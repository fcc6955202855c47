"""The main window's file actions: open, import, export, save (with the questions that keep
trained work from being lost), recent files, autosave and crash recovery. MainWindow mixes
them in; they use its document, training controller, log and status bar."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine import Graph
from engine.session import Session

from . import recovery
from .files import MODEL_SUFFIXES, FileProblem, load_document, read_model, trained_epochs

MAX_RECENT = 10
FILE_FILTER = "Networks (*.json *.h5);;Graph JSON (*.json);;Model files (*.h5)"
IMPORT_FILTER = "Models (*.onnx *.h5 *.keras);;ONNX (*.onnx);;Keras (*.h5 *.keras)"
EXPORT_FILTER = "ONNX model (*.onnx);;PyTorch code (a folder: model.py, model.safetensors)"


def unplaced(graph: Graph) -> Graph:
    """graph without positions: templates and imports open laid out along the canvas."""
    for node in graph.nodes.values():
        node.pos = None
    return graph


class FileActions:
    """Mixed into MainWindow (see the module docstring)."""

    def _report_failure(self, verb: str, path: Path, err: Exception) -> None:
        """One line in the log and a dialog: what could not be done to which file, and why."""
        self.log.error(f"could not {verb} {path.name}: {err}")
        QMessageBox.critical(self, f"Cannot {verb}", f"Could not {verb} {path}:\n\n{err}")

    def open_dialog(self) -> None:
        from engine.modelfile import prepare_reader

        prepare_reader()   # the bounded reader of model files starts while the user picks one
        path, _ = QFileDialog.getOpenFileName(self, "Open network", self._last_folder(),
                                              FILE_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path) -> bool:
        """Open a .json graph or .h5 model; on failure say why and leave the document as it was."""
        path = Path(path)
        try:
            graph, session = load_document(path)
        except FileProblem as err:
            self._report_failure("open", path, err)
            return False
        if not self.maybe_save():
            return False
        self.load_graph(graph, path, session)
        self._add_recent(path)
        epochs = len(session.history["epoch"]) if session else 0
        trained = f" trained for {epochs} epoch{'s' * (epochs != 1)}" if epochs else ""
        self.log.info(f"opened {path}{trained}")
        return True

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", self._last_folder(),
                                              IMPORT_FILTER)
        if path:
            self.import_file(path)

    def import_file(self, path) -> bool:
        """Open a model made elsewhere (ONNX, Keras) with its weights, as an unsaved model."""
        from engine.interop import InteropError
        from engine.interop.importers import read_source

        path = Path(path)
        try:
            model = read_source(path)
        except (InteropError, ValueError, OSError) as err:
            self._report_failure("import", path, err)
            return False
        if not self.maybe_save():
            return False
        session = Session.from_model(model)
        session.modified = True
        self.load_graph(unplaced(model.graph), None, session)
        self.log.info(f"imported {path} ({len(model.graph.nodes)} nodes with their weights); "
                      f"save it as .h5 to keep it")
        return True

    def export_dialog(self) -> bool:
        folder = Path(self._save_folder())
        stem = self.file_path.stem if self.file_path else self.document.graph.name
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export the model", str(folder / f"{stem}.onnx"), EXPORT_FILTER)
        if not path:
            return False
        return self.export_to("pytorch" if "PyTorch" in chosen else "onnx", path)

    def export_to(self, to: str, path) -> bool:
        """Export as `convdesigner export` does: ONNX to a file, PyTorch code to a folder."""
        path = Path(path)
        if to == "pytorch" and path.suffix:
            path = path.with_suffix("")
        try:
            self.training.export(to, path, self.document.graph)
        except Exception as err:  # a refused graph, a full disk: one line for the user
            self._report_failure("export", path, err)
            return False
        what = "the best epoch's weights" if self.session.best else "the current weights"
        self.log.info(f"exported {path} ({'ONNX' if to == 'onnx' else 'PyTorch code'}, {what})")
        self._show_status(f"Exported {path}")
        return True

    def commit_typing(self) -> None:
        """A value still being typed (a Properties or Train field takes it when the focus leaves
        it, or on Enter) goes into the model before a save or a close question."""
        widget = QApplication.focusWidget()
        if widget is not None and self.isAncestorOf(widget):
            widget.clearFocus()

    def save(self) -> bool:
        """Save to the current file, or Save As where there is none or where it is a graph file
        and the model has trained state to keep (a .json holds the network only)."""
        self.commit_typing()
        if self.file_path is None or (self.file_path.suffix.lower() not in MODEL_SUFFIXES
                                      and self.session.modified):
            return self.save_as()
        return self.save_to(self.file_path)

    def save_as(self) -> bool:
        self.commit_typing()
        model = self.session.trained or (self.file_path is not None and
                                         self.file_path.suffix.lower() in MODEL_SUFFIXES)
        suggested = Path(self._save_folder()) / (
            self.file_path.stem if self.file_path else self.document.graph.name)
        suggested = suggested.with_suffix(".h5" if model else ".json")
        filters = FILE_FILTER.split(";;")
        path, chosen_filter = QFileDialog.getSaveFileName(
            self, "Save network", str(suggested), FILE_FILTER, filters[2 if model else 0])
        if not path:
            return False
        path = Path(path)
        if path.suffix.lower() not in (".json", *MODEL_SUFFIXES):
            path = path.with_suffix(".json" if "json" in chosen_filter and "h5" not in
                                    chosen_filter else ".h5")
        return self.save_to(path)

    def _save_folder(self) -> str:
        """The current file's folder, else the user's documents (never the program's own)."""
        from engine.templates import TEMPLATE_DIR

        root = TEMPLATE_DIR.parent.parent
        if self.file_path is not None and root not in self.file_path.resolve().parents:
            return str(self.file_path.parent)
        documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
        # a documents folder that does not exist would make the dialog open the working folder
        return documents if documents and Path(documents).is_dir() else str(Path.home())

    def _confirm_replacing(self, path: Path) -> bool:
        """A save never silently replaces a file's trained weights with less trained ones."""
        session, graph = self.session, self.document.graph
        if session.trained and not session.keeps_run(graph):
            answer = QMessageBox.question(
                self, "Trained weights no longer fit",
                "The network was edited since its weights were trained, so the changed layers "
                f"start afresh and the training history goes. Save {path.name} anyway?",
                QMessageBox.Save | QMessageBox.Cancel)
            if answer != QMessageBox.Save:
                return False
        before = trained_epochs(path)
        after = session.epochs_for(graph) if session.keeps_run(graph) else 0
        if before and after < before:
            answer = QMessageBox.question(
                self, "Replace a more trained model?",
                f"{path.name} holds a model trained for {before} epochs; this one has "
                f"{after or 'no'} trained epochs. Replace it?",
                QMessageBox.Save | QMessageBox.Cancel, QMessageBox.Cancel)
            return answer == QMessageBox.Save
        return True

    def save_to(self, path) -> bool:
        path = Path(path)
        graph = self.document.graph
        is_model = path.suffix.lower() in MODEL_SUFFIXES
        if is_model and not self._confirm_replacing(path):
            return False
        try:
            if is_model:
                self.training.save(path, graph)
            else:
                graph.save_json(path)
        except Exception as err:  # disk full, permissions, a refused array: all for the user
            self._report_failure("save", path, err)
            return False
        if not is_model and self.session.trained:
            self.log.info(f"{path.name} holds the network only; save as .h5 to keep the weights")
        self._weights_fit = True
        self.file_path = path
        self.document.undo_stack.setClean()
        self.recovery.discard()
        self._add_recent(path)
        self._update_title()
        self._check_weights()
        self.log.info(f"saved {path}")
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved edits or training; False when the user cancels."""
        self.commit_typing()
        if not self.unsaved:
            return True
        what = "changes" if not self.session.modified else "trained weights and changes" \
            if not self.document.undo_stack.isClean() else "training"
        graph_file = self.file_path is not None and \
            self.file_path.suffix.lower() not in MODEL_SUFFIXES
        where = ("a model file (.h5): " + self.file_path.name + " holds the network only"
                 if graph_file and self.session.modified else
                 self.file_path.name if self.file_path else "this network")
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the {what} to {where}?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:   # a .json chosen again keeps the training unsaved
            return self.save() and not self.unsaved
        return answer == QMessageBox.Discard

    def _last_folder(self) -> str:
        recent = self._recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _recent_files(self) -> list[str]:
        value = QSettings().value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: Path) -> None:
        files = [str(path.resolve())] + [f for f in self._recent_files()
                                         if f != str(path.resolve())]
        QSettings().setValue("recent_files", files[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self._recent_files()
        for index, name in enumerate(files, 1):
            action = self.recent_menu.addAction(f"&{index % 10} {Path(name).name}")
            action.setStatusTip(name)
            action.triggered.connect(lambda _=False, name=name: self.open_file(name))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # -- autosave and recovery ------------------------------------------------------------
    def autosave(self) -> None:
        """Keep unsaved work where a crash cannot take it: the edited graph, and the whole model
        when its trained state is not in its file (written by the worker between batches)."""
        if not self.unsaved:
            self.recovery.discard()
            return
        model = self.session.modified
        self.recovery.save(self.document.graph, str(self.file_path or ""), with_model=model)
        if model:
            self.training.save_copy(self.recovery.model_path)

    def offer_recovery(self) -> None:
        """Offer the autosaves of windows that did not close (a crash) for recovery."""
        for orphan in recovery.orphans(self.recovery.folder):
            source = orphan.source or "an untitled network"
            answer = QMessageBox.question(
                self, "Recover unsaved work?",
                f"convdesigner did not close properly. Recover the unsaved changes to {source} "
                f"(autosaved {orphan.saved_at.replace('T', ' ')})?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
            if answer == QMessageBox.Yes:
                pristine = not self.unsaved and self.file_path is None
                window = self if pristine else self.new_window()
                window.recover(orphan)
            orphan.forget()

    def recover(self, orphan: recovery.Orphan) -> None:
        """Open what a crashed window left: its graph, with the whole model it autosaved, or else
        the trained model of the file it came from (so recovering never costs trained work)."""
        source = Path(orphan.source) if orphan.source else None
        session = None
        for path in (orphan.model, source):
            if path is not None and path.suffix.lower() in MODEL_SUFFIXES and path.is_file():
                try:
                    session = Session.from_model(read_model(path), source)
                    break
                except FileProblem as err:
                    self.log.warning(f"recovery: {err}")
        self.load_graph(orphan.graph, source, session)
        if session is not None and orphan.model is not None:
            session.modified = True
        self.document.undo_stack.resetClean()
        self._update_title()
        self.autosave()
        self.log.info(f"recovered unsaved work on {orphan.source or 'an untitled network'}")
