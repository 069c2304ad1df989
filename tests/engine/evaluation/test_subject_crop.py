"""The subject-crop variant, with synthetic masks on generated photos and scenes."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import box_mask, make_project, structured_image
from PIL import Image

from alchemy_engine.evaluation.ranking import InsertionRanker, rank_order
from alchemy_engine.evaluation.subject_crop import crop_to_mask, mask_box, padded_square_box, reference_images


def test_mask_box_and_padded_square_box():
    mask = box_mask((200, 100), (40, 20, 80, 80))
    assert mask_box(mask) == (40, 20, 80, 80)
    assert mask_box(np.zeros((10, 10))) is None
    x0, y0, x1, y1 = padded_square_box((40, 20, 80, 80), (200, 100), padding=0.1)
    assert (x1 - x0) == (y1 - y0) == 72  # 60 tall + 2 x 6 padding, widened to a square
    assert x0 <= 40 - 4 and x1 >= 80 + 4 and y0 <= 20 - 6 and y1 >= 80 + 6
    # near an edge the box stays inside the image, and a box taller than the image is clipped
    assert padded_square_box((0, 0, 10, 10), (200, 100)) == (0, 0, 12, 12)
    x0, y0, x1, y1 = padded_square_box((90, 0, 110, 100), (200, 100))
    assert (y0, y1) == (0, 100) and x1 - x0 == 100 and 0 <= x0 and x1 <= 200


def test_crop_to_mask_uses_the_mask_box_and_rejects_a_wrong_size():
    image = structured_image((200, 100), seed=1)
    crop, box = crop_to_mask(image, box_mask((200, 100), (100, 40, 140, 80)))
    assert crop.size == (box[2] - box[0], box[3] - box[1]) and box[0] <= 100 and box[2] >= 140
    assert crop_to_mask(image, np.zeros((100, 200), dtype=np.uint8)) is None
    with pytest.raises(ValueError, match="mask is"):
        crop_to_mask(image, np.zeros((50, 50), dtype=np.uint8))


def test_references_are_cropped_to_their_subject_masks(tmp_path):
    project = make_project(tmp_path / "photos", count=2)
    first, second = project.reference_photos()
    project.set_mask(first, box_mask((first.width, first.height), (30, 40, 130, 140)))
    crops, notes = reference_images(project, crop=True)
    assert crops[0].box is not None and crops[0].box[0] <= 30 and crops[0].box[2] >= 130
    assert crops[0].image.size == (crops[0].box[2] - crops[0].box[0], crops[0].box[3] - crops[0].box[1])
    assert crops[1].box is None and crops[1].image.size == (second.width, second.height)
    assert len(notes) == 1 and second.name in notes[0] and "no subject mask" in notes[0]
    whole, whole_notes = reference_images(project, crop=False)
    assert [r.box for r in whole] == [None, None] and whole_notes == []
    assert crops[0].key != whole[0].key  # cropped and whole photos are cached apart


def test_an_insertion_of_the_reference_itself_scores_one_on_the_subject_crop(tmp_path, scorer):
    project = make_project(tmp_path / "photos", count=1)
    (photo,) = project.reference_photos()
    mask = box_mask((photo.width, photo.height), (60, 50, 180, 170))
    project.set_mask(photo, mask)
    ranker = InsertionRanker(scorer, project, project.token)
    with Image.open(photo.path) as image:
        same = ranker.score(image.convert("RGB"), mask, "a sks dog on a beach")
    other = ranker.score(structured_image((photo.width, photo.height), seed=9), mask, "a sks dog on a beach")
    assert "clip_i_subject" not in same  # CLIP does not see the crop (half the cost of ranking)
    for metric in ("dino_subject", "dinov2_subject", "dino", "clip_i"):
        assert same[metric] == pytest.approx(1.0, abs=1e-5)
        assert other[metric] < same[metric]
    assert same["models"]["dino"] == "dino-vits16" and same["models"]["clip"] == "clip-vit-large-patch14"
    assert rank_order([other, same]) == [1, 0]
