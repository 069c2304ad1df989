"""PIL images and numpy masks to Qt images, without touching the disk."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QImage

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff);;All files (*)"  # for file dialogs


def qimage_from_pil(image: Any) -> QImage:
    """A deep-copied QImage of a PIL image (any mode; converted to RGBA)."""
    rgba = image.convert("RGBA")
    data = rgba.tobytes("raw", "RGBA")
    return QImage(data, rgba.width, rgba.height, 4 * rgba.width, QImage.Format.Format_RGBA8888).copy()


def qimage_from_mask(mask: Any, rgba: tuple[int, int, int, int] = (255, 64, 64, 110)) -> QImage:
    """A tinted overlay of a boolean/uint8 (H, W) mask: ``rgba`` where the mask is set, clear elsewhere."""
    import numpy as np

    on = np.asarray(mask) > (0 if np.asarray(mask).dtype == bool else 127)
    height, width = on.shape
    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    pixels[on] = rgba
    return QImage(pixels.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
