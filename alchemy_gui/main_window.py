"""The main window: projects on the left; the open project's Photos, Train and Insert areas."""

from __future__ import annotations

from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QTabWidget

from alchemy_gui.common.failure_dialog import show_failure
from alchemy_gui.common.workers import JobFailure, JobRunner
from alchemy_gui.insert.panel import InsertPanel
from alchemy_gui.projects.browser import ProjectBrowser
from alchemy_gui.projects.new_project_dialog import NewProjectDialog
from alchemy_gui.projects.overview import ProjectOverview
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.train.panel import TrainPanel


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Image Alchemy")
        self.resize(1200, 780)
        self.runner = JobRunner(self)
        self.projects_state = ProjectsState(self.runner, self)

        self.browser = ProjectBrowser(self.projects_state)
        self.overview = ProjectOverview(self.runner)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.overview, "Photos")
        self.train_panel = TrainPanel(self.projects_state, self.runner)
        self.tabs.addTab(self.train_panel, "Train")
        self.insert_panel = InsertPanel(self.projects_state, self.runner)
        self.tabs.addTab(self.insert_panel, "Insert")
        splitter = QSplitter()
        splitter.addWidget(self.browser)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 900])
        self.setCentralWidget(splitter)
        self.statusBar().showMessage("Ready")

        new_action = QAction("&New project…", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.new_project)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(new_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        self.browser.new_requested.connect(self.new_project)
        self.projects_state.current_changed.connect(self.overview.show_project)
        self.projects_state.failed.connect(self._show_failure)
        self.projects_state.notice.connect(self._show_notice)
        self.overview.add_photos_requested.connect(self.projects_state.add_photos)
        self.overview.reload_requested.connect(self.projects_state.open)  # a photo or mask changed
        # The panel shows its own failures inline; the status bar repeats the headline.
        self.train_panel.train_state.failed.connect(
            lambda title, failure: self.statusBar().showMessage(failure.message, 10000))
        self.insert_panel.insert_state.job_failed.connect(
            lambda failure: self.statusBar().showMessage(failure.message, 10000))
        # A finished run brings a new LoRA to choose from in the Insert tab.
        self.train_panel.train_state.runs_changed.connect(lambda runs: self.insert_panel.insert_state.refresh_choices())
        self.runner.busy_changed.connect(self._on_busy)
        self.projects_state.refresh()

    def new_project(self) -> NewProjectDialog:
        dialog = NewProjectDialog(self)
        dialog.accepted.connect(lambda: self.projects_state.create(dialog.request()))
        dialog.open()
        return dialog

    def _show_failure(self, title: str, failure: JobFailure) -> None:
        self.statusBar().showMessage(failure.message, 10000)
        show_failure(self, title, failure)

    def _show_notice(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Image Alchemy", text,
                          QMessageBox.StandardButton.Ok, self)
        box.open()

    def _on_busy(self, busy: bool) -> None:
        self.statusBar().showMessage("Working…" if busy else "Ready")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.runner.cancel_all()
        self.runner.wait_idle()
        self.overview.thumbnails.wait()
        super().closeEvent(event)
