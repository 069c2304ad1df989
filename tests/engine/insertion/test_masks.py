"""Mask math on synthetic masks: grow/shrink, feather, fill holes, combine, crop boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import masks


def brute_distance(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    d = np.sqrt((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2)
    return d.min(axis=-1)


@pytest.mark.parametrize("seed", range(6))
def test_distance_and_grow_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((23, 31)) < 0.05
    mask[5, 7] = True
    limit = 6
    exact = brute_distance(mask)
    got = masks.distance_to(mask, limit)
    near = exact <= limit
    np.testing.assert_allclose(got[near], exact[near])
    assert (got[~near] > limit).all()
    assert np.array_equal(masks.grow(mask, 4), exact <= 4)


def test_shrink_is_erosion_and_image_edge_is_not_background():
    mask = np.zeros((40, 50), bool)
    mask[0:20, 10:30] = True  # touches the top edge
    shrunk = masks.grow(mask, -3)
    assert masks.bbox(shrunk) == (13, 0, 27, 17)
    assert masks.grow(mask, 0) is not mask and np.array_equal(masks.grow(mask, 0), mask)


def test_grow_of_single_pixel_is_a_disk():
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    grown = masks.grow(mask, 5)
    yy, xx = np.mgrid[:21, :21]
    assert np.array_equal(grown, (yy - 10) ** 2 + (xx - 10) ** 2 <= 25)


def test_feather_ramps_to_exact_zero():
    mask = np.zeros((30, 60), bool)
    mask[10:20, 10:20] = True
    alpha = masks.feather(mask, 8)
    assert alpha.dtype == np.uint8
    assert (alpha[mask] == 255).all()
    assert alpha[15, 23] == 128  # 4 px right of the edge (last True column is 19): half way
    assert alpha[15, 27] == 0 and alpha[15, 28] == 0  # 8 and 9 px away
    assert (alpha[masks.distance_to(mask, 10) >= 8] == 0).all()
    assert np.array_equal(masks.feather(mask, 0) > 0, mask)


def test_fill_holes_fills_enclosed_only():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # a hole
    mask[0:6, 15:20] = True
    mask[2:4, 17:20] = False  # open to the border: not a hole
    filled = masks.fill_holes(mask)
    assert filled[6, 6] and not filled[3, 18]
    assert filled.sum() == mask.sum() + 9


def test_combine_modes():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[:, :2] = True
    assert masks.combine(a, b, "union").sum() == 12
    assert masks.combine(a, b, "intersect").sum() == 4
    assert np.array_equal(masks.combine(a, b, "replace"), b)
    assert np.array_equal(masks.combine(None, b, "union"), b)


def test_to_mask_uses_alpha_and_checks_size():
    rgba = Image.new("RGBA", (8, 6), (255, 255, 255, 0))
    rgba.putpixel((2, 3), (0, 0, 0, 255))
    mask = masks.to_mask(rgba, (8, 6))
    assert mask.sum() == 1 and mask[3, 2]
    with pytest.raises(InvalidRequest, match="mask is 8x6 but the scene is 10x6"):
        masks.to_mask(rgba, (10, 6))


def _check_plan(plan, region, size, target, multiple=64):
    x0, y0, x1, y1 = plan.box
    assert 0 <= x0 and 0 <= y0 and x1 <= size[0] and y1 <= size[1]
    assert x0 <= region[0] and y0 <= region[1] and x1 >= region[2] and y1 >= region[3]
    w, h = plan.work_size
    assert w % multiple == 0 and h % multiple == 0
    assert 0.6 * target <= w * h <= 1.5 * target


def test_small_subject_in_huge_photo_gets_full_detail():
    size, region = (4000, 3000), (1900, 1400, 2100, 1650)
    plan = masks.plan_crop(region, size)
    _check_plan(plan, region, size, 1024 * 1024)
    bw, bh = plan.box[2] - plan.box[0], plan.box[3] - plan.box[1]
    assert plan.scale > 2.5  # the 250 px subject is enlarged for SDXL
    assert math.isclose(bw / bh, plan.work_size[0] / plan.work_size[1], rel_tol=0.02)


@pytest.mark.parametrize("region,size", [
    ((0, 0, 30, 40), (2048, 2048)),          # top-left corner
    ((3950, 2900, 4000, 3000), (4000, 3000)),  # bottom-right corner
    ((0, 100, 4000, 160), (4000, 3000)),     # a thin full-width strip: aspect capped at 4
    ((0, 0, 300, 200), (300, 200)),          # the whole small scene
    ((10, 10, 20, 20), (64, 48)),            # a tiny scene
])
def test_crop_plans_stay_inside_and_cover_the_region(region, size):
    plan = masks.plan_crop(region, size)
    _check_plan(plan, region, size, 1024 * 1024)
    w, h = plan.work_size
    bw, bh = plan.box[2] - plan.box[0], plan.box[3] - plan.box[1]
    assert math.isclose(w / h, bw / bh, rel_tol=0.1)  # never stretched (up to rounding to 64 px)


def test_panorama_is_not_stretched():
    plan = masks.plan_crop((0, 0, 4000, 500), (4000, 500))
    assert plan.box == (0, 0, 4000, 500)
    w, h = plan.work_size
    assert math.isclose(w / h, 8.0, rel_tol=0.15)


def test_full_frame_plan_and_work_size():
    plan = masks.full_frame_plan((1920, 1080), 1024 * 1024)
    assert plan.box == (0, 0, 1920, 1080)
    assert plan.work_size == (1344, 768)
    assert masks.work_size_for(100, 100, 128 * 128) == (128, 128)
