"""A small line chart of the smoothed training loss, drawn with QPainter (no chart library)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

LINE = QColor("#2f6fde")
GRID = QColor("#e3e5e8")
TEXT = QColor("#6b6f76")


class LossChart(QWidget):
    """``set_points([(step, loss), ...], total)``; x spans 0..total steps, y the loss range."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._points: list[tuple[int, float]] = []
        self._total = 0
        self.setMinimumSize(220, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Smoothed training loss. It is noisy by nature; a slow downward drift is normal.")

    def sizeHint(self) -> QSize:
        return QSize(360, 140)

    @property
    def points(self) -> list[tuple[int, float]]:
        return list(self._points)

    def set_points(self, points: Iterable[tuple[int, float]], total: int = 0) -> None:
        self._points = list(points)
        self._total = max(total, self._points[-1][0] if self._points else 0)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if len(self._points) < 2:
            painter.setPen(QPen(GRID, 1))
            painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
            painter.setPen(TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The loss curve appears once training runs")
            painter.end()
            return
        margin_left = 8 + painter.fontMetrics().horizontalAdvance("0.0000")
        plot = QRectF(margin_left, 8, max(1, self.width() - margin_left - 8), max(1, self.height() - 24))
        painter.setPen(QPen(GRID, 1))
        painter.drawRect(plot)
        painter.setPen(TEXT)
        low = min(v for _, v in self._points)
        high = max(v for _, v in self._points)
        span = (high - low) or max(abs(high), 1e-6) * 0.1
        low, high = low - 0.05 * span, high + 0.05 * span
        total = max(self._total, 1)
        align_right = Qt.AlignmentFlag.AlignRight
        painter.drawText(QRectF(0, plot.top() - 6, margin_left - 4, 14), align_right, f"{high:.4g}")
        painter.drawText(QRectF(0, plot.bottom() - 8, margin_left - 4, 14), align_right, f"{low:.4g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 14), align_right, f"step {total}")

        def to_point(step: int, value: float) -> QPointF:
            x = plot.left() + plot.width() * step / total
            y = plot.bottom() - plot.height() * (value - low) / (high - low)
            return QPointF(x, y)

        painter.setPen(QPen(LINE, 2))
        painter.drawPolyline(QPolygonF([to_point(s, v) for s, v in self._points]))
        painter.end()
