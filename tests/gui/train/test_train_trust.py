"""What the Train area shows can be trusted: only the open project's job and runs, the settings of
the run being resumed (also after a restart), no stale "Starting…", the engine's notes; previous
runs in detail, renamed and deleted; Masked loss only with masks."""

from __future__ import annotations

import numpy as np
from test_train_panel import TRAIN_TIMEOUT_MS, _finish, _open_panel, _tiny

from alchemy_engine import api
from alchemy_gui.common.job_list import JobList
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.train.panel import TrainPanel


def _train_to_end(qtbot, panel: TrainPanel):
    train = panel.train_state
    panel.start_button.click()
    with qtbot.waitSignal(train.job.succeeded, timeout=TRAIN_TIMEOUT_MS) as done:
        pass
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() >= 1, timeout=30_000)
    return done.args[0]


def test_only_the_open_projects_job_and_runs_are_shown(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    train, projects = panel.train_state, panel.projects_state
    rex = train.project
    _tiny(panel, sample_every=3)
    statuses = []
    train.status_changed.connect(lambda status: statuses.append(status.text))
    result = _train_to_end(qtbot, panel)
    assert statuses[0] == "Starting…" and statuses[1] == ""  # gone once the engine reports
    assert train.notes and any("precision" in note for note in train.notes)  # mixed_precision auto → used
    assert panel.progress_view.notes.isVisible() and "precision" in panel.progress_view.notes.text()
    other = api.create_project("Tom", class_noun="cat", images=photos[:1])
    projects.open(other.slug)
    qtbot.waitUntil(lambda: train.project is not None and train.project.slug == other.slug, timeout=10_000)
    assert panel.progress_view.chart.points == [] and train.loss_history == () and train.progress is None
    assert panel.progress_view.preview.pixmap().isNull() and not panel.progress_view.notes.isVisible()
    assert panel.runs.topLevelItemCount() == 0 and panel.status.text() == ""
    projects.open(rex.slug)
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 1, timeout=10_000)
    assert len(panel.progress_view.chart.points) >= 2  # its own job again
    projects.delete(rex.slug)
    qtbot.waitUntil(lambda: train.project is None, timeout=10_000)
    assert panel.progress_view.chart.points == [] and panel.runs.topLevelItemCount() == 0
    assert result.run_dir.name
    _finish(qtbot, panel)


def test_resume_shows_the_runs_settings_also_after_a_restart(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    train = panel.train_state
    _tiny(panel, steps=40, save_every=0)
    panel.form.fields["rank"].setValue(6)

    def stop_early(event) -> None:
        if event.stage == "training" and event.step >= 2 and not train.job.cancel_token.cancelled:
            panel.cancel_button.click()

    train.progress_changed.connect(stop_early)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.status.text().startswith("Stopped at step"), timeout=TRAIN_TIMEOUT_MS)
    train.progress_changed.disconnect(stop_early)
    _finish(qtbot, panel)
    # A restart: a new panel on the same data folder, with the form at its defaults.
    runner = JobList()
    projects = ProjectsState(runner)
    again = TrainPanel(projects, runner)
    qtbot.addWidget(again)
    again.show()
    projects.open(train.project.slug)
    fresh = again.train_state
    qtbot.waitUntil(lambda: again.runs.topLevelItemCount() == 1 and not runner.busy, timeout=30_000)
    assert again.form.fields["steps"].value() != 40
    assert again.status.text().startswith("Stopped at step") and not again.status_resume.isHidden()  # the banner
    stopped_at = int(again.status.text().split()[3])
    again.runs.setCurrentItem(again.runs.topLevelItem(0))
    again.resume_button.click()
    qtbot.waitUntil(lambda: again.form.fields["steps"].value() == 40, timeout=30_000)
    assert again.form.fields["rank"].value() == 6 and again.form.fields["resolution"].currentText() == "64"
    assert again.form.model_combo.currentData() == "demo"
    with qtbot.waitSignal(fresh.running_changed, timeout=TRAIN_TIMEOUT_MS, check_params_cb=lambda r: not r):
        pass
    assert again.status.text().startswith("Done: 40 steps")
    assert fresh.loss_history[0][0] <= stopped_at < fresh.loss_history[-1][0]  # the curve shows the whole run
    _finish(qtbot, again)


def test_a_previous_run_in_detail_renamed_and_deleted(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    train = panel.train_state
    _tiny(panel, sample_every=3)
    result = _train_to_end(qtbot, panel)
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    details = panel.run_details
    qtbot.waitUntil(lambda: train.picked_run.details is not None, timeout=10_000)
    assert len(details.chart.points) >= 2 and details.chart.points == api.read_loss_curve(result.run_dir)
    assert details.samples.count() == 2 and details.samples.item(0).text() == "3"
    settings = {details.settings.topLevelItem(i).toolTip(0): details.settings.topLevelItem(i).text(1)
                for i in range(details.settings.topLevelItemCount())}
    assert settings["steps"] == "6" and settings["rank"] == "4" and "project" not in settings
    assert details.title.text().startswith(f"{result.run_dir.name} · 6 steps · loss ")
    dialog = panel.rename_selected()
    dialog.setTextValue("first try")
    dialog.accept()
    qtbot.waitUntil(lambda: panel.runs.topLevelItem(0).text(0) == "first try", timeout=10_000)
    qtbot.waitUntil(lambda: details.title.text().startswith("first try · 6 steps"), timeout=10_000)
    box = panel.delete_selected()
    assert "trash" in box.text()
    box.accept()
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 0, timeout=10_000)
    assert not result.run_dir.exists() and list((train.project.root / "trash" / "runs").iterdir())
    assert "Moved run “first try”" in panel.run_message.text()
    assert train.picked_run.selected is None and details.chart.points == []
    _finish(qtbot, panel)


def test_the_run_being_trained_cannot_be_deleted(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    train = panel.train_state
    _tiny(panel, steps=400, save_every=0)
    panel.start_button.click()
    qtbot.waitUntil(lambda: train.active_run_id is not None and train.progress.stage == "training",
                    timeout=TRAIN_TIMEOUT_MS)
    train.refresh_runs()  # a light job: it lists the run while the training job still runs
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() == 1, timeout=30_000)
    assert train.running and train.runs[0].run_id == train.active_run_id
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert not panel.delete_button.isEnabled() and "Stop the run" in panel.delete_button.toolTip()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=TRAIN_TIMEOUT_MS)
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert panel.delete_button.isEnabled()
    _finish(qtbot, panel)


def test_masked_loss_is_offered_only_with_masks(qtbot, photos):
    panel = _open_panel(qtbot, photos)
    _tiny(panel)
    box = panel.form.fields["masked_loss"]
    assert not box.isEnabled() and "Photos tab" in box.toolTip()
    project = panel.train_state.project
    photo = project.reference_photos()[0]
    project.set_mask(photo.name, np.ones((photo.height, photo.width), dtype=bool))
    panel.projects_state.open(project.slug)  # what the Photos tab does after saving a mask
    qtbot.waitUntil(lambda: box.isEnabled(), timeout=10_000)
    box.setChecked(True)
    assert panel.train_state.settings["masked_loss"] and not panel.validation.isVisible()
    project.set_mask(photo.name, None)
    panel.projects_state.open(project.slug)
    qtbot.waitUntil(lambda: "Masked loss needs subject masks" in panel.validation.text(), timeout=10_000)
    assert box.isEnabled()  # checked: it can still be turned off
    box.setChecked(False)
    assert not box.isEnabled() and panel.validation.text() == ""
    _finish(qtbot, panel)
