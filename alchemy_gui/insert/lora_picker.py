"""*Add LoRA file…*: the SDXL LoRAs the model folders hold, grouped by folder, or any file by Browse….

The list comes from the model-folder scan (a job: header reads only, cached), so a ComfyUI or
A1111 LoRA collection is one click away; LoRAs made for other models (SD 1.5, FLUX …) are left
out and counted, since insertion cannot use them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.job_list import Job, JobFailure, JobKind, JobList, deliver
from alchemy_gui.insert.form import LORA_FILTER

FITS = ("sdxl",)  # lora_base values insertion can use


class LoraPickerDialog(QDialog):
    chosen = Signal(str)  # the path of the LoRA file picked

    def __init__(self, jobs: JobList, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["LoRA", "Size"])
        self.tree.setColumnWidth(0, 380)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.status = QLabel("Looking in the model folders…")
        self.status.setWordWrap(True)
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose a LoRA .safetensors file anywhere on this computer")
        browse.clicked.connect(self.browse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(browse, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.tree.currentItemChanged.connect(self._selection_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.buttons)
        self.resize(560, 420)
        self.worker: Job = jobs.submit(api.scan_models, api.ScanRequest(), "Scan model folders (LoRAs)",
                                       kind=JobKind.MODELS)
        deliver(self.worker, self, self.show_scan, self._show_failure)

    def show_scan(self, result) -> None:
        loras = result.of_use("lora")
        fitting = [m for m in loras if m.lora_base in FITS]
        self.tree.clear()
        for folder in result.folders:
            inside = [m for m in fitting if m.folder == folder]
            if not inside:
                continue
            top = QTreeWidgetItem([folder, ""])
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.tree.addTopLevelItem(top)
            for model in inside:
                child = QTreeWidgetItem([model.name, f"{model.size_bytes / 1e6:.0f} MB"])
                child.setData(0, Qt.ItemDataRole.UserRole, model.path)
                child.setToolTip(0, f"{model.path}\n{model.description}")
                top.addChild(child)
            top.setExpanded(True)
        others = len(loras) - len(fitting)
        if not result.folders:
            self.status.setText("No model folders yet (Preferences → Models adds them); use Browse….")
        else:
            self.status.setText(f"{len(fitting)} SDXL LoRA(s) in the model folders"
                                + (f"; {others} made for other models are not listed" if others else ""))

    def current_path(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def _selection_changed(self, *_: object) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.current_path() is not None)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, Qt.ItemDataRole.UserRole):
            self.accept()

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.windowTitle(), str(Path.home()), LORA_FILTER)
        if path:
            self.chosen.emit(path)
            super().accept()

    def accept(self) -> None:
        path = self.current_path()
        if path:
            self.chosen.emit(path)
            super().accept()

    def _show_failure(self, failure: JobFailure) -> None:
        self.status.setText(f"{failure.message} — use Browse….")
