"""DINO (subject similarity) and CLIP-T (prompt agreement) per scored step, with the best step
marked; drawn with QPainter like :mod:`~alchemy_gui.train.loss_chart`."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from alchemy_gui.train.loss_chart import GRID, TEXT

SERIES = (("dino", "DINO", QColor("#d9822b")), ("clip_t", "CLIP-T", QColor("#2e9e5b")))
BEST = QColor("#c23030")


class ScoresChart(QWidget):
    """``set_scores(rows, best_step, total)``; rows as ``api.read_scores`` returns them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[dict] = []
        self._best: int | None = None
        self._total = 0
        self.setMinimumSize(220, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Fidelity scores of the fixed prompts at each scored step (Score every): DINO = "
                        "subject similarity to the photos, CLIP-T = agreement with the prompt; higher is "
                        "better. The red line marks the best step (highest DINO + CLIP-T).")

    def sizeHint(self) -> QSize:
        return QSize(360, 120)

    @property
    def series(self) -> dict[str, list[tuple[int, float]]]:
        return {key: [(r["step"], r[key]) for r in self._rows if r.get(key) is not None] for key, _, _ in SERIES}

    @property
    def best_step(self) -> int | None:
        return self._best

    def set_scores(self, rows: list[dict], best_step: int | None, total: int = 0) -> None:
        self._rows = sorted(rows, key=lambda r: r["step"])
        self._best = best_step
        self._total = max(total, self._rows[-1]["step"] if self._rows else 0)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        series = self.series
        values = [v for points in series.values() for _, v in points]
        if not values:
            painter.setPen(QPen(GRID, 1))
            painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
            painter.setPen(TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "No fidelity scores: set “Score every” to score checkpoints while training")
            painter.end()
            return
        metrics = painter.fontMetrics()
        margin_left = 8 + metrics.horizontalAdvance("0.000")
        plot = QRectF(margin_left, 20, max(1, self.width() - margin_left - 8), max(1, self.height() - 36))
        painter.setPen(QPen(GRID, 1))
        painter.drawRect(plot)
        shown_low, shown_high = min(values), max(values)  # labelled as measured, drawn with a margin
        span = (shown_high - shown_low) or max(abs(shown_high), 1e-3) * 0.1
        low, high = shown_low - 0.05 * span, shown_high + 0.05 * span
        total = max(self._total, 1)
        right = Qt.AlignmentFlag.AlignRight
        painter.setPen(TEXT)
        painter.drawText(QRectF(0, plot.top() - 6, margin_left - 4, 14), right, f"{shown_high:.3f}")
        painter.drawText(QRectF(0, plot.bottom() - 8, margin_left - 4, 14), right, f"{shown_low:.3f}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 14), right, f"step {total}")

        def to_point(step: int, value: float) -> QPointF:
            return QPointF(plot.left() + plot.width() * step / total,
                           plot.bottom() - plot.height() * (value - low) / (high - low))

        x = plot.left()
        for key, label, color in SERIES:  # legend
            painter.setPen(QPen(color, 2))
            painter.drawLine(QPointF(x, 9), QPointF(x + 14, 9))
            painter.setPen(TEXT)
            painter.drawText(QPointF(x + 18, 13), label)
            x += 26 + metrics.horizontalAdvance(label)
            points = [to_point(s, v) for s, v in series[key]]
            painter.setPen(QPen(color, 2))
            if len(points) > 1:
                painter.drawPolyline(QPolygonF(points))
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)
        if self._best is not None:
            best_x = plot.left() + plot.width() * self._best / total
            painter.setPen(QPen(BEST, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(best_x, plot.top()), QPointF(best_x, plot.bottom()))
            painter.setPen(BEST)
            painter.drawText(QPointF(x + 6, 13), f"best: step {self._best}")
        painter.end()
