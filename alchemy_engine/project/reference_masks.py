"""Subject masks of reference photos: ``references/<photo>.mask.png``, white = subject.

Drawn by the user or made by SAM; the trainer's masked loss reads them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.project.photos import ReferencePhoto


def write_mask(photo: ReferencePhoto, mask: Any) -> None:
    """Save ``mask`` (PIL image or 2-D array; white/True = subject) as the photo's mask file;
    ``None`` deletes it."""
    target = photo.default_mask_path
    if mask is None:
        target.unlink(missing_ok=True)
        return
    image = _mask_image(mask)
    if image.size != (photo.width, photo.height):
        raise InvalidRequest(f"The mask is {image.width}×{image.height} px but photo "
                             f"{photo.name} is {photo.width}×{photo.height} px. Make the mask "
                             "the same size as the photo.")
    with atomic_path(target) as tmp:
        image.save(tmp, "PNG")


def _mask_image(mask: Any) -> Image.Image:
    if isinstance(mask, Image.Image):
        return mask.convert("L")
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InvalidRequest(f"A mask must be a 2-D array or a PIL image, not shape {array.shape}.")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = np.round(np.clip(array, 0.0, 1.0) * 255)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
