"""The undo steps of the :class:`~alchemy_gui.insert.mask_document.MaskDocument`.

A point, box, SAM result or clear keeps the whole document before and after it, its layers packed
8 pixels to a byte (1.5 MB a layer on a 4000×3000 scene); a brush stroke keeps only the region it
touched, so painting costs memory in proportion to the stroke, not the scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QUndoCommand

Box = tuple[int, int, int, int]


@dataclass
class Layers:
    """The SAM result, the painted pixels and the erased pixels; bool (H, W) each."""

    sam: np.ndarray
    painted: np.ndarray
    erased: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Layers:
        return cls(*(np.zeros(shape, dtype=bool) for _ in range(3)))

    def compose(self, sam_mode: str, region: Box | None = None) -> np.ndarray:
        """The mask (in ``region`` only, when given) for the SAM mode "add" or "subtract"."""
        where = (slice(None), slice(None)) if region is None else (slice(region[1], region[3]),
                                                                   slice(region[0], region[2]))
        sam, painted, erased = self.sam[where], self.painted[where], self.erased[where]
        if sam_mode == "add":
            return (sam | painted) & ~erased
        return painted & ~erased & ~sam


@dataclass(frozen=True)
class Snapshot:
    prompts: tuple[tuple, Any]  # (points, box)
    shape: tuple[int, int] | None
    packed: tuple[bytes, ...]  # the three layers, np.packbits

    @classmethod
    def of(cls, points: tuple, box: Any, layers: Layers | None) -> Snapshot:
        if layers is None:
            return cls((points, box), None, ())
        packed = tuple(np.packbits(a).tobytes() for a in (layers.sam, layers.painted, layers.erased))
        return cls((points, box), layers.sam.shape, packed)

    def restore(self, layers: Layers) -> bool:
        """Write the layers back; False when this snapshot is of another scene size."""
        if self.shape != layers.sam.shape:
            return False
        count = self.shape[0] * self.shape[1]
        for target, data in zip((layers.sam, layers.painted, layers.erased), self.packed):
            target[:] = np.unpackbits(np.frombuffer(data, np.uint8), count=count).reshape(self.shape).astype(bool)
        return True


class SnapshotCommand(QUndoCommand):
    """A point, box, SAM result, mode switch or clear; ``prompts``: a click or box that its SAM
    result will join (see ``MaskDocument.set_mask``)."""

    def __init__(self, document: Any, text: str, before: Snapshot, after: Snapshot, prompts: bool) -> None:
        super().__init__(text)
        self.document, self.before, self.after, self.prompts = document, before, after, prompts
        self._done = True  # push() calls redo(): the document already shows ``after``

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.document._restore(self.after)

    def undo(self) -> None:
        self.document._restore(self.before)


class StrokeCommand(QUndoCommand):
    """One brush or eraser stroke: the painted and erased layers in its region, before and after."""

    def __init__(self, document: Any, region: Box, before: tuple[np.ndarray, np.ndarray],
                 after: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__("Stroke")
        self.document, self.region, self.before, self.after = document, region, before, after
        self._done = True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.document._restore_patch(self.region, self.after)

    def undo(self) -> None:
        self.document._restore_patch(self.region, self.before)


__all__ = ["Layers", "Snapshot", "SnapshotCommand", "StrokeCommand"]
