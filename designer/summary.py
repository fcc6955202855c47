"""Summary: the layer table (as Keras' model.summary()) with output shapes, weights, FLOPs and
receptive fields, a totals row, live; selecting rows selects nodes."""
from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from .aids import receptive_fields
from .properties import count_text, flops_text

COLUMNS = ("Layer", "Type", "Output shape", "Weights", "FLOPs", "Receptive field")


class SummaryModel(QAbstractTableModel):
    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.rows: list[tuple] = []
        self.totals: tuple = ()
        self.ids: list[str] = []
        self.errors: dict[str, list[str]] = {}
        doc.shapes_changed.connect(self.reload)  # also follows renames: they re-analyse
        self.reload()

    def reload(self) -> None:
        graph, analysis = self.doc.graph, self.doc.analysis
        order = graph.topological_order()
        order += [node_id for node_id in graph.nodes if node_id not in set(order)]
        fields = receptive_fields(graph, analysis)
        self.errors = analysis.errors_by_node()
        rows = []
        for node_id in order:
            shape = analysis.shapes.get(node_id)
            field = fields.get(node_id)
            rows.append((node_id, graph.nodes[node_id].type,
                         "x".join(map(str, shape)) if shape else "error"
                         if node_id in self.errors else "?",
                         analysis.param_counts.get(node_id), analysis.flops.get(node_id),
                         field.text() if field else ""))
        self.beginResetModel()
        self.ids = order
        self.rows = rows
        self.totals = (f"Total ({len(order)} layers)", "", "",
                       sum(analysis.param_counts.values()), sum(analysis.flops.values()), "")
        self.endResetModel()

    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows) + 1

    def columnCount(self, parent=None) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        total = index.row() == len(self.rows)
        row = self.totals if total else self.rows[index.row()]
        value = row[index.column()]
        if role == Qt.DisplayRole:
            if index.column() == 3 and value is not None:
                return count_text(value)
            if index.column() == 4 and value is not None:
                return flops_text(value)
            return value if value is not None else ""
        if role == Qt.TextAlignmentRole and index.column() in (3, 4):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if role == Qt.FontRole and total:
            font = QFont()
            font.setBold(True)
            return font
        if not total and row[0] in self.errors:
            if role == Qt.ForegroundRole:
                return QColor("#c62828")
            if role == Qt.ToolTipRole:
                return "\n".join(self.errors[row[0]])
        return None

    def node_id(self, row: int) -> str | None:
        return self.ids[row] if 0 <= row < len(self.ids) else None


class SummaryPanel(QTableView):
    nodes_selected = Signal(list)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.model_ = SummaryModel(doc, self)
        self.setModel(self.model_)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        for column, width in enumerate((110, 100, 110, 90, 90)):
            self.setColumnWidth(column, width)
        self._syncing = False
        self._selected: list[str] = []
        self.model_.modelReset.connect(lambda: self.show_selection(self._selected))
        self.selectionModel().selectionChanged.connect(self._rows_selected)

    def _rows_selected(self) -> None:
        if self._syncing:
            return
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        ids = [self.model_.node_id(r) for r in rows if self.model_.node_id(r) is not None]
        self._selected = ids
        self.nodes_selected.emit(ids)

    def show_selection(self, node_ids) -> None:
        """Select the rows of node_ids without echoing the change back."""
        self._selected = list(node_ids)
        self._syncing = True
        selection = QItemSelection()
        for node_id in node_ids:
            if node_id in self.model_.ids:
                row = self.model_.ids.index(node_id)
                selection.select(self.model_.index(row, 0),
                                 self.model_.index(row, len(COLUMNS) - 1))
        self.selectionModel().select(selection, QItemSelectionModel.ClearAndSelect)
        if node_ids and node_ids[0] in self.model_.ids:
            self.scrollTo(self.model_.index(self.model_.ids.index(node_ids[0]), 0))
        self._syncing = False
