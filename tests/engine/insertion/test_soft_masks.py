"""Greyscale (soft-brush) masks: shaping them, and an insertion that blends through them exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from insert_helpers import TINY_WORK, noisy_scene, read_rgb
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.insertion import InsertRequest, LocateOptions, coverage, masks, run


def _soft_disc(shape, centre, radius) -> np.ndarray:
    """255 inside radius/2, a linear fall to 0 at radius: what a half-hard brush dab paints."""
    yy, xx = np.mgrid[: shape[0], : shape[1]] + 0.5
    d = np.hypot(xx - centre[0], yy - centre[1])
    return np.round(np.clip((radius - d) / (radius / 2), 0.0, 1.0) * 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
def test_binary_coverage_shapes_exactly_like_the_bool_mask(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((27, 33)) < 0.08
    mask[3:12, 4:15] = True
    cover = mask.astype(np.uint8) * 255
    for px in (-3, -1, 2, 5):
        assert np.array_equal(coverage.grow(cover, px), masks.grow(mask, px).astype(np.uint8) * 255), px
    assert np.array_equal(coverage.fill_holes(cover) > 0, masks.fill_holes(mask))
    assert np.array_equal(coverage.feather(cover, 3.5), masks.feather(mask, 3.5))
    assert coverage.is_hard(cover)


@pytest.mark.parametrize("px", [1, 3, 4])
def test_greyscale_grow_is_the_max_over_a_disk_and_shrink_the_min(px):
    a = np.random.default_rng(px).integers(0, 256, (14, 17), dtype=np.uint8)
    padded = np.pad(a.astype(int), px, constant_values=-1)
    big = np.pad(a.astype(int), px, constant_values=256)
    dilated, eroded = np.zeros_like(a), np.zeros_like(a)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            ys, xs = np.mgrid[-px:px + 1, -px:px + 1]
            disk = ys ** 2 + xs ** 2 <= px * px
            dilated[y, x] = padded[y:y + 2 * px + 1, x:x + 2 * px + 1][disk].max()
            eroded[y, x] = big[y:y + 2 * px + 1, x:x + 2 * px + 1][disk].min()
    assert np.array_equal(coverage.grow(a, px), dilated)
    assert np.array_equal(coverage.grow(a, -px), eroded)


def test_soft_feather_keeps_painted_values_and_zero_beyond_the_ramp():
    cover = _soft_disc((40, 40), (20, 20), 10)
    alpha = coverage.feather(cover, 3.0)
    assert (alpha >= cover).all()
    assert np.array_equal(alpha, np.maximum(cover, masks.feather(cover == 255, 3.0)))
    assert (alpha[cover == 0] < 255).all() and alpha[0, 0] == 0


def test_to_coverage_reads_bool_uint8_float_and_greyscale_png(tmp_path):
    assert coverage.to_coverage(np.array([[True, False]])).tolist() == [[255, 0]]
    assert coverage.to_coverage(np.array([[0.5, 1.0]])).tolist() == [[128, 255]]
    grey = np.array([[0, 1, 128, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    assert np.array_equal(coverage.read_coverage(tmp_path / "g.png", (4, 1)), grey)
    assert not coverage.is_hard(grey)


def _request(scene, mask, **changes) -> InsertRequest:
    locate = LocateOptions(mask=mask, grow=0, feather=0.0)
    base = dict(project="Rex", model="demo", scene=scene, locate=locate, steps=2, seed=11,
                work_pixels=TINY_WORK, strength=0.9)
    return InsertRequest(**{**base, **changes})


def test_soft_mask_keeps_zero_pixels_exact_and_blends_the_rest(tmp_path, project, session):
    size = (96, 80)
    scene = noisy_scene(tmp_path / "scene.png", size)
    soft = _soft_disc((size[1], size[0]), (48, 40), 22)
    assert not coverage.is_hard(soft) and (soft == 255).any()
    Image.fromarray(soft, "L").save(tmp_path / "soft.png")
    # The same support, fully repainted: the crop, the repaint mask and the seed are the same, so
    # its pixels there are the generated ones the soft run blends in.
    Image.fromarray(np.where(soft > 0, 255, 0).astype(np.uint8), "L").save(tmp_path / "hard.png")
    soft_result = run(_request(scene, tmp_path / "soft.png"), session=session)
    hard_result = run(_request(scene, tmp_path / "hard.png"), session=session)
    assert soft_result.crop_box == hard_result.crop_box
    before, out, generated = read_rgb(scene), read_rgb(soft_result.outputs[0]), read_rgb(hard_result.outputs[0])
    assert np.array_equal(out[soft == 0], before[soft == 0])
    m = soft.astype(np.float64)[..., None] / 255.0
    expected = np.round(before * (1.0 - m) + generated * m).astype(np.uint8)
    assert np.array_equal(out, expected)
    partial = (soft > 0) & (soft < 255)
    assert (out[partial] != before[partial]).any() and (out[partial] != generated[partial]).any()
    assert np.array_equal(np.asarray(Image.open(soft_result.mask)), soft)  # saved as greyscale


def test_cli_insert_takes_a_greyscale_mask(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (64, 48))
    soft = _soft_disc((48, 64), (30, 24), 14)
    Image.fromarray(soft, "L").save(tmp_path / "soft.png")
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(tmp_path / "soft.png"), "--model", "demo",
                 "--steps", "2", "--seed", "3", "--grow", "0", "--feather", "0", "--work-size", "128",
                 "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    result = json.loads([line for line in capsys.readouterr().out.splitlines() if line.strip()][-1])
    out = read_rgb(result["outputs"][0])
    assert np.array_equal(out[soft == 0], read_rgb(scene)[soft == 0])
    assert np.array_equal(np.asarray(Image.open(result["mask"])), soft)
