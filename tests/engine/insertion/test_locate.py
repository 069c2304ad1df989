"""SAM with the on-disk embedding cache, instance picking, detector errors (demo models)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alchemy_engine.insertion.locate import (
    NothingFound,
    SamSegmenter,
    detect,
    embedding_cache_dir,
    pick_instances,
)
from alchemy_engine.insertion.request import LocateOptions, SegmentRequest
from alchemy_engine.insertion.segment import segment
from alchemy_engine.models.detector import Detection


def _image(seed: int, size=(96, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_second_segmenter_restores_the_embedding_without_the_encoder(monkeypatch):
    image = _image(seed=12345)
    first = SamSegmenter.load("demo")
    assert first.set_image(image) is False and first.encoder_runs == 1
    fresh = first.predict(points=[(40, 30, 1)])
    assert first.set_image(image) is True and first.encoder_runs == 1  # same image: nothing to do

    second = SamSegmenter.load("demo")  # a new process or a reopened image
    def boom(*args, **kwargs):
        raise AssertionError("the image encoder ran on a cache hit")
    monkeypatch.setattr(second.model.image_encoder, "forward", boom)
    assert second.set_image(image) is True and second.encoder_runs == 0
    cached = second.predict(points=[(40, 30, 1)])
    assert np.array_equal(cached.mask, fresh.mask) and cached.score == pytest.approx(fresh.score, abs=1e-5)
    files = list((embedding_cache_dir() / "demo").glob("*.safetensors"))
    assert files


def test_damaged_cache_file_is_recomputed():
    image = _image(seed=777)
    seg = SamSegmenter.load("demo")
    seg.set_image(image)
    for file in (embedding_cache_dir() / "demo").glob("*.safetensors"):
        file.write_bytes(b"garbage")
    again = SamSegmenter.load("demo")
    assert again.set_image(image) is False and again.encoder_runs == 1


def test_box_and_points_give_image_sized_masks():
    seg = SamSegmenter.load("demo")
    seg.set_image(_image(seed=5))
    assert seg.predict(box=(10, 10, 50, 40)).mask.shape == (64, 96)
    assert seg.predict(points=[(20, 20, 1), (60, 40, 0)]).mask.dtype == bool


def test_pick_instances():
    dets = [Detection((0, 0, 1, 1), 0.5, "dog"), Detection((1, 1, 2, 2), 0.9, "dog"),
            Detection((2, 2, 3, 3), 0.7, "dog")]
    assert pick_instances(dets, "best")[0].score == 0.9
    assert [d.score for d in pick_instances(dets, "all")] == [0.9, 0.7, 0.5]
    assert pick_instances(dets, "2")[0].score == 0.5
    with pytest.raises(NothingFound, match="only 3 found"):
        pick_instances(dets, "3")


def test_detector_finding_nothing_says_what_to_do():
    class Empty:
        def detect(self, image, text, box_threshold, text_threshold):
            return []
    with pytest.raises(NothingFound, match=r"found no 'dog'.*--point"):
        detect(Empty(), Image.new("RGB", (8, 8)), "dog", 0.3, 0.25)


def test_segment_job_with_demo_detector(tmp_path, session):
    path = tmp_path / "img.png"
    Image.fromarray(_image(seed=9)).save(path)
    req = SegmentRequest(image=path, out=tmp_path / "mask.png",
                         locate=LocateOptions(text="dog", sam="demo", detector="demo", box_threshold=0.0,
                                              text_threshold=0.0, instance="all"))
    result = segment(req, session=session)
    assert result.mask.is_file() and result.detections
    with Image.open(result.mask) as mask:
        assert mask.size == (96, 64) and mask.mode == "L"
