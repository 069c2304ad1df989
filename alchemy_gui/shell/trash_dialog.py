"""File → Restore from trash…: pick a deleted project; the window restores it as a job."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common.job_list import JobList


def _list_trash_job(request: None, progress, cancel) -> list:
    return api.list_trash()


class RestoreDialog(QDialog):
    """Lists the trash (a job); ``chosen()`` is the selected :class:`api.TrashedProject`."""

    def __init__(self, jobs: JobList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Restore a deleted project")
        self.hint = QLabel("Looking in the trash…")
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.list = QListWidget()
        self.list.setToolTip("Deleted projects, most recent first; each comes back with its photos, runs and outputs")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.restore_button = self.buttons.addButton("Restore", QDialogButtonBox.ButtonRole.AcceptRole)
        self.restore_button.setToolTip("Move the selected project back to the project list")
        self.restore_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.itemSelectionChanged.connect(
            lambda: self.restore_button.setEnabled(self.chosen() is not None))
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.buttons)
        self.resize(520, 360)
        worker = jobs.submit(_list_trash_job, None, "list trash")
        worker.succeeded.connect(self.show_entries)
        worker.failed.connect(lambda failure: self.hint.setText(failure.message))

    def show_entries(self, entries: list) -> None:
        self.list.clear()
        for entry in entries:
            item = QListWidgetItem(f"{entry.name}   ·   deleted {entry.deleted or 'at an unknown time'}")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(str(entry.path))
            self.list.addItem(item)
        self.hint.setText(f"{len(entries)} deleted project(s) in {api.trash_dir()}." if entries else
                          "The trash is empty: deleted projects appear here.")
        if entries:
            self.list.setCurrentRow(0)

    def chosen(self):
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


__all__ = ["RestoreDialog"]
