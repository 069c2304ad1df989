"""UI state for the project browser: the project list and the open project.

Widgets bind to its observable properties (:mod:`alchemy_gui.common.binding`); they call one
method per user action. Disk work (listing,
creating, importing photos, deleting) runs as light jobs of the window's :class:`JobList`: it never
waits behind a training run.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from alchemy_engine import api as projects
from alchemy_gui.common.binding import Property
from alchemy_gui.common.job_list import JobFailure, JobList, deliver


@dataclass(frozen=True)
class NewProject:
    name: str
    token: str
    class_noun: str
    images: tuple[Path, ...]


def _list(request: None, progress, cancel) -> list:
    return projects.list_projects()


def _create(request: NewProject, progress, cancel) -> Any:
    return projects.create_project(request.name, token=request.token, class_noun=request.class_noun,
                                   images=list(request.images))


@dataclass(frozen=True)
class AddPhotos:
    slug: str
    images: tuple[Path, ...]


def _add_photos(request: AddPhotos, progress, cancel) -> Any:
    project = projects.open_project(request.slug)
    project.import_photos(request.images)
    return project


def _open(slug: str, progress, cancel) -> Any:
    return projects.open_project(slug)


def _delete(slug: str, progress, cancel) -> str:
    projects.delete_project(slug)
    return slug


class ProjectsState(QObject):
    """The project list and the open project (``current``), as observable properties."""

    projects_changed = Signal(object)  # list of project summaries
    current_changed = Signal(object)  # Project or None
    failed = Signal(str, object)  # title, JobFailure
    notice = Signal(str)  # something the user should know that is not a failure

    projects = Property([], same=operator.is_)
    current = Property(None, same=operator.is_)

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs

    def refresh(self) -> None:
        self._submit(_list, None, self._set_projects, "Could not list projects")

    def create(self, request: NewProject) -> None:
        self._submit(_create, request, self._on_created, "Could not create the project")

    def add_photos(self, images: list[Path]) -> None:
        if self.current is None or not images:
            return
        self._submit(_add_photos, AddPhotos(self.current.slug, tuple(images)), self._on_photos_added,
                     "Could not add the photos", project=self.current)

    def open(self, slug: str | None) -> None:
        if not slug:
            self._set_current(None)
            return
        self._submit(_open, slug, self._set_current, "Could not open the project")

    def delete(self, slug: str) -> None:
        self._submit(_delete, slug, self._on_deleted, "Could not delete the project")

    def _submit(self, fn, request, on_success, failure_title: str, project=None) -> None:
        job = self.jobs.submit(fn, request, fn.__name__.lstrip("_"), project=project)
        deliver(job, self, on_success, lambda failure: self.failed.emit(failure_title, failure))

    def _set_projects(self, summaries: list) -> None:
        self.projects = list(summaries)  # a fresh list: the browser re-renders even if nothing changed

    def _set_current(self, project) -> None:
        self.current = project

    def _on_created(self, project) -> None:
        self.refresh()
        self._set_current(project)
        self._report_refused(project)

    def _on_photos_added(self, project) -> None:
        if self.current is not None and self.current.root == project.root:
            self._set_current(project)  # a fresh Project object: the views re-render
        self.refresh()
        self._report_refused(project)

    def _report_refused(self, project) -> None:
        report = project.last_import
        if report is not None and report.refused:
            lines = "\n".join(f"• {r.reason}" for r in report.refused)
            self.notice.emit(f"{len(report.imported)} photo(s) imported; these were skipped:\n{lines}")

    def _on_deleted(self, slug: str) -> None:
        if self.current is not None and self.current.slug == slug:
            self._set_current(None)
        self.refresh()


__all__ = ["AddPhotos", "JobFailure", "NewProject", "ProjectsState"]
