"""Journey: LoRA files added from elsewhere (as the subject LoRA or stacked as a style LoRA at its
own scale) come back after a restart (a new MainWindow on the same data folder); a file gone since
is shown as missing, without a crash, and can be removed from the list."""

from __future__ import annotations

import shutil

from alchemy_engine import api
from alchemy_gui.main_window import MainWindow
from tests.gui.app.conftest import open_project


def _window(qtbot) -> MainWindow:
    window = MainWindow(welcome=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30_000)
    return window


def _add(qtbot, window: MainWindow, path, style: bool) -> None:
    with qtbot.waitSignal(window.insert_state.lora_files_changed, timeout=30_000):
        window.insert_state.added_loras.add(path, style=style)


def test_added_lora_files_and_their_scales_survive_a_restart(qtbot, project, demo_lora, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    style_a, style_b, subject = (shutil.copyfile(demo_lora, downloads / f"{name}.safetensors")
                                 for name in ("watercolour", "ink", "rex-elsewhere"))
    window = _window(qtbot)
    open_project(qtbot, window, "Rex")
    form, settings = window.insert_panel.settings, window.insert_state.settings
    _add(qtbot, window, style_a, style=True)
    settings.style_lora_scale = 0.5
    _add(qtbot, window, style_b, style=True)
    settings.style_lora_scale = 1.25
    _add(qtbot, window, subject, style=False)
    assert form.remove_lora_button.isEnabled() and form.remove_style_button.isEnabled()
    form.style_lora.setCurrentIndex(form.style_lora.findData(str(style_a.resolve())))
    assert settings.style_lora_scale == 0.5  # each style LoRA keeps its own scale
    window.close()

    saved = api.load_workspace_settings(project, "insert")["lora_files"]
    assert saved == [{"path": str(style_a.resolve()), "scale": 0.5}, {"path": str(style_b.resolve()), "scale": 1.25},
                     {"path": str(subject.resolve()), "scale": 0.8}]
    style_b.unlink()  # moved away between two sessions

    again = _window(qtbot)
    qtbot.waitUntil(lambda: again.insert_state.choices is not None and not again.jobs.busy, timeout=30_000)
    form, settings, state = again.insert_panel.settings, again.insert_state.settings, again.insert_state
    assert settings.style_lora == str(style_a.resolve()) and settings.style_lora_scale == 0.5
    styles = [form.style_lora.itemText(i) for i in range(form.style_lora.count())]
    assert styles == ["none", "watercolour.safetensors (file)", "ink.safetensors (missing)",
                      "rex-elsewhere.safetensors (file)"]
    runs = [form.run.itemText(i) for i in range(form.run.count())]
    assert runs[-2:] == ["ink.safetensors (missing)", "rex-elsewhere.safetensors (file)"]
    assert not form.lora_missing.isHidden() and "ink.safetensors" in form.lora_missing.text()

    form.style_lora.setCurrentIndex(form.style_lora.findData(str(style_b.resolve())))
    assert settings.style_lora_scale == 1.25
    form.remove_style_button.click()
    assert settings.style_lora is None and form.style_lora.findData(str(style_b.resolve())) == -1
    assert form.run.findData(str(style_b.resolve())) == -1 and form.lora_missing.isHidden()
    assert "ink.safetensors" in state.message.text
    again.close()
    assert [e["path"] for e in api.load_workspace_settings(project, "insert")["lora_files"]] == [
        str(style_a.resolve()), str(subject.resolve())]


def test_a_style_lora_saved_before_files_were_remembered_joins_the_list(qtbot, project, tmp_path):
    gone = tmp_path / "old-style.safetensors"
    api.save_workspace_settings(project, "insert", {"settings": {"style_lora": str(gone), "style_lora_scale": 0.6},
                                                    "lora_files": "not a list"})
    window = _window(qtbot)
    open_project(qtbot, window, "Rex")
    form = window.insert_panel.settings
    qtbot.waitUntil(lambda: window.insert_state.choices is not None and not window.jobs.busy, timeout=30_000)
    assert form.style_lora.currentText() == "old-style.safetensors (missing)"
    assert "old-style.safetensors" in form.lora_missing.text()
    window.insert_state.remove_lora_file(str(gone))
    assert form.style_lora.currentText() == "none" and window.insert_state.lora_files == ()
    window.close()
