"""Mask arithmetic on plain numpy arrays: grow/shrink, feather, fill holes, combine, crop boxes.

Conventions: a *mask* is a ``bool`` array of shape (H, W), True where the subject goes; an *alpha*
is a ``uint8`` array of shape (H, W), 255 = take the generated pixel, 0 = keep the scene pixel.
Boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends, like ``PIL.Image.crop``.

Everything here is exact and needs only numpy: distances come from a separable Euclidean
distance transform truncated at the largest radius asked for, so growing by 20 px costs
O(20 · pixels) vectorised operations and is computed on the mask's neighbourhood only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alchemy_engine.errors import InvalidRequest

Box = tuple[int, int, int, int]


def grey_values(image_or_array) -> np.ndarray:
    """The (H, W) values of a mask before any threshold: a PIL image's alpha when it has one (else
    its grey level), or an array (3-D: the maximum over channels)."""
    if hasattr(image_or_array, "mode"):
        image = image_or_array
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            alpha = np.asarray(rgba.getchannel("A"))
            array = np.asarray(rgba.convert("L")) if alpha.min() == 255 else alpha
        else:
            array = np.asarray(image.convert("L"))
    else:
        array = np.asarray(image_or_array)
    return array.max(axis=2) if array.ndim == 3 else array


def to_mask(image_or_array, size: tuple[int, int] | None = None) -> np.ndarray:
    """A bool mask from a PIL image (any mode; alpha is used when the image has one) or an array.

    ``size`` (W, H) is the scene size the mask must match; a mismatch is an InvalidRequest.
    """
    array = grey_values(image_or_array)
    mask = array > 127 if array.dtype != bool else array.copy()
    return check_size(mask, size)


def check_size(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``mask`` itself when it matches the scene size ``size`` (W, H) or no size is given."""
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        raise InvalidRequest(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the scene is {size[0]}x{size[1]}; "
            "draw the mask on this scene or resize it to the scene's size")
    return mask


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as a bool array, read through the safe image decoder (size limits, formats)."""
    from alchemy_engine.image_files import open_image

    with open_image(path) as image:
        return to_mask(image, size)


def save_mask(mask_or_alpha: np.ndarray, target: str | Path, *, exclusive: bool = False) -> Path:
    """Write a bool mask (white = subject) or an 8-bit alpha as a PNG, atomically; ``exclusive``:
    as a new file (``-2`` … if the name is taken), never replacing one."""
    from PIL import Image

    from alchemy_engine.insertion.metadata import save_new_png, save_png

    array = mask_or_alpha.astype(np.uint8) * 255 if mask_or_alpha.dtype == bool else mask_or_alpha
    image = Image.fromarray(array, "L")
    if exclusive:
        return save_new_png(image, Path(target).parent, Path(target).stem)
    return save_png(image, Path(target))


def bbox(mask: np.ndarray) -> Box | None:
    """Tight box around the True pixels, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _expand(box: Box, margin: int, shape: tuple[int, int]) -> Box:
    h, w = shape
    x0, y0, x1, y1 = box
    return max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)


