"""The subject-crop variant: score only the subject, not the scene around it.

A full-image DINO score of an insertion mostly measures the scene (which we did not change). So
the inserted region — the bounding box of the insertion mask, padded by ``PADDING`` of its size on
each side and grown to a square where the image allows (the encoders centre-crop a square, so a
tall box would lose its top and bottom) — is compared with each reference photo cropped the same
way around its subject mask (``references/<photo>.mask.png``). A reference without a mask is used
whole, with a note saying so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PADDING = 0.1
Box = tuple[int, int, int, int]


def mask_box(mask: np.ndarray) -> Box | None:
    """``(x0, y0, x1, y1)`` (exclusive ends) of the non-zero pixels of a 2-D mask; None if empty."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def padded_square_box(box: Box, size: tuple[int, int], padding: float = PADDING) -> Box:
    """``box`` padded by ``padding`` of its width/height per side, then widened to a square around
    its centre as far as the image (``size`` = width, height) allows; always inside the image."""
    width, height = size
    x0, y0, x1, y1 = (float(v) for v in box)
    pad_x, pad_y = (x1 - x0) * padding, (y1 - y0) * padding
    x0, y0, x1, y1 = x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y
    h = min(max(x1 - x0, y1 - y0), height)
    w = min(max(x1 - x0, h), width)  # as wide as the height allows, never narrower than the box
    h = min(max(y1 - y0, w), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - w / 2, 0), width - w)))
    top = int(round(min(max(cy - h / 2, 0), height - h)))
    return left, top, min(width, left + int(round(w))), min(height, top + int(round(h)))


def crop_to_mask(image: Image.Image, mask: np.ndarray, padding: float = PADDING) -> tuple[Image.Image, Box] | None:
    """The subject's padded square crop of ``image`` (mask: 2-D, the image's size), or None if empty."""
    mask = np.asarray(mask)
    if mask.shape[:2] != (image.height, image.width):
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.width}x{image.height}")
    box = mask_box(mask > (127 if mask.dtype == np.uint8 else 0))
    if box is None:
        return None
    crop_box = padded_square_box(box, image.size, padding)
    return image.crop(crop_box), crop_box


@dataclass(frozen=True)
class ReferenceCrop:
    image: Image.Image
    key: str  # content key for the embedding cache
    box: Box | None  # None: the whole photo (no mask)
    source: Path


def reference_images(project, crop: bool) -> tuple[list[ReferenceCrop], list[str]]:
    """The project's reference photos, whole or cropped to their subject masks, and notes."""
    from alchemy_engine.image_files import load_rgb

    out, unmasked = [], []
    for photo in project.reference_photos():
        image = load_rgb(photo.path)
        box = None
        if crop and photo.mask_path is not None:
            with Image.open(photo.mask_path) as mask_file:
                mask = np.asarray(mask_file.convert("L"))
            cropped = crop_to_mask(image, mask) if mask.shape == (image.height, image.width) else None
            if cropped is not None:
                image, box = cropped
        elif crop:
            unmasked.append(photo.name)
        # the photo's pixel hash and the crop box determine the pixels: no need to hash them again
        key = hashlib.sha256(f"{photo.sha256}|{image.size}|{box}".encode()).hexdigest()[:24]
        out.append(ReferenceCrop(image, key, box, photo.path))
    notes = []
    if unmasked:
        notes.append(f"reference photo(s) {', '.join(unmasked)} have no subject mask, so the subject-crop "
                     "score compares against the whole photo; add masks for a sharper score")
    return out, notes
