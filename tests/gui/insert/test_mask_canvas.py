"""MaskCanvas and MaskDocument: widget → image pixel mapping, SAM prompts, brush, box, undo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from alchemy_gui.insert.mask_canvas import MaskCanvas, Tool
from alchemy_gui.insert.mask_document import MaskDocument, stamp_segment


def _canvas(qtbot, size=(160, 96), widget=(400, 300)) -> MaskCanvas:
    document = MaskDocument()
    image = QImage(size[0], size[1], QImage.Format.Format_RGB32)
    image.fill(0x446688)
    document.set_scene(None, image)
    canvas = MaskCanvas(document)
    qtbot.addWidget(canvas)
    canvas.resize(*widget)
    canvas.show()
    qtbot.waitExposed(canvas)
    assert (canvas.width(), canvas.height()) == widget
    return canvas


def _at(canvas: MaskCanvas, x: float, y: float) -> QPoint:
    """The widget pixel showing the centre of image pixel (x, y)."""
    return canvas.image_to_widget(QPointF(x + 0.5, y + 0.5)).toPoint()


def _drag(canvas, points, button=Qt.MouseButton.LeftButton) -> None:
    QTest.mousePress(canvas, button, Qt.KeyboardModifier.NoModifier, points[0])
    for point in points[1:]:
        QTest.mouseMove(canvas, point)
    QTest.mouseRelease(canvas, button, Qt.KeyboardModifier.NoModifier, points[-1])


def test_wide_image_is_letterboxed_top_and_bottom_and_clicks_map_to_pixels(qtbot):
    canvas = _canvas(qtbot, (160, 96), (400, 300))
    # fit: scale = min(400/160, 300/96) = 2.5 → drawn 400x240, 30 px bars above and below
    assert canvas.scale() == pytest.approx(2.5)
    assert canvas.image_rect().getRect() == pytest.approx((0, 30, 400, 240))
    with qtbot.waitSignal(canvas.segment_requested):
        QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(101, 131))
    assert canvas.document.points == ((40, 40, 1),)  # (101/2.5, (131-30)/2.5) = (40.4, 40.4)
    QTest.mouseClick(canvas, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, QPoint(399, 269))
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, QPoint(0, 30))
    assert canvas.document.points[1:] == ((159, 95, 0), (0, 0, 0))  # last and first pixel; negative
    with qtbot.assertNotEmitted(canvas.segment_requested):
        QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 10))
        QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 271))
    assert len(canvas.document.points) == 3  # clicks on the bars are ignored


def test_tall_image_is_letterboxed_left_and_right(qtbot):
    canvas = _canvas(qtbot, (96, 160), (400, 300))
    # scale = min(400/96, 300/160) = 1.875 → drawn 180x300, 110 px bars left and right
    assert canvas.image_rect().getRect() == pytest.approx((110, 0, 180, 300))
    assert canvas.pixel_at(QPointF(110 + 50 * 1.875 + 1, 100 * 1.875 + 1)) == (50, 100)
    assert canvas.pixel_at(QPointF(109.9, 150)) is None
    assert canvas.pixel_at(QPointF(290.1, 150)) is None
    assert canvas.pixel_at(QPointF(289.9, 299.9)) == (95, 159)


def test_zoom_keeps_the_pixel_under_the_cursor_and_maps_both_ways(qtbot):
    canvas = _canvas(qtbot)
    cursor = QPointF(123.0, 77.0)
    before = canvas.widget_to_image(cursor)
    canvas.zoom_at(cursor, 3.0)
    assert canvas.scale() == pytest.approx(7.5)
    after = canvas.widget_to_image(cursor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()))
    back = canvas.image_to_widget(canvas.widget_to_image(QPointF(10, 20)))
    assert (back.x(), back.y()) == pytest.approx((10, 20))
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _at(canvas, 33, 21))
    assert canvas.document.points == ((33, 21, 1),)
    canvas.fit()
    assert canvas.scale() == pytest.approx(2.5)


def test_brush_paints_the_mask_eraser_removes_and_undo_restores(qtbot):
    canvas = _canvas(qtbot)
    document = canvas.document
    changes = []
    document.mask_changed.connect(changes.append)
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_size(10)
    _drag(canvas, [_at(canvas, 20, 40), _at(canvas, 40, 40), _at(canvas, 60, 40)])
    mask = document.mask
    assert mask.shape == (96, 160)
    assert mask[40, 20] and mask[40, 40] and mask[40, 60] and mask[44, 50]
    assert not mask[40, 70] and not mask[52, 40] and not mask[0, 0]
    assert changes and all(c is not None for c in changes)  # strokes report the changed region
    canvas.set_tool(Tool.ERASER)
    _drag(canvas, [_at(canvas, 40, 30), _at(canvas, 40, 50)])
    assert not document.mask[40, 40] and document.mask[40, 20]
    document.undo()  # the eraser stroke
    assert document.mask[40, 40]
    document.undo()  # the brush stroke
    assert not document.mask.any() and not document.can_undo


def test_box_drag_sets_a_box_prompt(qtbot):
    canvas = _canvas(qtbot)
    canvas.set_tool(Tool.BOX)
    with qtbot.waitSignal(canvas.segment_requested):
        _drag(canvas, [_at(canvas, 100, 80), _at(canvas, 60, 50), _at(canvas, 10, 20)])
    assert canvas.document.box == (10, 20, 101, 81)  # normalised, pixels 10..100 inclusive
    with qtbot.assertNotEmitted(canvas.segment_requested):
        _drag(canvas, [_at(canvas, 5, 5), _at(canvas, 5, 5)])  # a click is not a box
    assert canvas.document.box == (10, 20, 101, 81)


def test_document_signals_only_on_change_and_undo_covers_points_and_clear(qtbot):
    document = MaskDocument()
    image = QImage(32, 16, QImage.Format.Format_RGB32)
    document.set_scene(None, image)
    seen = []
    for signal in (document.points_changed, document.box_changed, document.mask_changed):
        signal.connect(lambda *args, s=signal: seen.append(s))
    document.clear()  # nothing to clear
    document.set_mask(np.zeros((16, 32), bool))  # same as before
    assert seen == []
    assert document.add_point(3, 4, 1) and not document.add_point(32, 4, 1)
    assert document.set_box((1, 1, 10, 10)) and not document.set_box((1, 1, 10, 10))
    full = np.ones((16, 32), bool)
    document.set_mask(full)
    document.clear()
    assert document.points == () and document.box is None and not document.has_mask
    document.undo()
    assert document.points == ((3, 4, 1),) and document.box == (1, 1, 10, 10) and document.mask.all()
    with pytest.raises(ValueError):
        document.set_mask(np.ones((4, 4), bool))


def test_stamp_segment_covers_the_capsule_and_reports_the_region():
    mask = np.zeros((20, 30), bool)
    region = stamp_segment(mask, (5.0, 10.0), (25.0, 10.0), 3.0, True)
    assert region is not None and mask[10, 5] and mask[10, 24] and mask[12, 15]
    assert not mask[10, 1] and not mask[14, 15]
    x0, y0, x1, y1 = region
    assert not mask[:, :x0].any() and not mask[:, x1:].any() and not mask[:y0].any() and not mask[y1:].any()
    assert stamp_segment(mask, (5.0, 10.0), (25.0, 10.0), 3.0, True) is None  # nothing changed
    assert stamp_segment(mask, (-50.0, -50.0), (-40.0, -40.0), 3.0, True) is None  # outside
    single = np.zeros((4, 4), bool)
    stamp_segment(single, (2.0, 2.0), (2.0, 2.0), 0.5, True)  # a 1-px brush on a pixel corner
    assert single.any()
