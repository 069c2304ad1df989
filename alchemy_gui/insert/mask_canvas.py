"""MaskCanvas: the scene fitted to the view, the mask as a tinted overlay (its alpha follows the
grey levels of a soft brush), SAM markers and tools.

Coordinate convention (tested): the scene is drawn at ``scale = fit * zoom`` with its top-left
corner at ``offset`` in widget pixels, where ``fit`` fits the whole image inside the widget
(letterboxed, centred) and ``zoom``/``pan`` come from the wheel and middle-drag. A widget point
``p`` maps to the continuous image point ``(p - offset) / scale``; pixel ``(i, j)`` covers
``[i, i+1) x [j, j+1)``, so the pixel under the cursor is ``floor`` of that (see mask_document).

Painting repaints only the brush's region of the widget (``update(rect)``) and draws only the
exposed part of the scene and of the overlay, so strokes stay fluid on a 4000×3000 scene
(:mod:`alchemy_gui.insert.stroke_bench` measures it).

Tools: Click (left = subject point, right or Alt+left = not-subject point), Box (drag), Brush and
Eraser (paint the mask; right-drag with the Brush erases). Clicks and boxes change the
:class:`MaskDocument` and then emit :attr:`segment_requested`; painting edits the mask directly.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from alchemy_gui.insert.mask_document import Box, MaskDocument, Tool

MASK_COLOUR = QColor(255, 64, 64)
MASK_OPACITY = 0.45
DETECTION = QColor(52, 152, 219)
POSITIVE = QColor(46, 204, 113)
NEGATIVE = QColor(231, 76, 60)
MIN_ZOOM, MAX_ZOOM = 1.0, 32.0  # times the fitted size


class MaskCanvas(QWidget):
    segment_requested = Signal()  # the points or box changed by a click or drag: ask SAM again
    view_changed = Signal()  # zoom or pan changed
    colour_chosen = Signal(QColor)  # the user picked the overlay's colour (remembered by the window)
    remembered_colour: QColor | None = None  # the colour new canvases start with (the photo mask dialog too)

    def __init__(self, document: MaskDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.document = document
        self.tool = Tool.CLICK
        self.brush_size = 24  # diameter in image pixels
        self.brush_hardness = 1.0  # 1: hard edge; 0: fades out from the centre
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.mask_colour = QColor(MaskCanvas.remembered_colour or MASK_COLOUR)
        self.mask_opacity = MASK_OPACITY
        self._pixmap = QPixmap()
        self._overlay = np.zeros((0, 0, 4), dtype=np.uint8)
        self._overlay_image = QImage()
        self._preview: QPixmap | None = None
        self._drag: str | None = None  # "box", "paint", "erase" or "pan"
        self._press = QPointF()
        self._last = QPointF()
        self._hover: QPointF | None = None
        document.scene_changed.connect(self._on_scene)
        document.mask_changed.connect(self._on_mask)
        document.points_changed.connect(self.update)
        document.box_changed.connect(self.update)
        document.detections_changed.connect(self.update)
        self._on_scene()

    # --- geometry -------------------------------------------------------------------------------------
    def image_size(self) -> tuple[int, int]:
        image = self.document.scene_image
        return (0, 0) if image.isNull() else (image.width(), image.height())

    def scale(self) -> float:
        w, h = self.image_size()
        if not w or not h:
            return 1.0
        return min(self.width() / w, self.height() / h) * self.zoom

    def offset(self) -> QPointF:
        """Widget position of the image's top-left corner."""
        w, h = self.image_size()
        s = self.scale()
        return QPointF((self.width() - w * s) / 2, (self.height() - h * s) / 2) + self.pan

    def image_rect(self) -> QRectF:
        w, h = self.image_size()
        s = self.scale()
        return QRectF(self.offset(), QPointF(self.offset().x() + w * s, self.offset().y() + h * s))

    def widget_to_image(self, point: QPointF) -> QPointF:
        s, o = self.scale(), self.offset()
        return QPointF((point.x() - o.x()) / s, (point.y() - o.y()) / s)

    def image_to_widget(self, point: QPointF) -> QPointF:
        s, o = self.scale(), self.offset()
        return QPointF(o.x() + point.x() * s, o.y() + point.y() * s)

    def pixel_at(self, point: QPointF) -> tuple[int, int] | None:
        """The image pixel under a widget point, or None outside the image."""
        p = self.widget_to_image(point)
        w, h = self.image_size()
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        return (x, y) if 0 <= x < w and 0 <= y < h else None

    def fit(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.view_changed.emit()
        self.update()

    def fitted_scale(self) -> float:
        return self.scale() / self.zoom

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel, centred on the view's centre."""
        if self._pixmap.isNull():
            return
        centre = QPointF(self.width() / 2, self.height() / 2)
        anchor = self.widget_to_image(centre)
        self.zoom = 1.0 / self.fitted_scale()
        self.pan += centre - self.image_to_widget(anchor)
        self.view_changed.emit()
        self.update()

    def zoom_percent(self) -> int:
        """Screen pixels per image pixel, in percent (100: actual size)."""
        return round(self.scale() * 100) if not self._pixmap.isNull() else 100

    def zoom_at(self, widget_point: QPointF, factor: float) -> None:
        """Zoom by ``factor`` keeping the image point under ``widget_point`` where it is."""
        anchor = self.widget_to_image(widget_point)
        low = min(MIN_ZOOM, 1.0 / self.fitted_scale())  # down to the fit, or to 100 % for a small scene
        self.zoom = min(max(self.zoom * factor, low), MAX_ZOOM)
        moved = self.image_to_widget(anchor)
        self.pan += widget_point - moved
        if self.zoom == MIN_ZOOM and factor < 1:
            self.pan = QPointF(0.0, 0.0)
        self.view_changed.emit()
        self.update()

    # --- what to show -------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        self.setCursor(Qt.CursorShape.CrossCursor if tool in (Tool.CLICK, Tool.BOX)
                       else Qt.CursorShape.BlankCursor)
        self.update()

    def set_brush_size(self, size: int) -> None:
        """Within the limits of whoever owns the value (``brush_settings.BRUSH_SIZE``, the mask dialog's box)."""
        self.brush_size = int(size)
        self.update()

    def set_brush_hardness(self, percent: int) -> None:
        self.brush_hardness = int(percent) / 100  # percent within brush_settings.BRUSH_HARDNESS
        self.update()

    def set_mask_style(self, colour: QColor | None = None, opacity: float | None = None) -> None:
        """The overlay's colour and opacity (0 to 1)."""
        if colour is not None and QColor(colour) != self.mask_colour:
            self.mask_colour = QColor(colour)
            self._on_mask(None)
        if opacity is not None:
            self.mask_opacity = min(max(float(opacity), 0.0), 1.0)
        self.update()

    def set_preview(self, image: QImage | None) -> None:
        """Show ``image`` (a result of the scene's size) instead of the scene, mask and markers."""
        self._preview = None if image is None or image.isNull() else QPixmap.fromImage(image)
        self.update()

    @property
    def showing_preview(self) -> bool:
        return self._preview is not None

    def _on_scene(self, *_: object) -> None:
        image = self.document.scene_image
        self._pixmap = QPixmap() if image.isNull() else QPixmap.fromImage(image)
        self._preview = None
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self._on_mask(None)
        self.view_changed.emit()

    def _rgba(self) -> tuple[int, int, int, int]:
        return self.mask_colour.red(), self.mask_colour.green(), self.mask_colour.blue(), 255

    def _on_mask(self, region: Box | None) -> None:
        mask = self.document.mask
        if mask is None:
            self._overlay = np.zeros((0, 0, 4), dtype=np.uint8)
            self._overlay_image = QImage()
        elif region is None or self._overlay.shape[:2] != mask.shape:
            self._overlay = np.empty(mask.shape + (4,), dtype=np.uint8)
            self._overlay[..., :3] = self._rgba()[:3]
            self._overlay[..., 3] = mask  # the mask's grey level is the overlay's alpha
            h, w = mask.shape  # the QImage reads the array in place: keep both, update the array
            self._overlay_image = QImage(self._overlay.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        else:
            x0, y0, x1, y1 = region
            self._overlay[y0:y1, x0:x1, 3] = mask[y0:y1, x0:x1]
            rect = QRectF(self.image_to_widget(QPointF(x0, y0)), self.image_to_widget(QPointF(x1, y1)))
            self.update(rect.toAlignedRect().adjusted(-2, -2, 2, 2))
            return
        self.update()

    # --- painting -----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(43, 45, 48))
        if self._pixmap.isNull():
            painter.setPen(QColor(170, 174, 180))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Open a scene, or generate one from a prompt.")
            return
        target, source = self._exposed(QRectF(event.rect()))
        smooth = self.scale() < 2.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        if self._preview is not None:
            painter.drawPixmap(self.image_rect(), self._preview, QRectF(self._preview.rect()))
            return
        if not source.isEmpty():
            painter.drawPixmap(target, self._pixmap, source)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            if not self._overlay_image.isNull():
                painter.setOpacity(self.mask_opacity)
                painter.drawImage(target, self._overlay_image, source)
                painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._draw_detections(painter)
        self._draw_box(painter)
        self._draw_points(painter)
        self._draw_brush(painter)

    def _exposed(self, exposed: QRectF) -> tuple[QRectF, QRectF]:
        """The part of the image under ``exposed`` (widget) as (widget target, image source), on
        whole image pixels so the scaled pieces line up."""
        w, h = self.image_size()
        a, b = self.widget_to_image(exposed.topLeft()), self.widget_to_image(exposed.bottomRight())
        x0, y0 = max(int(np.floor(a.x())) - 1, 0), max(int(np.floor(a.y())) - 1, 0)
        x1, y1 = min(int(np.ceil(b.x())) + 1, w), min(int(np.ceil(b.y())) + 1, h)
        if x0 >= x1 or y0 >= y1:
            return QRectF(), QRectF()
        source = QRectF(x0, y0, x1 - x0, y1 - y0)
        return QRectF(self.image_to_widget(source.topLeft()), self.image_to_widget(source.bottomRight())), source

    def _draw_detections(self, painter: QPainter) -> None:
        """Auto-detect's boxes, numbered best first; the one in use (the box prompt) is solid."""
        for index, (box, score, _label) in enumerate(self.document.detections):
            x0, y0, x1, y1 = box
            rect = QRectF(self.image_to_widget(QPointF(x0, y0)), self.image_to_widget(QPointF(x1, y1)))
            used = self.document.box is not None and tuple(int(round(v)) for v in box) == self.document.box
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(DETECTION, 2.5 if used else 1.5, Qt.PenStyle.SolidLine if used
                                else Qt.PenStyle.DashLine))
            painter.drawRect(rect)
            tag = f"{index + 1}  {score:.2f}"
            box_rect = QRectF(rect.topLeft(), QPointF(rect.left() + 8 + 7 * len(tag), rect.top() + 18))
            painter.fillRect(box_rect, DETECTION)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box_rect, Qt.AlignmentFlag.AlignCenter, tag)

    def _draw_box(self, painter: QPainter) -> None:
        rect = None
        if self._drag == "box":
            rect = QRectF(self._press, self._last).normalized()
        elif self.document.box is not None:
            x0, y0, x1, y1 = self.document.box
            rect = QRectF(self.image_to_widget(QPointF(x0, y0)), self.image_to_widget(QPointF(x1, y1)))
        if rect is None:
            return
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
        painter.drawRect(rect)
        painter.setPen(QPen(QColor(255, 214, 10), 1.5, Qt.PenStyle.DashLine))
        painter.drawRect(rect)

    def _draw_points(self, painter: QPainter) -> None:
        for x, y, label in self.document.points:
            centre = self.image_to_widget(QPointF(x + 0.5, y + 0.5))
            colour = POSITIVE if label else NEGATIVE
            painter.setPen(QPen(QColor(255, 255, 255), 2))
            painter.setBrush(colour)
            painter.drawEllipse(centre, 8, 8)
            painter.setPen(QPen(QColor(255, 255, 255), 2.5))
            painter.drawLine(centre + QPointF(-4.5, 0), centre + QPointF(4.5, 0))
            if label:
                painter.drawLine(centre + QPointF(0, -4.5), centre + QPointF(0, 4.5))

    def _draw_brush(self, painter: QPainter) -> None:
        if self._hover is None or self.tool not in (Tool.BRUSH, Tool.ERASER):
            return
        radius = max(self.brush_size * self.scale() / 2, 1.0)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 180), 3))
        painter.drawEllipse(self._hover, radius, radius)
        painter.setPen(QPen(QColor(255, 255, 255), 1.2))
        painter.drawEllipse(self._hover, radius, radius)
        if self.brush_hardness < 1.0 and radius > 6:  # where the soft edge starts
            inner = max(radius * self.brush_hardness, 1.0)
            painter.setPen(QPen(QColor(255, 255, 255, 170), 1.0, Qt.PenStyle.DashLine))
            painter.drawEllipse(self._hover, inner, inner)

    # --- mouse --------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos, button = event.position(), event.button()
        self._press = self._last = pos
        if button == Qt.MouseButton.MiddleButton:
            self._drag = "pan"
        elif self._pixmap.isNull() or self._preview is not None:
            self._drag = None
        elif self.tool == Tool.CLICK:
            self._click(pos, button, event.modifiers())
        elif self.tool == Tool.BOX and button == Qt.MouseButton.LeftButton:
            self._drag = "box"
        elif self.tool in (Tool.BRUSH, Tool.ERASER):
            erase = self.tool == Tool.ERASER or button == Qt.MouseButton.RightButton
            self._drag = "erase" if erase else "paint"
            self.document.begin_stroke()
            self._paint_to(pos)
        event.accept()

    def _click(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> None:
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        negative = button == Qt.MouseButton.RightButton or bool(modifiers & Qt.KeyboardModifier.AltModifier)
        pixel = self.pixel_at(pos)
        if pixel is not None and self.document.add_point(pixel[0], pixel[1], 0 if negative else 1):
            self.segment_requested.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        old, self._hover = self._hover, pos
        if self._drag == "pan":
            self.pan += pos - self._last
            self.view_changed.emit()
            self.update()
        elif self._drag in ("paint", "erase"):
            self._paint_to(pos)
        elif self._drag == "box":
            self.update()
        self._last = pos
        self._update_cursor(old)
        self._update_cursor(pos)

    def _update_cursor(self, at: QPointF | None) -> None:
        """Repaint only around the brush outline (the rest of the canvas has not changed)."""
        if at is None or self.tool not in (Tool.BRUSH, Tool.ERASER):
            return
        r = max(self.brush_size * self.scale() / 2, 1.0) + 3
        self.update(QRectF(at.x() - r, at.y() - r, 2 * r, 2 * r).toAlignedRect())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        drag, self._drag = self._drag, None
        self._last = event.position()
        if drag in ("paint", "erase"):
            self.document.end_stroke()
        if drag == "box":
            a, b = self.widget_to_image(self._press), self.widget_to_image(self._last)
            if self.document.set_box((a.x(), a.y(), b.x(), b.y())):
                self.segment_requested.emit()
        self.update()

    def _paint_to(self, pos: QPointF) -> None:
        start = self.widget_to_image(self._last)
        end = self.widget_to_image(pos)
        self.document.paint((start.x(), start.y()), (end.x(), end.y()), self.brush_size / 2,
                            value=self._drag == "paint", hardness=self.brush_hardness)

    def leaveEvent(self, event) -> None:
        old, self._hover = self._hover, None
        self._update_cursor(old)
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._pixmap.isNull():
            return
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(event.position(), 1.25 ** steps)
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.view_changed.emit()


__all__ = ["MaskCanvas", "Tool"]
