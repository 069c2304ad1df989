"""Brush hardness: the control and its shortcuts, soft dabs (grey levels), strokes that do not stack,
the soft eraser, undo/redo of soft strokes, and the overlay that shows the grey levels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from alchemy_gui.insert.brush_settings import BRUSH_HARDNESS, BRUSH_SIZE
from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.mask_document import MaskDocument, Tool


def _document(w: int = 80, h: int = 60) -> MaskDocument:
    document = MaskDocument()
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(90, 140, 90))
    document.set_scene(None, image)
    return document


def _stroke(document: MaskDocument, points, radius: float, hardness: float, value: bool = True) -> None:
    document.begin_stroke()
    for start, end in zip(points, points[1:]):
        document.paint(start, end, radius, value=value, hardness=hardness)
    document.end_stroke()


def test_hardness_control_tooltip_binding_and_shortcuts(qtbot, panel):
    state, tools = panel.insert_state, panel.tools
    assert state.brush_hardness == 100 and tools.hardness.value() == 100  # today's hard brush
    assert "hardness" in tools.hardness.toolTip().lower() and "Shift+[" in tools.hardness.toolTip()
    assert not tools.hardness.isEnabled()  # the Click tool has no brush
    state.tool = Tool.BRUSH
    assert tools.hardness.isEnabled()
    tools.hardness.setValue(40)
    assert state.brush_hardness == 40 and panel.canvas.brush_hardness == 0.4
    panel.canvas.setFocus()
    QTest.keyClick(panel.canvas, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.ShiftModifier)
    assert state.brush_hardness == 30 and tools.hardness.value() == 30
    for _ in range(12):
        QTest.keyClick(panel.canvas, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ShiftModifier)
    assert state.brush_hardness == 100  # capped
    size = state.brush_size
    QTest.keyClick(panel.canvas, Qt.Key.Key_BracketRight)  # plain ] still sizes the brush
    assert state.brush_size > size and state.brush_hardness == 100


def test_brush_limits_are_the_properties_own(qtbot, panel):
    """Whatever sets the brush (a remembered setting, the shortcuts, code) stays within the limits
    its property declares, and the tool bar's controls offer exactly that range."""
    state, tools = panel.insert_state, panel.tools
    assert (tools.size_slider.minimum(), tools.size_slider.maximum()) == (BRUSH_SIZE.minimum, BRUSH_SIZE.maximum) == (1, 256)
    assert (tools.hardness.minimum(), tools.hardness.maximum()) == (BRUSH_HARDNESS.minimum, BRUSH_HARDNESS.maximum)
    state.brush.set("brush_size", 10_000)
    assert state.brush_size == 256 and tools.size_slider.value() == 256
    state.brush_hardness = -40
    assert state.brush_hardness == 0 and panel.canvas.brush_hardness == 0.0
    state.tool = Tool.BRUSH
    panel.canvas.setFocus()
    QTest.keyClick(panel.canvas, Qt.Key.Key_BracketRight)
    assert state.brush_size == 256
    state.brush_size = 1
    QTest.keyClick(panel.canvas, Qt.Key.Key_BracketLeft)
    assert state.brush_size == 1 and panel.canvas.brush_size == 1


def test_hard_dabs_are_binary_and_soft_dabs_are_graded():
    hard, soft = _document(), _document()
    _stroke(hard, [(40, 30), (40, 30)], 12, hardness=1.0)
    _stroke(soft, [(40, 30), (40, 30)], 12, hardness=0.0)
    assert set(np.unique(hard.mask)) == {0, 255}
    values = np.unique(soft.mask)
    assert len(values) > 10 and soft.mask[29, 39] >= 250  # graded, full at the centre
    row = soft.mask[29, 39:56].astype(int)  # from the centre outwards
    assert (np.diff(row) <= 0).all() and row[-1] == 0
    assert ((soft.mask > 0) <= (hard.mask > 0)).all()  # never wider than the hard brush


def test_overlapping_soft_dabs_merge_by_maximum_and_do_not_stack():
    once, back_and_forth, twice = _document(), _document(), _document()
    line = [(20, 30), (60, 30)]
    _stroke(once, line, 8, hardness=0.2)
    _stroke(back_and_forth, [(20, 30), (60, 30), (20, 30), (60, 30)], 8, hardness=0.2)
    _stroke(twice, line, 8, hardness=0.2)
    _stroke(twice, line, 8, hardness=0.2)
    assert np.array_equal(back_and_forth.mask, once.mask)
    assert np.array_equal(twice.mask, once.mask)  # the brush is max(mask, dab)
    assert ((once.mask > 0) & (once.mask < 255)).any()


def test_soft_eraser_multiplies_the_mask_down():
    document = _document()
    full = np.zeros((60, 80), bool)
    full[10:50, 10:70] = True
    document.set_mask(full)
    probe = _document()
    _stroke(probe, [(40, 30), (40, 30)], 10, hardness=0.0)
    dab = probe.mask.astype(int)
    _stroke(document, [(40, 30), (40, 30)], 10, hardness=0.0, value=False)
    expected = np.where(full, (255 * (255 - dab) + 127) // 255, 0)
    assert np.array_equal(document.mask, expected)
    # A later SAM result does not bring back what was erased, in part or fully.
    document.set_mask(full.copy() | (np.arange(80) < 5)[None, :])
    assert np.array_equal(document.mask[10:50, 10:70], expected[10:50, 10:70])


def test_undo_and_redo_of_soft_strokes_and_of_a_snapshot_over_them():
    document = _document()
    _stroke(document, [(15, 15), (50, 40)], 9, hardness=0.3)
    first = document.mask.copy()
    _stroke(document, [(60, 10), (30, 50)], 6, hardness=0.0)
    second = document.mask.copy()
    assert not np.array_equal(first, second) and ((second > 0) & (second < 255)).any()
    assert document.undo() and np.array_equal(document.mask, first)
    assert document.redo() and np.array_equal(document.mask, second)
    sam = np.zeros((60, 80), bool)
    sam[0:10, 0:10] = True
    document.set_mask(sam)  # a whole-document undo step, the grey layers packed
    assert document.undo() and np.array_equal(document.mask, second)
    assert document.redo() and document.mask[5, 5] == 255
    third = document.mask.copy()
    document.clear()
    assert not document.has_mask
    assert document.undo() and np.array_equal(document.mask, third)


def test_canvas_drag_paints_with_its_hardness_and_the_overlay_alpha_is_the_mask(qtbot):
    document = _document(160, 120)
    canvas = MaskCanvas(document)
    qtbot.addWidget(canvas)
    canvas.resize(320, 240)
    canvas.show()
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_size(30)
    canvas.set_brush_hardness(0)

    def at(x, y) -> QPoint:
        return canvas.image_to_widget(QPointF(x, y)).toPoint()

    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(40, 60))
    QTest.mouseMove(canvas, at(120, 60))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(120, 60))
    mask = document.mask
    assert len(np.unique(mask)) > 10 and mask[60, 80] >= 250
    assert np.array_equal(canvas._overlay[..., 3], mask)
    assert (canvas._overlay[mask > 0, :3] == (255, 64, 64)).all()
    assert document.undo() and not document.has_mask and not canvas._overlay[..., 3].any()
    canvas.grab()  # paints the soft overlay and the two-ring cursor without error
