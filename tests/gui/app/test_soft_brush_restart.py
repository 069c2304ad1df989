"""A soft-brush mask and the brush's hardness and size survive a restart (a new MainWindow on the
same data folder): the mask comes back grey level for grey level, and so do the settings."""

from __future__ import annotations

import numpy as np
from PIL import Image

from alchemy_engine import api
from alchemy_gui.insert.mask_document import Tool
from tests.gui.app.conftest import open_project


def test_soft_mask_hardness_and_size_come_back_after_a_restart(qtbot, open_window, photos, tmp_path):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    state = window.insert_state
    scene = tmp_path / "park.png"
    Image.fromarray(np.full((60, 90, 3), 120, np.uint8)).save(scene)
    with qtbot.waitSignal(state.scene_ready, timeout=10_000):
        state.open_scene(scene)
    state.tool = Tool.BRUSH
    state.brush_size = 40
    state.brush_hardness = 30
    document = state.document
    document.begin_stroke()
    document.paint((20, 30), (70, 30), 12, hardness=0.3)
    document.end_stroke()
    painted = document.mask.copy()
    assert ((painted > 0) & (painted < 255)).any()
    state.save_work()
    qtbot.waitUntil(lambda: not window.jobs.busy and not document.modified, timeout=10_000)
    window.close()

    again = open_window()
    qtbot.waitUntil(lambda: again.insert_state.document.scene_path is not None and not again.jobs.busy,
                    timeout=10_000)
    restored = again.insert_state
    assert restored.document.scene_path == scene.resolve()
    assert restored.document.mask.dtype == np.uint8 and np.array_equal(restored.document.mask, painted)
    assert restored.brush_hardness == 30 and again.insert_panel.tools.hardness.value() == 30
    assert restored.brush_size == 40 and again.insert_panel.canvas.brush_hardness == 0.3
    again.close()
