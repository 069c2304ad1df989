"""The Photos tab: view a photo large, remove one, "Auto-mask all" (demo detector + SAM), correct
one mask with brush, eraser and a SAM click; masks show on the thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from alchemy_engine import api
from alchemy_gui.common.job_list import JobList
from alchemy_gui.projects.overview import ProjectOverview
from alchemy_gui.projects.photo_viewer import PhotoViewer
from alchemy_gui.projects.state import ProjectsState

EVERYTHING = {"sam": "demo", "detector": "demo", "box_threshold": 0.0, "text_threshold": 0.0}


@pytest.fixture
def tab(qtbot, photos):
    """The Photos tab wired as the main window wires it, on project Rex (3 photos)."""
    project = api.create_project("Rex", class_noun="dog", images=photos)
    runner = JobList()
    state = ProjectsState(runner)
    overview = ProjectOverview(runner)
    state.current_changed.connect(overview.show_project)
    overview.reload_requested.connect(state.open)
    qtbot.addWidget(overview)
    overview.resize(900, 640)
    overview.show()
    state.open(project.slug)
    qtbot.waitUntil(lambda: overview.photos.count() == 3, timeout=10_000)
    yield overview
    qtbot.waitUntil(lambda: not runner.busy, timeout=60_000)
    # No pool thread may outlive the test; a pool already destroyed has waited for its threads.
    if shiboken6.isValid(overview.thumbnails):
        overview.thumbnails.wait()


def _select(overview, row: int = 0) -> str:
    overview.photos.setCurrentRow(row)
    return overview.selected_photo()


def test_auto_mask_all_masks_every_photo_and_tints_the_thumbnails(qtbot, tab, screenshot):
    assert not tab.mask_button.isEnabled() and tab.auto_button.isEnabled()
    assert "0 with a subject mask" in tab.details.text()
    tab.photos_state.auto_options = dict(EVERYTHING)
    tab.auto_button.click()
    assert not tab.auto_button.isEnabled()
    qtbot.waitUntil(lambda: "3 with a subject mask" in tab.details.text(), timeout=60_000)
    assert tab.message.text().startswith("Masked 3 photo(s).") and tab.auto_button.isEnabled()
    project = api.open_project("Rex")
    assert all(p.mask_path is not None for p in project.reference_photos())
    qtbot.waitUntil(lambda: all(not tab.photos.item(i).icon().isNull() for i in range(3)), timeout=10_000)
    assert "subject mask (red)" in tab.photos.item(0).toolTip()
    screenshot(tab, "photos_masked")


def test_auto_mask_says_which_photos_it_skipped(qtbot, tab):
    tab.photos_state.auto_options = {"sam": "demo", "detector": "demo", "box_threshold": 1.0}
    tab.auto_mask()
    qtbot.waitUntil(lambda: tab.message.text().startswith("Masked 0 photo(s)."), timeout=60_000)
    assert tab.message.text().count("Skipped ") == 3 and "found no 'dog'" in tab.message.text()


def test_correct_one_mask_with_brush_eraser_and_a_sam_click(qtbot, tab):
    name = _select(tab, 1)
    dialog = tab.edit_selected_mask()
    dialog.sam = "demo"
    qtbot.waitUntil(lambda: dialog.loaded is not None, timeout=10_000)
    canvas, document = dialog.canvas, dialog.document
    assert document.mask is not None and not document.mask.any()
    centre = canvas.image_rect().center().toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(canvas, centre + QPoint(40, 0))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 0))
    painted = int(document.mask.sum())
    assert painted > 0 and dialog.undo_button.isEnabled()
    dialog.tools.buttons()[1].click()  # Eraser
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert 0 < int(document.mask.sum()) < painted
    dialog.tools.buttons()[2].click()  # SAM click
    with qtbot.waitSignal(document.mask_changed, timeout=60_000):
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=centre)
    assert "SAM's outline" in dialog.hint.text()
    document.undo()  # back to the brush edits
    document.undo()
    assert dialog.redo_button.isEnabled()
    dialog.redo_button.click()  # the eraser again, then undone once more
    document.undo()
    assert "shows red" in dialog.hint.text() or "SAM" in dialog.hint.text()
    assert dialog.windowTitle() == f"Subject mask — {tab.photos.currentItem().text()}"  # the grid's name
    kept = document.mask.copy()
    dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: "1 with a subject mask" in tab.details.text(), timeout=10_000)
    photo = api.open_project("Rex").photo(name)
    with Image.open(photo.mask_path) as saved:
        assert np.array_equal(np.asarray(saved) > 127, kept > 0)  # the canvas mask is 0-255
    assert tab.selected_photo() == name  # the selection survives the reload


def test_view_one_photo_large_with_its_mask(qtbot, tab):
    project = api.open_project("Rex")
    photo = project.reference_photos()[0]
    project.set_mask(photo.name, np.ones((photo.height, photo.width), dtype=bool))
    tab.reload_requested.emit("rex")
    qtbot.waitUntil(lambda: "1 with a subject mask" in tab.details.text(), timeout=10_000)
    _select(tab, 0)
    tab.view_button.click()
    qtbot.waitUntil(lambda: tab.findChild(PhotoViewer) is not None, timeout=10_000)
    viewer = tab.findChild(PhotoViewer)
    assert viewer.windowTitle().startswith(photo.original_name)  # as the grid names it, not the stored file
    assert viewer.show_mask.isEnabled() and viewer.show_mask.isChecked()
    assert viewer.picture.pixmap().width() > 160  # larger than the thumbnail
    viewer.close()


def test_remove_a_photo(qtbot, tab):
    name = _select(tab, 2)
    stored = api.open_project("Rex").photo(name).path
    box = tab.remove_selected()
    assert name in box.text() and "original file is not touched" in box.text()
    box.accept()
    qtbot.waitUntil(lambda: tab.photos.count() == 2, timeout=10_000)
    assert not stored.exists() and f"Removed {name}." == tab.message.text()
    assert name not in [p.name for p in api.open_project("Rex").reference_photos()]
