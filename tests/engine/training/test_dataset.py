"""Buckets, crops, SDXL size conditioning and the seeded data order."""

from __future__ import annotations

import torch
from PIL import Image

from alchemy_engine.training import dataset
from alchemy_engine.training.dataset import Example


def test_buckets_cover_sdxl_aspect_ratios_at_about_the_same_area():
    buckets = dataset.make_buckets(1024)
    assert {(1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768)} <= set(buckets)
    for w, h in buckets:
        assert w % 64 == 0 and h % 64 == 0
        assert max(w / h, h / w) <= 2.0
        assert 0.85 <= w * h / 1024 ** 2 <= 1.0
    assert dataset.make_buckets(64) == [(64, 64)]


def test_nearest_bucket_and_placement():
    buckets = dataset.make_buckets(1024)
    assert dataset.nearest_bucket((3000, 2000), buckets) == (1216, 832)
    assert dataset.nearest_bucket((2000, 2000), buckets) == (1024, 1024)
    placement = dataset.place((3000, 2000), (1216, 832))
    assert placement.resized == (1248, 832)  # covers the bucket
    assert (placement.crop_left, placement.crop_top) == (16, 0)


def test_time_ids_original_size_crop_and_target_and_mirrored_crop_when_flipped():
    placement = dataset.place((3000, 2000), (1216, 832))
    assert placement.time_ids(flipped=False) == [2000, 3000, 0, 16, 832, 1216]
    assert placement.time_ids(flipped=True) == [2000, 3000, 0, 1248 - 1216 - 16, 832, 1216]
    tall = dataset.place((1000, 1600), (832, 1216))
    assert tall.time_ids(False)[2] == (tall.resized[1] - 1216) // 2


def test_pixels_and_latent_mask_follow_the_same_crop_and_flip():
    image = Image.new("RGB", (128, 64), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 64, 64))  # left half black
    mask = Image.new("L", (128, 64), 0)
    mask.paste(255, (0, 0, 64, 64))
    placement = dataset.place(image.size, (64, 32))
    px = dataset.pixels(image, placement, flipped=False)
    assert px.shape == (3, 32, 64) and px[:, :, :30].max() < -0.9 and px[:, :, 34:].min() > 0.9
    flipped = dataset.pixels(image, placement, flipped=True)
    assert flipped[:, :, :30].min() > 0.9
    lm = dataset.latent_mask(mask, placement, flipped=True)
    assert lm.shape == (1, 4, 8) and lm[0, :, 4:].min() > 0.95 and lm[0, :, :4].max() < 0.05


def test_epoch_order_is_seeded_by_epoch_and_batches_share_a_bucket():
    examples = [Example(i, False, (64, 64) if i < 5 else (96, 32)) for i in range(8)]
    examples += [Example(i, True, ex.bucket) for i, ex in enumerate(examples)]
    first = dataset.epoch_batches(examples, 2, seed=1, epoch=0, flip=True)
    assert first == dataset.epoch_batches(examples, 2, seed=1, epoch=0, flip=True)
    assert first != dataset.epoch_batches(examples, 2, seed=1, epoch=1, flip=True)
    assert len(first) == dataset.batches_per_epoch(examples, 2) == 3 + 2
    seen_images = sorted(examples[i].image_index for batch in first for i in batch)
    assert seen_images == list(range(8))  # each picture once per epoch, flipped or not
    for batch in first:
        assert len({examples[i].bucket for i in batch}) == 1
    assert any(examples[i].flipped for batch in first for i in batch)
    unflipped = dataset.epoch_batches(examples, 2, seed=1, epoch=0, flip=False)
    assert not any(examples[i].flipped for batch in unflipped for i in batch)


def test_loss_weights():
    mask = torch.tensor([[[0.0, 0.5, 1.0]]])
    assert torch.allclose(dataset.loss_weights(mask, 0.2), torch.tensor([[[0.2, 0.6, 1.0]]]))
