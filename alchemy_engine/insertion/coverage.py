"""Greyscale masks ("coverage"): a ``uint8`` (H, W) array, 0 = keep the scene pixel exactly,
255 = repaint it fully, in between = blend the generated pixel in by that fraction (a soft brush).

A binary coverage (only 0 and 255) is a plain mask and goes through :mod:`masks` unchanged, so
hard masks behave byte for byte as before. For a soft one:

- fill holes: holes of the covered region (coverage > 0) become 255;
- grow / shrink: greyscale dilation / erosion by a disk (the same disk ``masks.grow`` uses, so a
  binary coverage grows exactly like the bool mask);
- feather: the linear ramp of ``masks.feather`` goes out from the fully covered pixels (255) and
  the painted soft values are kept wherever they are higher.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import masks


def to_coverage(image_or_array, size: tuple[int, int] | None = None) -> np.ndarray:
    """A uint8 coverage from a PIL image (any mode; alpha is used when the image has one, else
    its grey level) or an array (bool → 0/255, integers clipped, floats read as 0..1)."""
    array = masks.grey_values(image_or_array)
    if array.dtype == bool:
        cover = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        cover = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    else:
        cover = np.clip(array, 0, 255).astype(np.uint8)
    return masks.check_size(cover, size)


def read_coverage(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as a uint8 coverage (grey levels kept), read through the safe image decoder."""
    from alchemy_engine.image_files import open_image

    with open_image(path) as image:
        return to_coverage(image, size)


def is_hard(cover: np.ndarray) -> bool:
    """Only 0 and 255: a plain mask."""
    return not bool(((cover > 0) & (cover < 255)).any())


def combine(sam: np.ndarray, cover: np.ndarray, mode: str) -> np.ndarray:
    """A user's coverage ``replace``-d, ``union``-ed (max) or ``intersect``-ed (min) with a bool SAM mask."""
    if mode == "replace":
        return cover.copy()
    if sam.shape != cover.shape:
        raise InvalidRequest(f"mask sizes differ: {sam.shape[::-1]} vs {cover.shape[::-1]}")
    hard = sam.astype(np.uint8) * 255
    if mode == "union":
        return np.maximum(hard, cover)
    if mode == "intersect":
        return np.minimum(hard, cover)
    raise InvalidRequest(f"unknown mask mode {mode!r}; use replace, union or intersect")


def fill_holes(cover: np.ndarray) -> np.ndarray:
    """Holes of the covered region (coverage > 0) set to 255."""
    covered = cover > 0
    out = cover.copy()
    out[masks.fill_holes(covered) & ~covered] = 255
    return out


def _dilate(a: np.ndarray, r: int) -> np.ndarray:
    """Greyscale dilation by the disk dx² + dy² <= r² (pixels outside the image are ignored).

    Separable in the same spirit as ``masks.distance_to``: the running maximum over a column
    window of half-height h grows one row at a time, and each column offset dx takes the window
    of half-height ⌊√(r² − dx²)⌋; 4r array passes in all.
    """
    out, col = a.copy(), a.copy()
    h_rows, w = a.shape
    heights = [math.isqrt(r * r - dx * dx) for dx in range(r + 1)]
    for h in range(r + 1):
        if 0 < h < h_rows:
            np.maximum(col[h:], a[:-h], out=col[h:])
            np.maximum(col[:-h], a[h:], out=col[:-h])
        for dx in (d for d, height in enumerate(heights) if height == h and d < w):
            if dx == 0:
                np.maximum(out, col, out=out)
            else:
                np.maximum(out[:, dx:], col[:, :-dx], out=out[:, dx:])
                np.maximum(out[:, :-dx], col[:, dx:], out=out[:, :-dx])
    return out


def grow(cover: np.ndarray, px: int) -> np.ndarray:
    """Dilate by a disk of radius ``px`` (> 0) or erode by ``-px`` (< 0); the image edge is not
    background. Works on the covered region's neighbourhood only."""
    px = int(px)
    box = masks.bbox(cover > 0)
    if px == 0 or box is None:
        return cover.copy()
    h, w = cover.shape
    x0, y0, x1, y1 = box
    m = abs(px) + 1
    where = (slice(max(0, y0 - m), min(h, y1 + m)), slice(max(0, x0 - m), min(w, x1 + m)))
    out = cover.copy()
    local = cover[where]
    out[where] = _dilate(local, px) if px > 0 else 255 - _dilate(255 - local, -px)
    return out


def feather(cover: np.ndarray, px: float) -> np.ndarray:
    """The alpha of a coverage: ``masks.feather`` of its fully covered pixels, or the coverage
    itself where that is higher (so 0 stays 0 wherever the ramp does not reach)."""
    return np.maximum(cover, masks.feather(cover == 255, px))


__all__ = ["combine", "feather", "fill_holes", "grow", "is_hard", "read_coverage", "to_coverage"]
