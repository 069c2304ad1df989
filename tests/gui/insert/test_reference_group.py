"""The Insert form's Reference guidance group: off by default, on with the demo adapter, photo boxes,
and an insertion from the panel whose PNG records the guidance."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_insert_panel import _fast, _open, _paint, _scene

from alchemy_engine.insertion.metadata import RESULT_KEY, read_png_text
from alchemy_engine.project.reference_masks import write_mask


def _photos(project, tmp_path) -> list[str]:
    files = []
    for i in range(3):
        path = tmp_path / f"ref{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path)
        files.append(path)
    project.import_photos(files)
    photos = project.reference_photos()
    mask = np.zeros((256, 256), dtype=bool)
    mask[50:200, 60:190] = True
    write_mask(photos[1], mask)
    return [p.name for p in photos]


def test_reference_group_turns_guidance_on_and_an_insertion_records_it(qtbot, panel, project, tmp_path,
                                                                        screenshot):
    names = _photos(project, tmp_path)
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    group, settings = panel.settings.reference, panel.insert_state.settings
    assert not group.isChecked() and not group.body.isVisible() and settings.ip_adapter is None
    narrow = panel.settings.minimumSizeHint().width()  # what the panel's scroll area was sized for
    group.setChecked(True)
    assert settings.ip_adapter == "demo" and group.body.isVisible()
    assert panel.settings.minimumSizeHint().width() <= narrow  # nothing is cut off at the right edge
    boxes = {box.text(): box for box in group.photo_checks}
    assert sorted(boxes) == sorted(names)
    assert [n for n, b in boxes.items() if b.isChecked()] == [names[1]]  # default: the masked photo
    boxes[names[0]].setChecked(True)
    assert settings.ip_photos == f"{names[0]},{names[1]}"
    group.scale.setValue(0.8)
    group.mode.setCurrentIndex(group.mode.findData("style") if group.mode.findData("style") >= 0
                               else group.mode.findText("style"))
    assert settings.ip_scale == 0.8 and settings.ip_mode == "style"
    _fast(panel)
    _paint(panel, [(50, 65), (70, 70), (90, 75)])
    panel.settings.reference.ensurePolished()
    qtbot.wait(50)
    screenshot(panel, "insert_reference_group")
    screenshot(group, "insert_reference_group_only")
    with qtbot.waitSignal(panel.insert_state.insert_finished, timeout=120000) as done:
        QTest.mouseClick(panel.insert_button, Qt.MouseButton.LeftButton)
    output = done.args[0].outputs[0] if hasattr(done.args[0], "outputs") else None
    output = output or next(iter(project.outputs_dir.glob("insert-*-7.png")))
    reference = json.loads(read_png_text(output)[RESULT_KEY])["reference"]
    assert (reference["adapter"].startswith("ip-adapter_demo"), reference["scale"], reference["mode"]) == (
        True, 0.8, "style")
    assert reference["photos"] == [names[0], names[1]]
    group.setChecked(False)
    assert settings.ip_adapter is None and not group.body.isVisible()
    with qtbot.waitSignal(panel.insert_state.parameters_reused, timeout=30000):
        panel.insert_state.outputs.reuse_parameters(output)  # Reuse parameters turns the group back on
    assert group.isChecked() and settings.ip_adapter == "demo" and settings.ip_scale == 0.8
    assert settings.ip_mode == "style" and [b.text() for b in group.photo_checks if b.isChecked()] == names[:2]
