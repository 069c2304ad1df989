"""Help → Keyboard shortcuts and Help → About (versions come from a job: torch never loads here)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.job_list import JobFailure, JobKind, JobList
from alchemy_gui.shell.shortcuts import SHORTCUTS


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(SHORTCUTS), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "What it does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, entry in enumerate(SHORTCUTS):  # the table the key bindings are made from
            for column, text in enumerate((entry.where, entry.text, entry.what)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        # wide enough for the longest description, so none is cut off with "…"
        content = sum(self.table.sizeHintForColumn(column) for column in range(3))
        self.resize(max(620, content + 60), 460)


def _info_job(request: None, progress, cancel) -> dict[str, str]:
    return api.system_info()


class AboutDialog(QDialog):
    """The app's, Python's and the ML packages' versions and the device, filled in by a job."""

    def __init__(self, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Image Alchemy")
        self.setMinimumWidth(420)
        title = QLabel("<b>Image Alchemy</b><br>Teach SDXL a subject from a few photos, then put it "
                       "into any scene. Everything runs on this computer.")
        title.setWordWrap(True)
        self.form = QFormLayout()
        self.pending = QLabel("Looking up versions and the device…")
        self.pending.setObjectName("hint")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.pending)
        layout.addLayout(self.form)
        layout.addWidget(buttons)
        self.info: dict[str, str] = {}
        worker = jobs.submit(_info_job, None, "about", kind=JobKind.INFO)
        worker.succeeded.connect(self.show_info)
        worker.failed.connect(lambda failure: self._failed(failure))

    def show_info(self, info: dict[str, str]) -> None:
        self.info = info
        self.pending.hide()
        for key, value in info.items():
            label = QLabel(value)
            label.setWordWrap(True)  # a long device or folder name wraps instead of being cut off
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(f"{key}:", label)

    def _failed(self, failure: JobFailure) -> None:
        self.pending.setText(f"Could not look up the versions: {failure.message}")


__all__ = ["AboutDialog", "ShortcutsDialog"]
