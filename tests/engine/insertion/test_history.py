"""Insertion history without any model: outputs listed newest first with their scores, parameters
read back from the PNG's own text, delete to the project's trash, the current scene and mask saved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from alchemy_engine import api
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import metadata


def _output(folder: Path, name: str, request: dict | None = None, scores: dict | None = None,
            parameters: str | None = None, scene: str | None = None, mtime: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    chunks = PngImagePlugin.PngInfo()
    if request is not None:
        chunks.add_text(metadata.REQUEST_KEY, json.dumps(request))
    if parameters is not None:
        chunks.add_text(metadata.PARAMETERS_KEY, parameters)
    if scene is not None:
        chunks.add_text(metadata.RESULT_KEY, json.dumps({"scene": scene}))
    if scores is not None:
        chunks.add_text("scores", json.dumps(scores))
    path = folder / name
    Image.new("RGB", (8, 6), (10, 20, 30)).save(path, pnginfo=chunks)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_outputs_are_listed_newest_first_without_masks(tmp_path):
    outputs = tmp_path / "outputs"
    old = _output(outputs, "insert-1-7.png", {"prompt": "a sks dog", "seed": 7}, mtime=1000)
    new = _output(outputs, "insert-2-8.png", {"prompt": "b", "seed": 8}, scores={"fidelity": 0.71, "x": "no"},
                  scene="/scenes/park.png", mtime=2000)
    _output(outputs, "insert-2-mask.png", mtime=3000)
    (outputs / "notes.txt").write_text("not an image")
    found = api.list_outputs(tmp_path)
    assert [o.path for o in found] == [new, old]
    assert found[0].scores == {"fidelity": 0.71} and found[0].scene == Path("/scenes/park.png")
    assert found[1].seed == 7 and found[1].prompt == "a sks dog" and found[1].scores == {}
    assert api.list_outputs(tmp_path / "nowhere") == []


def test_parameters_come_back_from_the_request_json(tmp_path):
    request = api.InsertRequest(project="Rex", scene=tmp_path / "s.png", prompt="a sks dog", seed=42, steps=12,
                                strength=0.6, style_lora=None)
    path = _output(tmp_path, "o.png", json.loads(request.to_json()))
    params = api.read_output_parameters(path)
    assert params["source"] == "alchemy" and params["seed"] == 42 and params["steps"] == 12
    assert params["strength"] == 0.6 and params["prompt"] == "a sks dog" and params["scores"] == {}


def test_parameters_come_back_from_an_a1111_chunk(tmp_path):
    info = metadata.GenerationInfo(prompt="a sks dog on a beach", negative_prompt="blurry", steps=25,
                                   sampler="Euler", guidance=6.5, seed=9, size=(64, 64), model="sdxl",
                                   lora_name="run-1", lora_scale=0.8, strength=0.7)
    path = _output(tmp_path, "a1111.png", parameters=info.parameters())
    params = api.read_output_parameters(path)
    assert params == {"prompt": "a sks dog on a beach", "negative_prompt": "blurry", "steps": 25, "guidance": 6.5,
                      "seed": 9, "strength": 0.7, "lora_scale": 0.8, "sampler": "Euler", "source": "parameters",
                      "scene": None, "scores": {}}


def test_a_png_without_parameters_is_refused_in_one_line(tmp_path):
    path = _output(tmp_path, "plain.png")
    with pytest.raises(InvalidRequest, match="holds no generation parameters"):
        api.read_output_parameters(path)


def test_delete_moves_the_output_and_its_mask_to_the_project_trash(tmp_path):
    outputs = tmp_path / "outputs"
    first = _output(outputs, "insert-1-7.png", {"seed": 7})
    second = _output(tmp_path / "elsewhere", "insert-1-7.png", {"seed": 7})
    target = api.trash_output(tmp_path, first)
    assert target == tmp_path / "trash" / "outputs" / "insert-1-7.png" and target.is_file()
    assert not first.exists() and api.list_outputs(tmp_path) == []
    again = _output(outputs, "insert-1-7.png", {"seed": 7})
    assert api.trash_output(tmp_path, again) != target and target.is_file()  # nothing is replaced
    with pytest.raises(InvalidRequest, match="not an output of this project"):
        api.trash_output(tmp_path, second)


def test_the_scene_and_its_mask_are_saved_and_restored(tmp_path):
    scene = tmp_path / "park.png"
    Image.new("RGB", (20, 10)).save(scene)
    mask = np.zeros((10, 20), bool)
    mask[2:5, 3:9] = True
    assert api.load_scene_mask(tmp_path) is None
    api.save_scene_mask(tmp_path, scene, mask)
    saved = api.load_scene_mask(tmp_path)  # a binary mask comes back as 0/255 grey levels
    assert saved.scene == scene.resolve() and np.array_equal(saved.mask, mask.astype(np.uint8) * 255)
    other = tmp_path / "beach.png"
    Image.new("RGB", (20, 10)).save(other)
    api.save_scene_mask(tmp_path, other, None)  # the current scene changes, park's mask is kept
    assert api.load_scene_mask(tmp_path).scene == other.resolve() and api.load_scene_mask(tmp_path).mask is None
    assert np.array_equal(api.load_scene_mask(tmp_path, scene).mask, mask.astype(np.uint8) * 255)
    other.unlink()
    assert api.load_scene_mask(tmp_path) is None  # the scene file is gone


def test_a_soft_scene_mask_is_saved_as_8_bit_grey_and_reads_back_unchanged(tmp_path):
    scene = tmp_path / "park.png"
    Image.new("RGB", (16, 8)).save(scene)
    soft = np.arange(128, dtype=np.uint8).reshape(8, 16) * 2
    api.save_scene_mask(tmp_path, scene, soft)
    saved = api.load_scene_mask(tmp_path)
    assert saved.mask.dtype == np.uint8 and np.array_equal(saved.mask, soft)
    with Image.open(json.loads((tmp_path / "scenes" / "current.json").read_text())["mask"]) as png:
        assert png.mode == "L"
