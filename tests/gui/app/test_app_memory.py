"""Journeys across a restart (a new MainWindow on the same data folder): layout, last project and
tab, per-project Train and Insert settings, recent scenes, and the wheel guard."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from alchemy_engine import api
from tests.gui.app.conftest import open_project


def test_restart_brings_back_layout_project_tab_and_settings(qtbot, open_window, photos, tmp_path):
    api.create_project("Rex", class_noun="dog", images=photos[:1])
    api.create_project("Mug", class_noun="mug", images=photos[1:2])
    window = open_window()
    open_project(qtbot, window, "Rex")
    window.resize(1400, 700)  # fits the offscreen screen (restoreGeometry keeps a window on screen)
    window.splitter.setSizes([250, 1050])
    window.tabs.setCurrentWidget(window.insert_panel)
    window.train_state.settings.steps = 123
    window.insert_state.settings.strength = 0.5
    window.insert_state.locate.grow = 3
    scene = tmp_path / "park.png"
    Image.fromarray(np.full((64, 96, 3), 90, np.uint8)).save(scene)
    with qtbot.waitSignal(window.insert_state.scene_ready, timeout=10_000):
        window.insert_state.open_scene(scene)

    open_project(qtbot, window, "Mug")  # Rex's settings are saved on the switch
    window.train_state.settings.steps = 77
    open_project(qtbot, window, "Rex")
    assert window.train_state.settings.steps == 123
    sizes, size = window.splitter.sizes(), window.size()  # the offscreen screen may cap the height
    window.close()

    again = open_window()
    qtbot.waitUntil(lambda: again.projects_state.current is not None and not again.jobs.busy, timeout=10_000)
    assert again.projects_state.current.name == "Rex" and again.browser.selected_slug() == "rex"
    assert again.tabs.currentWidget() is again.insert_panel
    # The offscreen screen is narrower than the window, so Qt fits the restored width to it; the
    # height comes back as it was, and every splitter's state is kept.
    assert again.height() == size.height()
    assert {"mainSplitter"} < set(again.app_settings.get("splitters")) and sizes
    assert again.train_state.settings.steps == 123
    assert again.insert_state.settings.strength == 0.5 and again.insert_state.locate.grow == 3
    assert again.app_settings.get("recent_scenes") == [str(scene.resolve())]
    again.menu_actions.recent.aboutToShow.emit()
    [recent] = again.menu_actions.recent.actions()
    assert recent.text() == "park.png" and recent.isEnabled()
    with qtbot.waitSignal(again.insert_state.scene_ready, timeout=10_000):
        recent.trigger()
    open_project(qtbot, again, "Mug")
    assert again.train_state.settings.steps == 77
    again.close()


def test_settings_files_are_plain_json_in_the_right_places(qtbot, open_window, photos, alchemy_home):
    project = api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    window.train_state.settings.steps = 222
    window.close()
    assert api.load_workspace_settings(project, "train")["settings"]["steps"] == 222
    assert "device" not in api.load_workspace_settings(project, "train")["settings"]
    assert (alchemy_home / "config" / "settings.json").is_file()
    assert api.load_app_settings()["last_project"] == "rex"


def test_spin_boxes_ignore_the_wheel_unless_focused(qtbot):
    outer = QScrollArea()
    page = QWidget()
    column = QVBoxLayout(page)
    spin = QSpinBox()
    spin.setValue(5)
    column.addWidget(spin)
    column.addSpacing(2000)
    outer.setWidget(page)
    outer.resize(200, 200)
    qtbot.addWidget(outer)
    outer.show()
    qtbot.waitExposed(outer)

    def wheel() -> None:
        event = QWheelEvent(QPointF(10, 10), QPointF(spin.mapToGlobal(QPoint(10, 10))), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(spin, event)

    assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus
    wheel()
    assert spin.value() == 5 and outer.verticalScrollBar().value() > 0  # the form scrolled instead
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    wheel()
    assert spin.value() == 4


def test_the_mask_colour_is_remembered_for_every_mask_view(qtbot, open_window, photos):
    from PySide6.QtGui import QColor

    from alchemy_gui.insert.mask_canvas import MaskCanvas
    from alchemy_gui.projects.mask_dialog import MaskDialog

    api.create_project("Rex", class_noun="dog", images=photos[:1])
    window = open_window()
    open_project(qtbot, window, "Rex")
    canvas = window.insert_panel.canvas
    green = QColor(40, 200, 90)
    canvas.set_mask_style(colour=green)
    canvas.colour_chosen.emit(green)  # what the Colour button's dialog does once a colour is picked
    photo = api.open_project("rex").reference_photos()[0].name
    dialog = MaskDialog(window.overview.photos_state, "rex", photo, window)
    assert dialog.canvas.mask_colour == green  # the Photos tab's mask dialog follows
    dialog.reject()
    window.close()
    MaskCanvas.remembered_colour = None  # a restart: a fresh process knows only the settings file
    again = open_window()
    assert again.insert_panel.canvas.mask_colour == green
    again.close()
    MaskCanvas.remembered_colour = None
