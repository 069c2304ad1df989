"""A result viewed large: the output and the scene it came from, split by a slider (Before on the
left, After on the right) or toggled, each side labelled."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget


class BeforeAfter(QWidget):
    """``before`` left of the split, ``after`` right of it, both fitted to the widget."""

    def __init__(self, before: QImage, after: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before, self.after = before, after
        self.split = 0.5  # 0: all After, 1: all Before
        self.setMinimumSize(320, 240)

    def set_split(self, split: float) -> None:
        self.split = min(max(float(split), 0.0), 1.0)
        self.update()

    def image_rect(self) -> QRectF:
        image = self.after if not self.after.isNull() else self.before
        if image.isNull():
            return QRectF()
        s = min(self.width() / image.width(), self.height() / image.height())
        w, h = image.width() * s, image.height() * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(43, 45, 48))
        target = self.image_rect()
        if target.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        x = target.left() + target.width() * self.split
        if not self.after.isNull():
            painter.drawImage(target, self.after)
        if not self.before.isNull() and self.split > 0:
            painter.save()
            painter.setClipRect(QRectF(target.left(), target.top(), x - target.left(), target.height()))
            painter.drawImage(target, self.before)
            painter.restore()
        painter.setPen(QColor(255, 255, 255))
        if 0 < self.split < 1:
            painter.drawLine(int(x), int(target.top()), int(x), int(target.bottom()))
        for text, left, show in (("Before", True, self.split > 0), ("After", False, self.split < 1)):
            if not show:
                continue
            rect = QRectF(target.left() + 8 if left else target.right() - 68, target.top() + 8, 60, 22)
            painter.fillRect(rect, QColor(0, 0, 0, 150))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


class ResultDialog(QDialog):
    """The output large, with a Before/After slider (or a toggle that shows one whole side)."""

    def __init__(self, title: str, before: QImage, after: QImage, caption: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.view = BeforeAfter(before, after)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50 if not before.isNull() else 0)
        self.slider.setToolTip("Drag: Before on the left of the line, After on the right")
        self.slider.valueChanged.connect(lambda v: self.view.set_split(v / 100))
        self.toggle = QCheckBox("Show Before")
        self.toggle.setToolTip("Show the whole scene before the insertion")
        self.toggle.toggled.connect(lambda on: self.slider.setValue(100 if on else 0))
        if before.isNull():
            self.slider.setEnabled(False)
            self.toggle.setEnabled(False)
            self.toggle.setToolTip("The scene this result came from is no longer on disk")
        self.view.set_split(self.slider.value() / 100)
        row = QHBoxLayout()
        row.addWidget(QLabel("Before"))
        row.addWidget(self.slider, 1)
        row.addWidget(QLabel("After"))
        row.addWidget(self.toggle)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        note = QLabel(caption)
        note.setWordWrap(True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(note)
        self.resize(1000, 760)


__all__ = ["BeforeAfter", "ResultDialog"]