def _column_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (in rows) from each pixel to the nearest True pixel in its column; inf if none."""
    h = mask.shape[0]
    rows = np.arange(h, dtype=np.float64)[:, None]
    above = np.where(mask, rows, -np.inf)
    np.maximum.accumulate(above, axis=0, out=above)
    below = np.where(mask, rows, np.inf)[::-1]
    below = np.minimum.accumulate(below, axis=0)[::-1]
    return np.minimum(rows - above, below - rows)


def distance_to(mask: np.ndarray, limit: int) -> np.ndarray:
    """Euclidean distance from each pixel to the nearest True pixel, exact up to ``limit``.

    Pixels farther than ``limit`` get a value greater than ``limit`` (not necessarily exact).
    Separable: exact 1-D distances down the columns, then a bounded minimum along the rows.
    """
    limit = max(0, int(limit))
    g2 = _column_distance(mask) ** 2
    best = g2.copy()
    w = mask.shape[1]
    for dx in range(1, min(limit, w - 1) + 1):
        cost = float(dx * dx)
        np.minimum(best[:, dx:], g2[:, :-dx] + cost, out=best[:, dx:])
        np.minimum(best[:, :-dx], g2[:, dx:] + cost, out=best[:, :-dx])
    return np.sqrt(best)


def _local(mask: np.ndarray, margin: int):
    """The part of ``mask`` around its True pixels (plus ``margin``) and where it sits."""
    box = bbox(mask)
    if box is None:
        return None, None
    x0, y0, x1, y1 = _expand(box, margin + 1, mask.shape)
    return mask[y0:y1, x0:x1], (slice(y0, y1), slice(x0, x1))


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate by a disk of radius ``px`` (> 0) or erode by ``-px`` (< 0); 0 returns a copy."""
    px = int(px)
    if px == 0:
        return mask.copy()
    local, where = _local(mask, abs(px))
    if local is None:
        return mask.copy()
    if px > 0:
        out = np.zeros_like(mask)
        out[where] = distance_to(local, px) <= px
    else:  # erode: pixels farther than -px from the background; the image edge is not background
        out = mask.copy()
        out[where] = distance_to(~local, -px) > -px
    return out


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Alpha that is 255 on ``mask`` and falls linearly to 0 at ``px`` pixels outside it.

    Pixels farther than ``px`` from the mask are exactly 0, so the feathered region is the mask
    grown by ``px``; nothing beyond it is ever touched by the composite.
    """
    alpha = np.zeros(mask.shape, dtype=np.uint8)
    if px <= 0:
        alpha[mask] = 255
        return alpha
    limit = math.ceil(px)
    local, where = _local(mask, limit)
    if local is None:
        return alpha
    dist = distance_to(local, limit)
    ramp = np.clip(1.0 - dist / float(px), 0.0, 1.0)
    alpha[where] = np.round(ramp * 255.0).astype(np.uint8)
    return alpha


def _spread_along_rows(reach: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Every run of ``free`` pixels in a row that touches ``reach`` becomes reached."""
    starts = free.copy()
    starts[:, 1:] &= ~free[:, :-1]
    runs = np.cumsum(starts.ravel()).reshape(free.shape)
    hit = np.zeros(int(runs.max()) + 1 if runs.size else 1, dtype=bool)
    hit[runs[reach & free]] = True
    return hit[runs] & free


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set every background region not connected (4-neighbour) to the image border."""
    local, where = _local(mask, 0)
    if local is None:
        return mask.copy()
    out = mask.copy()
    out[where] = _fill_holes_local(local)
    return out


def _fill_holes_local(mask: np.ndarray) -> np.ndarray:
    free = ~mask
    reach = np.zeros_like(mask)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = free[0, :], free[-1, :], free[:, 0], free[:, -1]
    while True:
        spread = _spread_along_rows(reach, free)
        spread = _spread_along_rows(spread.T, free.T).T
        if np.array_equal(spread, reach):
            return ~reach
        reach = spread


def combine(base: np.ndarray | None, other: np.ndarray, mode: str) -> np.ndarray:
    """``replace``, ``union`` or ``intersect`` ``other`` into ``base`` (None means no base)."""
    if base is None or mode == "replace":
        return other.copy()
    if base.shape != other.shape:
        raise InvalidRequest(f"mask sizes differ: {base.shape[::-1]} vs {other.shape[::-1]}")
    if mode == "union":
        return base | other
    if mode == "intersect":
        return base & other
    raise InvalidRequest(f"unknown mask mode {mode!r}; use replace, union or intersect")


@dataclass(frozen=True)
class CropPlan:
    """Where to work: ``box`` in scene pixels, resized to ``work_size`` (W, H) for SDXL."""

    box: Box
    work_size: tuple[int, int]

    @property
    def scale(self) -> float:
        """Work pixels per scene pixel (>1 means the region is enlarged for SDXL)."""
        return self.work_size[0] / (self.box[2] - self.box[0])


def work_size_for(width: int, height: int, target_pixels: int, multiple: int = 64) -> tuple[int, int]:
    """(W, H) with about ``target_pixels`` pixels, the aspect of width:height, multiples of ``multiple``."""
    s = math.sqrt(target_pixels / float(width * height))
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    return w, h


def _fit_span(lo: float, hi: float, length: float, limit: int) -> tuple[int, int]:
    """An integer span of ``length`` centred on [lo, hi], shifted (then clipped) into [0, limit]."""
    length = min(float(limit), max(length, hi - lo))
    start = (lo + hi - length) / 2.0
    start = min(max(0.0, start), limit - length)
    a = int(math.floor(start))
    b = min(limit, max(a + 1, int(math.ceil(start + length))))
    return a, b


def plan_crop(region: Box, image_size: tuple[int, int], padding: float = 0.25, min_padding: int = 16,
              target_pixels: int = 1024 * 1024, multiple: int = 64, max_aspect: float = 4.0) -> CropPlan:
    """A padded box around ``region`` (the feathered mask's box) and the SDXL work size for it.

    The box grows by ``padding`` × its larger side (at least ``min_padding`` px) for context, is
    widened so its aspect is at most ``max_aspect``, then matched to the aspect of the work size
    (a multiple of ``multiple`` with about ``target_pixels`` pixels) and shifted to stay inside the
    image. Where the image edge stops that, the work size follows the box instead, so the region is
    never stretched. It always contains ``region``.
    """
    w_img, h_img = image_size
    x0, y0, x1, y1 = region
    pad = max(float(min_padding), padding * max(x1 - x0, y1 - y0))
    bx0, by0 = max(0.0, x0 - pad), max(0.0, y0 - pad)
    bx1, by1 = min(float(w_img), x1 + pad), min(float(h_img), y1 + pad)
    bw, bh = bx1 - bx0, by1 - by0
    bw, bh = max(bw, bh / max_aspect), max(bh, bw / max_aspect)
    work = work_size_for(max(1, round(bw)), max(1, round(bh)), target_pixels, multiple)
    aspect = work[0] / work[1]
    bw, bh = max(bw, bh * aspect), max(bh, bw / aspect)
    cx0, cx1 = _fit_span(bx0, bx1, bw, w_img)
    cy0, cy1 = _fit_span(by0, by1, bh, h_img)
    cx0, cy0 = min(cx0, x0), min(cy0, y0)
    cx1, cy1 = max(cx1, x1), max(cy1, y1)
    if (cx1 - cx0, cy1 - cy0) != (round(bw), round(bh)):  # the image edge limited the box
        work = work_size_for(cx1 - cx0, cy1 - cy0, target_pixels, multiple)
    return CropPlan((cx0, cy0, cx1, cy1), work)


def full_frame_plan(image_size: tuple[int, int], target_pixels: int, multiple: int = 64) -> CropPlan:
    """Work on the whole scene, resized to about ``target_pixels`` (crop-to-mask off)."""
    w, h = image_size
    return CropPlan((0, 0, w, h), work_size_for(w, h, target_pixels, multiple))
