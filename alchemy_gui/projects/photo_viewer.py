"""One reference photo, large, with its subject mask as an overlay that can be turned off."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import QCheckBox, QDialog, QLabel, QSizePolicy, QVBoxLayout, QWidget

MASK_COLOUR = QColor(255, 64, 64)
MASK_OPACITY = 0.45


def with_mask(image: QImage, mask: QImage | None) -> QImage:
    """``image`` with ``mask`` (white = subject, any size: scaled to fit) tinted over it."""
    if mask is None or mask.isNull() or image.isNull():
        return image
    alpha = mask.convertToFormat(QImage.Format.Format_Grayscale8).scaled(
        image.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    tint = QImage(image.size(), QImage.Format.Format_ARGB32_Premultiplied)
    tint.fill(MASK_COLOUR)
    tint.setAlphaChannel(alpha)
    out = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(out)
    painter.setOpacity(MASK_OPACITY)
    painter.drawImage(0, 0, tint)
    painter.end()
    return out


class PhotoViewer(QDialog):
    def __init__(self, title: str, image: QImage, mask: QImage | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 720)
        self.image, self.mask_image = image, mask  # not "mask": that is QWidget.mask()
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.show_mask = QCheckBox("Show the subject mask")
        self.show_mask.setChecked(mask is not None)
        self.show_mask.setEnabled(mask is not None)
        self.show_mask.setToolTip("Red: the subject, as Masked loss sees it" if mask is not None else
                                  "This photo has no subject mask yet (Edit mask… or Auto-mask all)")
        self.show_mask.toggled.connect(self._render)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.show_mask)
        self._render()

    def _render(self, *_: object) -> None:
        shown = with_mask(self.image, self.mask_image) if self.show_mask.isChecked() else self.image
        size = self.picture.size()
        self.picture.setPixmap(QPixmap.fromImage(shown).scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._render()
