"""Journeys: Help (shortcuts, About from a job), presets (built-in, saved, kept across a restart),
Preferences (model folders, device, data folder, demo) and the first-run welcome."""

from __future__ import annotations

import os
import sys

from alchemy_engine import api
from alchemy_gui.app import apply_startup_preferences
from alchemy_gui.main_window import MainWindow
from alchemy_gui.shell.menus import open_preferences
from alchemy_gui.shell.shortcuts import SHORTCUTS


def test_help_menu_shortcuts_and_about(qtbot, open_window):
    window = open_window()
    window.menu_actions.shortcuts.trigger()
    table = window.dialog.table
    assert table.rowCount() == len(SHORTCUTS)
    qtbot.waitExposed(window.dialog)
    for row in range(table.rowCount()):  # no description cut off with "…"
        text = table.item(row, 2).text()
        assert table.columnWidth(2) >= table.fontMetrics().horizontalAdvance(text), text
    window.dialog.close()
    torch_before = "torch" in sys.modules
    window.menu_actions.about.trigger()
    about = window.dialog
    qtbot.waitUntil(lambda: bool(about.info), timeout=60_000)
    assert {"Image Alchemy", "torch", "diffusers", "Device"} <= set(about.info)
    assert about.info["PySide6"] not in ("", "not installed")  # the wheel may be PySide6_Essentials alone
    assert not torch_before or "torch" in sys.modules  # it was the job's thread that imported it
    menus = [a for a in window.menuBar().actions()]
    assert [m.text() for m in menus] == ["&File", "&Run", "&Presets", "&Help"]
    for action in vars(window.menu_actions).values():
        if hasattr(action, "toolTip") and hasattr(action, "shortcut"):
            assert action.toolTip(), action.text()
    window.close()


def test_presets_apply_save_and_survive_a_restart(qtbot, open_window):
    window = open_window()
    train = window.train_state.settings
    window.menu_actions.train_presets.aboutToShow.emit()
    names = [a.text() for a in window.menu_actions.train_presets.actions() if a.text()]
    assert names[:3] == ["Quick test", "Balanced", "Best quality"] and names[-1] == "Save as preset…"
    window.menu_actions.train_presets.actions()[0].trigger()
    assert train.steps == 150 and train.resolution == 768 and "Quick test" in window.statusBar().currentMessage()
    train.steps = 321
    window.menu_actions.train_presets.save("My dog")
    window.menu_actions.insert_presets.actions()[2].trigger()  # Best quality
    assert window.insert_state.settings.variations == 4
    window.close()

    again = open_window()
    again.menu_actions.train_presets.aboutToShow.emit()
    mine = [a for a in again.menu_actions.train_presets.actions() if a.text() == "My dog  (yours)"]
    mine[0].trigger()
    assert again.train_state.settings.steps == 321
    again.close()


def test_preferences_show_model_folders_and_apply(qtbot, open_window, tmp_path, monkeypatch, alchemy_home):
    window = open_window()
    dialog = open_preferences(window)
    qtbot.waitUntil(lambda: "found" in dialog.model_lines["sdxl"].text(), timeout=30_000)
    assert str(api.models_dir() / "sdxl") in dialog.model_lines["sdxl"].text()
    assert "none found" in dialog.model_lines["sam"].text()
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp16"))
    dialog.data_folder.setText(str(tmp_path / "elsewhere"))
    dialog.demo.setChecked(True)
    dialog.accept()
    assert window.train_state.settings.device == "cpu" and window.train_state.settings.mixed_precision == "fp16"
    window.close()

    for name in ("IMAGE_ALCHEMY_HOME", "IMAGE_ALCHEMY_CONFIG", "IMAGE_ALCHEMY_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGE_ALCHEMY_CONFIG", str(alchemy_home / "config"))
    apply_startup_preferences()  # what the next start does
    assert os.environ["IMAGE_ALCHEMY_HOME"] == str(tmp_path / "elsewhere")
    assert api.demo_mode()
    assert api.load_app_settings()["device"] == "cpu"  # the settings file did not move


def test_first_run_welcome_offers_the_demo_models(qtbot, monkeypatch):
    monkeypatch.delenv("IMAGE_ALCHEMY_DEMO", raising=False)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: getattr(window, "welcome", None) is not None and window.welcome.isVisible(),
                    timeout=30_000)
    assert str(api.models_dir() / "sdxl") in window.welcome.folder_button.toolTip()
    window.welcome.demo_button.click()
    assert api.demo_mode() and window.app_settings.get("demo_models") is True
    window.close()
    monkeypatch.delenv("IMAGE_ALCHEMY_DEMO", raising=False)


def test_demo_mode_starts_training_on_the_demo_model(qtbot, monkeypatch, photos):
    """`main.py --demo` (or "Use the demo models"): the Train form shows "demo" chosen, not "no model"."""
    api.create_project("Rex", class_noun="dog", images=photos)
    monkeypatch.setenv("IMAGE_ALCHEMY_DEMO", "1")
    window = MainWindow(welcome=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.projects_state.projects), timeout=30_000)
    window.projects_state.open(window.projects_state.projects[0].slug)
    train = window.train_state
    qtbot.waitUntil(lambda: train.project is not None and train._models_loaded and not window.jobs.busy,
                    timeout=30_000)
    assert train.settings.model == "demo" and train.error == ""
    assert window.train_panel.form.model_combo.currentText().startswith("demo")
