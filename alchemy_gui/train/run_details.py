"""One previous run in detail: its loss curve (loss.csv), preview images (samples/) and the settings
it was trained with. Binds to :class:`~alchemy_gui.train.history_state.RunHistory`."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.binding import bind_to
from alchemy_gui.train.history_state import SAMPLE_THUMBNAIL, RunDetails, RunHistory
from alchemy_gui.train.loss_chart import LossChart

HIDDEN_SETTINGS = ("project", "resume_run")


def _setting_label(name: str) -> str:
    try:
        return api.field_info(api.TrainRequest, name).label or name
    except KeyError:  # a field of an older version of the request
        return name


class RunDetailsView(QWidget):
    def __init__(self, history: RunHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a run to see its loss curve, previews and settings.")
        self.title.setObjectName("hint")
        self.title.setWordWrap(True)
        self.chart = LossChart()
        self.samples = QListWidget()
        self.samples.setViewMode(QListView.ViewMode.IconMode)
        self.samples.setIconSize(QSize(SAMPLE_THUMBNAIL, SAMPLE_THUMBNAIL))
        self.samples.setResizeMode(QListView.ResizeMode.Adjust)
        self.samples.setMovement(QListView.Movement.Static)
        self.samples_empty = QLabel("No preview images: this run had “Sample every” at 0.")
        self.samples_empty.setObjectName("hint")
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
        self.tabs.addTab(self.chart, "Loss curve")
        self.tabs.addTab(samples_page, "Previews")
        self.tabs.addTab(self.settings, "Settings")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.tabs, 1)
        self.bindings = [bind_to(history, "details", self._show)]
        history.selected_changed.connect(self._show_selected)

    def _show_selected(self, run) -> None:
        self.tabs.setEnabled(run is not None)
        self.title.setText(f"{run.display_name}: reading…" if run is not None else
                           "Click a run to see its loss curve, previews and settings.")

    def _show(self, details: RunDetails | None) -> None:
        self.samples.clear()
        self.settings.clear()
        if details is None:
            self.chart.set_points([], 0)
            self.samples_empty.setVisible(True)
            return
        run = details.run
        self.tabs.setEnabled(True)
        self.title.setText(run.label + (f"\n{details.problem}" if details.problem else ""))
        self.chart.set_points(list(details.curve), run.steps_total or 0)
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
                item = QTreeWidgetItem([_setting_label(name), shown])
                item.setToolTip(0, name)
                self.settings.addTopLevelItem(item)
