"""Helpers for evaluation tests (a uniquely named module: ``conftest`` names collide across folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_SIZES = [(256, 256), (320, 256), (256, 384)]


def structured_image(size: tuple[int, int], seed: int) -> Image.Image:
    """A gradient with a coloured disc and some noise: structure the encoders can tell apart."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, np.full_like(xx, rng.random(), dtype=float)], axis=-1) * 255
    cx, cy, r = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7), min(w, h) / 4
    base[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    base += rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


def make_project(folder: Path, name: str = "Rex", count: int = 3):
    from alchemy_engine.project import create_project

    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for i in range(count):
        path = folder / f"photo{i}.png"
        structured_image(PHOTO_SIZES[i % len(PHOTO_SIZES)], seed=i).save(path)
        photos.append(path)
    return create_project(name, class_noun="dog", images=photos)


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path
