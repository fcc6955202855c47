"""Files: save, close and reopen; corrupt and foreign files; unsaved changes; autosave and
recovery after a crash; the template gallery; remembered layout and recent files."""
import json

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from designer import recovery
from designer.app import MainWindow
from designer.layout import layered_layout
from designer.templates import TemplateGallery, list_templates, render_thumbnail
from engine.templates import load_template, template_names


def open_window(qtbot, path=None):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    if path is not None:
        assert window.open_file(path)
    return window


def test_save_close_reopen_gives_an_identical_graph(window, qtbot, tmp_path, dialogs):
    window.document.reset(load_template("inception-mini"))
    window.document.move_nodes({"input": (12.5, -40)})
    window.document.set_param("output", "loss", "mse")
    dialogs.save_path = str(tmp_path / "net")
    assert window.save()
    path = tmp_path / "net.json"
    assert window.file_path == path and window.document.undo_stack.isClean()
    saved = window.document.graph.to_dict()
    window.close()
    again = open_window(qtbot, path)
    assert again.document.graph.to_dict() == saved
    assert not again.isWindowModified()
    assert QSettings().value("recent_files")[0] == str(path.resolve())


def test_model_file_round_trip_keeps_weights_until_an_edit(window, qtbot, tmp_path, dialogs):
    pytest.importorskip("engine.modelfile")
    window.document.reset(load_template("lenet5"))
    assert window.save_to(tmp_path / "lenet.h5")  # an untrained model: its initial weights
    weights = window.session.weights()
    window.close()
    again = open_window(qtbot, tmp_path / "lenet.h5")
    assert again.document.graph.to_dict() == load_template("lenet5").to_dict()
    reopened = again.session.weights()
    assert set(reopened) == set(weights)
    assert all(np.array_equal(reopened[k], weights[k]) for k in weights)
    assert again.session.fits(again.document.graph) and not again.weights_label.isVisible()

    again.document.move_nodes({"conv1": (0, 300)})  # moving keeps the weights
    assert again.save_to(tmp_path / "moved.h5")
    assert dialogs.asked == []


@pytest.mark.parametrize("content", [b"{not json", b'{"format": "something-else"}',
                                     b"\x89HDF\r\n\x1a\n garbage", b"\x00\xff\xfe binary",
                                     json.dumps({"format": "convdesigner.graph", "version": 1,
                                                 "nodes": [{"id": "a", "type": "Nope"}],
                                                 "edges": [{"from": "a", "to": "b"}]}).encode()])
def test_opening_a_corrupt_file_leaves_the_document_as_it_was(window, tmp_path, dialogs,
                                                              content):
    window.document.reset(load_template("lenet5"))
    window.document.set_param("conv1", "filters", 4)
    before = window.document.graph.to_dict()
    path = tmp_path / ("bad.h5" if content.startswith(b"\x89HDF") else "bad.json")
    path.write_bytes(content)
    assert not window.open_file(path)
    assert dialogs.kinds() == ["critical"]
    assert path.name in dialogs.asked[0][1]
    assert window.document.graph.to_dict() == before
    assert window.document.undo_stack.canUndo()
    assert window.file_path is None


def test_closing_with_unsaved_changes_asks(window, qtbot, dialogs, tmp_path):
    window.document.add_node("Input", (0, 0))
    dialogs.answer = QMessageBox.Cancel
    assert not window.close()
    assert window.isVisible()
    dialogs.answer = QMessageBox.Save
    dialogs.save_path = str(tmp_path / "kept.json")
    assert window.close()
    assert (tmp_path / "kept.json").exists()
    assert [k for k, _ in dialogs.asked] == ["question", "question"]


def test_autosave_and_recovery_after_a_crash(window, qtbot, tmp_path, dialogs):
    window.document.reset(load_template("shapes"))
    window.document.set_param("conv1", "filters", 3)
    window.autosave()
    autosaved = window.recovery.path
    assert autosaved.exists()
    assert recovery.orphans(window.recovery.folder) == []  # locked: its window is alive
    window.recovery.lock.unlock()  # as if the process had died
    crashed = window.document.graph.to_dict()

    dialogs.answer = QMessageBox.Yes
    fresh = MainWindow()
    qtbot.addWidget(fresh)
    fresh.offer_recovery()
    assert "did not close properly" in dialogs.asked[-1][1]
    assert fresh.document.graph.to_dict() == crashed
    assert fresh.isWindowModified()
    assert not autosaved.exists()
    fresh.document.undo_stack.setClean()

    window.document.undo_stack.setClean()
    window.autosave()  # nothing unsaved: no recovery file
    assert not window.recovery.path.exists()


