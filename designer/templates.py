"""Templates: the example networks of engine.templates (assets/templates and its index.json), the
first sentence of each description, thumbnails of their layout drawn with QPainter, and the
New-from-template gallery."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from engine import Graph
from engine.modules import REGISTRY
from engine.templates import load_template, template_info, template_names

from .canvas.items import NODE_WIDTH, node_height, wire_path
from .icons import category_colour
from .layout import layered_layout

logger = logging.getLogger("convdesigner")


@dataclass
class Template:
    key: str
    name: str
    graph: Graph
    description: str


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one of "et al." or "e.g.")."""
    text = " ".join(text.split())
    for match in re.finditer(r"(\S*)[.!?](?=\s|$)", text):
        if match.group(1).lower() not in {"al", "e.g", "i.e", "etc", "vs", "cf"}:
            return text[:match.end()]
    return text


def list_templates() -> list[Template]:
    """The built-in templates in their catalogue's order; broken ones are logged and skipped."""
    found = []
    for key in template_names():
        try:
            graph = load_template(key)
        except (OSError, ValueError) as err:
            logger.warning(f"template {key} skipped: {err}")
            continue
        description = first_sentence(template_info(key).get("description") or "")
        found.append(Template(key, graph.name if graph.name != "untitled" else key, graph,
                              description or graph.name))
    return found


def render_thumbnail(graph: Graph, width: int = 200, height: int = 96) -> QPixmap:
    """The graph's layout in miniature: category-coloured boxes and their wires."""
    size = QSize(width, height)
    pixmap = QPixmap(size)
    pixmap.fill(QColor("#f4f5f7"))
    if not graph.nodes:
        return pixmap
    laid = layered_layout(graph, direction="LR")
    pos = {i: n.pos if n.pos is not None else laid[i] for i, n in graph.nodes.items()}
    heights = {i: node_height(max(1, sum(1 for e in graph.edges if e.dst == i)))
               for i in graph.nodes}
    left = min(p[0] for p in pos.values())
    top = min(p[1] for p in pos.values())
    right = max(p[0] for p in pos.values()) + NODE_WIDTH
    bottom = max(pos[i][1] + heights[i] for i in pos)
    margin = 8
    scale = min((size.width() - 2 * margin) / (right - left),
                (size.height() - 2 * margin) / (bottom - top))
    dx = margin + (size.width() - 2 * margin - (right - left) * scale) / 2
    dy = margin + (size.height() - 2 * margin - (bottom - top) * scale) / 2
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.translate(dx, dy)
    painter.scale(scale, scale)
    painter.translate(-left, -top)
    painter.setPen(QPen(QColor("#8a949e"), 1.5 / scale))
    for edge in graph.edges:
        start = QPointF(pos[edge.src][0] + NODE_WIDTH, pos[edge.src][1] + heights[edge.src] / 2)
        end = QPointF(pos[edge.dst][0], pos[edge.dst][1] + heights[edge.dst] / 2)
        painter.drawPath(wire_path(start, end, "LR"))
    painter.setPen(Qt.NoPen)
    for node_id, node in graph.nodes.items():
        mt = REGISTRY.get(node.type)
        painter.setBrush(category_colour(mt.category if mt else ""))
        # at least 5x10 pixels, so that a long chain still shows its colours
        box = QRectF(0, 0, max(NODE_WIDTH, 5 / scale), max(heights[node_id], 10 / scale))
        box.moveCenter(QPointF(pos[node_id][0] + NODE_WIDTH / 2,
                               pos[node_id][1] + heights[node_id] / 2))
        painter.drawRoundedRect(box, 2 / scale, 2 / scale)
    painter.end()
    return pixmap


class TemplateGallery(QDialog):
    """Pick a template (or a blank canvas) for File > New."""

    def __init__(self, templates: list[Template], parent=None):
        super().__init__(parent)
        self.setWindowTitle("New network")
        self.templates = templates
        self.list = QListWidget()
        self.list.setViewMode(QListView.IconMode)
        self.list.setIconSize(QSize(200, 96))
        self.list.setGridSize(QSize(228, 178))
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(6)
        blank = QListWidgetItem(QIcon(render_thumbnail(Graph())), "Blank\nAn empty canvas.")
        blank.setData(Qt.UserRole, -1)
        self.list.addItem(blank)
        for index, template in enumerate(templates):
            item = QListWidgetItem(QIcon(render_thumbnail(template.graph)),
                                   f"{template.name}\n{template.description}")
            item.setToolTip(template_info(template.key).get("description", template.name))
            item.setData(Qt.UserRole, index)
            self.list.addItem(item)
        self.list.setCurrentRow(1 if templates else 0)
        self.list.itemActivated.connect(self.accept)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Start from an example network, or from a blank canvas:"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(760, 480)

    def chosen(self) -> tuple[Graph, str | None]:
        """A fresh copy of the chosen graph and the template's key (None for blank)."""
        item = self.list.currentItem()
        index = item.data(Qt.UserRole) if item is not None else -1
        if index < 0:
            return Graph(), None
        template = self.templates[index]
        return template.graph.copy(), template.key
