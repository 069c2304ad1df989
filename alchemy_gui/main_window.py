"""The main window: projects on the left; the open project's Photos, Train and Insert areas.

One source says which project is open: ``ProjectsState.current``. The browser's selection, the
Photos overview (:meth:`MainWindow.show_project`) and each workspace's ``set_project`` (the Train
and Insert panels connect it themselves) follow it, and nothing else opens a project. Every job of
the window is a record of one :class:`JobList` (lanes: disk work never waits behind model work);
the status bar's Jobs button and popup show it, and the guard (:mod:`alchemy_gui.shell.job_guard`)
reads it: quitting or deleting while jobs run asks, stops them, then acts. Layout, the last project and tab,
recent scenes and preferences are remembered in :class:`AppSettings`; each project's Train and
Insert settings in the project folder (:class:`WorkspaceSettingsKeeper`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QTimer
from PySide6.QtGui import QCloseEvent, QColor, QGuiApplication
from PySide6.QtWidgets import QDialog, QMainWindow, QMessageBox, QSplitter, QTabWidget

from alchemy_engine import api
from alchemy_gui.app import DEMO_MODELS_KEY
from alchemy_gui.common.app_settings import AppSettings, Extra, WorkspaceSettingsKeeper
from alchemy_gui.common.failure_dialog import show_failure
from alchemy_gui.common.job_list import JobFailure, JobKind, JobList
from alchemy_gui.common.presets_model import PresetChoice
from alchemy_gui.insert.mask_canvas import MaskCanvas
from alchemy_gui.insert.panel import InsertPanel
from alchemy_gui.projects.browser import ProjectBrowser
from alchemy_gui.projects.new_project_dialog import NewProjectDialog
from alchemy_gui.projects.overview import ProjectOverview
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.shell.job_guard import JobGuard
from alchemy_gui.shell.jobs_popup import JobsButton
from alchemy_gui.shell.menus import build_menus, open_preferences
from alchemy_gui.shell.preferences import find_models_job
from alchemy_gui.shell.trash_dialog import RestoreDialog
from alchemy_gui.shell.welcome import WelcomeDialog
from alchemy_gui.train.panel import TrainPanel

TABS = ("Photos", "Train", "Insert")


def _preset_extra(choice: PresetChoice) -> Extra:
    """The preset chosen in a workspace, remembered per project."""
    return choice.chosen_changed, lambda: choice.chosen, choice.restore


class MainWindow(QMainWindow):
    def __init__(self, *, welcome: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("Image Alchemy")
        self.resize(*_first_size())
        self.app_settings = AppSettings(self)
        self.dialog: QDialog | None = None  # the last one the menus opened (tests and screenshots)
        self.jobs = JobList(self)
        self.projects_state = ProjectsState(self.jobs, self)

        self.browser = ProjectBrowser(self.projects_state)
        self.overview = ProjectOverview(self.jobs)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.overview, TABS[0])
        self.train_panel = TrainPanel(self.projects_state, self.jobs)
        self.tabs.addTab(self.train_panel, TABS[1])
        self.insert_panel = InsertPanel(self.projects_state, self.jobs)
        self.tabs.addTab(self.insert_panel, TABS[2])
        self.tabs.setTabToolTip(0, "The project's reference photos")
        self.tabs.setTabToolTip(1, "Teach SDXL the subject (a LoRA)")
        self.tabs.setTabToolTip(2, "Put the subject into a scene")
        self.splitter = QSplitter()
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 900])
        self.setCentralWidget(self.splitter)
        self.statusBar().showMessage("Ready")
        self.jobs_button = JobsButton(self.jobs, self)
        self.statusBar().addPermanentWidget(self.jobs_button)

        self.train_state = self.train_panel.train_state
        self.insert_state = self.insert_panel.insert_state
        self.guard = JobGuard(self.jobs, self)
        self.train_settings = WorkspaceSettingsKeeper(
            self.train_state, "train", {"settings": self.train_state.settings},
            extras={"preset": _preset_extra(self.train_state.presets)})
        insert = self.insert_state
        self.insert_settings = WorkspaceSettingsKeeper(
            insert, "insert", {"settings": insert.settings, "locate": insert.locate, "brush": insert.brush},
            extras={"preset": _preset_extra(insert.presets),
                    "lora_files": (insert.lora_files_changed, insert.lora_file_entries, insert.restore_lora_files)})
        self.menu_actions = build_menus(self)  # not "actions": QWidget.actions() lists them
        self._restore_project = self.app_settings.get("last_project")

        self.browser.new_requested.connect(self.new_project)
        self.browser.delete_requested.connect(self.delete_current_project)
        self.projects_state.current_changed.connect(self.show_project)
        self.projects_state.projects_changed.connect(self._reopen_last_project)
        self.projects_state.failed.connect(self._show_failure)
        self.projects_state.notice.connect(self._show_notice)
        self.overview.add_photos_requested.connect(self.projects_state.add_photos)
        self.overview.reload_requested.connect(self.projects_state.open)  # a photo or mask changed
        # The panel shows its own failures inline; the status bar repeats the headline.
        self.train_state.failed.connect(lambda title, failure: self.statusBar().showMessage(failure.message, 10000))
        self.insert_state.job_failed.connect(lambda failure: self.statusBar().showMessage(failure.message, 10000))
        # A finished run brings a new LoRA to choose from in the Insert tab.
        self.train_state.runs_changed.connect(lambda runs: self.insert_state.refresh_choices())
        self.train_state.checkpoint_ready.connect(self.insert_state.offer_checkpoint)
        self.insert_state.scene_ready.connect(lambda scene: self.app_settings.add_recent_scene(scene.path))
        self.jobs.busy_changed.connect(self._on_busy)
        self.guard.stopping_changed.connect(self._on_stopping)
        self.tabs.currentChanged.connect(lambda index: self.app_settings.set("tab", TABS[index]))
        self.apply_preferences()
        self._remember_mask_colour()
        self._restore_layout()
        self.projects_state.refresh()
        if welcome and not api.demo_mode() and not self.app_settings.get("welcome_dismissed"):
            QTimer.singleShot(0, self._check_first_run)

    # --- the open project ---------------------------------------------------------------------
    def show_project(self, project) -> None:
        """``ProjectsState.current`` changed: the overview and the title follow (the workspaces
        follow it through their own ``set_project``)."""
        self.overview.show_project(project)
        self.setWindowTitle(f"{project.name} — Image Alchemy" if project is not None else "Image Alchemy")
        if project is not None or self._restore_project is None:
            self.app_settings.set("last_project", project.slug if project is not None else None)

    def _reopen_last_project(self, summaries: list) -> None:
        slug, self._restore_project = self._restore_project, None
        if slug and self.projects_state.current is None and any(s.slug == slug and not s.error for s in summaries):
            self.browser.select_slug(slug)
            self.projects_state.open(slug)

    def new_project(self) -> NewProjectDialog:
        dialog = NewProjectDialog(self)
        dialog.accepted.connect(lambda: self.projects_state.create(dialog.request()))
        dialog.open()
        return dialog

    def delete_current_project(self) -> None:
        project = self.projects_state.current
        if project is None:
            return
        running = self.guard.running_job()
        text = (f"Delete the project “{project.name}”?\n\nIt moves to the trash with its photos, trained "
                "LoRAs and outputs; File → Restore from trash… brings it back.")
        if running:
            text = self.guard.question("delete the project", " it") + "\n\n" + text
        if not self.confirm("Delete project", text):
            return
        slug = project.slug
        if running:
            self.guard.stop_then(lambda: self.projects_state.delete(slug))
        else:
            self.projects_state.delete(slug)

    def restore_from_trash(self) -> RestoreDialog:
        dialog = RestoreDialog(self.jobs, self)
        dialog.accepted.connect(lambda: self.restore_project(dialog.chosen()))
        dialog.open()
        return dialog

    def restore_project(self, entry) -> None:
        if entry is None:
            return
        worker = self.jobs.submit(lambda e, progress, cancel: api.open_project(api.restore_project(e)),
                                  entry, "restore project")
        worker.succeeded.connect(self._on_restored)
        worker.failed.connect(lambda failure: self._show_failure("Could not restore the project", failure))

    def _on_restored(self, project) -> None:
        self.projects_state.refresh()
        self.projects_state.current = project
        self.statusBar().showMessage(f"Restored “{project.name}”.", 10000)

    # --- actions of the current tab -------------------------------------------------------------
    def start_current(self) -> None:
        """Ctrl+Enter: the current tab's main action."""
        page = self.tabs.currentWidget()
        if page is self.train_panel:
            self.train_state.start()
        elif page is self.insert_panel and not self.insert_state.busy:
            self.insert_state.insert()

    def open_recent_scene(self, path: str) -> None:
        if self.projects_state.current is None:
            self.statusBar().showMessage("Open a project first: scenes open in its Insert tab.", 10000)
            return
        self.tabs.setCurrentWidget(self.insert_panel)
        self.insert_state.open_scene(Path(path))

    def _remember_mask_colour(self) -> None:
        """The mask colour chosen on the Insert tab, for every mask view, across restarts."""
        canvas = self.insert_panel.canvas
        saved = self.app_settings.get("mask_colour")
        if saved and QColor(saved).isValid():
            MaskCanvas.remembered_colour = QColor(saved)
            canvas.set_mask_style(colour=QColor(saved))

        def chosen(colour: QColor) -> None:
            MaskCanvas.remembered_colour = QColor(colour)
            self.app_settings.set("mask_colour", colour.name())
        canvas.colour_chosen.connect(chosen)

    def apply_preferences(self) -> None:
        """Device and precision go to the Train settings (the project never overrides them)."""
        self.train_state.settings.device = self.app_settings.get("device") or None
        self.train_state.settings.mixed_precision = self.app_settings.get("precision") or "auto"

    # --- first run --------------------------------------------------------------------------------
    def _check_first_run(self) -> None:
        worker = self.jobs.submit(find_models_job, None, "first-run check", kind=JobKind.INFO)
        worker.succeeded.connect(self._maybe_welcome)

    def _maybe_welcome(self, inventory: dict) -> WelcomeDialog | None:
        if any(e["kind"] not in ("demo", "unusable") for e in inventory["sdxl"]) or not self.isVisible():
            return None
        self.welcome = WelcomeDialog(inventory["folders"]["sdxl"], self)
        self.welcome.use_demo.connect(self.use_demo_models)
        self.welcome.find_models.connect(self.find_models)
        self.welcome.finished.connect(self._welcome_finished)
        self.welcome.open()
        return self.welcome

    def _welcome_finished(self, _result: int) -> None:
        if self.welcome.dont_show.isChecked():
            self.app_settings.set("welcome_dismissed", True)

    def find_models(self) -> None:
        """First run: Preferences → Models, looking for other apps' model folders at once."""
        dialog = open_preferences(self)
        dialog.tabs.setCurrentWidget(dialog.models_page)
        dialog.models_page.detect()

    def use_demo_models(self) -> None:
        api.set_demo_mode(True)
        self.app_settings.set(DEMO_MODELS_KEY, True)
        self.train_state.refresh_models()
        self.insert_state.refresh_choices()
        self.statusBar().showMessage("Demo models on: random weights, noise images — for trying the app.", 10000)

    # --- messages -----------------------------------------------------------------------------------
    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _show_failure(self, title: str, failure: JobFailure) -> None:
        self.statusBar().showMessage(failure.message, 10000)
        show_failure(self, title, failure)

    def _show_notice(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Image Alchemy", text, QMessageBox.StandardButton.Ok, self)
        box.open()

    def _on_busy(self, busy: bool) -> None:
        bar = self.statusBar()
        if self.guard.stopping:
            return
        if busy and bar.currentMessage() in ("", "Ready"):
            bar.showMessage("Working…")
        elif not busy and bar.currentMessage() == "Working…":  # a failure's message stays up
            bar.showMessage("Ready")

    def _on_stopping(self, stopping: bool) -> None:
        if stopping:
            self.statusBar().showMessage("Stopping the running job (saving a checkpoint)…")

    # --- layout and closing ---------------------------------------------------------------------
    def _splitters(self) -> dict[str, QSplitter]:
        found = self.findChildren(QSplitter)
        return {s.objectName() or f"splitter{i}": s for i, s in enumerate(found)}

    def _restore_layout(self) -> None:
        geometry = self.app_settings.get("geometry")
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        for name, state in (self.app_settings.get("splitters") or {}).items():
            splitter = self._splitters().get(name)
            if splitter is not None:
                splitter.restoreState(QByteArray.fromBase64(state.encode()))
        if self.app_settings.get("tab") in TABS:
            self.tabs.setCurrentIndex(TABS.index(self.app_settings.get("tab")))

    def save_layout(self) -> None:
        self.app_settings.set("geometry", bytes(self.saveGeometry().toBase64().data()).decode())
        self.app_settings.set("splitters", {name: bytes(s.saveState().toBase64().data()).decode()
                                            for name, s in self._splitters().items()})
        self.train_settings.save()
        self.insert_settings.save()
        self.app_settings.flush()

    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.guard.running_job()
        if self.guard.stopping or running:
            event.ignore()  # the job winds down on its thread; the window keeps painting meanwhile
            if not self.guard.stopping and self.confirm("Quit", self.guard.question("quit")):
                self.guard.stop_then(self.close)
            return
        self.save_layout()
        self.jobs.cancel_all()
        self.jobs.wait_idle()
        self.overview.thumbnails.wait()
        super().closeEvent(event)


def _first_size() -> tuple[int, int]:
    """1200×780, or less on a short screen (a 768-pixel laptop less its taskbar and title bar)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1200, 780
    available = screen.availableGeometry()
    return min(1200, available.width()), min(780, available.height() - TITLE_BAR)


TITLE_BAR = 32  # the window manager's, outside the size we set

