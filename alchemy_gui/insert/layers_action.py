"""Results strip → *Save as layers* / *Open as layers in editor*: the engine writes the .ora, .psd
and subject PNG beside the result (a disk job); the editor is the one chosen in Preferences
(``editor``: a program), else the system's default application for .ora files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

from alchemy_engine import api
from alchemy_gui.common.job_list import Job, JobFailure, JobKind, deliver

if TYPE_CHECKING:  # the panel imports this module (through panel_actions)
    from alchemy_gui.insert.panel import InsertPanel

EDITOR_SETTING = "editor"


def _layers_job(path: Path, progress, cancel) -> tuple[list[Path], str]:
    return api.export_output_layers(path), str(api.load_app_settings().get(EDITOR_SETTING) or "")


def open_in_editor(file: Path, editor: str) -> bool:
    """Start ``editor`` on ``file`` (detached), or the system's choice when no editor is set."""
    if editor:
        return bool(QProcess.startDetached(editor, [str(file)]))
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(file)))


def save_layers(panel: InsertPanel, path: Path, open_editor: bool = False) -> Job:
    state = panel.insert_state

    def done(outcome: tuple[list[Path], str]) -> None:
        written, editor = outcome
        state.set_message("Saved layers: " + ", ".join(p.name for p in written))
        if open_editor and not open_in_editor(written[0], editor):
            state.set_message(f"Saved {written[0].name}, but {editor or 'the system'} could not open it; "
                              "choose the editor in Preferences")

    def failed(failure: JobFailure) -> None:
        state.set_message(failure.message)

    job = panel.jobs.submit(_layers_job, path, "Save layers", kind=JobKind.DISK, project=state.project)
    deliver(job, state, done, failed)
    return job
