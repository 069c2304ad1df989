"""The main window against the real engine: list, create (off the UI thread), open, delete."""

from __future__ import annotations

from alchemy_engine import project as projects
from alchemy_gui.main_window import MainWindow
from alchemy_gui.projects.state import NewProject


def _window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.jobs.busy)
    return window


def test_window_opens_empty_and_closes_cleanly(qtbot, screenshot):
    window = _window(qtbot)
    assert window.browser.list.count() == 0
    assert window.browser.empty_hint.isVisible()
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Photos", "Train", "Insert"]
    screenshot(window, "main_window_empty")
    assert window.close()


def test_create_project_runs_as_job_and_shows_photos(qtbot, photos, screenshot):
    window = _window(qtbot)
    with qtbot.waitSignal(window.projects_state.current_changed, timeout=30000):
        window.projects_state.create(NewProject("Rex", "sks", "dog", tuple(photos)))
    qtbot.waitUntil(lambda: window.browser.list.count() == 1, timeout=10000)
    assert window.overview.title.text() == "Rex"
    assert window.overview.photos.count() == 3
    qtbot.waitUntil(lambda: all(not window.overview.photos.item(i).icon().isNull()
                                for i in range(3)), timeout=10000)
    screenshot(window, "main_window_project")
    window.close()


def test_bad_photos_show_a_message_not_a_traceback(qtbot, tmp_path, monkeypatch):
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not an image")
    window = _window(qtbot)
    with qtbot.waitSignal(window.projects_state.failed, timeout=30000) as blocker:
        window.projects_state.create(NewProject("Broken", "sks", "dog", (bogus,)))
    title, failure = blocker.args
    assert "notes.jpg" in failure.message
    assert failure.detail == ""  # a user error: no traceback to fold away
    window.close()


def test_delete_project_from_browser(qtbot, photos, monkeypatch):
    projects.create_project("Mug", token="zwx", class_noun="mug", images=photos[:1])
    window = _window(qtbot)
    qtbot.waitUntil(lambda: window.browser.list.count() == 1)
    window.browser.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: window.projects_state.current is not None)
    with qtbot.waitSignal(window.projects_state.projects_changed, timeout=10000):
        window.projects_state.delete(window.projects_state.current.slug)
    assert window.browser.list.count() == 0
    assert window.projects_state.current is None
    window.close()


def test_add_photos_reports_the_skipped_ones(qtbot, photos, tmp_path, screenshot):
    projects.create_project("Cup", token="zwx", class_noun="mug", images=photos[:1])
    bogus = tmp_path / "broken.png"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    window = _window(qtbot)
    qtbot.waitUntil(lambda: window.browser.list.count() == 1)
    window.browser.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: window.projects_state.current is not None)
    assert window.overview.add_button.isEnabled()
    with qtbot.waitSignal(window.projects_state.notice, timeout=30000) as blocker:
        window.overview.add_photos_requested.emit([photos[1], bogus])
    assert "broken.png" in blocker.args[0]
    qtbot.waitUntil(lambda: window.overview.photos.count() == 2)
    assert window.overview.photos.item(1).text() == photos[1].name
    qtbot.waitUntil(lambda: "2 photos" in window.browser.list.item(0).text() and not window.jobs.busy)
    qtbot.waitUntil(lambda: all(not window.overview.photos.item(i).icon().isNull() for i in range(2)))
    screenshot(window, "main_window_added_photos")
    window.close()


def test_damaged_project_is_listed_with_its_problem(qtbot, photos):
    project = projects.create_project("Broken", token="sks", class_noun="dog", images=photos[:1])
    project.project_file.write_text("{ not json")
    window = _window(qtbot)
    qtbot.waitUntil(lambda: window.browser.list.count() == 1)
    item = window.browser.list.item(0)
    assert "cannot be opened" in item.text()
    assert "project.json" in item.toolTip()
    window.close()


def test_new_project_dialog_builds_the_request(qtbot, photos, screenshot):
    window = _window(qtbot)
    dialog = window.new_project()
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # name and class noun are required
    dialog.name_edit.setText("Rex")
    dialog.class_edit.setText("dog")
    dialog.add_images(photos)
    dialog.add_images(photos[:1])  # no duplicates in the list
    assert ok.isEnabled()
    screenshot(dialog, "new_project_dialog")
    request = dialog.request()
    assert (request.name, request.token, request.class_noun) == ("Rex", "sks", "dog")
    assert request.images == tuple(photos)
    with qtbot.waitSignal(window.projects_state.current_changed, timeout=30000):
        dialog.accept()
    assert window.projects_state.current.name == "Rex"
    window.close()


def test_every_tab_renders_for_an_open_project(qtbot, photos, screenshot):
    projects.create_project("Rex", token="sks", class_noun="dog", images=photos)
    window = _window(qtbot)
    window.resize(1280, 820)
    qtbot.waitUntil(lambda: window.browser.list.count() == 1)
    window.browser.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: window.projects_state.current is not None)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=30000)
    for index, name in enumerate(("photos", "train", "insert")):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        assert window.tabs.currentWidget().isEnabled()
        screenshot(window, f"main_window_tab_{name}")
    window.close()
