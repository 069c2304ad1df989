"""The mask document of the Insert area: the scene, the SAM prompts and the mask being edited.
(Owned by :class:`~alchemy_gui.insert.state.InsertState`.)

A plain QObject model (the shape of krita-ai-diffusion's models, see :mod:`alchemy_gui.common.binding`): the canvas and the panel bind to its
``<noun>_changed`` signals, which fire only when a value really changes, and call one method per
user action. Every edit is a step of a :class:`QUndoStack` (undo and redo).

The mask is greyscale, uint8 0-255: SAM results and boxes are hard (0 or 255), a soft brush
paints grey levels (255 = repaint fully, in between = blend, 0 = keep the scene pixel exactly).
It is made of three layers, so that a new SAM result never throws brush work away: ``sam`` is
the latest SAM result for the current points and box, ``painted`` / ``erased`` how much the brush
and the eraser covered (how they combine: :mod:`alchemy_gui.insert.mask_undo`). Within one
stroke the dabs are merged by their maximum before they touch the layers, so overlapping dabs of
a soft brush do not stack into a hard edge. Switching the SAM mode keeps the mask as it is (it becomes the
painted layer) and starts new prompts.

Coordinates are image pixels, continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its
centre is ``(i + 0.5, j + 0.5)``. Points are ``(x, y, label)`` with integer pixel indices and
label 1 (subject) or 0 (not the subject); the box is ``(x0, y0, x1, y1)`` with exclusive ends.
No disk and no ML here: everything is in memory.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QUndoStack

from alchemy_gui.insert.brush import Box, segment_dab, stamp_segment, union
from alchemy_gui.insert.mask_undo import Layers, Snapshot, SnapshotCommand, StrokeCommand

Point = tuple[int, int, int]
MAX_UNDO = 30
SAM_MODES = ("add", "subtract")


class Tool(enum.Enum):
    """What a press on the canvas does."""

    CLICK = "click"
    BOX = "box"
    BRUSH = "brush"
    ERASER = "eraser"


class MaskDocument(QObject):
    """Scene, SAM prompts (points and box), detections and the layered grey mask of the scene's size."""

    scene_changed = Signal(object)  # Path or None
    points_changed = Signal(tuple)  # tuple[Point, ...]
    box_changed = Signal(object)  # Box or None
    mask_changed = Signal(object)  # the changed region (x0, y0, x1, y1), or None for all of it
    undo_changed = Signal(bool)  # whether there is something to undo
    redo_changed = Signal(bool)
    detections_changed = Signal(tuple)  # tuple of (box, score, label)
    sam_mode_changed = Signal(str)
    modified_changed = Signal(bool)  # edits since the scene was opened or last saved

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._scene_path: Path | None = None
        self._scene_image = QImage()
        self._points: tuple[Point, ...] = ()
        self._box: Box | None = None
        self._layers: Layers | None = None
        self._mask: np.ndarray | None = None
        self._sam_mode = "add"
        self._detections: tuple = ()
        # painted and erased before the open stroke, and the stroke's coverage so far (max of its dabs)
        self._stroke: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._stroke_region: Box | None = None
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(MAX_UNDO)
        self.stack.canUndoChanged.connect(self.undo_changed)
        self.stack.canRedoChanged.connect(self.redo_changed)
        self.stack.cleanChanged.connect(self._on_clean)

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
        """The uint8 (H, W) mask, 0-255; edit it only through this document's methods."""
        return self._mask

    @property
    def has_mask(self) -> bool:
        return self._mask is not None and bool(self._mask.any())

    @property
    def can_undo(self) -> bool:
        return self.stack.canUndo()

    @property
    def modified(self) -> bool:
        return not self.stack.isClean()

    @property
    def sam_mode(self) -> str:
        return self._sam_mode

    @property
    def detections(self) -> tuple:
        """What Auto-detect found: ``((x0, y0, x1, y1), score, label)`` each, best first."""
        return self._detections

    # --- user actions -------------------------------------------------------------------------------
    def set_scene(self, path: Path | None, image: QImage | None = None, mask: np.ndarray | None = None) -> None:
        """A new scene (or none): prompts and history start empty; ``mask`` (a saved one: uint8
        grey levels, or bool) or none."""
        image = image if image is not None else QImage()
        self._stroke = None
        self.stack.clear()
        self._scene_path = Path(path) if path is not None else None
        self._scene_image = image
        self._layers = None if image.isNull() else Layers.empty((image.height(), image.width()))
        if self._layers is not None and mask is not None and mask.shape == self._layers.painted.shape:
            self._layers.painted[:] = mask.astype(np.uint8) * 255 if mask.dtype == bool else mask
        self._mask = None if self._layers is None else self._layers.compose(self._sam_mode)
        self.scene_changed.emit(self._scene_path)
        self._set_prompts((), None)
        self.set_detections(())
        self.mask_changed.emit(None)

    def add_point(self, x: float, y: float, label: int) -> bool:
        """A click on the subject (label 1) or on what is not the subject (0); False if outside."""
        size = self.scene_size
        if size is None or not (0 <= x < size[0] and 0 <= y < size[1]):
            return False
        self._edit("Point", lambda: self._set_prompts(self._points + ((int(x), int(y), 1 if label else 0),),
                                                      self._box), prompts=True)
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
        self._edit("Box", lambda: self._set_prompts(self._points, clipped), prompts=True)
        return True

    def set_mask(self, mask: np.ndarray) -> None:
        """A SAM result for the current prompts: it replaces the previous SAM result and merges
        with the brush work (see the module docstring); it must have the scene's size."""
        mask = np.asarray(mask, dtype=bool)
        if self._layers is None or mask.shape != self._layers.sam.shape:
            raise ValueError(f"mask of shape {mask.shape} does not fit the scene {self.scene_size}")
        if np.array_equal(mask, self._layers.sam):
            return
        top = self.stack.command(self.stack.index() - 1) if self.stack.index() == self.stack.count() else None
        if isinstance(top, SnapshotCommand) and top.prompts and top.after.prompts == (self._points, self._box):
            self._layers.sam[:] = mask  # the result of the click or box just made: the same undo step
            top.after = self._snapshot()
            self._refresh(None)
            return
        self._edit("SAM mask", lambda: self._layers.sam.__setitem__(slice(None), mask))

    def set_sam_mode(self, mode: str) -> None:
        """``add``: a SAM result adds to the mask; ``subtract``: it cuts out of it. The mask is kept
        as it is and the next click or box starts new prompts."""
        if mode not in SAM_MODES:
            raise ValueError(f"SAM mode is one of {SAM_MODES}, not {mode!r}")
        if mode == self._sam_mode:
            return
        layers = self._layers
        if layers is not None and (layers.sam.any() or self._points or self._box is not None):
            self._edit("Bake mask", lambda: self._bake(layers))
        self._sam_mode = mode
        self.sam_mode_changed.emit(mode)

    def set_detections(self, detections: tuple) -> None:
        detections = tuple(detections)
        if detections != self._detections:
            self._detections = detections
            self.detections_changed.emit(detections)

    def begin_stroke(self) -> None:
        """Call once before the segments of one brush or eraser stroke (one undo step)."""
        self.end_stroke()
        if self._layers is not None:
            self._stroke = (self._layers.painted.copy(), self._layers.erased.copy(),
                            np.zeros(self._layers.painted.shape, np.uint8))
            self._stroke_region = None

    def paint(self, start: tuple[float, float], end: tuple[float, float], radius: float,
              value: bool = True, hardness: float = 1.0) -> bool:
        """Paint (``value`` True) or erase a round brush of ``hardness`` (1 hard, 0 softest) from
        ``start`` to ``end``; only the brush's region is touched."""
        if self._layers is None:
            return False
        found = segment_dab(self._layers.painted.shape, start, end, radius, hardness)
        if found is None:
            return False
        (x0, y0, x1, y1), dab = found
        where = (slice(y0, y1), slice(x0, x1))
        painted, erased = self._layers.painted[where], self._layers.erased[where]
        if self._stroke is None:  # a lone segment: a stroke of its own
            base, cover = (painted.copy(), erased.copy()), dab
        else:
            base, cover = (self._stroke[0][where], self._stroke[1][where]), self._stroke[2][where]
            np.maximum(cover, dab, out=cover)
        new = _stroked(base, cover, value)
        if np.array_equal(new[0], painted) and np.array_equal(new[1], erased):
            return False
        painted[:], erased[:] = new
        region = (x0, y0, x1, y1)
        self._stroke_region = union(self._stroke_region, region)
        self._refresh(region)
        return True

    def end_stroke(self) -> None:
        """Close the open stroke as one undo step (the canvas calls it on release)."""
        if self._stroke is None or self._layers is None:
            self._stroke = None
            return
        before, self._stroke = self._stroke, None
        self._stroke_region, region = None, self._stroke_region
        if region is not None:
            x0, y0, x1, y1 = region
            patch = (slice(y0, y1), slice(x0, x1))
            old = (before[0][patch].copy(), before[1][patch].copy())
            new = (self._layers.painted[patch].copy(), self._layers.erased[patch].copy())
            self.stack.push(StrokeCommand(self, region, old, new))

    def clear(self) -> None:
        """Forget points, box, detections and mask (one undo step)."""
        if not self._points and self._box is None and not self.has_mask and not self._detections:
            return
        self._edit("Clear", self._clear_all)
        self.set_detections(())

    def undo(self) -> bool:
        """Go back one point, box, stroke, SAM result or clear."""
        self.end_stroke()
        if not self.stack.canUndo():
            return False
        self.stack.undo()
        return True

    def redo(self) -> bool:
        self.end_stroke()
        if not self.stack.canRedo():
            return False
        self.stack.redo()
        return True

    def mark_saved(self) -> None:
        self.stack.setClean()

    # --- for the undo commands ------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        return Snapshot.of(self._points, self._box, self._layers)

    def _restore(self, snap: Snapshot) -> None:
        self._set_prompts(*snap.prompts)
        if self._layers is not None and snap.restore(self._layers):
            self._refresh(None)

    def _restore_patch(self, region: Box, patches: tuple[np.ndarray, np.ndarray]) -> None:
        if self._layers is None:
            return
        x0, y0, x1, y1 = region
        self._layers.painted[y0:y1, x0:x1] = patches[0]
        self._layers.erased[y0:y1, x0:x1] = patches[1]
        self._refresh(region)

    # --- helpers ------------------------------------------------------------------------------------
    def _on_clean(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def _edit(self, text: str, change, prompts: bool = False) -> None:
        self.end_stroke()
        before = self._snapshot()
        change()
        self._refresh(None)
        self.stack.push(SnapshotCommand(self, text, before, self._snapshot(), prompts))

    def _bake(self, layers: Layers) -> None:
        layers.painted[:] = self._mask
        layers.erased[:] = False
        layers.sam[:] = False
        self._set_prompts((), None)

    def _clear_all(self) -> None:
        self._set_prompts((), None)
        if self._layers is not None:
            for layer in (self._layers.sam, self._layers.painted, self._layers.erased):
                layer[:] = 0

    def _refresh(self, region: Box | None) -> None:
        """Recompose the mask (in ``region`` only, when given) and report a real change."""
        if self._layers is None:
            return
        if region is None:
            mask = self._layers.compose(self._sam_mode)
            if self._mask is not None and np.array_equal(mask, self._mask):
                return
            self._mask = mask
        else:
            assert self._mask is not None  # composed whenever there are layers (set_scene)
            x0, y0, x1, y1 = region
            self._mask[y0:y1, x0:x1] = self._layers.compose(self._sam_mode, region)
        self.mask_changed.emit(region)

    def _set_prompts(self, points: tuple[Point, ...], box: Box | None) -> None:
        if points != self._points:
            self._points = points
            self.points_changed.emit(points)
        if box != self._box:
            self._box = box
            self.box_changed.emit(box)


def _scaled(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``a × keep / 255``, rounded, for uint8 arrays (exact at keep 0 and 255)."""
    return ((a.astype(np.uint16) * keep + 127) // 255).astype(np.uint8)


def _stroked(base: tuple[np.ndarray, np.ndarray], cover: np.ndarray, paint: bool) -> tuple[np.ndarray, np.ndarray]:
    """The painted and erased layers after a stroke of ``cover`` over ``base`` (mask_undo)."""
    painted, erased = base
    keep = 255 - cover.astype(np.uint16)
    if paint:
        return np.maximum(painted, cover), _scaled(erased, keep)
    return _scaled(painted, keep), 255 - _scaled(255 - erased, keep)


__all__ = ["Box", "MaskDocument", "Point", "SAM_MODES", "Tool", "stamp_segment"]
