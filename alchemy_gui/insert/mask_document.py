"""The mask document of the Insert area: the scene, the SAM prompts and the mask being edited.
(Owned by :class:`~alchemy_gui.insert.state.InsertState`.)

A plain QObject model (STYLE.md "State and views"): the canvas and the panel bind to its
``<noun>_changed`` signals, which fire only when a value really changes, and call one method per
user action. Brush strokes edit the mask array here; SAM results replace it.

Coordinates are image pixels, continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its
centre is ``(i + 0.5, j + 0.5)``. Points are ``(x, y, label)`` with integer pixel indices and
label 1 (subject) or 0 (not the subject); the box is ``(x0, y0, x1, y1)`` with exclusive ends.
No disk and no ML here: everything is in memory.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

Point = tuple[int, int, int]
Box = tuple[int, int, int, int]
MAX_UNDO = 20


class Tool(enum.Enum):
    """What a press on the canvas does."""

    CLICK = "click"
    BOX = "box"
    BRUSH = "brush"
    ERASER = "eraser"


def stamp_segment(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float],
                  radius: float, value: bool) -> Box | None:
    """Set every pixel whose centre lies within ``radius`` of the segment ``start``-``end`` to
    ``value`` (a round brush dragged along a line). Returns the changed region, or None."""
    h, w = mask.shape
    radius = max(float(radius), 0.71)  # a 1-px brush always covers the pixel under it
    (ax, ay), (bx, by) = start, end
    x0 = max(int(math.floor(min(ax, bx) - radius)), 0)
    y0 = max(int(math.floor(min(ay, by) - radius)), 0)
    x1 = min(int(math.ceil(max(ax, bx) + radius)) + 1, w)
    y1 = min(int(math.ceil(max(ay, by) + radius)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    hit = (xs - (ax + t * dx)) ** 2 + (ys - (ay + t * dy)) ** 2 <= radius * radius
    region = mask[y0:y1, x0:x1]
    if not hit.any() or bool((region[hit] == value).all()):
        return None
    region[hit] = value
    return x0, y0, x1, y1


@dataclass(frozen=True)
class _Snapshot:
    points: tuple[Point, ...]
    box: Box | None
    mask: np.ndarray | None


class MaskDocument(QObject):
    """Scene, SAM prompts (points and box) and the editable bool mask of the scene's size."""

    scene_changed = Signal(object)  # Path or None
    points_changed = Signal(tuple)  # tuple[Point, ...]
    box_changed = Signal(object)  # Box or None
    mask_changed = Signal(object)  # the changed region (x0, y0, x1, y1), or None for all of it
    undo_changed = Signal(bool)  # whether there is something to undo

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._scene_path: Path | None = None
        self._scene_image = QImage()
        self._points: tuple[Point, ...] = ()
        self._box: Box | None = None
        self._mask: np.ndarray | None = None
        self._undo: list[_Snapshot] = []

    # --- values -----------------------------------------------------------------------------------
    @property
    def scene_path(self) -> Path | None:
        return self._scene_path

    @property
    def scene_image(self) -> QImage:
        return self._scene_image

    @property
    def scene_size(self) -> tuple[int, int] | None:
        """(width, height) in pixels, or None without a scene."""
        return None if self._mask is None else (self._mask.shape[1], self._mask.shape[0])

    @property
    def points(self) -> tuple[Point, ...]:
        return self._points

    @property
    def box(self) -> Box | None:
        return self._box

    @property
    def mask(self) -> np.ndarray | None:
        """The bool (H, W) mask; edit it only through this document's methods."""
        return self._mask

    @property
    def has_mask(self) -> bool:
        return self._mask is not None and bool(self._mask.any())

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # --- user actions -------------------------------------------------------------------------------
    def set_scene(self, path: Path | None, image: QImage | None = None) -> None:
        """A new scene (or none): prompts, mask and undo history start empty."""
        image = image if image is not None else QImage()
        self._scene_path = Path(path) if path is not None else None
        self._scene_image = image
        self._mask = None if image.isNull() else np.zeros((image.height(), image.width()), dtype=bool)
        self._undo.clear()
        self.undo_changed.emit(False)
        self.scene_changed.emit(self._scene_path)
        self._set_prompts((), None)
        self.mask_changed.emit(None)

    def add_point(self, x: float, y: float, label: int) -> bool:
        """A click on the subject (label 1) or on what is not the subject (0); False if outside."""
        size = self.scene_size
        if size is None or not (0 <= x < size[0] and 0 <= y < size[1]):
            return False
        self._push_undo()
        self._set_prompts(self._points + ((int(x), int(y), 1 if label else 0),), self._box)
        return True

    def set_box(self, box: tuple[float, float, float, float]) -> bool:
        """A dragged box prompt, clipped to the image; False when it is under 2 px on a side."""
        size = self.scene_size
        if size is None:
            return False
        x0, x1 = sorted((box[0], box[2]))
        y0, y1 = sorted((box[1], box[3]))
        clipped = (max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0),
                   min(int(math.ceil(x1)), size[0]), min(int(math.ceil(y1)), size[1]))
        if clipped[2] - clipped[0] < 2 or clipped[3] - clipped[1] < 2 or clipped == self._box:
            return False
        self._push_undo()
        self._set_prompts(self._points, clipped)
        return True

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the mask (a SAM result); it must have the scene's size."""
        mask = np.asarray(mask, dtype=bool)
        if self._mask is None or mask.shape != self._mask.shape:
            raise ValueError(f"mask of shape {mask.shape} does not fit the scene {self.scene_size}")
        if np.array_equal(mask, self._mask):
            return
        self._mask = mask.copy()
        self.mask_changed.emit(None)

    def begin_stroke(self) -> None:
        """Call once before the segments of one brush or eraser stroke (one undo step)."""
        if self._mask is not None:
            self._push_undo()

    def paint(self, start: tuple[float, float], end: tuple[float, float], radius: float,
              value: bool = True) -> bool:
        """Paint (``value`` True) or erase a round brush from ``start`` to ``end``."""
        if self._mask is None:
            return False
        changed = stamp_segment(self._mask, start, end, radius, value)
        if changed is not None:
            self.mask_changed.emit(changed)
        return changed is not None

    def clear(self) -> None:
        """Forget points, box and mask (one undo step)."""
        if not self._points and self._box is None and not self.has_mask:
            return
        self._push_undo()
        self._set_prompts((), None)
        if self._mask is not None:
            self._mask = np.zeros_like(self._mask)
            self.mask_changed.emit(None)

    def undo(self) -> bool:
        """Go back one point, box, stroke or clear."""
        if not self._undo:
            return False
        snap = self._undo.pop()
        if not self._undo:
            self.undo_changed.emit(False)
        self._set_prompts(snap.points, snap.box)
        if snap.mask is not None and not np.array_equal(snap.mask, self._mask):
            self._mask = snap.mask
            self.mask_changed.emit(None)
        return True

    # --- helpers ------------------------------------------------------------------------------------
    def _push_undo(self) -> None:
        mask = None if self._mask is None else self._mask.copy()
        self._undo.append(_Snapshot(self._points, self._box, mask))
        del self._undo[:-MAX_UNDO]
        if len(self._undo) == 1:
            self.undo_changed.emit(True)

    def _set_prompts(self, points: tuple[Point, ...], box: Box | None) -> None:
        if points != self._points:
            self._points = points
            self.points_changed.emit(points)
        if box != self._box:
            self._box = box
            self.box_changed.emit(box)


__all__ = ["Box", "MaskDocument", "Point", "Tool", "stamp_segment"]
