"""Jobs that belong to the open project: one test of "the same project", and a guard that drops
the results of a job whose project has been closed since it started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from alchemy_engine.jobs import Progress
from alchemy_gui.common.workers import JobFailure


def same_project(a: Any, b: Any) -> bool:
    """One project on disk (Project objects are replaced when the project is re-read)."""
    return a is b or (a is not None and b is not None and Path(a.root) == Path(b.root))


class ProjectJobGuard(QObject):
    """Routes one job's signals to a workspace view-model (``project``, ``progress``, ``_fail``,
    ``_job_done``), dropping results meant for a project since closed."""

    def __init__(self, state: Any, project, on_success, long: bool) -> None:
        super().__init__(state)
        self.state, self.project, self.on_success, self.long = state, project, on_success, long

    def succeeded(self, result) -> None:
        self._done()
        if same_project(self.state.project, self.project):
            self.on_success(result)

    def failed(self, failure: JobFailure) -> None:
        self._done()
        if same_project(self.state.project, self.project):
            self.state._fail(failure)

    def progress(self, event: Progress) -> None:
        if self.long and same_project(self.state.project, self.project):
            self.state.progress = event

    def _done(self) -> None:
        self.state._job_done(self.long)
        self.deleteLater()
