"""The seed box and the seed used agree: a seed beyond the one range (an older version's, read back
from an image or from insert.json) leaves "random" shown *and* used, never a hidden fixed seed."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, PngImagePlugin

from alchemy_engine import api
from alchemy_gui.common.app_settings import WorkspaceSettingsKeeper
from alchemy_gui.insert.form import RANDOM_SEED

BIG = 3_000_000_000


def _open(qtbot, panel, project) -> None:
    panel.projects_state.open(project.slug)
    qtbot.waitUntil(lambda: panel.insert_state.choices is not None and not panel.insert_state.jobs.busy, timeout=30_000)


def test_reusing_an_image_with_an_out_of_range_seed_leaves_random_shown_and_used(qtbot, panel, project, tmp_path):
    _open(qtbot, panel, project)
    state = panel.insert_state
    state.settings.seed = 5
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("alchemy_request", json.dumps({"prompt": "a sks dog", "seed": BIG, "steps": 9}))
    path = tmp_path / "old.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, pnginfo=chunks)
    with qtbot.waitSignal(state.parameters_reused, timeout=30_000):
        state.outputs.reuse_parameters(path)
    assert state.settings.seed is None and state.settings.steps == 9
    assert panel.settings.seed.value() == RANDOM_SEED and panel.settings.seed.text() == "random"
    assert f"Its seed {BIG} is beyond 0–{api.SEED_MAX}" in state.message.text


def test_an_out_of_range_seed_saved_in_insert_json_is_not_restored(qtbot, panel, project):
    api.save_workspace_settings(project, "insert", {"settings": {"seed": BIG, "steps": 11}})
    keeper = WorkspaceSettingsKeeper(panel.insert_state, "insert", {"settings": panel.insert_state.settings})
    _open(qtbot, panel, project)
    keeper.restore()
    assert panel.insert_state.settings.seed is None and panel.insert_state.settings.steps == 11
    assert panel.settings.seed.text() == "random"
