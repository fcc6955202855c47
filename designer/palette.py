"""The palette: every registered module type by category, searchable, and the blocks the user
saved; drag one onto the canvas or double-click it to add it."""
from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QSettings, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.modules import categories

from .canvas.quickadd import rank_types
from .icons import category_icon

MODULE_MIME = "application/x-convdesigner-module"
BLOCK_MIME = "application/x-convdesigner-block"  # a saved block: its graph-JSON fragment
BLOCK_ROLE = Qt.UserRole + 1


def module_mime(type_name: str) -> QMimeData:
    """What a palette drag carries: the module type's name."""
    mime = QMimeData()
    mime.setData(MODULE_MIME, type_name.encode())
    return mime


def saved_blocks() -> dict[str, str]:
    """The user's blocks: name -> graph-JSON fragment text (kept in the settings as JSON)."""
    try:
        saved = json.loads(QSettings().value("palette/blocks", "{}", str))
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) else {}


class _Tree(QTreeWidget):
    def mimeTypes(self) -> list[str]:
        return [MODULE_MIME, BLOCK_MIME]

    def mimeData(self, items) -> QMimeData:
        fragment = items[0].data(0, BLOCK_ROLE)
        if fragment is None:
            return module_mime(items[0].data(0, Qt.UserRole))
        mime = QMimeData()
        mime.setData(BLOCK_MIME, fragment.encode())
        return mime


class Palette(QWidget):
    add_requested = Signal(str)
    block_requested = Signal(dict)  # a saved block's fragment, to paste

    def __init__(self, parent=None):
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search modules")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(12)
        self.tree.setIconSize(QSize(20, 20))
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.items: dict[str, QTreeWidgetItem] = {}
        for category, types in categories().items():
            group = QTreeWidgetItem(self.tree, [category])
            group.setFlags(Qt.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            for mt in types:
                item = QTreeWidgetItem(group, [mt.name])
                item.setIcon(0, category_icon(category, 20))
                item.setToolTip(0, mt.summary)
                item.setData(0, Qt.UserRole, mt.name)
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                self.items[mt.name] = item
            group.setExpanded(True)
        self.blocks: dict[str, QTreeWidgetItem] = {}
        self._block_group: QTreeWidgetItem | None = None
        for name, fragment in saved_blocks().items():
            self._block_item(name, fragment)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_match)

    def add_block(self, name: str, fragment: dict) -> None:
        """Keep a block (a graph-JSON fragment) under My Blocks, for this and later sessions."""
        text = json.dumps(fragment)
        self._block_item(name, text)
        saved = saved_blocks()
        saved[name] = text
        QSettings().setValue("palette/blocks", json.dumps(saved))

    def _block_item(self, name: str, fragment: str) -> None:
        if self._block_group is None:
            self._block_group = QTreeWidgetItem(self.tree, ["My Blocks"])
            self._block_group.setFlags(Qt.ItemIsEnabled)
            self._block_group.setExpanded(True)
        item = self.blocks.get(name) or QTreeWidgetItem(self._block_group, [name])
        item.setIcon(0, category_icon("Block", 20))
        item.setToolTip(0, f"a saved block of {len(json.loads(fragment)['nodes'])} nodes")
        item.setData(0, BLOCK_ROLE, fragment)
        item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
        self.blocks[name] = item

    def filter(self, text: str) -> None:
        """Show the types whose name, a synonym ("fc", "maxpool"), category or summary matches
        text."""
        matching = set(rank_types(text))
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            shown = 0
            for row in range(group.childCount()):
                item = group.child(row)
                match = item.data(0, Qt.UserRole) in matching if item.data(0, BLOCK_ROLE) \
                    is None else text.strip().lower() in item.text(0).lower()
                item.setHidden(not match)
                shown += match
            group.setHidden(shown == 0)

    def visible_types(self) -> list[str]:
        return [name for name, item in self.items.items()
                if not item.isHidden() and not item.parent().isHidden()]

    def _double_clicked(self, item: QTreeWidgetItem) -> None:
        name, fragment = item.data(0, Qt.UserRole), item.data(0, BLOCK_ROLE)
        if fragment is not None:
            self.block_requested.emit(json.loads(fragment))
        elif name:
            self.add_requested.emit(name)

    def _add_first_match(self) -> None:
        shown = self.visible_types()
        if shown:
            self.add_requested.emit(shown[0])
