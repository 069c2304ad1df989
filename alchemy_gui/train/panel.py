"""The Train area: settings on the left; progress, the outcome and previous runs on the right.

``TrainPanel(state, jobs)`` follows ``state.current_changed`` by itself. All UI state lives in
:class:`~alchemy_gui.train.state.TrainState` (``panel.train_state``); this widget only binds to its
signals and calls one of its methods per click.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_engine.api import RunInfo
from alchemy_gui.common.binding import Binding, bind, bind_to
from alchemy_gui.common.failure_dialog import show_failure
from alchemy_gui.common.field_widgets import check_box
from alchemy_gui.common.job_list import JobFailure, JobList
from alchemy_gui.projects.state import ProjectsState
from alchemy_gui.train.form import TrainForm
from alchemy_gui.train.progress import TrainProgressView
from alchemy_gui.train.run_details import RunDetailsView
from alchemy_gui.train.state import FEW_PHOTOS, Status, TrainState

STATUS_COLOURS = {"info": "#3c4043", "done": "#1e7b34", "stopped": "#9a6700", "error": "#c0392b"}
RUN_COLUMNS = ("Run", "Steps", "Final loss", "Date", "State")


def _label(text: str = "", name: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    if name:
        label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class TrainPanel(QWidget):
    def __init__(self, state: ProjectsState, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.projects_state = state
        self.train_state = TrainState(jobs, self)
        self.form = TrainForm(self.train_state)
        self.progress_view = TrainProgressView(self.train_state)
        self.title = _label("Train a LoRA", "heading", wrap=False)
        self.project_hint = _label("", "hint")
        self.photo_warning = _label()
        self.photo_warning.setStyleSheet(f"color: {STATUS_COLOURS['stopped']};")
        self.content = QSplitter()
        self.content.addWidget(self._settings_column())
        self.content.addWidget(self._outcome_column())
        self.content.setStretchFactor(0, 0)
        self.content.setStretchFactor(1, 1)
        self.content.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.project_hint)
        layout.addWidget(self.photo_warning)
        layout.addWidget(self.content, 1)
        self.bindings: list[Binding] = []
        self._bind()
        self.train_state.set_project(state.current)

    # --- building -------------------------------------------------------------------------------
    def _settings_column(self) -> QWidget:
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Wide enough for the Advanced rows too (hidden widgets do not count in a layout's hint).
        widest = max(self.form.sizeHint().width(), self.form.advanced.sizeHint().width())
        scroll.setMinimumWidth(widest + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.validation = _label()
        self.validation.setStyleSheet(f"color: {STATUS_COLOURS['error']};")
        self.estimate_button = QPushButton("Estimate memory")
        self.estimate_button.setToolTip("How much memory training with these settings needs (loads no weights)")
        self.fit_memory = check_box(api.field_info(api.TrainRequest, "fit_memory"))
        self.estimate_label = _label("", "hint")
        self.defaults_button = QPushButton("Defaults")
        self.defaults_button.setToolTip("Back to the default settings")
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop after the current step and save a checkpoint; Resume continues it")
        self.try_button = QPushButton("Try this checkpoint")
        self.try_button.setToolTip("Export the newest kept checkpoint of the run as a LoRA and offer it on the Insert "
                                   "tab (marked with its step), while training goes on")
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        memory_row = QHBoxLayout()
        memory_row.addWidget(self.estimate_button)
        memory_row.addWidget(self.fit_memory)
        memory_row.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.defaults_button)
        buttons.addStretch(1)
        buttons.addWidget(self.try_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)
        column = QWidget()
        box = QVBoxLayout(column)
        box.setContentsMargins(0, 0, 8, 0)
        box.addWidget(scroll, 1)
        box.addWidget(self.validation)
        box.addLayout(memory_row)
        box.addWidget(self.estimate_label)
        box.addLayout(buttons)
        return column

    def _outcome_column(self) -> QWidget:
        progress_box = QGroupBox("Progress")
        QVBoxLayout(progress_box).addWidget(self.progress_view)
        self.status = _label()
        self.status_resume = QPushButton("Resume")
        self.status_details = QPushButton("Details…")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.status_resume, 0, Qt.AlignmentFlag.AlignTop)
        status_row.addWidget(self.status_details, 0, Qt.AlignmentFlag.AlignTop)
        self.runs = QTreeWidget()
        self.runs.setColumnCount(len(RUN_COLUMNS))
        self.runs.setHeaderLabels(list(RUN_COLUMNS))
        self.runs.setRootIsDecorated(False)
        self.runs.setAlternatingRowColors(True)
        header = self.runs.header()
        header.setStretchLastSection(True)
        for section in range(len(RUN_COLUMNS) - 1):
            header.setSectionResizeMode(section, QHeaderView.ResizeMode.ResizeToContents)
        self.runs_empty = _label("No runs yet. Start training: each run gets its own folder.", "hint")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected stopped run from its newest checkpoint, with its own settings")
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setToolTip("Give the selected run a name of your own (its folder keeps its id)")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Move the selected run to the project's trash folder")
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Show the run's folder (LoRA files, loss.csv, samples)")
        self.run_message = _label("", "hint")
        run_buttons = QGridLayout()  # two by two: the panel must fit a 1366-pixel-wide laptop screen
        for index, button in enumerate((self.resume_button, self.rename_button, self.delete_button, self.open_button)):
            run_buttons.addWidget(button, index // 2, index % 2)
        self.run_details = RunDetailsView(self.train_state.picked_run)
        run_list = QWidget()
        list_box = QVBoxLayout(run_list)
        list_box.setContentsMargins(0, 0, 0, 0)
        list_box.addWidget(self.runs, 1)
        list_box.addWidget(self.runs_empty)
        list_box.addWidget(self.run_message)
        list_box.addLayout(run_buttons)
        runs_split = QSplitter()
        runs_split.addWidget(run_list)
        runs_split.addWidget(self.run_details)
        runs_split.setChildrenCollapsible(False)
        runs_box = QGroupBox("Previous runs")
        QVBoxLayout(runs_box).addWidget(runs_split)
        self.rename_dialog: QInputDialog | None = None
        self.delete_dialog: QMessageBox | None = None
        column = QWidget()
        box = QVBoxLayout(column)
        box.setContentsMargins(8, 0, 0, 0)
        box.addWidget(progress_box, 3)
        box.addLayout(status_row)
        box.addWidget(runs_box, 3)
        # Scrolls on screens shorter than the charts, previews and run list need (768-pixel laptops).
        scroll = QScrollArea()
        scroll.setWidget(column)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(column.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        return scroll

    def _bind(self) -> None:
        """Every binding of the panel in one place (the form binds its own fields)."""
        train, keep = self.train_state, self.bindings.append
        self.projects_state.current_changed.connect(train.set_project)
        keep(bind(train.settings, "fit_memory", self.fit_memory))
        keep(bind_to(train, "project", self._show_project))
        keep(bind_to(train, "error", self._show_error))
        keep(bind_to(train, "running", self._update_buttons))
        keep(bind_to(train, "estimate", self.estimate_label.setText))
        keep(bind_to(train, "status", self._show_status))
        keep(bind_to(train, "runs", self._show_runs))
        keep(bind_to(train.picked_run, "message", self._show_run_message))
        self.estimate_button.clicked.connect(train.estimate_memory)
        self.defaults_button.clicked.connect(train.reset_settings)
        self.start_button.clicked.connect(train.start)
        self.cancel_button.clicked.connect(train.cancel)
        self.try_button.clicked.connect(train.try_checkpoint)
        self.status_resume.clicked.connect(lambda: train.resume(train.status.resumable_run or ""))
        self.status_details.clicked.connect(self._show_details)
        self.resume_button.clicked.connect(self._resume_selected)
        self.open_button.clicked.connect(self._open_selected)
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.runs.itemSelectionChanged.connect(self._on_run_selected)

    # --- showing the state ----------------------------------------------------------------------
    def _show_project(self, project) -> None:
        self.content.setEnabled(project is not None)
        if project is None:
            self.project_hint.setText("Open or create a project on the left to train its subject.")
            self.photo_warning.setVisible(False)
        else:
            self.project_hint.setText(f"{project.name}: teaches SDXL “{project.token} {project.class_noun}”.")
            count = self.train_state.photo_count
            self.photo_warning.setText(
                "This project has no photos yet: add 3–5 on the Photos tab." if count == 0 else
                f"Only {count} photo(s): 3–5 photos from different angles give a more faithful subject.")
            self.photo_warning.setVisible(count < FEW_PHOTOS)
        self._update_buttons()

    def _show_error(self, message: str) -> None:
        self.validation.setText(message)
        self.validation.setVisible(bool(message))
        self._update_buttons()

    def _show_status(self, status: Status) -> None:
        self.status.setText(status.text)
        self.status.setStyleSheet(f"color: {STATUS_COLOURS.get(status.kind, STATUS_COLOURS['info'])};")
        self.status.setVisible(bool(status.text))
        self.status_resume.setVisible(bool(status.resumable_run))
        self.status_details.setVisible(bool(status.detail))
        self._update_buttons()

    def _show_runs(self, runs: tuple[RunInfo, ...]) -> None:
        selected = self.selected_run()
        blocked = self.runs.blockSignals(True)  # a refill is no new choice: TrainState follows the run
        self.runs.clear()
        for run in runs:
            total = f" / {run.steps_total}" if run.steps_total else ""
            loss = f"{run.final_loss:.4f}" if run.final_loss is not None else "—"
            date = run.started.strftime("%Y-%m-%d %H:%M") if run.started else "—"
            item = QTreeWidgetItem([run.display_name, f"{run.steps_done}{total}", loss, date, run.status])
            item.setData(0, Qt.ItemDataRole.UserRole, run)
            item.setToolTip(0, f"{run.label}\n{run.path}")
            self.runs.addTopLevelItem(item)
            if selected is not None and run.run_id == selected.run_id:
                self.runs.setCurrentItem(item)
        self.runs.blockSignals(blocked)
        self.runs.setVisible(bool(runs))
        self.runs_empty.setVisible(not runs)
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        train = self.train_state
        running = train.running
        self.start_button.setEnabled(train.can_start)
        self.cancel_button.setEnabled(running)
        chosen = self.selected_run()
        self.try_button.setEnabled(train.project is not None and (
            running or (chosen is not None and chosen.checkpoint_step is not None)))
        self.estimate_button.setEnabled(train.project is not None and not train.error and not running)
        self.defaults_button.setEnabled(not running)
        self.form.setEnabled(not running)
        self.fit_memory.setEnabled(not running)
        self.status_resume.setEnabled(not running)
        run = self.selected_run()
        self.resume_button.setEnabled(run is not None and run.resumable and not running)
        self.open_button.setEnabled(run is not None)
        self.rename_button.setEnabled(run is not None)
        training_it = run is not None and running and train.active_run_id == run.run_id
        self.delete_button.setEnabled(run is not None and not training_it)
        self.delete_button.setToolTip("Stop the run before deleting it" if training_it else
                                      "Move the selected run to the project's trash folder")

    # --- user actions ---------------------------------------------------------------------------
    def selected_run(self) -> RunInfo | None:
        item = self.runs.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None and item.isSelected() else None

    def _resume_selected(self) -> None:
        run = self.selected_run()
        if run is not None and run.resumable:
            self.train_state.resume(run.run_id)

    def _on_run_selected(self) -> None:
        self.train_state.picked_run.select(self.selected_run())
        self._update_buttons()

    def _show_run_message(self, text: str) -> None:
        self.run_message.setText(text)
        self.run_message.setVisible(bool(text))

    def rename_selected(self) -> QInputDialog | None:
        run = self.selected_run()
        if run is None:
            return None
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename run")
        dialog.setLabelText(f"Name of run {run.run_id} (empty: show its id):")
        dialog.setTextValue(run.name)
        dialog.textValueSelected.connect(lambda name: self.train_state.picked_run.rename(run, name))
        dialog.open()
        self.rename_dialog = dialog
        return dialog

    def delete_selected(self) -> QMessageBox | None:
        run, project = self.selected_run(), self.train_state.project
        if run is None or project is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Delete run",
                          f"Move run “{run.display_name}” ({run.steps_done} steps) to the project's trash?\n"
                          f"It goes to {project.root}/trash/runs/ and can be moved back by hand.",
                          QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Ok).setText("Move to trash")
        box.accepted.connect(lambda: self.train_state.picked_run.delete(project, run))
        box.open()
        self.delete_dialog = box
        return box

    def _open_selected(self) -> None:
        run = self.selected_run()
        if run is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(run.path)))

    def _show_details(self) -> None:
        status = self.train_state.status
        show_failure(self, "Training failed", JobFailure(status.text, status.detail))
