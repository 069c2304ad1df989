"""The results strip tells variations apart by what differs: the seed and one score, short enough
to be read whole under a thumbnail (the strip elides in the middle, not the end)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from alchemy_gui.insert.panel_actions import result_label
from alchemy_gui.insert.result_jobs import InsertedImage
from alchemy_gui.insert.tools import ResultStrip


def _result(seed: int, **scores: float) -> InsertedImage:
    return InsertedImage(Path(f"insert-{seed}.png"), QImage(8, 8, QImage.Format.Format_RGB32), seed, "a sks dog",
                         scores=scores)


def test_variations_are_labelled_by_their_seed_and_the_score_they_are_sorted_by(qtbot):
    first, second = _result(2147483646, dino=0.531, clip_i=0.64), _result(2147483647, dino=0.529, clip_i=0.64)
    assert result_label(first) == "seed 2147483646\nclip_i 0.640"  # unsorted: the first score by name
    assert result_label(first, "dino") != result_label(second, "dino")
    assert result_label(second, "dino") == "seed 2147483647\ndino 0.529"
    assert result_label(_result(7)) == "seed 7"
    strip = ResultStrip()
    qtbot.addWidget(strip)
    assert strip.list.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert strip.list.fontMetrics().horizontalAdvance("seed 2147483647") <= strip.list.gridSize().width()
