"""Keyboard shortcuts from the actions, Reset layout, health badges, refused drops."""
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent
from PySide6.QtWidgets import QApplication
from ui_driver import drag_event, drop_module

from designer.canvas.items import HEADER, NODE_WIDTH


def test_keyboard_shortcuts_are_listed_from_the_actions(window):
    rows = dict(window.shortcut_rows())
    assert rows["Fit to View"] == "F"
    assert rows["Arrange Top to Bottom"] == "L"
    assert rows["Add Module"] == "Tab"
    assert rows["Undo"] == "Ctrl+Z"
    assert rows["Keyboard Shortcuts"] == "F1"
    window.fit_action.setShortcut("Shift+F")
    assert dict(window.shortcut_rows())["Fit to View"] == "Shift+F"


def test_reset_layout_brings_back_every_panel(window):
    window.docks["Palette"].hide()
    window.removeDockWidget(window.docks["Problems"])
    window.reset_layout_action.trigger()
    assert window.docks["Palette"].isVisible() and window.docks["Problems"].isVisible()
    assert window.dockWidgetArea(window.docks["Problems"]) == Qt.BottomDockWidgetArea


def test_health_badge_is_a_white_disc_on_any_header(window):
    node_id = drop_module(window, "Conv2D", (0, 0))
    item = window.scene.node_items[node_id]
    window.view.set_zoom(1.0)
    window.view.centerOn(item.sceneBoundingRect().center())
    for level in ("ok", "warn", "bad"):
        item.set_health((level, "statistics"))
        QApplication.processEvents()
        image = window.view.viewport().grab().toImage()
        centre = window.view.mapFromScene(item.pos() + QPointF(NODE_WIDTH - 12, HEADER / 2))
        edge = image.pixelColor(centre.x() + 5, centre.y())  # inside the disc, off the symbol
        assert edge.lightness() > 230, level


def test_a_refused_drop_says_why(window):
    mime = QMimeData()
    mime.setText("hello")
    event = drag_event(QDragEnterEvent, QPoint(50, 50), mime)
    QApplication.sendEvent(window.view.viewport(), event)
    assert "Only modules from the palette" in window.statusBar().currentMessage()


def test_a_new_window_shows_no_fixes_for_data_it_has_not_loaded(window):
    """A bare window's Train panel: "no data loaded" and none of the fix buttons (three were
    shown, and did nothing, until some data was loaded)."""
    train = window.training_panels["Train"]
    assert not train.mismatch.isVisible()
    assert not any(b.isVisible() for b in (train.fix_model_data, train.fix_shape, train.fix_reset))
