"""The undo steps of the :class:`~alchemy_gui.insert.mask_document.MaskDocument`.

A point, box, SAM result or clear keeps the whole document before and after it, the SAM layer
packed 8 pixels to a byte (1.5 MB on a 4000×3000 scene) and the grey brush layers zlib-compressed
(masks are mostly runs of one value); a brush stroke keeps only the region it touched, so painting
costs memory in proportion to the stroke, not the scene.

The layers and how they make the mask (values 0-255, ``S`` the SAM result as 0/1)::

    mask = max(S * (255 - erased), painted)   (SAM adds)
    mask = painted * (1 - S)                  (SAM subtracts)

A stroke of coverage ``c`` (the soft dab, 0-255) sets ``painted = max(painted, c)`` and scales the
erasure down by ``1 - c`` (brush), or scales ``painted`` down by ``1 - c`` and raises the erasure to
``1 - (1 - erased)(1 - c)`` (eraser): the mask becomes ``max(mask, c)`` or ``mask × (1 - c)``,
and a later SAM result still stays out of what was erased.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtGui import QUndoCommand

from alchemy_gui.insert.brush import Box

if TYPE_CHECKING:  # the document imports this module
    from alchemy_gui.insert.mask_document import MaskDocument


@dataclass
class Layers:
    """The SAM result, bool (H, W); how much is painted and how much erased, uint8 (H, W) each."""

    sam: np.ndarray
    painted: np.ndarray
    erased: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Layers:
        return cls(np.zeros(shape, dtype=bool), np.zeros(shape, dtype=np.uint8), np.zeros(shape, dtype=np.uint8))

    def compose(self, sam_mode: str, region: Box | None = None) -> np.ndarray:
        """The mask (in ``region`` only, when given) for the SAM mode "add" or "subtract"."""
        where = (slice(None), slice(None)) if region is None else (slice(region[1], region[3]),
                                                                   slice(region[0], region[2]))
        sam, painted, erased = self.sam[where], self.painted[where], self.erased[where]
        if sam_mode == "add":
            return np.maximum(np.where(sam, 255 - erased, np.uint8(0)), painted)
        return np.where(sam, np.uint8(0), painted)


@dataclass(frozen=True)
class Snapshot:
    prompts: tuple[tuple, Any]  # (points, box)
    shape: tuple[int, int] | None
    packed: tuple[bytes, ...]  # sam as np.packbits, painted and erased zlib-compressed

    @classmethod
    def of(cls, points: tuple, box: Any, layers: Layers | None) -> Snapshot:
        if layers is None:
            return cls((points, box), None, ())
        packed = (np.packbits(layers.sam).tobytes(), zlib.compress(layers.painted.tobytes(), 1),
                  zlib.compress(layers.erased.tobytes(), 1))
        return cls((points, box), layers.sam.shape, packed)

    def restore(self, layers: Layers) -> bool:
        """Write the layers back; False when this snapshot is of another scene size."""
        if self.shape != layers.sam.shape:
            return False
        count = self.shape[0] * self.shape[1]
        sam, painted, erased = self.packed
        layers.sam[:] = np.unpackbits(np.frombuffer(sam, np.uint8), count=count).reshape(self.shape).astype(bool)
        layers.painted[:] = np.frombuffer(zlib.decompress(painted), np.uint8).reshape(self.shape)
        layers.erased[:] = np.frombuffer(zlib.decompress(erased), np.uint8).reshape(self.shape)
        return True


class SnapshotCommand(QUndoCommand):
    """A point, box, SAM result, mode switch or clear; ``prompts``: a click or box that its SAM
    result will join (see ``MaskDocument.set_mask``)."""

    def __init__(self, document: MaskDocument, text: str, before: Snapshot, after: Snapshot, prompts: bool) -> None:
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

    def __init__(self, document: MaskDocument, region: Box, before: tuple[np.ndarray, np.ndarray],
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
