"""Type-to-add: a popup at the cursor that filters module types as you type; Enter adds one."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from engine.modules import REGISTRY, categories

from ..icons import category_icon


def rank_types(text: str) -> list[str]:
    """Module type names matching text: name prefix first, then name, category, summary."""
    text = text.strip().lower()
    ranked = []
    for category, types in categories().items():
        for mt in types:
            name = mt.name.lower()
            if not text or name.startswith(text):
                score = 0
            elif text in name:
                score = 1
            elif text in category.lower():
                score = 2
            elif text in mt.summary.lower():
                score = 3
            else:
                continue
            ranked.append((score, len(ranked), mt.name))
    return [name for _, _, name in sorted(ranked)]


class QuickAddPopup(QFrame):
    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.search = QLineEdit(placeholderText="Add module: type to search")
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setMinimumHeight(220)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #5f6b76;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.search)
        layout.addWidget(self.results)
        layout.addWidget(self.hint)
        self.resize(300, 320)
        self.search.textChanged.connect(self._fill)
        self.search.installEventFilter(self)
        self.results.itemActivated.connect(lambda item: self._choose(item.text()))
        self._fill("")

    def open_at(self, global_pos: QPoint, hint: str = "") -> None:
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.search.clear()
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def _fill(self, text: str) -> None:
        self.results.clear()
        for name in rank_types(text):
            item = QListWidgetItem(category_icon(REGISTRY[name].category, 16), name)
            item.setToolTip(REGISTRY[name].summary)
            self.results.addItem(item)
        self.results.setCurrentRow(0)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.KeyPress:
            key = event.key()
            if key in (Qt.Key_Up, Qt.Key_Down, Qt.Key_PageUp, Qt.Key_PageDown):
                self.results.keyPressEvent(event)
                return True
            if key in (Qt.Key_Return, Qt.Key_Enter):
                item = self.results.currentItem()
                if item is not None:
                    self._choose(item.text())
                return True
            if key == Qt.Key_Escape:
                self.close()
                return True
        return super().eventFilter(obj, event)

    def _choose(self, name: str) -> None:
        self.close()
        self.chosen.emit(name)
