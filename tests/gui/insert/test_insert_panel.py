"""The Insert area end to end on the demo models: scene, SAM clicks, brush, Insert, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest

from alchemy_engine import project as projects
from alchemy_gui.insert.mask_canvas import Tool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine" / "insertion"))

ROOT = Path(__file__).resolve().parents[3]
SCENE = (160, 120)


def _scene(path: Path) -> Path:
    """A park-like picture: sky, grass, a brown 'dog' blob near the middle."""
    w, h = SCENE
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[..., 0] = 120 + 80 * y // h
    pixels[..., 1] = 170 + 40 * y // h
    pixels[..., 2] = 235 - 40 * y // h
    grass = y > 70
    pixels[grass] = np.stack([60 + x[grass] % 7 * 4, 140 + y[grass] % 5 * 6, 60 + 0 * x[grass]], -1)
    dog = ((x - 70) / 26.0) ** 2 + ((y - 72) / 16.0) ** 2 <= 1
    pixels[dog] = (140, 90, 50)
    Image.fromarray(pixels).save(path)
    return path


def _open(qtbot, panel, project, scene: Path) -> None:
    with qtbot.waitSignal(panel.projects_state.current_changed, timeout=30000):
        panel.projects_state.open(project.slug)
    qtbot.waitUntil(lambda: panel.settings.run.count() > 0 and panel.settings.sam.count() > 0, timeout=30000)
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=30000):
        panel.insert_state.open_scene(scene)
    qtbot.waitUntil(lambda: panel.canvas.scale() > 1.0)


def _at(panel, x: float, y: float) -> QPoint:
    return panel.canvas.image_to_widget(QPointF(x + 0.5, y + 0.5)).toPoint()


def _paint(panel, points, size=16) -> None:
    panel.insert_state.tool = Tool.BRUSH
    panel.tools.size_slider.setValue(size)
    canvas = panel.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _at(panel, *points[0]))
    for point in points[1:]:
        QTest.mouseMove(canvas, _at(panel, *point))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       _at(panel, *points[-1]))


def _fast(panel) -> None:
    panel.settings.steps.setValue(3)
    panel.settings.work_size.setValue(128)
    panel.settings.seed.setValue(7)


def test_no_project_shows_a_hint_and_a_project_enables_the_panel(qtbot, panel, project, screenshot):
    assert panel.stack.currentIndex() == 0 and panel.hint.isVisible()
    with qtbot.waitSignal(panel.projects_state.current_changed, timeout=30000):
        panel.projects_state.open(project.slug)
    assert panel.stack.currentIndex() == 1
    assert panel.settings.scene_prompt.text() == "a photo of a dog in a park"
    assert panel.settings.prompt.text() == "a photo of a sks dog in a park"
    panel.settings.scene_prompt.setText("a dog on a beach")  # the insertion prompt follows …
    assert panel.settings.prompt.text() == "a sks dog on a beach"
    panel.settings.prompt.setText("my own words")  # … until the user edits it
    panel.settings.scene_prompt.setText("a dog in the snow")
    assert panel.settings.prompt.text() == "my own words"
    qtbot.waitUntil(lambda: panel.settings.run.count() == 1, timeout=30000)
    assert panel.settings.run.currentData() == "20250101-000000-abcdef"
    newer = project.runs_dir / "20250102-000000-fedcba"
    newer.mkdir()
    shutil.copyfile(project.runs_dir / "20250101-000000-abcdef" / "lora.safetensors", newer / "lora.safetensors")
    panel.insert_state.refresh_choices()  # a training run finished: the newest LoRA becomes available
    qtbot.waitUntil(lambda: panel.settings.run.count() == 2, timeout=30000)
    assert panel.settings.run.itemData(0) == "20250102-000000-fedcba"
    assert panel.settings.model.currentData() == "demo" and panel.settings.sam.currentData() == "demo"
    assert "SAM" in panel.message.text() and "models" in panel.message.text()  # where real models go
    qtbot.wait(50)  # let the layout settle before the picture
    screenshot(panel, "insert_panel_no_scene")


def test_clicks_run_sam_and_set_a_mask_of_the_scene_size(qtbot, panel, project, tmp_path, screenshot):
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    assert panel.document.scene_size == SCENE
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000) as first:
        QTest.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         _at(panel, 70, 72))
    assert first.args[0].request.locate.points == ((70, 72, 1),)
    assert panel.document.mask.shape == (SCENE[1], SCENE[0]) and panel.document.has_mask
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000) as second:
        QTest.mouseClick(panel.canvas, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                         _at(panel, 20, 20))
    assert second.args[0].result.embedding_cached  # the second click reuses SAM's image embedding
    assert panel.document.points == ((70, 72, 1), (20, 20, 0))
    assert (Path(project.cache_dir) / "gui" / "mask.png").is_file()
    qtbot.wait(50)  # let the layout settle before the picture
    screenshot(panel, "insert_panel_sam_mask")
    QTest.keyClick(panel.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the last click
    assert panel.document.points == ((70, 72, 1),)


def test_paint_insert_shows_the_result_and_keeps_pixels_outside_the_mask(qtbot, panel, project, tmp_path,
                                                                           screenshot, monkeypatch):
    scene = _scene(tmp_path / "park.png")
    _open(qtbot, panel, project, scene)
    _fast(panel)
    _paint(panel, [(50, 65), (70, 70), (90, 75)])
    assert panel.document.mask[70, 70] and not panel.document.mask[10, 140]
    qtbot.wait(50)  # let the layout settle before the picture
    screenshot(panel, "insert_panel_brush_mask")
    with qtbot.waitSignal(panel.insert_state.insert_finished, timeout=120000) as done:
        QTest.mouseClick(panel.insert_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    assert panel.results.list.count() == 1 and panel.canvas.showing_preview
    assert panel.results.compare.isChecked() and panel.results.open_folder.isEnabled()
    after = np.asarray(Image.open(result.project_outputs[0]).convert("RGB"))
    before = np.asarray(Image.open(scene).convert("RGB"))
    assert after.shape == before.shape
    far = np.s_[:, 125:]  # the stroke ends at x≈98, grown 8 px and feathered 8 px
    assert np.array_equal(after[far], before[far])
    assert not np.array_equal(after[60:80, 60:80], before[60:80, 60:80])
    assert not panel.cancel_button.isEnabled() and panel.insert_button.isEnabled()
    qtbot.wait(50)  # let the layout settle before the picture
    screenshot(panel, "insert_panel_result")
    panel.results.compare.setChecked(False)  # before
    assert panel.canvas.showing_preview
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    QTest.mouseClick(panel.results.open_folder, Qt.MouseButton.LeftButton)
    assert opened == [str(result.project_outputs[0].parent)]
    QTest.mouseClick(panel.results.edit, Qt.MouseButton.LeftButton)  # back to editing
    assert not panel.canvas.showing_preview and not panel.results.compare.isEnabled()


def test_without_a_lora_the_message_points_to_the_train_tab(qtbot, panel, tmp_path):
    bare = projects.create_project("Mug", class_noun="mug", token="zwx")
    _open(qtbot, panel, bare, _scene(tmp_path / "park.png"))
    assert "Train tab" in panel.settings.run.currentText()
    _fast(panel)
    _paint(panel, [(50, 65), (90, 75)])
    with qtbot.waitSignal(panel.insert_state.job_failed, timeout=30000) as blocker:
        panel.insert_state.insert()
    failure = blocker.args[0]
    assert "Train tab" in failure.message and failure.detail == ""
    assert panel.message.text() == failure.message and not panel.details_button.isVisible()


def test_empty_mask_and_missing_scene_are_refused_before_any_job(qtbot, panel, project, tmp_path):
    with qtbot.waitSignal(panel.projects_state.current_changed, timeout=30000):
        panel.projects_state.open(project.slug)
    with qtbot.waitSignal(panel.insert_state.job_failed) as blocker:
        panel.insert_state.insert()
    assert "scene" in blocker.args[0].message
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=30000):
        panel.insert_state.open_scene(_scene(tmp_path / "park.png"))
    with qtbot.waitSignal(panel.insert_state.job_failed) as blocker:
        panel.insert_state.insert()
    assert "mask is empty" in blocker.args[0].message
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with qtbot.waitSignal(panel.insert_state.job_failed, timeout=30000) as blocker:
        panel.insert_state.open_scene(notes)
    assert "notes.png" in blocker.args[0].message and blocker.args[0].detail == ""
    assert panel.document.scene_size == SCENE  # the open scene stays


def test_cancel_stops_an_insertion(qtbot, panel, project, tmp_path):
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    panel.settings.work_size.setValue(128)
    panel.settings.steps.setValue(150)
    _paint(panel, [(50, 65), (90, 75)])
    with qtbot.waitSignal(panel.insert_state.job_failed, timeout=120000) as blocker:
        panel.insert_state.insert()
        assert panel.cancel_button.isEnabled() and not panel.insert_button.isEnabled()
        qtbot.waitUntil(lambda: panel.progress.maximum() > 1, timeout=60000)  # denoising has started
        QTest.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].cancelled and panel.message.text() == "Cancelled."
    assert panel.results.list.count() == 0 and panel.insert_button.isEnabled()
    assert not panel.progress.isVisible()


def test_auto_detect_and_generated_scene(qtbot, panel, project, tmp_path):
    _open(qtbot, panel, project, _scene(tmp_path / "park.png"))
    QTest.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _at(panel, 5, 5))
    with qtbot.waitSignal(panel.insert_state.mask_ready, timeout=30000) as blocker:
        QTest.mouseClick(panel.tools.detect, Qt.MouseButton.LeftButton)
    assert blocker.args[0].request.locate.text == "dog" and panel.document.points == ()
    assert panel.document.has_mask and "found" in panel.message.text()
    _fast(panel)
    panel.settings.scene_size.addItem("128 × 128", (128, 128))
    panel.settings.scene_size.setCurrentIndex(panel.settings.scene_size.count() - 1)
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=120000) as blocker:
        QTest.mouseClick(panel.settings.generate_button, Qt.MouseButton.LeftButton)
    scene = blocker.args[0]
    assert scene.path.parent == project.scenes_dir.resolve() and scene.path.is_file()
    assert panel.document.scene_size == (128, 128) and not panel.document.has_mask


def test_building_the_panel_imports_no_ml_package():
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from alchemy_gui.insert.panel import InsertPanel\n"
        "from alchemy_gui.projects.state import ProjectsState\n"
        "from alchemy_gui.common.job_list import JobList\n"
        "app = QApplication([])\n"
        "runner = JobList(); panel = InsertPanel(ProjectsState(runner), runner); panel.show()\n"
        "app.processEvents()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