def test_template_gallery_shows_every_template_with_a_sentence(qtbot):
    templates = list_templates()
    assert [t.key for t in templates] == template_names()
    lenet = templates[0]
    assert lenet.name == "LeNet-5" and lenet.description.startswith("LeNet-5 (LeCun et al.")
    assert lenet.description.endswith(".")
    gallery = TemplateGallery(templates)
    qtbot.addWidget(gallery)
    assert gallery.list.count() == len(templates) + 1
    gallery.list.setCurrentRow(1)
    graph, name = gallery.chosen()
    assert name == "lenet5" and graph == load_template("lenet5")
    image = render_thumbnail(graph).toImage()
    colours = {image.pixelColor(x, image.height() // 2).name() for x in range(image.width())}
    assert len(colours) > 3  # boxes in several category colours, not a blank card


def test_new_from_template(window, monkeypatch):
    monkeypatch.setattr(TemplateGallery, "exec", lambda self: (self.list.setCurrentRow(2), 1)[1])
    window.new_document()
    template = load_template(template_names()[1])
    graph = window.document.graph
    assert [(n.id, n.type, n.params) for n in graph.nodes.values()] == \
        [(n.id, n.type, n.params) for n in template.nodes.values()]
    assert graph.edges == template.edges
    # laid out top to bottom, whatever the file's positions were
    assert {i: n.pos for i, n in graph.nodes.items()} == layered_layout(template)
    assert window.file_path is None and not window.isWindowModified()


def test_window_layout_is_remembered(qtbot):
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    first.docks["Log"].raise_()
    first.docks["Palette"].hide()
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    assert second.docks["Palette"].isHidden()


def test_main_opens_the_file_given(tmp_path, monkeypatch, qtbot):
    import sys

    from PySide6.QtWidgets import QApplication

    from designer import app

    path = tmp_path / "lenet.json"
    load_template("lenet5").save_json(path)
    monkeypatch.setattr(QApplication, "exec", lambda self=None: 0)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(app, "install_excepthook", lambda log_file: None)
    before = set(app._windows)
    assert app.main([str(path)]) == 0
    (window,) = set(app._windows) - before
    qtbot.addWidget(window)
    assert window.file_path == path and window.document.graph == load_template("lenet5")


def test_save_as_never_proposes_a_missing_documents_folder(window, monkeypatch, tmp_path):
    from pathlib import Path

    from PySide6.QtCore import QStandardPaths

    monkeypatch.setattr(QStandardPaths, "writableLocation",
                        lambda _kind: str(tmp_path / "no-such" / "Documents"))
    assert window._save_folder() == str(Path.home())   # not the program's working folder
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(QStandardPaths, "writableLocation", lambda _kind: str(tmp_path / "docs"))
    assert window._save_folder() == str(tmp_path / "docs")


def test_a_value_still_being_typed_is_saved_and_asked_about(window, qtbot, tmp_path, dialogs):
    """Ctrl+S, Save and Quit with a Properties field typed into but not left (no Enter): the
    value is in the file, and a close asks about it (it was dropped without a question)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window.document.reset(load_template("lenet5"))
    path = tmp_path / "net.json"
    assert window.save_to(path)
    window.focus_node("conv1")
    editor = window.properties.editors["filters"]
    editor.setFocus()
    editor.selectAll()
    QTest.keyClick(editor, Qt.Key_Backspace)
    QTest.keyClicks(editor, "32")
    window.save()
    saved = {n["id"]: n for n in json.loads(path.read_text())["nodes"]}
    assert saved["conv1"]["params"]["filters"] == 32 and not window.isWindowModified()
    editor.setFocus()
    editor.selectAll()
    QTest.keyClicks(editor, "64")
    dialogs.answer = QMessageBox.Cancel
    assert not window.maybe_save() and "Save the changes" in dialogs.asked[-1][1]
    assert window.document.graph.nodes["conv1"].params["filters"] == 64
