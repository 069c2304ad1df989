"""PIL images and numpy masks to Qt images, without touching the disk."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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


def previews_as_qimages(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The job ``fn(request, progress, cancel)`` with each ``Progress.preview`` (a PIL image) turned
    into a QImage on the job's own thread: converting a 1024² sample took 10-30 ms on the UI
    thread. QImage (unlike QPixmap) may be made off the UI thread."""

    def job(request: Any, progress: Callable[[Any], None], cancel: Any) -> Any:
        def forward(event: Any) -> None:
            if event.preview is not None and not isinstance(event.preview, QImage):
                event = dataclasses.replace(event, preview=qimage_from_pil(event.preview))
            progress(event)

        return fn(request, forward, cancel)

    job.__qualname__ = getattr(fn, "__qualname__", "job")  # the job's name in logs and messages
    return job
