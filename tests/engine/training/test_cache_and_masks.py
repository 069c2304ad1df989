"""Cached latents/embeddings are reused and invalidated by content; masked loss ignores the background."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from train_helpers import quick_request, subject_mask

from alchemy_engine.training import dataset, loop, run


def test_second_run_reuses_the_cache_and_a_changed_photo_is_re_encoded(project):
    first = run(quick_request(project, steps=1))
    assert first.cache["latents_computed"] == 3 and first.cache["latents_reused"] == 0
    second = run(quick_request(project, steps=1))
    assert second.cache == {"latents_computed": 0, "latents_reused": 3,
                            "embeddings_computed": 0, "embeddings_reused": first.cache["embeddings_computed"]}
    photo = project.reference_photos()[0]
    with Image.open(photo.path) as image:
        changed = np.asarray(image.convert("RGB")).copy()
    changed[:20, :20] = 0
    Image.fromarray(changed).save(photo.path)
    third = run(quick_request(project, steps=1))
    assert third.cache["latents_computed"] == 1 and third.cache["latents_reused"] == 2
    project.set_mask(photo.name, subject_mask(photo))
    masked = run(quick_request(project, steps=1, masked_loss=True))
    assert masked.cache["latents_computed"] == 1  # the masked photo: mask stored with its latents
    other_resolution = run(quick_request(project, steps=1, resolution=96))
    assert other_resolution.cache["latents_computed"] == 3


def test_masked_loss_gives_the_background_no_gradient():
    pred = torch.randn(2, 4, 8, 8, requires_grad=True)
    target = torch.randn(2, 4, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1.0  # subject on the left half
    weights = dataset.loss_weights(mask, background_weight=0.0)
    weights = weights / (weights.sum(dim=(1, 2, 3), keepdim=True) * 4)
    loss = loop.diffusion_loss(pred, target, weights, torch.ones(2))
    loss.backward()
    assert torch.all(pred.grad[..., 4:] == 0) and torch.all(pred.grad[..., :4] != 0)
    other = target.clone()
    other[..., 4:] += 10.0  # a completely different background
    assert torch.equal(loop.diffusion_loss(pred, other, weights, torch.ones(2)), loss)
    assert loop.diffusion_loss(pred, other, None, torch.ones(2)) != loop.diffusion_loss(pred, target, None, torch.ones(2))


def test_training_applies_the_photo_masks(project, monkeypatch):
    """The trainer's batches carry each photo's mask as loss weights, background at the set weight."""
    for photo in project.reference_photos():
        project.set_mask(photo.name, subject_mask(photo))
    seen = []
    original = loop.diffusion_loss

    def spy(pred, target, weights, sample_weight):
        seen.append(weights.detach().clone())
        return original(pred, target, weights, sample_weight)

    monkeypatch.setattr(loop, "diffusion_loss", spy)
    run(quick_request(project, steps=2, masked_loss=True, background_weight=0.0))
    assert len(seen) == 2
    for weights in seen:
        assert weights.shape[1:] == (1, 8, 8)
        right = weights[..., 5:]  # the right half of every photo is background
        left = weights[..., :3]
        assert torch.all(right == 0) and torch.all(left > 0)
        assert torch.allclose(weights.sum(dim=(1, 2, 3)) * 4, torch.ones(len(weights)))
