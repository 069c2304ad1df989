"""Helpers for training tests (a uniquely named module: ``conftest`` names collide across folders)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from alchemy_engine.training.request import TrainRequest

SIZES = [(256, 256), (320, 256), (256, 384)]


def make_photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A blob on a gradient: structured enough for a VAE, different for every seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, np.full_like(xx, rng.random(), dtype=float)], axis=-1) * 255
    cx, cy, r = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7), min(w, h) / 4
    blob = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    base[blob] = rng.integers(0, 255, 3)
    base += rng.normal(0, 8, base.shape)
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(path)
    return path


def make_project(folder: Path, name: str = "Rex", count: int = 3):
    from alchemy_engine.project import create_project

    folder.mkdir(parents=True, exist_ok=True)
    photos = [make_photo(folder / f"photo{i}.png", SIZES[i % len(SIZES)], seed=i) for i in range(count)]
    return create_project(name, class_noun="dog", images=photos)


def quick_request(project, **overrides) -> TrainRequest:
    settings = dict(project=str(project.root), model="demo", steps=4, resolution=64, rank=4, learning_rate=1e-3,
                    save_every=0, sample_every=0, sample_steps=2)
    settings.update(overrides)
    return TrainRequest(**settings)


def subject_mask(photo) -> Image.Image:
    """A mask covering the left half of the photo."""
    mask = np.zeros((photo.height, photo.width), dtype=np.uint8)
    mask[:, : photo.width // 2] = 255
    return Image.fromarray(mask)


def subprocess_env(home: Path, cache: Path) -> dict[str, str]:
    import torch

    env = dict(os.environ, IMAGE_ALCHEMY_HOME=str(home), IMAGE_ALCHEMY_CACHE=str(cache),
               OMP_NUM_THREADS=str(torch.get_num_threads()), PYTHONUNBUFFERED="1")
    return env
