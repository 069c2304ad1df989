"""Exact compositing, PNG metadata round trip and request validation (no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import composite, metadata
from alchemy_engine.insertion.inpaint import insertion_prompt
from alchemy_engine.insertion.request import InsertRequest, LocateOptions, SegmentRequest


def test_paste_keeps_zero_alpha_pixels_bit_identical():
    rng = np.random.default_rng(0)
    scene = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    alpha = np.zeros((50, 70), np.uint8)
    alpha[0:20, 0:30] = 255  # touches the top-left border
    alpha[20:24, 0:30] = 100
    generated = Image.new("RGB", (64, 64), (1, 2, 3))
    out = np.asarray(composite.paste(scene, generated, (0, 0, 40, 30), alpha))
    before = np.asarray(scene)
    assert np.array_equal(out[alpha == 0], before[alpha == 0])
    assert (out[alpha == 255] == (1, 2, 3)).all()
    mid = out[21, 5].astype(int)
    expected = (np.array([1, 2, 3]) * 100 + before[21, 5].astype(int) * 155 + 127) // 255
    assert np.array_equal(mid, expected)


def test_paste_refuses_alpha_outside_the_box():
    alpha = np.zeros((10, 10), np.uint8)
    alpha[9, 9] = 1
    with pytest.raises(ValueError, match="outside the work box"):
        composite.paste(Image.new("RGB", (10, 10)), Image.new("RGB", (5, 5)), (0, 0, 5, 5), alpha)


def test_colour_match_removes_a_uniform_shift():
    rng = np.random.default_rng(1)
    scene = rng.integers(50, 200, (40, 40, 3)).astype(np.uint8)
    generated = np.clip(scene.astype(int) + 30, 0, 255).astype(np.uint8)
    inside = np.zeros((40, 40), bool)
    inside[10:30, 10:30] = True
    fixed = composite.colour_match(generated, scene, inside)
    assert np.abs(fixed[inside].astype(int) - scene[inside]).mean() < 2
    assert np.array_equal(fixed[~inside], generated[~inside])


def test_png_metadata_round_trip(tmp_path):
    info = metadata.GenerationInfo(prompt="a photo of sks dog, on a beach", negative_prompt="blurry, text",
                                   steps=30, sampler="Euler", guidance=7.0, seed=42, size=(1216, 832),
                                   model="sdxl-base", model_hash="abc123", lora_name="run-1",
                                   lora_hash="0123456789", lora_scale=0.8, strength=0.85)
    req = InsertRequest(project="Rex", scene_prompt="a dog on a beach", seed=42)
    target = metadata.save_png(Image.new("RGB", (8, 8)), tmp_path / "x.png", info, req.to_json(), {"crop": [1, 2]})
    text = metadata.read_png_text(target)
    fields = metadata.parse_parameters(text["parameters"])
    assert fields["prompt"] == "a photo of sks dog, on a beach <lora:run-1:0.8>"
    assert fields["negative_prompt"] == "blurry, text"
    assert fields["Steps"] == "30" and fields["Seed"] == "42" and fields["CFG scale"] == "7"
    assert fields["Size"] == "1216x832" and fields["Model"] == "sdxl-base" and fields["Sampler"] == "Euler"
    assert fields["Lora hashes"] == "run-1: 0123456789" and fields["Lora weight"] == "0.8"
    assert InsertRequest.from_json(text[metadata.REQUEST_KEY]) == req
    assert json.loads(text[metadata.RESULT_KEY]) == {"crop": [1, 2]}


def test_unique_path_never_overwrites(tmp_path):
    first = metadata.unique_path(tmp_path, "a")
    first.write_bytes(b"x")
    assert metadata.unique_path(tmp_path, "a").name == "a-2.png"


@pytest.mark.parametrize("prompt,expected", [
    ("a dog on a beach", "a sks dog on a beach"),
    ("A Dog running, dogfood nearby", "A sks dog running, dogfood nearby"),
    ("a sks dog on a beach", "a sks dog on a beach"),
    ("a cat on a sofa", "sks dog, a cat on a sofa"),
    (None, "a photo of sks dog"),
])
def test_insertion_prompt(prompt, expected):
    assert insertion_prompt(prompt, "sks", "dog") == expected


def test_request_json_round_trip_with_nested_locate(tmp_path):
    req = InsertRequest(project="Rex", scene_prompt="a dog", out=tmp_path,
                        locate=LocateOptions(points=((10.0, 20.0, 1), (5.0, 5.0, 0)), box=(1, 2, 30, 40),
                                             instance="all"))
    back = InsertRequest.from_json(req.to_json())
    assert back.locate.points[1][:2] == (5.0, 5.0) and int(back.locate.points[1][2]) == 0
    assert back.locate.box == (1, 2, 30, 40) and back.out == tmp_path
    back.validate()


@pytest.mark.parametrize("changes,message", [
    (dict(scene_prompt=None), "exactly one scene"),
    (dict(strength=0.0), "strength"),
    (dict(strength=0.01, steps=10), "no denoising step"),
    (dict(variations=0), "variations"),
    (dict(scene_width=1000), "scene_width must be a multiple of 64"),
    (dict(locate=LocateOptions(points=((1, 2, 3),))), "LABEL 1"),
    (dict(locate=LocateOptions(box=(10, 10, 5, 20))), "X0 < X1"),
    (dict(locate=LocateOptions(instance="first")), "instance"),
    (dict(locate=LocateOptions(mask_mode="xor")), "mask_mode must be one of replace"),
])
def test_insert_request_validation(changes, message):
    base = dict(project="Rex", scene_prompt="a dog on a beach")
    with pytest.raises(InvalidRequest, match=message):
        InsertRequest(**{**base, **changes}).validate()


def test_segment_request_needs_a_source(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(image)
    with pytest.raises(InvalidRequest, match="say what to segment"):
        SegmentRequest(image=image, out=tmp_path / "m.png").validate()
    SegmentRequest(image=image, out=tmp_path / "m.png", locate=LocateOptions(text="dog")).validate()
