"""The Train area against the real engine on the tiny demo SDXL: settings, validation, memory
estimate, a training run with progress and previews, stop and resume, and the run list."""

from __future__ import annotations

import pytest

from alchemy_engine import project as projects
from alchemy_gui.common.job_list import JobList
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.train.panel import TrainPanel
from alchemy_gui.train.progress import format_duration

TRAIN_TIMEOUT_MS = 120_000


def _open_panel(qtbot, photos, count: int = 3) -> TrainPanel:
    project = projects.create_project("Rex", token="sks", class_noun="dog", images=photos[:count])
    runner = JobList()
    state = ProjectsState(runner)
    panel = TrainPanel(state, runner)
    qtbot.addWidget(panel)
    panel.resize(1000, 720)
    panel.show()
    state.open(project.slug)
    train = panel.train_state
    qtbot.waitUntil(lambda: train.project is not None and bool(train.models) and not runner.busy, timeout=30_000)
    return panel


def _tiny(panel: TrainPanel, **extra) -> None:
    """A run of milliseconds per step: the demo model at 64 px, rank 4; set through the widgets."""
    fields = panel.form.fields
    combo = panel.form.model_combo
    combo.setCurrentIndex(combo.findData("demo"))
    combo.activated.emit(combo.currentIndex())  # what a user's pick emits
    fields["resolution"].setCurrentText("64")
    fields["rank"].setValue(4)
    fields["learning_rate"].setText("1e-3")
    fields["learning_rate"].textEdited.emit("1e-3")
    panel.train_state.set_field("sample_steps", 2)  # not in the form: previews only need to exist
    for name, value in {"steps": 6, "save_every": 3, "sample_every": 0, **extra}.items():
        fields[name].setValue(value)


def _finish(qtbot, panel: TrainPanel) -> None:
    qtbot.waitUntil(lambda: not panel.train_state.jobs.busy, timeout=30_000)


def test_without_a_project_the_panel_is_disabled_with_a_hint(qtbot):
    runner = JobList()
    panel = TrainPanel(ProjectsState(runner), runner)
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.content.isEnabled()
    assert not panel.start_button.isEnabled()
    assert "Open or create a project" in panel.project_hint.text()


def test_form_follows_prior_preservation_and_a_browsed_model(qtbot, photos, screenshot):
    """(Every field's default, range and help: tests/gui/test_form_defaults.py.)"""
    panel = _open_panel(qtbot, photos)
    fields = panel.form.fields
    assert not fields["class_images"].isEnabled()  # follows prior preservation
    fields["prior_preservation"].setChecked(True)
    assert fields["class_images"].isEnabled() and panel.train_state.settings["prior_preservation"]
    assert panel.form.model_combo.findData("demo") >= 0
    panel.train_state.add_model("/models/my_sdxl.safetensors")  # what Browse… does with the chosen file
    assert panel.form.model_combo.currentText() == "my_sdxl.safetensors"
    assert panel.train_state.settings["model"] == "/models/my_sdxl.safetensors"
    assert not panel.photo_warning.isVisible()
    panel.form.advanced_toggle.setChecked(True)
    qtbot.wait(100)  # let the layout settle before the picture
    screenshot(panel, "train_panel_idle")


def test_invalid_settings_disable_start_and_say_why(qtbot, photos):
    panel = _open_panel(qtbot, photos, count=2)
    assert panel.photo_warning.isVisible() and "Only 2 photo" in panel.photo_warning.text()
    _tiny(panel)
    assert panel.start_button.isEnabled() and not panel.validation.isVisible()
    assert panel.form.fields["steps"].minimum() == 1  # the field's own minimum: 0 cannot be typed …
    panel.train_state.set_field("steps", 0)  # … but a request from elsewhere is still checked
    assert not panel.start_button.isEnabled()
    assert panel.validation.isVisible() and "steps must be at least 1" in panel.validation.text()
    panel.form.fields["steps"].setValue(6)
    panel.form.fields["learning_rate"].textEdited.emit("fast")
    assert "learning_rate must be a number" in panel.validation.text()
    assert not panel.start_button.isEnabled() and not panel.estimate_button.isEnabled()
    panel.form.fields["learning_rate"].textEdited.emit("1e-3")
    assert panel.start_button.isEnabled() and panel.validation.text() == ""


