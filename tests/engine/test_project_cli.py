"""`image-alchemy project ...` through alchemy_engine.cli.main, as a user or a script runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from alchemy_engine import paths
from alchemy_engine.cli import main


def run_json(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else {}), captured.err


def photo(path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_create_list_show_delete(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    images = [photo(tmp_path / "a.jpg", 1), photo(tmp_path / "b.png", 2), str(bad)]
    code, created, err = run_json(capsys, "project", "create", "Rex", "--class-noun", "dog",
                                  "--token", "zwx", "--images", *images)
    assert code == 0
    assert (created["slug"], created["token"], created["class_noun"]) == ("rex", "zwx", "dog")
    assert created["path"] == str(paths.projects_dir() / "rex")
    assert [p["original_name"] for p in created["photos"]] == ["a.jpg", "b.png"]
    assert created["refused"] == [{"path": str(bad), "reason": created["refused"][0]["reason"]}]
    assert "not an image" in created["refused"][0]["reason"] and "notes.jpg" in err

    code, listed, _ = run_json(capsys, "project", "list")
    assert code == 0 and [(p["name"], p["photo_count"]) for p in listed["projects"]] == [("Rex", 2)]

    code, shown, _ = run_json(capsys, "project", "show", "rex")
    assert code == 0 and len(shown["photos"]) == 2 and shown["runs"] == []

    code, added, _ = run_json(capsys, "project", "add-photos", "Rex", photo(tmp_path / "c.png", 3))
    assert code == 0 and len(added["imported"]) == 1

    code, renamed, _ = run_json(capsys, "project", "rename", "Rex", "Rex II")
    assert code == 0 and renamed["slug"] == "rex-ii"

    code, _, err = run_json(capsys, "project", "delete", "Rex II")
    assert code == 2 and "--yes" in err
    code, deleted, _ = run_json(capsys, "project", "delete", "Rex II", "--yes")
    assert code == 0 and deleted["deleted"] and Path(deleted["trash_path"]).is_dir()
    assert run_json(capsys, "project", "list")[1] == {"projects": []}


def test_errors_are_one_line_on_stderr(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    code, _, err = run_json(capsys, "project", "create", "X", "--class-noun", "dog",
                            "--images", str(bad))
    assert code == 2 and err.startswith("error: No photo was imported") and "broken.jpg" in err
    assert len(err.strip().splitlines()) == 1
    assert not (paths.projects_dir() / "x").exists()

    code, _, err = run_json(capsys, "project", "show", "nobody")
    assert code == 2 and "No project named 'nobody'" in err
    code, _, err = run_json(capsys, "project", "create", "Y", "--class-noun", "dog",
                            "--token", "two words")
    assert code == 2 and "one word" in err


def test_human_output(tmp_path, capsys):
    assert main(["project", "create", "Mug", "--class-noun", "coffee mug",
                 "--images", photo(tmp_path / "m.jpg", 5)]) == 0
    assert main(["project", "list"]) == 0
    out = capsys.readouterr().out
    assert "created project 'Mug'" in out and "'sks coffee mug'  1 photos" in out
