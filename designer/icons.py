"""Category colours and small icons drawn with QPainter (no image files to ship or lose)."""
from __future__ import annotations

import zlib
from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

CATEGORY_COLOURS = {
    "Input/Output": "#546e7a",
    "Convolution": "#1e6fd0",
    "Pooling": "#00897b",
    "Activation": "#e06c00",
    "Normalization": "#8e44ad",
    "Dense": "#2e8b3e",
    "Structure": "#8d5a3b",
}


def category_colour(category: str) -> QColor:
    if category in CATEGORY_COLOURS:
        return QColor(CATEGORY_COLOURS[category])
    # a category added later still gets a stable, distinct colour
    return QColor.fromHsv(zlib.crc32(category.encode()) % 360, 150, 170)


def _glyph(painter: QPainter, category: str, s: float) -> None:
    """Draw the category's glyph in a square of side s (white strokes)."""
    m = s * 0.22
    inner = QRectF(m, m, s - 2 * m, s - 2 * m)
    if category == "Convolution":
        step = inner.width() / 3
        for i in range(4):
            painter.drawLine(QPointF(inner.left() + i * step, inner.top()),
                             QPointF(inner.left() + i * step, inner.bottom()))
            painter.drawLine(QPointF(inner.left(), inner.top() + i * step),
                             QPointF(inner.right(), inner.top() + i * step))
        painter.fillRect(QRectF(inner.left(), inner.top(), 2 * step, 2 * step),
                         QColor(255, 255, 255, 130))
    elif category == "Pooling":
        cell = inner.width() / 4
        for dx in (0, 1):
            for dy in (0, 1):
                painter.drawRect(QRectF(inner.left() + dx * cell, inner.top() + (dy + 1) * cell,
                                        cell, cell))
        painter.fillRect(QRectF(inner.right() - 1.2 * cell, inner.center().y() - 0.6 * cell,
                                1.2 * cell, 1.2 * cell), Qt.white)
    elif category == "Activation":
        painter.drawPolyline([QPointF(inner.left(), inner.bottom() - inner.height() * 0.3),
                              QPointF(inner.center().x(), inner.bottom() - inner.height() * 0.3),
                              QPointF(inner.right(), inner.top())])
    elif category == "Normalization":
        path = QPainterPath(QPointF(inner.left(), inner.bottom()))
        path.cubicTo(QPointF(inner.center().x() - inner.width() * 0.1, inner.bottom()),
                     QPointF(inner.center().x() - inner.width() * 0.2, inner.top()),
                     QPointF(inner.center().x(), inner.top()))
        path.cubicTo(QPointF(inner.center().x() + inner.width() * 0.2, inner.top()),
                     QPointF(inner.center().x() + inner.width() * 0.1, inner.bottom()),
                     QPointF(inner.right(), inner.bottom()))
        painter.drawPath(path)
    elif category == "Dense":
        left = [QPointF(inner.left(), inner.top() + inner.height() * f) for f in (0.05, 0.5, 0.95)]
        right = [QPointF(inner.right(), inner.top() + inner.height() * f) for f in (0.25, 0.75)]
        for a in left:
            for b in right:
                painter.drawLine(a, b)
    elif category == "Structure":
        mid = QPointF(inner.center().x(), inner.center().y())
        painter.drawLine(QPointF(inner.left(), inner.top()), mid)
        painter.drawLine(QPointF(inner.left(), inner.bottom()), mid)
        painter.drawLine(mid, QPointF(inner.right(), mid.y()))
    elif category == "Input/Output":
        y = inner.center().y()
        painter.drawLine(QPointF(inner.left(), y), QPointF(inner.right(), y))
        painter.drawLine(QPointF(inner.right() - inner.width() * 0.35, inner.top() + s * 0.05),
                         QPointF(inner.right(), y))
        painter.drawLine(QPointF(inner.right() - inner.width() * 0.35, inner.bottom() - s * 0.05),
                         QPointF(inner.right(), y))
    else:
        painter.drawEllipse(inner)


@cache
def category_icon(category: str, size: int = 32) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(Qt.NoPen)
    painter.setBrush(category_colour(category))
    painter.drawRoundedRect(QRectF(1, 1, size - 2, size - 2), size * 0.22, size * 0.22)
    painter.setPen(QPen(Qt.white, max(1.0, size / 16), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
    painter.setBrush(Qt.NoBrush)
    _glyph(painter, category, size)
    painter.end()
    return QIcon(pixmap)


@cache
def action_icon(name: str, size: int = 32) -> QIcon:
    """Toolbar glyphs the platform style lacks: "arrange" (layered layout) and "fit" (frame)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor("#37474f"), size / 14, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
    u = size / 16
    if name == "arrange":
        boxes = [QRectF(1 * u, 6 * u, 4 * u, 4 * u), QRectF(11 * u, 2 * u, 4 * u, 4 * u),
                 QRectF(11 * u, 10 * u, 4 * u, 4 * u)]
        for box in boxes:
            painter.drawRoundedRect(box, u, u)
        painter.drawLine(QPointF(5 * u, 8 * u), QPointF(11 * u, 4 * u))
        painter.drawLine(QPointF(5 * u, 8 * u), QPointF(11 * u, 12 * u))
    else:
        for x, y, dx, dy in ((1, 1, 1, 1), (15, 1, -1, 1), (1, 15, 1, -1), (15, 15, -1, -1)):
            corner = QPointF(x * u, y * u)
            painter.drawLine(corner, QPointF((x + 4 * dx) * u, y * u))
            painter.drawLine(corner, QPointF(x * u, (y + 4 * dy) * u))
        painter.drawRoundedRect(QRectF(5 * u, 6 * u, 6 * u, 4 * u), u, u)
    painter.end()
    return QIcon(pixmap)
