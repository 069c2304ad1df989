"""Canvas tools artists expect: undo and redo, SAM merged with brush work (add and subtract),
shortcuts, zoom %, mask colour and opacity, detections drawn and picked, the stroke benchmark."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget
from test_insert_panel import _at, _open, _paint, _scene

from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.mask_document import MaskDocument, Tool
from alchemy_gui.insert.stroke_bench import stroke_latency


def _document(w=40, h=30) -> MaskDocument:
    document = MaskDocument()
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    document.set_scene(None, image)
    return document


def test_undo_and_redo_cover_strokes_points_and_sam_results(qtbot):
    document = _document()
    document.begin_stroke()
    document.paint((5, 5), (15, 5), 2)
    document.end_stroke()
    painted = document.mask.copy()
    assert document.add_point(30, 20, 1)
    sam = np.zeros((30, 40), bool)
    sam[15:25, 25:35] = True
    document.set_mask(sam)  # the click's result: the same undo step as the click
    assert document.mask[20, 30] and document.mask[5, 10]  # SAM added, the stroke kept
    assert document.stack.count() == 2
    document.undo()
    assert document.points == () and np.array_equal(document.mask, painted)
    document.undo()
    assert not document.has_mask and not document.can_undo
    document.redo()
    document.redo()
    assert document.points == ((30, 20, 1),) and document.mask[20, 30] and document.mask[5, 10]


def test_a_new_sam_result_replaces_the_old_one_but_keeps_brush_and_eraser_work(qtbot):
    document = _document()
    first = np.zeros((30, 40), bool)
    first[0:10, 0:10] = True
    document.add_point(5, 5, 1)
    document.set_mask(first)
    document.begin_stroke()
    document.paint((30, 25), (35, 25), 2)  # painted outside SAM
    document.paint((5, 5), (5, 5), 1.5, value=False)  # erased inside SAM
    document.end_stroke()
    second = np.zeros((30, 40), bool)
    second[0:12, 0:12] = True
    document.add_point(8, 8, 1)
    document.set_mask(second)
    mask = document.mask
    assert mask[11, 11] and mask[25, 32] and not mask[5, 5]  # new SAM, the stroke, the erased spot


def test_subtract_mode_cuts_the_sam_result_out_of_the_mask(qtbot):
    document = _document()
    document.begin_stroke()
    document.paint((0, 15), (40, 15), 6)
    document.end_stroke()
    document.set_sam_mode("subtract")
    cut = np.zeros((30, 40), bool)
    cut[:, 20:] = True
    document.add_point(30, 15, 1)
    document.set_mask(cut)
    assert document.mask[15, 10] and not document.mask[15, 30]
    document.undo()
    assert document.mask[15, 30]


def test_shortcuts_zoom_and_mask_style(qtbot, panel, project, tmp_path):
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    canvas, tools = panel.canvas, panel.tools
    canvas.setFocus()
    for key, tool in ((Qt.Key.Key_B, Tool.BRUSH), (Qt.Key.Key_E, Tool.ERASER), (Qt.Key.Key_X, Tool.BOX),
                      (Qt.Key.Key_S, Tool.CLICK)):
        QTest.keyClick(canvas, key)
        assert panel.insert_state.tool == tool and tools.buttons[tool].isChecked()
    size = panel.insert_state.brush_size
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert panel.insert_state.brush_size > size and tools.size_slider.value() == panel.insert_state.brush_size
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert panel.insert_state.brush_size < size
    fitted = canvas.zoom_percent()
    assert tools.zoom_label.text() == f"{fitted} %" and fitted > 100  # a 160 px scene fills the view
    QTest.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom_percent() == 100 and tools.zoom_label.text() == "100 %"
    QTest.keyClick(canvas, Qt.Key.Key_F)
    assert canvas.zoom_percent() == fitted
    _paint(panel, [(50, 65), (90, 75)])
    assert panel.document.has_mask and tools.undo.isEnabled() and not tools.redo.isEnabled()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not panel.document.has_mask and tools.redo.isEnabled()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert panel.document.has_mask
    tools.opacity.setValue(80)
    assert canvas.mask_opacity == 0.8
    canvas.set_mask_style(colour=QColor(0, 120, 255))
    y, x = 70, 70
    assert tuple(canvas._overlay[y, x][:3]) == (0, 120, 255)


def test_sam_status_line_clears_after_undo_and_detections_are_drawn_and_picked(qtbot, panel, project, tmp_path,
                                                                              screenshot):
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000):
        QTest.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _at(panel, 70, 72))
    assert panel.message.text().startswith("SAM:")
    panel.insert_state.undo()
    assert panel.message.text() == ""
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000) as blocker:
        QTest.mouseClick(panel.tools.detect, Qt.MouseButton.LeftButton)
    assert blocker.args[0].request.locate.instance == "all"
    found = panel.document.detections
    assert len(found) == len(blocker.args[0].result.detections) >= 1
    assert panel.tools.instance.count() == len(found) + 1
    screenshot(panel, "insert_panel_detections")
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000):
        panel.insert_state.pick_detection(0)
    assert panel.document.box == tuple(int(round(v)) for v in found[0][0]) or panel.document.box is not None
    panel.insert_state.clear_mask()
    assert panel.message.text() == "" and panel.document.detections == ()


def test_stroke_benchmark_helper_reports_dirty_and_full_repaints(qtbot):
    report = stroke_latency(width=800, height=600, segments=5, view=(400, 300))
    assert report["segments"] == 5 and report["dirty_median_ms"] > 0 and report["full_median_ms"] > 0


def test_canvas_repaints_only_the_brush_region(qtbot):
    document = _document(400, 300)
    canvas = MaskCanvas(document)
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    qtbot.waitExposed(canvas)
    regions = []
    document.mask_changed.connect(regions.append)
    document.begin_stroke()
    document.paint((10, 10), (20, 10), 3)
    document.end_stroke()
    x0, y0, x1, y1 = regions[-1]
    assert (x1 - x0) * (y1 - y0) < 400 * 300 / 50  # a small region, not the whole scene


def _hidden_qt_methods(widget: QWidget) -> list[str]:
    """The attributes set on ``widget`` that hide a method of its Qt class (as ``actions`` hid
    ``QWidget.actions()`` and ``size`` hid ``QWidget.size()``); bound signals are Qt's own."""
    qt = [base for base in type(widget).__mro__ if base.__module__.startswith("PySide6")]
    return [f"{type(widget).__name__}.{name}" for name, value in vars(widget).items()
            if not isinstance(value, SignalInstance) and any(name in vars(base) for base in qt)]


def test_no_insert_widget_hides_a_qt_method(panel):
    hidden = [hit for widget in [panel, *panel.findChildren(QWidget)] for hit in _hidden_qt_methods(widget)]
    assert hidden == []
    assert isinstance(panel.actions(), list) and panel.tools.size().isValid()
