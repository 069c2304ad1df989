"""Brush stroke latency on a large scene, for ``bench/ui_bench.py`` (no test asserts a time).

:func:`stroke_latency` opens a scene of the given size in a :class:`MaskCanvas`, drags a brush
across it segment by segment as the mouse would, and times each segment from the document edit to
the repainted widget (``repaint()`` of what changed, synchronously), next to a full-widget repaint
per segment (what the canvas did before dirty rectangles) as the baseline.
"""

from __future__ import annotations

import statistics
import time

from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.mask_document import MaskDocument


def _stroke(canvas: MaskCanvas, document: MaskDocument, segments: int, full: bool) -> list[float]:
    w, h = canvas.image_size()
    times = []
    document.begin_stroke()
    last = (w * 0.1, h * 0.5)
    for i in range(1, segments + 1):
        point = (w * (0.1 + 0.8 * i / segments), h * (0.5 + 0.2 * ((i % 8) - 4) / 4))
        start = time.perf_counter()
        document.paint(last, point, canvas.brush_size / 2, hardness=canvas.brush_hardness)
        if full:
            canvas.repaint()
        else:
            QApplication.sendPostedEvents()
            QApplication.processEvents()  # the posted update(rect) of the brush region
        times.append((time.perf_counter() - start) * 1000)
        last = point
    document.end_stroke()
    return times


def stroke_latency(width: int = 4000, height: int = 3000, segments: int = 60, brush: int = 60,
                   view: tuple[int, int] = (1200, 900), hardness: int = 100) -> dict[str, float]:
    """Milliseconds per brush segment (median and worst) on a ``width``×``height`` scene, dirty-rect
    repaint and full repaint side by side, with a brush of ``hardness`` percent; needs a QApplication."""
    document = MaskDocument()
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(90, 140, 90))
    document.set_scene(None, image)
    canvas = MaskCanvas(document)
    canvas.resize(*view)
    canvas.set_brush_size(brush)
    canvas.set_brush_hardness(hardness)
    canvas.show()
    QApplication.processEvents()
    canvas.zoom_at(QPointF(view[0] / 2, view[1] / 2), 2.0)  # a zoomed-in view, as when painting edges
    QApplication.processEvents()
    dirty = _stroke(canvas, document, segments, full=False)
    document.clear()
    QApplication.processEvents()
    full = _stroke(canvas, document, segments, full=True)
    canvas.close()
    canvas.deleteLater()
    return {"scene_px": width * height, "segments": segments, "hardness": hardness,
            "dirty_median_ms": statistics.median(dirty), "dirty_max_ms": max(dirty),
            "full_median_ms": statistics.median(full), "full_max_ms": max(full),
            "ratio_full_to_dirty": statistics.median(full) / max(statistics.median(dirty), 1e-6)}


if __name__ == "__main__":
    import sys

    app = QApplication.instance() or QApplication([])
    for key, value in stroke_latency(hardness=int(sys.argv[1]) if len(sys.argv) > 1 else 100).items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
