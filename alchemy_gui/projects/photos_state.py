"""UI state of the Photos tab's actions on reference photos: remove one, "Auto-mask all", load and
save one photo's subject mask. Every disk or model step runs as a job as a light job of the window's job list;
``reload_requested(slug)`` asks the window to re-open the project once something changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_engine.jobs import Progress
from alchemy_gui.common.binding import Property
from alchemy_gui.common.job_list import Job, JobFailure, JobKind, JobList, deliver


@dataclass(frozen=True)
class PhotoEdit:
    slug: str
    photo: str  # stored file name
    mask: Any = None  # bool (H, W) array; None removes the mask


@dataclass(frozen=True)
class LoadedPhoto:
    slug: str
    photo: str
    path: Path
    image: QImage  # made on the job's thread
    mask: np.ndarray | None  # bool (H, W), or None without a mask
    shown_name: str = ""  # the name the Photos grid shows (the file the user added)


@dataclass(frozen=True)
class SamClick:
    image: Path
    out: Path
    points: tuple = ()
    box: Any = None
    sam: str | None = None


@dataclass(frozen=True)
class AutoMask:
    slug: str
    options: dict = field(default_factory=dict)  # more AutoMaskRequest fields (sam, detector, thresholds)


def _remove_job(edit: PhotoEdit, progress, cancel) -> str:
    api.open_project(edit.slug).remove_photo(edit.photo)
    return edit.slug


def _save_mask_job(edit: PhotoEdit, progress, cancel) -> str:
    api.open_project(edit.slug).set_mask(edit.photo, edit.mask)
    return edit.slug


def _load_job(edit: PhotoEdit, progress, cancel) -> LoadedPhoto:
    photo = api.open_project(edit.slug).photo(edit.photo)
    image = QImage(str(photo.path))
    mask = api.read_mask(photo.mask_path, (photo.width, photo.height)) if photo.mask_path else None
    return LoadedPhoto(edit.slug, photo.name, photo.path, image, mask, photo.original_name or photo.name)


def _sam_job(click: SamClick, progress, cancel) -> np.ndarray:
    Path(click.out).parent.mkdir(parents=True, exist_ok=True)
    locate = api.LocateOptions(points=click.points, box=click.box, sam=click.sam)
    result = api.segment(api.SegmentRequest(image=click.image, out=click.out, locate=locate), progress, cancel)
    return api.read_mask(result.mask)


def _auto_mask_job(request: AutoMask, progress, cancel):
    return api.auto_mask(api.AutoMaskRequest(project=request.slug, **request.options), progress, cancel)


PHOTO_KINDS = (JobKind.AUTO_MASK,)  # the Photos tab's model work; its disk edits are quick light jobs


class PhotosState(QObject):
    """``message``: the outcome of the last action (or what runs now); ``busy`` while a photo job of
    the job list runs (read from that list: the record of what runs is kept there only)."""

    message_changed = Signal(str)
    busy_changed = Signal(bool)
    reload_requested = Signal(str)  # slug of the project to re-open
    failed = Signal(str, object)  # title, JobFailure

    message = Property("")
    busy = Property(False)

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.auto_options: dict[str, Any] = {}  # e.g. {"sam": "demo", "detector": "demo"} (tests, demo)
        self._names: set[str] = set()  # the job names this state submits (its jobs in the list)
        jobs.job_added.connect(self._follow_jobs)
        jobs.job_changed.connect(self._follow_jobs)

    def remove(self, slug: str, photo: str) -> None:
        self._run(_remove_job, PhotoEdit(slug, photo), f"Removed {photo}.", "Could not remove the photo")

    def save_mask(self, slug: str, photo: str, mask: np.ndarray | None) -> None:
        saved = f"Saved the mask of {photo}." if mask is not None else f"Removed the mask of {photo}."
        self._run(_save_mask_job, PhotoEdit(slug, photo, mask), saved, "Could not save the mask")

    def auto_mask(self, slug: str) -> None:
        self.message = "Finding the subject in each photo…"
        request = AutoMask(slug, dict(self.auto_options))
        job = self._run(_auto_mask_job, request, None, "Auto-mask failed", kind=JobKind.AUTO_MASK,
                        sized=api.AutoMaskRequest(project=slug, **request.options))
        job.progress.connect(self._on_progress)

    def cancel(self) -> None:
        for job in self._mine():
            job.cancel()

    def _mine(self) -> list[Job]:
        return [j for j in self.jobs.active() if j.name in self._names]

    def _follow_jobs(self, job: Job) -> None:
        if job.name in self._names:
            self.busy = bool(self._mine())
            waits = job.wait_text()
            if waits and job.kind in PHOTO_KINDS:
                self.message = f"Auto-mask {waits}."

    def _run(self, fn, request, done: str | None, title: str, kind: JobKind = JobKind.DISK, sized=None) -> Job:
        name = fn.__name__.strip("_")
        self._names.add(name)
        job = self.jobs.submit(fn, request, name, kind=kind, sized=sized)
        return deliver(job, self, lambda result: self._on_done(request.slug, done, result),
                       lambda failure: self._on_failed(request.slug, title, failure))

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if event.total and event.step < event.total:
            self.message = f"Masking photo {event.step + 1} of {event.total} ({event.message})…"

    def _on_done(self, slug: str, done: str | None, result: Any) -> None:
        if done is None:  # auto-mask: say what it did, photo by photo where it could not
            lines = [f"Masked {len(result.masked)} photo(s)."]
            lines += [f"Skipped {name}: {why}" for name, why in result.skipped]
            done = "\n".join(lines)
        self.message = done
        self.reload_requested.emit(slug)

    def _on_failed(self, slug: str, title: str, failure: JobFailure) -> None:
        self.message = "Stopped; the masks made so far are kept." if failure.cancelled else failure.message
        if not failure.cancelled:
            self.failed.emit(title, failure)
        self.reload_requested.emit(slug)


__all__ = ["LoadedPhoto", "PhotoEdit", "PhotosState", "SamClick", "_load_job", "_sam_job"]
