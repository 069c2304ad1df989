"""History, LoRA files from elsewhere, and work that survives a restart: the project's outputs in
the strip (newest first, scores, sort), reuse parameters, use as scene, view large, delete to the
trash; Add LoRA file with refusals; the newest run picked with its label; the scene and mask
restored when the project reopens (a restart = a new panel on the same data folder)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from test_insert_panel import _open, _paint, _scene

from alchemy_engine import api
from alchemy_gui.common.job_list import JobList
from alchemy_gui.insert.panel import InsertPanel
from alchemy_gui.insert.panel_actions import result_action
from alchemy_gui.insert.result_view import ResultDialog
from alchemy_gui.projects.state import ProjectsState


def _output(project, name: str, seed: int, mtime: float, scene: Path, scores: dict | None = None) -> Path:
    request = api.InsertRequest(project="rex", scene=scene, prompt=f"a sks dog {seed}", seed=seed, steps=9,
                                strength=0.55, sampler="DPM++ 2M Karras")
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("alchemy_request", request.to_json())
    chunks.add_text("alchemy_result", json.dumps({"scene": str(scene)}))
    if scores:
        chunks.add_text("scores", json.dumps(scores))
    project.outputs_dir.mkdir(parents=True, exist_ok=True)
    path = project.outputs_dir / name
    Image.open(scene).save(path, pnginfo=chunks)
    os.utime(path, (mtime, mtime))
    return path


def _record_image_reads(monkeypatch) -> list[int]:
    """The ids of the threads that decode whole images from now on."""
    from alchemy_gui.common import thumbnails

    reads: list[int] = []

    class Reader(thumbnails.QImageReader):
        def read(self):
            reads.append(threading.get_ident())
            return super().read()

    monkeypatch.setattr(thumbnails, "QImageReader", Reader)
    return reads


def _open_project(qtbot, panel, project) -> None:
    with qtbot.waitSignal(panel.projects_state.current_changed, timeout=30000):
        panel.projects_state.open(project.slug)


def test_results_strip_shows_every_output_with_scores_and_actions(qtbot, panel, project, tmp_path, monkeypatch,
                                                                  screenshot):
    scene = _scene(tmp_path / "park.png")
    old = _output(project, "insert-1-1.png", 1, 1000, scene, {"fidelity": 0.9})
    new = _output(project, "insert-2-2.png", 2, 2000, scene, {"fidelity": 0.4})
    _open_project(qtbot, panel, project)
    strip = panel.results
    qtbot.waitUntil(lambda: strip.list.count() == 2, timeout=30000)
    assert [strip.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(2)] == [str(new), str(old)]
    assert "fidelity 0.40" in strip.list.item(0).text() and strip.order.isVisible()
    strip.order.setCurrentIndex(strip.order.findData("fidelity"))
    strip.order.activated.emit(strip.order.currentIndex())
    assert strip.list.item(0).data(Qt.ItemDataRole.UserRole) == str(old)  # best score first
    with qtbot.waitSignal(panel.insert_state.parameters_reused, timeout=30000):
        result_action(panel, "reuse", str(old))
    assert panel.settings.seed.value() == 1 and panel.settings.steps.value() == 9
    assert panel.settings.strength.value() == 0.55 and panel.settings.prompt.text() == "a sks dog 1"
    assert panel.settings.sampler.currentData() == "DPM++ 2M Karras"
    reads = _record_image_reads(monkeypatch)
    result_action(panel, "view", str(old))
    qtbot.waitUntil(lambda: panel.findChild(ResultDialog) is not None, timeout=30000)
    dialog = panel.findChild(ResultDialog)
    assert not dialog.view.before.isNull() and not dialog.view.after.isNull() and dialog.slider.isEnabled()
    dialog.toggle.setChecked(True)
    assert dialog.view.split == 1.0
    screenshot(dialog, "insert_result_before_after")
    dialog.close()
    result_action(panel, "copy", str(old))
    qtbot.waitUntil(lambda: "Copied" in panel.message.text(), timeout=30000)
    assert not QGuiApplication.clipboard().image().isNull()
    assert len(reads) == 2 and threading.main_thread().ident not in reads  # result and scene, off the UI thread
    strip.list.setCurrentRow(next(i for i in range(2) if strip.list.item(i).data(Qt.ItemDataRole.UserRole) == str(new)))
    assert strip.compare.isChecked()
    qtbot.waitUntil(lambda: panel.canvas.showing_preview, timeout=30000)  # compared once decoded
    assert len(reads) == 3 and threading.main_thread().ident not in reads
    strip.list.setCurrentItem(None)
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    result_action(panel, "delete", str(new))
    qtbot.waitUntil(lambda: strip.list.count() == 1, timeout=30000)
    assert not new.exists() and (project.root / "trash" / "outputs" / new.name).is_file()
    assert "trash" in panel.message.text()
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=30000):
        result_action(panel, "scene", str(old))
    assert panel.document.scene_path == old.resolve()


def test_add_lora_file_accepts_an_sdxl_lora_and_refuses_other_files_in_one_line(qtbot, panel, project, tmp_path,
                                                                                 demo_lora):
    _open_project(qtbot, panel, project)
    qtbot.waitUntil(lambda: panel.settings.run.count() == 1, timeout=30000)
    elsewhere = tmp_path / "downloads" / "rex-style.safetensors"
    elsewhere.parent.mkdir()
    shutil.copyfile(demo_lora, elsewhere)
    bogus = tmp_path / "downloads" / "notes.safetensors"
    bogus.write_text("not a LoRA")
    with qtbot.waitSignal(panel.insert_state.job_failed, timeout=30000) as blocker:
        panel.insert_state.added_loras.add(bogus)
    assert "notes.safetensors" in blocker.args[0].message and "\n" not in blocker.args[0].message
    assert panel.settings.run.count() == 1
    with qtbot.waitSignal(panel.insert_state.lora_files_changed, timeout=30000):
        panel.insert_state.added_loras.add(elsewhere)
    assert panel.settings.run.count() == 2 and panel.settings.run.currentText() == "rex-style.safetensors (file)"
    panel.document.set_scene(_scene(tmp_path / "park.png"))  # a scene path is all a request needs here
    request = panel.insert_state.insert_request()
    assert request.lora == elsewhere.resolve() and request.run is None
    panel.settings.style_lora.setCurrentIndex(panel.settings.style_lora.findData(str(elsewhere.resolve())))
    panel.settings.style_lora_scale.setValue(0.5)
    request = panel.insert_state.insert_request()
    assert request.style_lora == elsewhere.resolve() and request.style_lora_scale == 0.5


def test_newest_run_is_picked_and_labelled_with_steps_loss_and_date(qtbot, panel, project):
    _open_project(qtbot, panel, project)
    qtbot.waitUntil(lambda: panel.settings.run.count() == 1, timeout=30000)
    newer = project.runs_dir / "20250301-000000-aaaaaa"
    newer.mkdir()
    (newer / "train_request.json").write_text(json.dumps({"steps": 400}))
    (newer / "loss.csv").write_text("step,loss,smoothed\n399,0.2,0.1234\n400,0.2,0.1111\n")
    shutil.copyfile(project.runs_dir / "20250101-000000-abcdef" / "lora.safetensors", newer / "lora.safetensors")
    panel.insert_state.refresh_choices()  # what the main window does when the Train panel's runs change
    qtbot.waitUntil(lambda: panel.settings.run.count() == 2, timeout=30000)
    label = panel.settings.run.currentText()
    assert panel.settings.run.currentData() == newer.name
    assert label.startswith(f"{newer.name} · 400 steps · loss 0.111 · 20")


def test_scene_and_mask_survive_a_project_switch_and_a_restart(qtbot, panel, project, tmp_path):
    scene = _scene(tmp_path / "park.png")
    _open(qtbot, panel, project, scene)
    _paint(panel, [(50, 65), (90, 75)])
    painted = panel.document.mask.copy()
    other = api.create_project("Mug", class_noun="mug", token="zwx")
    _open_project(qtbot, panel, other)  # switching saves the work of the project left
    assert panel.document.scene_path is None
    qtbot.waitUntil(lambda: not panel.insert_state.jobs.busy, timeout=30000)
    saved = api.load_scene_mask(project.root)
    assert saved.scene == scene.resolve() and np.array_equal(saved.mask, painted)
    runner = JobList()  # a restart: a new panel on the same data folder
    again = InsertPanel(ProjectsState(runner), runner)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.insert_state.scene_ready, timeout=30000):
        again.projects_state.open(project.slug)
    assert again.document.scene_path == scene.resolve() and np.array_equal(again.document.mask, painted)
    assert not again.document.modified
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)


def test_opening_another_scene_keeps_the_mask_of_the_first(qtbot, panel, project, tmp_path):
    first = _scene(tmp_path / "park.png")
    _open(qtbot, panel, project, first)
    _paint(panel, [(50, 65), (90, 75)])
    painted = panel.document.mask.copy()
    second = tmp_path / "beach.png"
    shutil.copyfile(first, second)
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=30000):
        panel.insert_state.open_scene(second)
    assert not panel.document.has_mask
    with qtbot.waitSignal(panel.insert_state.scene_ready, timeout=30000):
        panel.insert_state.open_scene(first)
    assert np.array_equal(panel.document.mask, painted) and "saved mask" in panel.message.text()
