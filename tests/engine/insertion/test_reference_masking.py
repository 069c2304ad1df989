"""Subject masks of reference photos: automatic (demo detector + SAM), imported, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from alchemy_engine import api
from alchemy_engine.cli import main
from alchemy_engine.errors import InvalidRequest, ProjectError

EVERYTHING = {"sam": "demo", "detector": "demo", "box_threshold": 0.0, "text_threshold": 0.0}


@pytest.fixture
def rex(tmp_path):
    files = []
    rng = np.random.default_rng(3)
    for i in range(2):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (256, 288, 3), dtype=np.uint8)).save(path)
        files.append(path)
    return api.create_project("Rex", class_noun="dog", images=files)


def test_auto_mask_saves_a_mask_per_photo(rex, session):
    events = []
    result = api.auto_mask(api.AutoMaskRequest(project=rex.slug, **EVERYTHING), events.append, session=session)
    assert set(result.masked) == {p.name for p in rex.reference_photos()} and result.skipped == ()
    rex.reload()
    for photo in rex.reference_photos():
        with Image.open(photo.mask_path) as mask:
            assert mask.size == (photo.width, photo.height) and mask.mode == "L"
    assert events[-1].step == events[-1].total == 2
    again = api.auto_mask(api.AutoMaskRequest(project=rex.slug, only_missing=True, **EVERYTHING), session=session)
    assert again.masked == () and [why for _, why in again.skipped] == ["it already has a mask"] * 2


def test_a_photo_where_nothing_is_found_is_reported_not_masked(rex, session):
    request = api.AutoMaskRequest(project=rex.slug, sam="demo", detector="demo", box_threshold=1.0)
    result = api.auto_mask(request, session=session)
    assert result.masked == () and len(result.skipped) == 2
    assert "found no 'dog'" in result.skipped[0][1]
    assert all(p.mask_path is None for p in api.open_project(rex.slug).reference_photos())


def test_import_mask_checks_size_and_content(rex, tmp_path):
    photo = rex.reference_photos()[0]
    wrong = tmp_path / "wrong.png"
    Image.new("L", (10, 10), 255).save(wrong)
    with pytest.raises(InvalidRequest, match="10x10|size"):
        api.import_mask(rex, photo.name, wrong)
    black = tmp_path / "black.png"
    Image.new("L", (photo.width, photo.height), 0).save(black)
    with pytest.raises(InvalidRequest, match="all black"):
        api.import_mask(rex, photo.name, black)
    good = tmp_path / "good.png"
    Image.new("L", (photo.width, photo.height), 255).save(good)
    assert api.import_mask(rex, photo.name, good).mask_path.is_file()
    with pytest.raises(ProjectError, match="no photo"):
        api.import_mask(rex, "nope.png", good)


def _json(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else {}), captured.err


def test_cli_project_mask(rex, tmp_path, capsys):
    photo = rex.reference_photos()[0]
    code, listed, _ = _json(capsys, "project", "mask", "Rex")
    assert code == 0 and [p["mask_path"] for p in listed["photos"]] == [None, None]
    good = tmp_path / "good.png"
    Image.new("L", (photo.width, photo.height), 255).save(good)
    code, out, _ = _json(capsys, "project", "mask", "Rex", "--photo", photo.name, "--mask", str(good))
    assert code == 0 and out["photos"][0]["mask_path"].endswith(".mask.png")
    code, out, _ = _json(capsys, "project", "mask", "Rex", "--auto", "--only-missing", "--sam", "demo",
                         "--detector", "demo", "--box-threshold", "0", "--text-threshold", "0")
    assert code == 0 and out["masked"] == [rex.reference_photos()[1].name]
    assert out["skipped"] == [{"photo": photo.name, "reason": "it already has a mask"}]
    code, out, _ = _json(capsys, "project", "mask", "Rex", "--photo", photo.name, "--clear")
    assert code == 0 and out["photos"][0]["mask_path"] is None
    code, out, err = _json(capsys, "project", "mask", "Rex", "--mask", str(good))
    assert code != 0 and "exactly one --photo" in err + json.dumps(out)
