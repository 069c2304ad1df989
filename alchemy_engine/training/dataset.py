"""Training examples: aspect-ratio buckets, crops, SDXL size conditioning, masks, epoch order.

Geometry conventions: sizes are ``(width, height)`` in pixels unless named ``*_hw``; SDXL's
``time_ids`` are ``(original_h, original_w, crop_top, crop_left, target_h, target_w)``, where the
original size is the photo's size before any resizing and the crop offset is measured in the
resized photo, as in SDXL's micro-conditioning. A flipped example's crop offset is mirrored:
``crop_left' = resized_w - target_w - crop_left``.

The order of examples in epoch ``e`` depends only on ``(seed, e)``, so a resumed run finds its
place from the number of micro-batches already done.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MAX_ASPECT = 2.0
LATENT_FACTOR = 8


@dataclasses.dataclass(frozen=True)
class TrainImage:
    """One source picture: a reference photo or a generated class image."""

    path: Path
    prompt: str
    mask_path: Path | None = None
    is_class: bool = False

    def content_key(self) -> str:
        """sha256 of the file bytes (and of the mask's): changes whenever either changes."""
        digest = hashlib.sha256(Path(self.path).read_bytes())
        if self.mask_path is not None:
            digest.update(b"mask")
            digest.update(Path(self.mask_path).read_bytes())
        return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Placement:
    """How a photo of ``original`` size is resized to cover ``bucket`` and cropped to it."""

    original: tuple[int, int]
    resized: tuple[int, int]
    bucket: tuple[int, int]
    crop_left: int
    crop_top: int

    def time_ids(self, flipped: bool) -> list[int]:
        left = self.resized[0] - self.bucket[0] - self.crop_left if flipped else self.crop_left
        return [self.original[1], self.original[0], self.crop_top, left, self.bucket[1], self.bucket[0]]

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.bucket[0] // LATENT_FACTOR, self.bucket[1] // LATENT_FACTOR


def bucket_step(resolution: int) -> int:
    """Bucket sides are multiples of 64 px (SDXL's own buckets); 32 px for tiny test resolutions."""
    return 64 if resolution >= 512 else 32


def make_buckets(resolution: int) -> list[tuple[int, int]]:
    """(width, height) buckets of about ``resolution²`` pixels, aspect ratio at most 2:1 either way.

    >>> (1024, 1024) in make_buckets(1024) and (832, 1216) in make_buckets(1024)
    True
    """
    step = bucket_step(resolution)
    area = resolution * resolution
    buckets = {(resolution, resolution)}
    for width in range(step, 2 * resolution + 1, step):
        height = (area // width) // step * step
        if height >= step and max(width / height, height / width) <= MAX_ASPECT:
            buckets.add((width, height))
            buckets.add((height, width))
    return sorted(buckets)


def nearest_bucket(size: tuple[int, int], buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest (in log space) to ``size``'s; ties → larger area."""
    ratio = np.log(size[0] / size[1])
    return min(buckets, key=lambda b: (abs(np.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def place(size: tuple[int, int], bucket: tuple[int, int]) -> Placement:
    """Resize to cover ``bucket`` (keeping the aspect ratio), then crop the centre."""
    scale = max(bucket[0] / size[0], bucket[1] / size[1])
    resized = (max(bucket[0], round(size[0] * scale)), max(bucket[1], round(size[1] * scale)))
    left = (resized[0] - bucket[0]) // 2
    top = (resized[1] - bucket[1]) // 2
    return Placement(original=size, resized=resized, bucket=bucket, crop_left=left, crop_top=top)


def _crop(image: Image.Image, placement: Placement, flipped: bool, resample) -> Image.Image:
    image = image.resize(placement.resized, resample=resample)
    box = (placement.crop_left, placement.crop_top,
           placement.crop_left + placement.bucket[0], placement.crop_top + placement.bucket[1])
    image = image.crop(box)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flipped else image


def pixels(image: Image.Image, placement: Placement, flipped: bool) -> torch.Tensor:
    """(3, H, W) float32 in [-1, 1], the VAE's input."""
    array = np.asarray(_crop(image.convert("RGB"), placement, flipped, Image.Resampling.LANCZOS))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


def latent_mask(mask: Image.Image, placement: Placement, flipped: bool) -> torch.Tensor:
    """(1, h, w) float32 in [0, 1] at latent resolution: the subject's share of each latent pixel."""
    cropped = _crop(mask.convert("L"), placement, flipped, Image.Resampling.BILINEAR)
    small = cropped.resize(placement.latent_size, resample=Image.Resampling.BOX)
    return torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0)[None]


def loss_weights(mask: torch.Tensor, background_weight: float) -> torch.Tensor:
    """Per-latent-pixel loss weight: 1 on the subject, ``background_weight`` elsewhere."""
    return background_weight + (1.0 - background_weight) * mask


@dataclasses.dataclass(frozen=True)
class Example:
    """A cacheable training example: one picture, one bucket, flipped or not."""

    image_index: int
    flipped: bool
    bucket: tuple[int, int]


def epoch_batches(examples: list[Example], batch_size: int, seed: int, epoch: int,
                  flip: bool) -> list[list[int]]:
    """Indices into ``examples`` grouped into same-bucket batches, in this epoch's order.

    With ``flip`` each picture appears once per epoch, flipped or not by a coin from the epoch's
    generator; without it only unflipped examples are used.
    """
    gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
    by_image: dict[int, list[int]] = {}
    for idx, ex in enumerate(examples):
        by_image.setdefault(ex.image_index, []).append(idx)
    chosen = []
    for image_index in sorted(by_image):
        options = {examples[i].flipped: i for i in by_image[image_index]}
        coin = bool(torch.randint(0, 2, (1,), generator=gen).item()) if flip else False
        chosen.append(options.get(coin, options[False]))
    order = [chosen[i] for i in torch.randperm(len(chosen), generator=gen).tolist()]
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for idx in order:
        by_bucket.setdefault(examples[idx].bucket, []).append(idx)
    batches = [group[i:i + batch_size] for group in by_bucket.values() for i in range(0, len(group), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def batches_per_epoch(examples: list[Example], batch_size: int) -> int:
    """The same for every epoch: it depends on bucket sizes only."""
    counts: dict[tuple[int, int], set[int]] = {}
    for ex in examples:
        counts.setdefault(ex.bucket, set()).add(ex.image_index)
    return sum(-(-len(images) // batch_size) for images in counts.values())


def _epoch_seed(seed: int, epoch: int) -> int:
    digest = hashlib.sha256(f"alchemy-data-order:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
