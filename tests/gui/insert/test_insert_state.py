"""InsertState without any widget: the prompt follows the scene prompt, refusals before any job,
a new project starts clean."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtGui import QImage

from alchemy_gui.common.job_list import JobList
from alchemy_gui.insert.state import InsertState, Message


def _project(tmp_path, noun="dog"):
    return SimpleNamespace(root=tmp_path / noun, cache_dir=tmp_path / noun / "cache", token="sks", class_noun=noun)


def test_prompt_follows_the_scene_prompt_until_edited(qtbot, tmp_path, monkeypatch):
    state = InsertState(JobList())
    monkeypatch.setattr(state, "refresh_choices", lambda: None)  # no model listing in this test
    state.set_project(_project(tmp_path))
    assert state.scene_prompt == "a photo of a dog in a park"
    assert state.settings.prompt == "a photo of a sks dog in a park"
    state.scene_prompt = "a dog on a beach"
    assert state.settings.prompt == "a sks dog on a beach"
    state.settings.prompt = "my own words"
    state.scene_prompt = "a dog in the snow"
    assert state.settings.prompt == "my own words"
    state.set_project(_project(tmp_path, "mug"))  # another project: its own prompts, nothing kept
    assert state.settings.prompt == "a photo of a sks mug in a park" and state.results == ()


def test_insert_is_refused_without_scene_or_mask(qtbot, tmp_path, monkeypatch):
    state = InsertState(JobList())
    monkeypatch.setattr(state, "refresh_choices", lambda: None)
    state.set_project(_project(tmp_path))
    failures = []
    state.job_failed.connect(failures.append)
    state.insert()
    assert "scene" in failures[-1].message and state.message == Message(failures[-1].message, error=True)
    state.document.set_scene(tmp_path / "scene.png", QImage(16, 8, QImage.Format.Format_RGB32))
    state.insert()
    assert "mask is empty" in state.message.text and not state.busy
