"""Properties: an editor for the selected node generated from its type's ParamSpecs, plus what a
learner wants to know about it (shapes, weights, weight sharing, receptive field, problems)."""
from __future__ import annotations

import copy
import math
import re
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.modules import REGISTRY, ParamError, resolve_params

from .aids import dense_equivalent
from .icons import category_colour
from .problems import fixes_for

INT_LIMIT = 2**31 - 1


def compact(value, kind: str) -> str:
    """A size/padding/shape value as the user would type it: 5, 5,3, same, 1,28,28 (a size that
    is the same on every axis collapses to one number; a shape never does)."""
    if isinstance(value, (list, tuple)):
        if kind != "shape" and value and len(set(value)) == 1:
            return str(value[0])
        return ",".join(str(v) for v in value)
    return str(value)


def parse_size(text: str, kind: str, name: str):
    """Text typed for a size/padding/shape param -> its JSON value (None: use the default)."""
    text = text.strip().lower()
    if not text:
        return None
    if kind == "padding" and text == "same":
        return "same"
    parts = [p for p in re.split(r"[\s,x×*]+", text.strip("[]() ")) if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        example = "1,28,28 or 1x28x28" if kind == "shape" else "5, or 5,3 for one per axis"
        same = ' or "same"' if kind == "padding" else ""
        raise ValueError(f"{name} takes whole numbers ({example}){same}. "
                         f"Received: {text!r}") from None
    if not values:
        raise ValueError(f"{name} needs a value. Received: {text!r}")
    if kind == "shape" or len(values) > 1:
        return values
    return values[0]


def count_text(value: int) -> str:
    return f"{value:,}"


def flops_text(value: int) -> str:
    """3 significant digits and a prefix: 482k, 1.2M."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(value)


class FloatSpin(QDoubleSpinBox):
    """A spin box that shows 1e-05 as 1e-05 (not 0.00) and accepts scientific notation."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        return float(text)

    def validate(self, text: str, pos: int):
        try:
            float(text)
            return QValidator.Acceptable, text, pos
        except ValueError:
            state = QValidator.Intermediate if all(c in "0123456789.eE+-" for c in text) \
                else QValidator.Invalid
            return state, text, pos


class PropertiesPanel(QWidget):
    problem = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self.resets: dict[str, QToolButton] = {}
        self._loading = False

        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.summary = QLabel(wordWrap=True)
        self.summary.setStyleSheet("color: #5f6b76;")
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 4, 0, 4)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.reason = QLabel(wordWrap=True)
        self.reason.setStyleSheet("color: #c62828;")
        self.reason.hide()
        self.info = QLabel(wordWrap=True)
        self.info.setTextFormat(Qt.RichText)
        self.info.setFrameShape(QFrame.StyledPanel)
        self.info.setStyleSheet("QLabel { background: #f7f8fa; padding: 6px; }")
        self.fix_box = QWidget()  # a button per one-click fix of the node's problems
        self.fix_layout = QVBoxLayout(self.fix_box)
        self.fix_layout.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel(wordWrap=True)
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setStyleSheet("color: #7b8794;")

        body = QWidget()
        column = QVBoxLayout(body)
        for widget in (self.title, self.summary, self.form_host, self.reason, self.info,
                       self.fix_box):
            column.addWidget(widget)
        column.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.NoFrame)
        self.scroll_area.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.scroll_area)

        doc.param_changed.connect(self._param_changed)
        doc.node_renamed.connect(self._renamed)
        doc.node_removed.connect(lambda node_id: node_id == self.node_id and self.set_node(None))
        doc.shapes_changed.connect(self._show_info)
        doc.graph_reset.connect(lambda: self.set_node(None))
        self.set_node(None)

    # -- building the editor --------------------------------------------------------------
    def set_node(self, node_id: str | None, selected: int = 0) -> None:
        """Edit node_id; with None, say what to do (selected: how many nodes are selected)."""
        if node_id is not None and node_id not in self.doc.graph.nodes:
            node_id = None
        self.node_id = node_id
        self.empty.setText(f"{selected} nodes selected: select one to edit it." if selected > 1
                           else "Select a node to edit it.\n\nAdd nodes from the palette, or "
                           "press Tab on the canvas and type a name.")
        self._clear_reason()
        self.empty.setVisible(node_id is None)
        self.scroll_area.setVisible(node_id is not None)
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.resets.clear()
        if node_id is None:
            return
        node = self.doc.graph.nodes[node_id]
        mt = REGISTRY.get(node.type)
        colour = category_colour(mt.category if mt else "").name()
        self.title.setText(f"<span style='font-size:13pt; font-weight:600; color:{colour}'>"
                           f"{escape(node.type)}</span>")
        self.summary.setText(mt.summary if mt else "This module type is not registered.")
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("The node's id: unique, used in the model file's weights")
        self.id_edit.editingFinished.connect(self._rename)
        self.form.addRow("id", self.id_edit)
        for spec in mt.params if mt else ():
            editor = self._make_editor(spec)
            editor.setToolTip(spec.doc)
            reset = QToolButton(text="\u21ba", autoRaise=True)
            reset.setToolTip("Use the default")
            reset.clicked.connect(lambda _=False, name=spec.name: self._commit(name, None))
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(editor, 1)
            line.addWidget(reset)
            label = QLabel(spec.name.replace("_", " "))
            label.setToolTip(spec.doc)
            self.form.addRow(label, row)
            self.editors[spec.name], self.resets[spec.name] = editor, reset
        self._load_values()
        if not self.doc.busy:  # mid-command (a deletion) shapes_changed will follow
            self._show_info()

    def _make_editor(self, spec) -> QWidget:
        name = spec.name
        if spec.kind == "int":
            editor = QSpinBox()
            editor.setRange(int(spec.minimum if spec.minimum is not None else -INT_LIMIT),
                            int(min(spec.maximum if spec.maximum is not None else INT_LIMIT,
                                    INT_LIMIT)))
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(lambda v: self._commit(name, int(v)))
        elif spec.kind == "float":
            editor = FloatSpin()
            editor.setRange(spec.minimum if spec.minimum is not None else -1e12,
                            spec.maximum if spec.maximum is not None else 1e12)
            editor.setSingleStep(0.01 if (spec.maximum or 2) <= 1 else 0.1)
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(lambda v: self._commit(name, float(v)))
        elif spec.kind == "bool":
            editor = QCheckBox()
            editor.clicked.connect(lambda checked: self._commit(name, bool(checked)))
        elif spec.kind == "choice":
            editor = QComboBox()
            editor.addItems(list(spec.choices))
            editor.activated.connect(lambda i: self._commit(name, editor.itemText(i)))
        else:
            editor = QLineEdit()
            hint = {"size": "5, or 5,3 per axis", "padding": '2, 2,1 per axis, or "same"',
                    "shape": "C,H,W e.g. 1,28,28"}[spec.kind]
            editor.setToolTip(f"{spec.doc} ({hint})")
            editor.editingFinished.connect(lambda: self._commit_text(spec, editor))
        return editor

    def _load_values(self) -> None:
        """Show the node's current params (resolved defaults where a param is not given)."""
        if self.node_id is None:
            return
        node = self.doc.graph.nodes[self.node_id]
        mt = REGISTRY.get(node.type)
        try:  # not the analysis: it is refreshed only after this edit's signals
            resolved = resolve_params(mt, node.params) if mt is not None else {}
        except ParamError:
            resolved = {}
        self._loading = True
        self.id_edit.setText(self.node_id)
        for spec in mt.params if mt else ():
            editor = self.editors[spec.name]
            given = spec.name in node.params
            value = node.params[spec.name] if given else resolved.get(spec.name)
            editor.blockSignals(True)
            if isinstance(editor, QSpinBox | QDoubleSpinBox):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    editor.setValue(value)
            elif isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            else:
                default = resolved.get(spec.name)
                default = compact(default, spec.kind) if default is not None else ""
                editor.setText(compact(value, spec.kind) if given else "")
                editor.setPlaceholderText(f"{default} (default)" if default else "")
            editor.blockSignals(False)
            self.resets[spec.name].setVisible(given and not spec.required)
            if spec.applies is not None and resolved:
                self.form.setRowVisible(editor.parentWidget(), spec.applies(resolved))
        self._loading = False

    # -- committing edits -----------------------------------------------------------------
    def _commit_text(self, spec, editor: QLineEdit) -> None:
        try:
            value = parse_size(editor.text(), spec.kind, spec.name)
        except ValueError as err:
            self._refuse(str(err))
            return
        if value is None and spec.required:
            self._refuse(f"{spec.name} is required")
            return
        node = self.doc.graph.nodes[self.node_id]
        if value == node.params.get(spec.name):
            return
        self._commit(spec.name, value)

    def _commit(self, name: str, value) -> None:
        if self._loading or self.node_id is None:
            return
        params = copy.deepcopy(self.doc.graph.nodes[self.node_id].params)
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
        try:
            self.doc.set_params(self.node_id, params)
        except ParamError as err:
            self._refuse("; ".join(err.problems))
            return
        self._clear_reason()

    def _rename(self) -> None:
        if self._loading or self.node_id is None:
            return
        try:
            self.doc.rename_node(self.node_id, self.id_edit.text())
        except ValueError as err:
            self._refuse(str(err))
        else:
            self._clear_reason()

    def _clear_reason(self) -> None:
        """An accepted edit or another node: the last refusal no longer stands (here or in the
        status bar)."""
        if not self.reason.isHidden():
            self.reason.hide()
            self.problem.emit("")

    def _refuse(self, message: str) -> None:
        self.reason.setText(f"Not applied: {message}")
        self.reason.show()
        self.problem.emit(f"Not applied: {message}")
        self._load_values()

    def _param_changed(self, node_id: str) -> None:
        if node_id == self.node_id:
            self._load_values()

    def _renamed(self, old: str, new: str) -> None:
        if old == self.node_id:
            self.node_id = new
            self._load_values()

    # -- what the node does ---------------------------------------------------------------
    def _show_info(self) -> None:
        if self.node_id is None:
            return
        node_id, analysis, graph = self.node_id, self.doc.analysis, self.doc.graph
        mt = REGISTRY.get(graph.nodes[node_id].type)
        rows = []
        ins = analysis.in_shapes.get(node_id)
        out = analysis.shapes.get(node_id)
        if ins:
            rows.append(("input", ", ".join("x".join(map(str, s)) for s in ins)))
        if out:
            rows.append(("output", "x".join(map(str, out))))
        notes = []
        if out is not None and mt is not None:
            count = analysis.param_counts.get(node_id, 0)
            arrays = mt.arrays(analysis.params[node_id], ins or [])
            detail = ", ".join(f"{name} {'x'.join(map(str, shape))}"
                               for name, shape in arrays.items())
            rows.append(("weights", count_text(count) + (f" ({detail})" if detail else "")))
            rows.append(("FLOPs", flops_text(analysis.flops.get(node_id, 0)) + " per sample"))
            field = self.doc.receptive_fields().get(node_id)
            if field is not None:
                rows.append(("receptive field", field.text()
                             + (f", stride {'x'.join(map(str, field.jump))} on the input"
                                if field.size is not None and set(field.jump) != {1} else "")))
            if mt.kernel_geometry is not None and count and ins \
                    and math.prod(out[1:]) > 1:   # one output position: nothing is shared
                dense = dense_equivalent(ins[0], out, analysis.params[node_id].get("bias", True))
                positions = math.prod(out[1:])
                notes.append(
                    f"<b>Weight sharing.</b> A Dense layer from {'x'.join(map(str, ins[0]))} to "
                    f"{'x'.join(map(str, out))} would need {count_text(dense)} weights, "
                    f"{dense / count:,.0f} times more: this layer reuses the same "
                    f"{'x'.join(map(str, mt.kernel_geometry(analysis.params[node_id])[0]))} "
                    f"filters at every one of its {count_text(positions)} output positions.")
        table = "".join(f"<tr><td style='color:#5f6b76; padding-right:8px'>{k}</td>"
                        f"<td>{escape(v)}</td></tr>" for k, v in rows)
        errors = analysis.errors_by_node().get(node_id, [])
        problems = "".join(f"<p style='color:#c62828'>&#9888; {escape(e)}</p>" for e in errors)
        html = (f"<table>{table}</table>" if table else "") + "".join(
            f"<p>{n}</p>" for n in notes) + problems
        self.info.setText(html or "<i>Wire this node to see its shapes.</i>")
        self._show_fixes(node_id, errors)

    def _show_fixes(self, node_id: str, errors: list[str]) -> None:
        while self.fix_layout.count():
            self.fix_layout.takeAt(0).widget().deleteLater()
        for fix in (f for message in errors for f in fixes_for(self.doc, node_id, message)):
            button = QPushButton(f"Fix: {fix.text}")
            button.clicked.connect(lambda _=False, f=fix: f.apply(self.doc))
            self.fix_layout.addWidget(button)
