"""The round brush of the mask canvas: which pixels a stroke segment covers, in a small region,
and how much (its hardness).

Pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)`` (see :mod:`alchemy_gui.insert.mask_document`); a
segment touches only the pixels of its bounding box, so a stroke on a 4000×3000 scene costs what
the brush covers, not what the scene holds.
"""

from __future__ import annotations

import math

import numpy as np

Box = tuple[int, int, int, int]


def _segment_distance(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float],
                      radius: float) -> tuple[Box, np.ndarray, float] | None:
    """The region around a round brush dragged from ``start`` to ``end``, the squared distance of
    each of its pixel centres to the segment, and the radius used."""
    h, w = shape
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
    return (x0, y0, x1, y1), (xs - (ax + t * dx)) ** 2 + (ys - (ay + t * dy)) ** 2, radius


def segment_hit(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float],
                radius: float) -> tuple[Box, np.ndarray] | None:
    """The region ``(x0, y0, x1, y1)`` around a round brush dragged from ``start`` to ``end`` and,
    inside it, a bool array of the pixels whose centre lies within ``radius`` of the segment."""
    found = _segment_distance(shape, start, end, radius)
    if found is None:
        return None
    region, d2, radius = found
    hit = d2 <= radius * radius
    return (region, hit) if hit.any() else None


def segment_dab(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float],
                radius: float, hardness: float = 1.0) -> tuple[Box, np.ndarray] | None:
    """Like :func:`segment_hit`, but how much each pixel is covered, uint8 0-255: 255 within
    ``hardness × radius`` of the segment, then a smoothstep fall to 0 at ``radius``. Hardness 1 is
    the hard brush (only 0 and 255, the pixels :func:`segment_hit` finds); 0 fades from the centre."""
    if hardness >= 1.0:
        found = segment_hit(shape, start, end, radius)
        return None if found is None else (found[0], found[1].astype(np.uint8) * 255)
    near = _segment_distance(shape, start, end, radius)
    if near is None:
        return None
    region, d2, radius = near
    inner = max(float(hardness), 0.0) * radius
    t = np.clip((np.sqrt(d2) - inner) / (radius - inner), 0.0, 1.0)
    dab = np.rint((1.0 - t * t * (3.0 - 2.0 * t)) * 255.0).astype(np.uint8)
    return (region, dab) if dab.any() else None


def stamp_segment(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float],
                  radius: float, value: bool) -> Box | None:
    """Set the pixels :func:`segment_hit` finds to ``value``; the changed region, or None."""
    found = segment_hit(mask.shape, start, end, radius)
    if found is None:
        return None
    (x0, y0, x1, y1), hit = found
    region = mask[y0:y1, x0:x1]
    if bool((region[hit] == value).all()):
        return None
    region[hit] = value
    return x0, y0, x1, y1


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


__all__ = ["Box", "segment_dab", "segment_hit", "stamp_segment", "union"]
