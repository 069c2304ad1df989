"""One previous run in detail: its loss curve (loss.csv) beside its fidelity scores per step
(scores.csv, best step marked), its kept checkpoints (each one's LoRA can be exported), preview
images (samples/) and the settings it was trained with. Binds to
:class:`~alchemy_gui.train.runs_state.PickedRun`."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.binding import bind_to
from alchemy_gui.train.loss_chart import LossChart
from alchemy_gui.train.runs_state import SAMPLE_THUMBNAIL, PickedRun, RunDetails
from alchemy_gui.train.scores_chart import ScoresChart

HIDDEN_SETTINGS = ("project", "resume_run")


def _setting_label(name: str) -> str:
    try:
        return api.field_info(api.TrainRequest, name).label or name
    except KeyError:  # a field of an older version of the request
        return name


class RunDetailsView(QWidget):
    def __init__(self, picked_run: PickedRun, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a run to see its loss curve, previews and settings.")
        self.title.setObjectName("hint")
        self.title.setWordWrap(True)
        self.picked_run = picked_run
        self.chart = LossChart()
        self.scores_chart = ScoresChart()
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("The run's kept checkpoints (Keep last checkpoints); the best scored "
                                         "step is marked")
        self.export_button = QPushButton("Export LoRA")
        self.export_button.setToolTip("Write runs/<id>/exports/step-N/lora.safetensors and lora_kohya.safetensors "
                                      "from the chosen checkpoint")
        self.export_button.clicked.connect(self.export_selected)
        self.checkpoints_empty = QLabel("No kept checkpoints (Save checkpoint every was 0, or they were removed).")
        self.checkpoints_empty.setObjectName("hint")
        self.checkpoints_empty.setWordWrap(True)
        checkpoint_row = QHBoxLayout()
        checkpoint_row.addWidget(QLabel("Checkpoint:"))
        checkpoint_row.addWidget(self.checkpoint_combo, 1)
        checkpoint_row.addWidget(self.export_button)
        curves_page = QWidget()
        curves_box = QVBoxLayout(curves_page)
        curves_box.setContentsMargins(0, 0, 0, 0)
        curves_box.addWidget(self.chart, 1)
        curves_box.addWidget(self.scores_chart, 1)
        curves_box.addLayout(checkpoint_row)
        curves_box.addWidget(self.checkpoints_empty)
        self.samples = QListWidget()
        self.samples.setViewMode(QListView.ViewMode.IconMode)
        self.samples.setIconSize(QSize(SAMPLE_THUMBNAIL, SAMPLE_THUMBNAIL))
        self.samples.setResizeMode(QListView.ResizeMode.Adjust)
        self.samples.setMovement(QListView.Movement.Static)
        self.samples_empty = QLabel("No preview images: this run had “Sample every” at 0.")
        self.samples_empty.setObjectName("hint")
        self.samples_empty.setWordWrap(True)
        samples_page = QWidget()
        samples_box = QVBoxLayout(samples_page)
        samples_box.setContentsMargins(0, 0, 0, 0)
        samples_box.addWidget(self.samples, 1)
        samples_box.addWidget(self.samples_empty)
        self.settings = QTreeWidget()
        self.settings.setColumnCount(2)
        self.settings.setHeaderLabels(["Setting", "Value"])
        self.settings.setRootIsDecorated(False)
        self.settings.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tabs = QTabWidget()
        self.tabs.addTab(curves_page, "Loss and scores")
        self.tabs.addTab(samples_page, "Previews")
        self.tabs.addTab(self.settings, "Settings")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.tabs, 1)
        self._show_checkpoints_row(False)
        self.bindings = [bind_to(picked_run, "details", self._show)]
        picked_run.selected_changed.connect(self._show_selected)

    def _show_selected(self, run) -> None:
        self.tabs.setEnabled(run is not None)
        self.title.setText(f"{run.display_name}: reading…" if run is not None else
                           "Click a run to see its loss curve, previews and settings.")

    def _show_checkpoints_row(self, any_kept: bool) -> None:
        self.checkpoint_combo.setEnabled(any_kept)
        self.export_button.setEnabled(any_kept)
        self.checkpoints_empty.setVisible(not any_kept)

    def export_selected(self) -> None:
        details, step = self.picked_run.details, self.checkpoint_combo.currentData()
        if details is not None and step is not None:
            self.picked_run.export_step(details.run, int(step))

    def _show(self, details: RunDetails | None) -> None:
        self.samples.clear()
        self.settings.clear()
        self.checkpoint_combo.clear()
        if details is None:
            self.chart.set_points([], 0)
            self.scores_chart.set_scores([], None)
            self.samples_empty.setVisible(True)
            self._show_checkpoints_row(False)
            return
        run = details.run
        self.tabs.setEnabled(True)
        self.title.setText(run.label + (f"\n{details.problem}" if details.problem else ""))
        self.chart.set_points(list(details.curve), run.steps_total or 0)
        self.scores_chart.set_scores(list(details.scores), details.best_step, run.steps_total or 0)
        self.scores_chart.setVisible(bool(details.scores))
        for step in details.checkpoints:
            self.checkpoint_combo.addItem(f"step {step}" + ("  ★ best score" if step == details.best_step else ""), step)
        if details.best_step in details.checkpoints:
            self.checkpoint_combo.setCurrentIndex(details.checkpoints.index(details.best_step))
        else:
            self.checkpoint_combo.setCurrentIndex(self.checkpoint_combo.count() - 1)
        self._show_checkpoints_row(bool(details.checkpoints))
        for name, image in details.samples:
            item = QListWidgetItem(name.removeprefix("step-").removesuffix(".png").lstrip("0") or "0")
            item.setToolTip(f"{name} — preview at step {item.text()}")
            if not image.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(image)))
            self.samples.addItem(item)
        self.samples_empty.setVisible(not details.samples)
        for name, value in (details.settings or {}).items():
            if name not in HIDDEN_SETTINGS:
                shown = "default" if value is None else str(value)
                row = QTreeWidgetItem([_setting_label(name), shown])
                row.setToolTip(0, name)
                self.settings.addTopLevelItem(row)
