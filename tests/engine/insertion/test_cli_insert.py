"""`python main.py insert` and `segment` through the real CLI entry point (demo models)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from insert_helpers import noisy_scene, write_mask
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.cli.insert_cmd import parse_point


def _last_json(capsys) -> dict:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_insert_json_last_line(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo",
                 "--steps", "2", "--seed", "5", "-n", "2", "--work-size", "128", "--out", str(tmp_path / "out"),
                 "--batch-size", "2", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    assert '"stage": "note", "step": 0, "total": 0, "message": "batch size 2 as asked"' in captured.out
    result = json.loads([line for line in captured.out.splitlines() if line.strip()][-1])
    assert result["seeds"] == [5, 6] and len(result["outputs"]) == 2
    assert {"outputs", "mask", "scene", "seeds"} <= set(result)
    for path in result["outputs"]:
        assert Image.open(path).size == (96, 64)
    assert np.asarray(Image.open(result["mask"])).max() == 255


def test_insert_errors_exit_2_with_a_message(tmp_path, project, capsys):
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    code = main(["insert", "Rex", "--scene", str(scene), "--model", "demo", "--sam", "demo",
                 "--out", str(tmp_path)])
    assert code == 2
    assert "needs a text detector" in capsys.readouterr().err


def test_segment_command_with_clicks(tmp_path, capsys):
    image = noisy_scene(tmp_path / "img.png", (80, 60))
    code = main(["segment", str(image), "--point", "20,20", "--point", "60,40,0", "--sam", "demo",
                 "--out", str(tmp_path / "mask.png"), "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert Image.open(result["mask"]).size == (80, 60)
    assert "embedding_cached" in result


def test_point_parsing():
    assert parse_point("3,4") == (3.0, 4.0, 1)
    assert parse_point("3.5, 4, 0") == (3.5, 4.0, 0)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_point("3,4,2")


def test_scene_command_writes_a_scene(project, capsys):
    code = main(["scene", "Rex", "--model", "demo", "--prompt", "a dog on a beach", "--size", "64x64",
                 "--steps", "2", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["size"] == [64, 64]
    assert Path(result["scene"]).parent == project.scenes_dir
