"""Journeys: the list selection is the open project; quitting or deleting while training asks,
stops the job, then acts; deleted projects come back from the trash; refusals are shown."""

from __future__ import annotations

from alchemy_engine import api
from alchemy_engine.project.locks import project_job
from alchemy_gui.projects.state import NewProject
from tests.gui.app.conftest import open_project, start_training


def _selected(window) -> str | None:
    return window.browser.selected_slug()


def test_new_project_is_selected_and_delete_acts_on_it(qtbot, open_window, photos):
    api.create_project("Alpha", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Alpha")
    assert _selected(window) == "alpha"
    window.projects_state.create(NewProject("Beta", "sks", "cat", tuple(photos[:1])))
    qtbot.waitUntil(lambda: window.browser.list.count() == 2 and not window.jobs.busy, timeout=30_000)
    assert window.projects_state.current.slug == "beta"
    assert _selected(window) == "beta"  # the highlighted row is the open project
    assert window.train_state.project.slug == "beta" and window.insert_state.project.slug == "beta"
    assert window.windowTitle().startswith("Beta")

    window.browser.delete_button.click()
    qtbot.waitUntil(lambda: window.browser.list.count() == 1 and not window.jobs.busy, timeout=10_000)
    assert "moves to the trash" in window.asked[-1] and "Restore from trash" in window.asked[-1]
    assert [s.name for s in api.list_projects()] == ["Alpha"]
    assert window.projects_state.current is None and _selected(window) is None
    assert window.train_state.project is None and window.insert_state.project is None

    dialog = window.restore_from_trash()
    qtbot.waitUntil(lambda: dialog.list.count() == 1, timeout=10_000)
    assert "Beta" in dialog.list.item(0).text()
    dialog.restore_button.click()
    qtbot.waitUntil(lambda: window.projects_state.current is not None and window.browser.list.count() == 2,
                    timeout=10_000)
    assert window.projects_state.current.name == "Beta" and _selected(window) == "beta"
    window.close()


def test_quit_while_training_asks_stops_then_quits(qtbot, open_window, photos, fake_training):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window(confirm=False)
    open_project(qtbot, window, "Rex")
    start_training(qtbot, window, fake_training)

    window.menu_actions.quit.trigger()  # Ctrl+Q, answered "No"
    assert window.asked[-1] == "Training 'Rex' is running — stop and quit?"
    assert window.isVisible() and window.train_state.running and not fake_training.cancelled.is_set()

    window.confirm = lambda title, text: True
    window.close()  # the window close button
    assert window.isVisible()  # not frozen waiting: the job winds down on its thread
    assert "Stopping" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert fake_training.cancelled.is_set() and not window.jobs.busy


def test_delete_while_training_stops_the_job_first(qtbot, open_window, photos, fake_training):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    start_training(qtbot, window, fake_training)
    window.menu_actions.delete.trigger()
    assert window.asked[-1].startswith("Training 'Rex' is running — stop it and delete the project?")
    assert "trash" in window.asked[-1]
    qtbot.waitUntil(lambda: api.list_projects() == [] and window.browser.list.count() == 0, timeout=15_000)
    assert fake_training.cancelled.is_set()
    assert [t.name for t in api.list_trash()] == ["Rex"]
    window.close()


def test_esc_stops_the_running_job(qtbot, open_window, photos, fake_training):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    start_training(qtbot, window, fake_training)
    assert window.menu_actions.stop.isEnabled()
    window.menu_actions.stop.trigger()  # Esc
    qtbot.waitUntil(lambda: not window.train_state.running, timeout=10_000)
    assert fake_training.cancelled.is_set()
    assert window.train_state.status.kind == "stopped"
    qtbot.waitUntil(lambda: not window.menu_actions.stop.isEnabled(), timeout=10_000)
    window.close()


def test_engine_refusal_to_delete_a_project_in_use_is_shown(qtbot, open_window, photos, monkeypatch):
    project = api.create_project("Rex", class_noun="dog", images=photos[:1])
    shown = []
    monkeypatch.setattr("alchemy_gui.main_window.show_failure", lambda parent, title, failure: shown.append(failure))
    window = open_window()
    open_project(qtbot, window, "Rex")
    with project_job(project.root, "training run in another process"):
        window.menu_actions.delete.trigger()
        qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "training run in another process" in shown[0].message
    assert shown[0].message in window.statusBar().currentMessage()
    assert [s.name for s in api.list_projects()] == ["Rex"]
    window.close()
