"""Show a failed job: the readable message up front, the traceback folded under 'Details'."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from alchemy_gui.common.workers import JobFailure


def show_failure(parent: QWidget | None, title: str, failure: JobFailure) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information if failure.cancelled else QMessageBox.Icon.Warning,
                      title, failure.message, QMessageBox.StandardButton.Ok, parent)
    if failure.detail:
        box.setDetailedText(failure.detail)
    box.open()  # non-blocking: the event loop keeps running
    return box
