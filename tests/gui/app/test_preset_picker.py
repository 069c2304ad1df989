"""Journeys: the preset picker at the top of the Train and Insert forms — choose a preset (the form
fills), edit a field ("Balanced *"), save your own (it survives a restart), delete it, the choice
remembered per project, and a broken preset file named in one message without breaking the window."""

from __future__ import annotations

import json

from alchemy_engine import api
from tests.gui.app.conftest import open_project


def _choose(picker, name: str) -> None:
    index = picker.combo.findData(name)
    assert index >= 0, name
    picker.combo.setCurrentIndex(index)
    picker.combo.activated.emit(index)


def test_choose_edit_save_restart_and_delete(qtbot, open_window, photos):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    picker, settings = window.train_panel.form.preset_picker, window.train_state.settings
    assert picker.combo.currentText() == "Custom"
    assert [picker.combo.itemText(i) for i in range(1, 4)] == ["Quick test", "Balanced", "Best quality"]
    _choose(picker, "Quick test")
    assert (settings.steps, settings.resolution, settings.rank) == (150, 768, 8)
    assert picker.combo.currentText() == "Quick test" and not picker.delete_button.isEnabled()
    window.train_panel.form.fields["steps"].setValue(175)  # a user edit
    assert settings.steps == 175 and picker.combo.currentText() == "Quick test *"
    settings.steps = 150
    assert picker.combo.currentText() == "Quick test"  # back to the preset's values

    settings.steps = 321
    picker.ask_name = lambda: "My dog"
    picker.save_button.click()
    assert picker.combo.currentText() == "My dog  (yours)" and picker.delete_button.isEnabled()
    insert_picker = window.insert_panel.settings.preset_picker
    _choose(insert_picker, "Best quality")
    assert window.insert_state.settings.variations == 4 and insert_picker.combo.currentText() == "Best quality"
    window.close()

    again = open_window()
    qtbot.waitUntil(lambda: again.train_state.project is not None and not again.jobs.busy, timeout=10_000)
    picker = again.train_panel.form.preset_picker
    assert picker.combo.currentText() == "My dog  (yours)" and again.train_state.settings.steps == 321
    assert again.insert_panel.settings.preset_picker.combo.currentText() == "Best quality"
    asked = []
    picker.confirm = lambda title, text: asked.append(text) or True
    picker.delete_button.click()
    assert "My dog" in asked[0] and picker.combo.currentText() == "Custom"
    assert again.train_state.settings.steps == 321  # the form keeps its values
    assert picker.combo.findData("My dog") == -1 and not any(not p.builtin for p in api.list_presets("train"))
    again.close()


def test_the_chosen_preset_is_remembered_per_project(qtbot, open_window, photos):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    api.create_project("Mug", class_noun="mug", images=photos[1:2])
    window = open_window()
    picker = window.train_panel.form.preset_picker
    open_project(qtbot, window, "Rex")
    _choose(picker, "Best quality")
    open_project(qtbot, window, "Mug")
    assert picker.combo.currentText() == "Custom"
    _choose(picker, "Quick test")
    window.train_state.settings.rank = 4
    open_project(qtbot, window, "Rex")
    assert picker.combo.currentText() == "Best quality" and window.train_state.settings.steps == 1200
    window.close()

    again = open_window()
    open_project(qtbot, again, "Mug")
    assert again.train_panel.form.preset_picker.combo.currentText() == "Quick test *"
    again.close()


def test_a_broken_user_preset_file_is_named_and_the_rest_still_work(qtbot, open_window):
    folder = api.config_dir() / "presets" / "train"
    folder.mkdir(parents=True)
    (folder / "typo.json").write_text(json.dumps({"name": "Typo", "values": {"stpes": 300}}))
    (folder / "fine.json").write_text(json.dumps({"name": "Fine", "values": {"steps": 300}}))
    window = open_window()
    picker = window.train_panel.form.preset_picker
    assert not picker.problem.isHidden()
    assert "typo.json" in picker.problem.text() and "'stpes' (did you mean 'steps'?)" in picker.problem.text()
    assert picker.combo.findData("Typo") == -1
    _choose(picker, "Fine")
    assert window.train_state.settings.steps == 300
    window.menu_actions.train_presets.aboutToShow.emit()  # the menu lists the same presets
    assert "Typo" not in [a.text() for a in window.menu_actions.train_presets.actions()]
    (folder / "typo.json").unlink()
    window.train_state.presets.reload()
    assert picker.problem.isHidden()
    window.close()
