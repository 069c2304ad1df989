from __future__ import annotations

import numpy as np
from PIL import Image

from alchemy_gui.common.images import qimage_from_mask, qimage_from_pil


def test_pil_to_qimage_keeps_pixels(qapp):
    image = Image.new("RGB", (5, 3), (10, 20, 30))
    image.putpixel((4, 2), (200, 100, 50))
    qimage = qimage_from_pil(image)
    assert (qimage.width(), qimage.height()) == (5, 3)
    assert qimage.pixelColor(4, 2).getRgb()[:3] == (200, 100, 50)
    assert qimage.pixelColor(0, 0).getRgb()[:3] == (10, 20, 30)


def test_mask_overlay_is_clear_outside(qapp):
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:4] = True
    overlay = qimage_from_mask(mask)
    assert overlay.pixelColor(2, 1).alpha() > 0
    assert overlay.pixelColor(0, 0).alpha() == 0