def test_estimate_memory_shows_a_summary(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    _tiny(panel)
    panel.fit_memory.setChecked(True)
    assert panel.train_state.settings["fit_memory"] is True
    panel.estimate_button.click()
    qtbot.waitUntil(lambda: "estimated peak" in panel.estimate_label.text(), timeout=60_000)
    assert "GiB" in panel.estimate_label.text()
    panel.form.fields["rank"].setValue(8)
    assert panel.estimate_label.text() == ""  # a stale estimate is not shown
    _finish(qtbot, panel)


def test_training_run_reports_progress_and_lists_the_run(qtbot, photos, screenshot):
    panel = _open_panel(qtbot, photos)
    train = panel.train_state
    _tiny(panel, sample_every=3)
    stages = []
    train.progress_changed.connect(lambda event: stages.append(event.stage))
    panel.start_button.click()
    assert train.running and not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    with qtbot.waitSignal(train.job.succeeded, timeout=TRAIN_TIMEOUT_MS) as done:
        pass
    result = done.args[0]
    assert result.lora.is_file() and result.lora_kohya.is_file()
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 1, timeout=30_000)
    assert {"loading", "training", "sample"} <= set(stages)
    bar = panel.progress_view.bar
    assert bar.maximum() == 6 and bar.value() == 6
    assert panel.progress_view.loss.text().startswith("Loss ") and "—" not in panel.progress_view.loss.text()
    assert "it/s" in panel.progress_view.speed.text()
    assert len(panel.progress_view.chart.points) >= 2
    assert not panel.progress_view.preview.pixmap().isNull()
    status = panel.status.text()
    assert str(result.run_dir) in status and "lora.safetensors" in status and "lora_kohya.safetensors" in status
    row = panel.runs.topLevelItem(0)
    assert row.text(0) == result.run_dir.name and row.text(1) == "6 / 6" and row.text(4) == "finished"
    assert row.text(2) != "—" and row.text(3).startswith("20")
    panel.runs.setCurrentItem(row)
    assert panel.open_button.isEnabled() and not panel.resume_button.isEnabled()
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    qtbot.wait(100)
    screenshot(panel, "train_panel_after_run")
    _finish(qtbot, panel)


def test_stop_saves_a_checkpoint_and_resume_finishes_the_run(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    train = panel.train_state
    _tiny(panel, steps=60, save_every=0)

    def stop_early(event) -> None:
        if event.stage == "training" and event.step >= 2 and not train.job.cancel_token.cancelled:
            panel.cancel_button.click()

    train.progress_changed.connect(stop_early)
    panel.start_button.click()
    with qtbot.waitSignal(train.running_changed, timeout=TRAIN_TIMEOUT_MS,
                          check_params_cb=lambda running: not running):
        pass
    train.progress_changed.disconnect(stop_early)
    text = panel.status.text()
    assert text.startswith("Stopped at step ") and "Resume continues it" in text, text
    stopped_at = int(text.split()[3].rstrip("—").strip())
    assert 2 <= stopped_at < 60
    assert panel.status_resume.isVisible()
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 1, timeout=30_000)
    row = panel.runs.topLevelItem(0)
    assert "can resume" in row.text(4)
    panel.runs.setCurrentItem(row)
    assert panel.resume_button.isEnabled()
    panel.resume_button.click()
    with qtbot.waitSignal(train.job.succeeded, timeout=TRAIN_TIMEOUT_MS) as done:
        pass
    assert done.args[0].resumed_from == stopped_at and done.args[0].steps == 60
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 1 and panel.runs.topLevelItem(0).text(4) == "finished",
                    timeout=30_000)
    assert panel.runs.topLevelItem(0).text(1) == "60 / 60"
    _finish(qtbot, panel)


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (5.4, "0:05"), (125, "2:05"), (3725, "1:02:05")])
def test_eta_is_minutes_and_seconds(seconds, text):
    assert format_duration(seconds) == text
