"""Restore from the trash, per-project workspace settings, the app's settings file and presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alchemy_engine import api
from alchemy_engine.cli import main
from alchemy_engine.errors import InvalidRequest, ProjectError


def _project(tmp_path: Path, name: str = "Rex") -> api.Project:
    photo = tmp_path / f"{name}.png"
    Image.fromarray(np.full((300, 300, 3), 120, np.uint8)).save(photo)
    return api.create_project(name, class_noun="dog", images=[photo])


def test_delete_then_restore_brings_the_project_back(tmp_path):
    project = _project(tmp_path)
    api.save_workspace_settings(project, "train", {"steps": 40})
    trashed = api.delete_project(project)
    assert api.list_projects() == []
    [entry] = api.list_trash()
    assert entry.name == "Rex" and entry.slug == "rex" and entry.path == trashed and entry.deleted
    root = api.restore_project("Rex")
    assert root == api.projects_dir() / "rex"
    assert api.open_project("Rex").reference_photos()
    assert api.load_workspace_settings(api.open_project("Rex"), "train") == {"steps": 40}
    assert api.list_trash() == []


def test_restore_refuses_a_name_taken_again(tmp_path):
    api.delete_project(_project(tmp_path))
    _project(tmp_path)
    with pytest.raises(ProjectError, match="already uses"):
        api.restore_project("rex")
    with pytest.raises(ProjectError, match="No deleted project"):
        api.restore_project("Nobody")


def test_workspace_settings_round_trip_and_damage(tmp_path):
    project = _project(tmp_path)
    assert api.load_workspace_settings(project, "insert") == {}
    path = api.save_workspace_settings(project, "insert", {"strength": 0.5, "model": Path("/m/x")})
    assert json.loads(path.read_text()) == {"model": "/m/x", "strength": 0.5}
    path.write_text("{ not json")
    assert api.load_workspace_settings(project, "insert") == {}
    with pytest.raises(InvalidRequest):
        api.save_workspace_settings(project, "../evil", {})
    with pytest.raises(TypeError):
        api.save_workspace_settings(project, "train", {"x": object()})


def test_app_settings_and_presets(alchemy_home):
    assert api.config_dir() == alchemy_home / "config"
    assert api.load_app_settings() == {}
    api.save_app_settings({"recent_scenes": ["/a.png"]})
    assert api.load_app_settings() == {"recent_scenes": ["/a.png"]}
    (api.config_dir() / "settings.json").write_text("[broken")
    assert api.load_app_settings() == {}
    names = [p.name for p in api.list_presets("train")]
    assert names[:3] == ["Quick test", "Balanced", "Best quality"]
    for kind in api.PRESET_KINDS:  # built-in presets name only real request fields
        request = api.TrainRequest if kind == "train" else api.InsertRequest
        for preset in api.list_presets(kind):
            assert set(preset.values) <= set(api.defaults(request)), preset.name
    saved = api.save_preset("train", "  My  dog ", {"steps": 42})
    assert saved.path.parent == api.config_dir() / "presets" / "train"
    mine = [p for p in api.list_presets("train") if not p.builtin]
    assert [(p.name, p.values) for p in mine] == [("My dog", {"steps": 42})]
    with pytest.raises(InvalidRequest):
        api.save_preset("train", "!!", {})


def test_cli_trash_and_restore(tmp_path, capsys):
    api.delete_project(_project(tmp_path))
    assert main(["project", "trash", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [t["name"] for t in listed["trash"]] == ["Rex"]
    assert main(["project", "restore", "Rex", "--json"]) == 0
    restored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert restored["restored"] and Path(restored["path"]).is_dir()
    assert main(["project", "restore", "Rex"]) != 0
    assert "No deleted project" in capsys.readouterr().err
