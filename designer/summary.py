"""Summary: the layer table (as Keras' model.summary()) with output shapes, weights, FLOPs and
receptive fields, a totals row, live; selecting rows selects nodes."""
from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from .properties import count_text, flops_text

COLUMNS = ("Layer", "Type", "Output shape", "Weights", "FLOPs", "Receptive field")


ALIGN_RIGHT = int(Qt.AlignRight | Qt.AlignVCenter)
ERROR_COLOUR = QColor("#c62828")


class SummaryModel(QAbstractTableModel):
    """Rows of display strings, rebuilt on every analysis; only the rows that changed are
    repainted (a parameter edit in a 300-layer network touches a few)."""

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.rows: list[tuple[str, ...]] = []
        self.ids: list[str] = []
        self.errors: dict[str, list[str]] = {}
        self.bold = QFont()
        self.bold.setBold(True)
        doc.shapes_changed.connect(self.reload)  # also follows renames: they re-analyse
        self.reload()

    def reload(self) -> None:
        graph, analysis = self.doc.graph, self.doc.analysis
        order = graph.topological_order()
        placed = set(order)
        order += [node_id for node_id in graph.nodes if node_id not in placed]  # on a cycle
        fields = self.doc.receptive_fields()
        errors = analysis.errors_by_node()
        rows = []
        for node_id in order:
            shape = analysis.shapes.get(node_id)
            field = fields.get(node_id)
            count, flops = analysis.param_counts.get(node_id), analysis.flops.get(node_id)
            rows.append((node_id, graph.nodes[node_id].type,
                         "x".join(map(str, shape)) if shape else
                         "error" if node_id in errors else "?",
                         "" if count is None else count_text(count),
                         "" if flops is None else flops_text(flops),
                         field.text() if field else ""))
        params, flops = analysis.totals()   # unused nodes (reaching no Output) left out
        unused = f", {len(analysis.unused)} unused" if analysis.unused else ""
        rows.append(("Total", f"{len(order)} layers{unused}", "", count_text(params),
                     flops_text(flops), ""))
        if order != self.ids or not self.rows:
            self.beginResetModel()
            self.ids, self.rows, self.errors = order, rows, errors
            self.endResetModel()
            return
        changed = [r for r, row in enumerate(rows)
                   if row != self.rows[r] or errors.get(row[0]) != self.errors.get(row[0])]
        self.rows, self.errors = rows, errors
        for first, last in _runs(changed):  # one signal per run: repaint just those rows
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent=None) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        row = index.row()
        if role == Qt.DisplayRole:
            return self.rows[row][index.column()]
        if role == Qt.TextAlignmentRole:
            return ALIGN_RIGHT if index.column() in (3, 4) else None
        if role == Qt.FontRole:
            return self.bold if row == len(self.ids) else None
        if role in (Qt.ForegroundRole, Qt.ToolTipRole) and row < len(self.ids):
            problems = self.errors.get(self.ids[row])
            if problems:
                return ERROR_COLOUR if role == Qt.ForegroundRole else "\n".join(problems)
        return None

    def node_id(self, row: int) -> str | None:
        return self.ids[row] if 0 <= row < len(self.ids) else None


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs of consecutive values: [1, 2, 3, 7] -> (1, 3), (7, 7)
    """
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


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
        # another model shows from its first layer (after its rows are in)
        doc.graph_reset.connect(lambda: QTimer.singleShot(0, self.scrollToTop))

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
