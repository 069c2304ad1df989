"""Grounding DINO through transformers, from a local folder: the tiny demo runs the real code path."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models.detector import Detection, TextDetector, load_detector
from alchemy_engine.models.inventory import find_models


@pytest.fixture(scope="module")
def detector(shared_cache) -> TextDetector:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        from alchemy_engine.models.demo import demo_detector_dir

        return load_detector(demo_detector_dir())


def test_demo_folder_is_small_and_complete():
    from alchemy_engine.models.demo import demo_detector_dir

    folder = demo_detector_dir()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "grounding-dino"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000
    assert (folder / "model.safetensors").is_file()


def test_detections_are_pixel_boxes_sorted_by_score(detector):
    image = Image.new("RGB", (120, 80), (90, 140, 200))
    found = detector.detect(image, "a dog", box_threshold=0.0, text_threshold=0.0)
    assert found and all(isinstance(d, Detection) for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    for d in found:
        x0, y0, x1, y1 = d.box
        assert isinstance(d.label, str) and 0.0 <= d.score <= 1.0
        assert 0 <= x0 <= x1 <= 120 and 0 <= y0 <= y1 <= 80
    assert found[0].to_dict()["box"] == list(found[0].box)


def test_nothing_found_is_an_empty_list(detector):
    assert detector.detect(Image.new("L", (64, 64)), "cat. mug", box_threshold=1.0) == []


def test_empty_prompt_is_refused(detector):
    with pytest.raises(ValueError, match="text prompt"):
        detector.detect(Image.new("RGB", (64, 64)), "   ")


def test_user_folder_is_found_and_loaded():
    from alchemy_engine.models.demo import demo_detector_dir

    target = paths.models_dir() / "detector" / "grounding-dino-tiny"
    shutil.copytree(demo_detector_dir(), target)
    (target.parent / "stray-folder").mkdir()
    entries = find_models().to_dict()["detector"]
    assert [(e["name"], e["kind"]) for e in entries] == [("demo", "demo"),
                                                         ("grounding-dino-tiny", "grounding-dino"),
                                                         ("stray-folder", "unusable")]
    assert "no config.json" in entries[-1]["note"]
    assert load_detector(target).name == "grounding-dino-tiny"


def test_wrong_folders_are_refused(tmp_path):
    with pytest.raises(ModelError, match="not found.*models/detector"):
        load_detector(tmp_path / "missing")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="describes a 'bert' model, not 'grounding-dino'"):
        load_detector(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "grounding-dino"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match="only pickle .bin files"):
        load_detector(tmp_path)
