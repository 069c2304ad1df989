"""Paste a generated region back into the scene through a feathered alpha, exactly.

Pixels where the alpha is 0 are copied from the scene byte for byte (no float round trip), so
everything outside the grown + feathered mask is bit-identical to the input scene.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from alchemy_engine.insertion.masks import Box


def blend(scene: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``generated`` over ``scene`` (both uint8 HxWx3) with uint8 ``alpha`` (HxW); exact where 0/255."""
    out = scene.copy()
    soft = alpha > 0
    if not soft.any():
        return out
    a = alpha[soft].astype(np.uint32)[:, None]
    mixed = (generated[soft].astype(np.uint32) * a + scene[soft].astype(np.uint32) * (255 - a) + 127) // 255
    out[soft] = mixed.astype(np.uint8)
    return out


def colour_match(generated: np.ndarray, scene: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Correct the colour drift of ``generated`` inside ``inside`` (bool HxW).

    Outside the mask the generated crop should reproduce the scene; the per-channel mean and
    spread of the difference there give an affine correction, applied to the masked pixels.
    With no outside pixels (a full mask) the image is returned unchanged.
    """
    ref = ~inside
    if ref.sum() < 16 or not inside.any():
        return generated
    g = generated[ref].astype(np.float64)
    s = scene[ref].astype(np.float64)
    g_mean, s_mean = g.mean(axis=0), s.mean(axis=0)
    gain = np.clip((s.std(axis=0) + 1e-3) / (g.std(axis=0) + 1e-3), 0.5, 2.0)
    out = generated.copy()
    fixed = (generated[inside].astype(np.float64) - g_mean) * gain + s_mean
    out[inside] = np.clip(np.round(fixed), 0, 255).astype(np.uint8)
    return out


def paste(scene: Image.Image, generated_crop: Image.Image, box: Box, alpha: np.ndarray,
          match_colour: bool = False, inside: np.ndarray | None = None) -> Image.Image:
    """Resize ``generated_crop`` to ``box`` and blend it into ``scene`` through ``alpha`` (scene-sized).

    ``alpha`` must be 0 outside ``box``. ``inside`` (scene-sized bool) marks the pixels to colour
    match; by default the pixels with alpha > 0.
    """
    x0, y0, x1, y1 = box
    if alpha[:y0].any() or alpha[y1:].any() or alpha[:, :x0].any() or alpha[:, x1:].any():
        raise ValueError("the alpha reaches outside the work box; the crop plan is wrong")
    scene_arr = np.asarray(scene.convert("RGB"))
    region = scene_arr[y0:y1, x0:x1]
    crop = generated_crop.convert("RGB")
    if crop.size != (x1 - x0, y1 - y0):
        crop = crop.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
    gen = np.asarray(crop)
    local_alpha = alpha[y0:y1, x0:x1]
    if match_colour:
        local_inside = (inside if inside is not None else alpha > 0)[y0:y1, x0:x1]
        gen = colour_match(gen, region, local_inside)
    out = scene_arr.copy()
    out[y0:y1, x0:x1] = blend(region, gen, local_alpha)
    return Image.fromarray(out, "RGB")
