"""The window's menus: File (projects, recent scenes, trash, preferences), Run (start / stop),
Presets (Train and Insert) and Help (shortcuts, about). Actions call one window method each."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, TypeVar

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMenu

from alchemy_gui.shell.help_dialogs import AboutDialog, ShortcutsDialog
from alchemy_gui.shell.preferences import PreferencesDialog
from alchemy_gui.shell.presets_menu import PresetMenu
from alchemy_gui.shell.shortcuts import shortcut as shortcut_keys

if TYPE_CHECKING:
    from alchemy_gui.main_window import MainWindow

DialogT = TypeVar("DialogT", bound=QDialog)


def _action(window: MainWindow, text: str, slot, shortcut: str | None = None, tip: str = "") -> QAction:
    """``shortcut``: its name in :data:`~alchemy_gui.shell.shortcuts.SHORTCUTS`."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcuts(shortcut_keys(shortcut).sequences())
    action.setToolTip(tip or text.replace("&", "").rstrip("…"))
    action.setStatusTip(action.toolTip())
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


class MenuActions(SimpleNamespace):
    """The window's actions and submenus, by name (tests trigger them as a user would)."""

    new: QAction
    delete: QAction
    restore: QAction
    preferences: QAction
    quit: QAction
    recent: QMenu
    start: QAction
    stop: QAction
    train_presets: PresetMenu
    insert_presets: PresetMenu
    shortcuts: QAction
    about: QAction


def build_menus(window: MainWindow) -> MenuActions:
    bar = window.menuBar()
    a = MenuActions()
    a.new = _action(window, "&New project…", window.new_project, "new_project",
                    "Create a project from 3–5 photos of a subject")
    a.delete = _action(window, "&Delete project…", window.delete_current_project, None,
                       "Move the open project to the trash (File → Restore from trash… brings it back)")
    a.restore = _action(window, "&Restore from trash…", window.restore_from_trash, None,
                        "Bring back a deleted project")
    a.preferences = _action(window, "&Preferences…", lambda: open_preferences(window), "preferences",
                            "Model folders, device, precision, data folder, demo models")
    a.quit = _action(window, "&Quit", window.close, "quit",
                     "Quit (asks first while a job runs)")
    file_menu = bar.addMenu("&File")
    file_menu.setToolTipsVisible(True)
    for action in (a.new, a.delete, a.restore):
        file_menu.addAction(action)
    a.recent = file_menu.addMenu("Recent &scenes")
    a.recent.setToolTipsVisible(True)
    a.recent.aboutToShow.connect(lambda: _fill_recent(window))
    file_menu.addSeparator()
    file_menu.addAction(a.preferences)
    file_menu.addSeparator()
    file_menu.addAction(a.quit)
    window.projects_state.current_changed.connect(lambda project: a.delete.setEnabled(project is not None))
    a.delete.setEnabled(False)

    a.start = _action(window, "&Start (train / insert)", window.start_current,
                      "start",
                      "Start training on the Train tab, insert on the Insert tab")
    a.stop = _action(window, "S&top the running job", window.guard.cancel, "stop",
                     "Stop the running job; training saves a checkpoint first")
    a.stop.setEnabled(False)  # only while a job runs, so Esc stays free for dialogs and the canvas
    window.jobs.job_changed.connect(lambda _job: a.stop.setEnabled(bool(window.guard.running_jobs())))
    window.jobs.busy_changed.connect(lambda _busy: a.stop.setEnabled(bool(window.guard.running_jobs())))
    run_menu = bar.addMenu("&Run")
    run_menu.addAction(a.start)
    run_menu.addAction(a.stop)

    presets = bar.addMenu("&Presets")
    report = lambda text: window.statusBar().showMessage(text, 10000)  # noqa: E731
    a.train_presets = PresetMenu("&Training", window.train_state.presets, window, report)
    a.insert_presets = PresetMenu("&Insertion", window.insert_state.presets, window, report)
    presets.addMenu(a.train_presets)
    presets.addMenu(a.insert_presets)

    a.shortcuts = _action(window, "&Keyboard shortcuts", lambda: _open(window, ShortcutsDialog(window)),
                          "shortcuts")
    a.about = _action(window, "&About Image Alchemy", lambda: _open(window, AboutDialog(window.jobs, window)),
                      None, "Versions of the app, torch and diffusers; the device models run on")
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a.shortcuts)
    help_menu.addAction(a.about)
    return a


def _open(window: MainWindow, dialog: DialogT) -> DialogT:
    window.dialog = dialog  # tests and screenshots find the last one here
    dialog.open()
    return dialog


def open_preferences(window: MainWindow) -> PreferencesDialog:
    dialog = PreferencesDialog(window.app_settings, window.jobs, window)
    dialog.accepted.connect(window.apply_preferences)
    dialog.models_page.models_changed.connect(window.train_state.refresh_models)  # pickers list what was found
    dialog.models_page.models_changed.connect(window.insert_state.refresh_choices)
    return _open(window, dialog)


def _fill_recent(window: MainWindow) -> None:
    menu = window.menu_actions.recent
    menu.clear()
    recent = window.app_settings.get("recent_scenes", [])
    for path in recent:
        action = menu.addAction(Path(path).name)
        action.setToolTip(path)
        action.setEnabled(Path(path).is_file())
        action.triggered.connect(lambda _=False, p=path: window.open_recent_scene(p))
    if not recent:
        menu.addAction("No scenes yet").setEnabled(False)


__all__ = ["build_menus", "open_preferences"]
