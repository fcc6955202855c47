"""Type-to-add: a popup at the cursor that filters module types as you type; Enter adds one."""
from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from engine.modules import REGISTRY, categories

from ..icons import category_icon

# the names people know layers by, to the type stems they mean (Conv -> Conv1D/2D/3D)
SYNONYMS = {
    "conv": ("Conv",), "convolution": ("Conv",), "maxpool": ("Pool",), "avgpool": ("Pool",
    "GlobalPool"), "pool": ("Pool", "GlobalPool", "ChannelPool"), "gap": ("GlobalPool",),
    "fc": ("Dense",), "linear": ("Dense",), "fullyconnected": ("Dense",),
    "relu": ("Activation",), "sigmoid": ("Activation",), "tanh": ("Activation",),
    "elu": ("Activation",), "leakyrelu": ("Activation",), "bn": ("BatchNorm",),
    "batchnorm": ("BatchNorm",), "norm": ("BatchNorm",), "dropout": ("Dropout",),
    "softmax": ("Softmax",), "flatten": ("Flatten",), "reshape": ("Flatten",),
    "sum": ("Add",), "residual": ("Add",), "skip": ("Add",), "cat": ("Concat",),
    "concatenate": ("Concat",), "loss": ("Output",), "data": ("Input",),
}


def stem(type_name: str) -> str:
    return re.sub(r"[123]D$", "", type_name)


def rank_types(text: str, dims: int | None = None) -> list[str]:
    """Module type names matching text: name or synonym prefix first, then name, synonym,
    category, summary; within a rank, types of the network's dimensionality (dims spatial
    axes) before those for any, before those of other dimensionalities."""
    text = text.strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    ranked = []
    for category, types in categories().items():
        for mt in types:
            name = mt.name.lower()
            known_as = [alias for alias, stems in SYNONYMS.items() if stem(mt.name) in stems]
            if not text or name.startswith(text) or any(a.startswith(text) for a in known_as):
                score = 0
            elif text in name:
                score = 1
            elif any(text in a for a in known_as):
                score = 2
            elif text in category.lower():
                score = 3
            elif text in mt.summary.lower():
                score = 4
            else:
                continue
            fit = 1 if mt.spatial_dims is None or dims is None else 0 if mt.spatial_dims == dims \
                else 2
            ranked.append((score, fit, len(ranked), mt.name))
    return [name for *_, name in sorted(ranked)]


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
        self.dims: int | None = None
        self.search.textChanged.connect(self._fill)
        self.search.installEventFilter(self)
        self.results.itemActivated.connect(lambda item: self._choose(item.text()))
        self._fill("")

    def open_at(self, global_pos: QPoint, hint: str = "", dims: int | None = None) -> None:
        """Show at global_pos; dims (the network's spatial axes) ranks matching types first."""
        self.dims = dims
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.search.clear()
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def _fill(self, text: str) -> None:
        self.results.clear()
        for name in rank_types(text, self.dims):
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
