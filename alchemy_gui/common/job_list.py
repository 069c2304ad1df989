"""The one list of the window's jobs: every job's record, observable, owned here.

Every view reads it: the Train and Insert areas show their project's job, the Photos tab its own,
the status bar and the Jobs popup every job, the quit guard the running ones. A job carries the
project it was submitted for; its result goes to whoever asked, who puts it into *that* project.

Lanes by resource (:class:`Lane`): *light* jobs (disk: projects, photos, thumbnails, masks,
history, scenes) run one after another in their own lane and never wait behind model work; *model*
jobs (training, SAM, insertion...) each run on their own thread once the engine's memory estimates
say they fit beside the model jobs already running (:mod:`alchemy_gui.common.lane_gate`), else they
wait and say for what.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from alchemy_engine import api
from alchemy_engine.jobs import Progress, Stage
from alchemy_gui.common.lane_gate import LaneGate
from alchemy_gui.common.workers import EngineFunction, JobFailure, JobWorker

KEEP_FINISHED = 30  # finished jobs the Jobs popup still lists
# Every job's thread and worker until it has ended, whatever becomes of its list: Qt aborts when a
# running QThread is destroyed (a window closed and collected while a job winds down).
_LIVE: dict[tuple[int, int], tuple[QThread, JobWorker]] = {}


class Lane(Enum):
    LIGHT = "light"
    MODEL = "model"


class JobKind(Enum):
    """What a job is: its label, its lane, and the key it keeps its order by (None: none)."""

    TRAIN = ("Training", Lane.MODEL, "training")
    SCENE = ("Scene generation", Lane.MODEL, None)
    INSERT = ("Insertion", Lane.MODEL, None)
    SEGMENT = ("SAM mask", Lane.MODEL, None)
    AUTO_DETECT = ("Auto-detect", Lane.MODEL, None)
    AUTO_MASK = ("Auto-mask", Lane.MODEL, None)
    EVALUATE = ("Evaluation", Lane.MODEL, None)
    ESTIMATE = ("Memory estimate", Lane.LIGHT, "estimate")  # CPU only: never behind the disk
    MODELS = ("Model search", Lane.LIGHT, "models")
    EXPORT = ("LoRA export", Lane.LIGHT, "export")  # reads checkpoints: apart from the quick disk work
    DISK = ("Disk", Lane.LIGHT, "disk")
    DOWNLOAD = ("Model download", Lane.LIGHT, "download")  # minutes of network: never in front of the disk
    INFO = ("Information", Lane.LIGHT, None)  # About, Preferences: read-only, at once

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def lane(self) -> Lane:
        return self.value[1]

    @property
    def key(self) -> str | None:
        return self.value[2]


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


DONE = (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED)


class Job(QObject):
    """One job's record. Its signals fire on the GUI thread, after the record is updated."""

    progress = Signal(object)  # Progress
    succeeded = Signal(object)  # the result
    failed = Signal(object)  # JobFailure
    finished = Signal()
    changed = Signal(object)  # self: state, progress, waiting or note changed

    def __init__(self, job_id: int, kind: JobKind, name: str, project: api.Project | None, worker: JobWorker,
                 parent: JobList) -> None:
        super().__init__(parent)
        self._list = parent
        self.id, self.kind, self.name, self.project = job_id, kind, name, project
        self.lane = kind.lane
        self.worker: JobWorker | None = worker  # deleted once its thread has ended
        self.cancel_token = worker.cancel_token
        self.state = JobState.QUEUED
        self.last_progress: Progress | None = None
        self.submitted = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.result: Any = None
        self.failure: JobFailure | None = None
        self.waiting = ""  # why it waits (memory), "" while it only waits its turn
        self.waiting_for: tuple[int, ...] = ()  # ids of the jobs it waits for
        self.note = ""  # e.g. "SAM runs on the CPU this time: the GPU is full"
        worker.waiting.connect(self._on_waiting)
        worker.started.connect(self._on_started)
        worker.progress.connect(self._on_progress)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)

    @property
    def done(self) -> bool:
        return self.state in DONE

    @property
    def title(self) -> str:
        """"Training 'Rex'", "SAM mask 'Rex'", or the job's name for a job of no project."""
        label = self.kind.label if self.kind is not JobKind.DISK else self.name
        return f"{label} '{self.project.name}'" if self.project is not None else label

    def cancel(self) -> None:
        """Stop it; a queued job then never starts (its worker gives up at the gate)."""
        self.cancel_token.cancel()

    def wait_text(self) -> str:
        """"waits for Training 'Rex' — ≈ 4 min" while queued behind another job, else ""."""
        if self.state is not JobState.QUEUED or not self.waiting_for:
            return ""
        jobs = self._list.by_ids(self.waiting_for)
        if not jobs:
            return "waits for its turn"
        first = jobs[0]
        eta = first.last_progress.eta_s if first.last_progress is not None else None
        eta_text = f" — ≈ {_duration(eta)}" if eta else ""
        more = f" and {len(jobs) - 1} more" if len(jobs) > 1 else ""
        why = f" ({self.waiting})" if self.waiting else ""
        return f"waits for {first.title}{more}{eta_text}{why}"

    # --- from the worker's thread (queued onto the GUI thread) ------------------------------------
    @Slot(str, object)
    def _on_waiting(self, reason: str, ids: tuple[int, ...]) -> None:
        self.waiting, self.waiting_for = reason, tuple(ids)
        self.changed.emit(self)

    @Slot(object)
    def _on_started(self, footprint) -> None:
        self.state, self.started = JobState.RUNNING, time.time()
        self.waiting, self.waiting_for = "", ()
        self.note = footprint.note if footprint is not None else ""
        self.changed.emit(self)

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if event.stage is not Stage.NOTE:  # a setting the engine changed is a note, not how far it got
            self.last_progress = event
        self.progress.emit(event)
        self.changed.emit(self)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self.state, self.result, self.ended = JobState.FINISHED, result, time.time()
        self.changed.emit(self)
        self.succeeded.emit(result)

    @Slot(object)
    def _on_failed(self, failure: JobFailure) -> None:
        self.state = JobState.CANCELLED if failure.cancelled else JobState.FAILED
        self.failure, self.ended = failure, time.time()
        self.changed.emit(self)
        self.failed.emit(failure)

    @Slot()
    def _on_finished(self) -> None:
        self.finished.emit()


class JobList(QObject):
    """Owns every job: ``submit`` starts one in its lane; ``jobs`` lists them, oldest first."""

    job_added = Signal(object)  # Job
    job_changed = Signal(object)  # Job
    busy_changed = Signal(bool)  # some job is queued or running

    def __init__(self, parent: QObject | None = None, budget=None) -> None:
        super().__init__(parent)
        self.gate = LaneGate(budget)
        self.jobs: list[Job] = []
        self._threads: dict[int, QThread] = {}

    @property
    def busy(self) -> bool:
        return bool(self._threads)

    def submit(self, fn: EngineFunction, request: Any, name: str = "", *, kind: JobKind = JobKind.DISK,
               project: api.Project | None = None, shares: str | None = None, sized: Any = None) -> Job:
        """Start ``fn(request, progress, cancel)`` in ``kind``'s lane for ``project``. ``shares``:
        a resource the job must not use at the same time as an earlier job (loaded models);
        ``sized``: the engine request its memory is estimated from (default ``request``)."""
        name = name or getattr(fn, "__qualname__", "job")
        engine_request = sized if sized is not None else request
        sizer = (lambda: api.job_footprints(engine_request)) if kind.lane is Lane.MODEL else None
        ticket = self.gate.ticket(shares or kind.key, sizer)
        worker = JobWorker(fn, request, name, self.gate, ticket)
        job = Job(ticket.id, kind, name, project, worker, self)
        job.changed.connect(self.job_changed)
        self.jobs.append(job)
        thread = QThread()
        thread.setObjectName(f"job:{name}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI loop (deadlock in wait_idle).
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        job.finished.connect(lambda: self._on_job_finished(job.id))  # on the GUI thread
        was_busy = self.busy
        self._threads[job.id] = thread
        _LIVE[job.id, id(self)] = (thread, worker)
        thread.start()
        self.job_added.emit(job)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def active(self, kind: JobKind | None = None, project: api.Project | None = None) -> list[Job]:
        """Queued and running jobs, oldest first; of ``kind`` and of ``project`` when given."""
        return [j for j in self.jobs if not j.done and (kind is None or j.kind is kind)
                and (project is None or same_project(j.project, project))]

    def running(self) -> list[Job]:
        return [j for j in self.jobs if j.state is JobState.RUNNING]

    def by_ids(self, ids: tuple[int, ...]) -> list[Job]:
        return [j for j in self.jobs if j.id in ids]

    def cancel_all(self) -> None:
        for job in self.jobs:
            if not job.done:
                job.cancel()

    def wait_idle(self, timeout_ms: int = 30000) -> bool:
        """Block until every job's thread has ended (shutdown only: the UI never waits on a job)."""
        return all(thread.wait(timeout_ms) for thread in list(self._threads.values()))

    def _on_job_finished(self, job_id: int) -> None:
        thread = self._threads.pop(job_id, None)
        _LIVE.pop((job_id, id(self)), None)
        if thread is not None:
            thread.wait()  # its work is done and quit() asked: makes dropping the last reference safe
        # Qt objects are deleted here, on the GUI thread: views' lambdas hold jobs in reference cycles,
        # and the cyclic collector may run on any thread.
        for job in self.jobs:
            if job.id == job_id and job.worker is not None:
                job.worker.deleteLater()  # moved back to this thread when it finished
                job.worker = None
        finished = [j for j in self.jobs if j.done]
        for old in finished[:-KEEP_FINISHED]:
            self.jobs.remove(old)
            old.deleteLater()
        if not self._threads:
            self.busy_changed.emit(False)


class _Relay(QObject):
    """Calls back a view-model when its job ends, for as long as that view-model lives: a child of
    it, so a closed window's state is never called (a lambda connected to the job would be)."""

    def __init__(self, job: Job, owner: QObject, succeeded: Callable[[Any], None] | None,
                 failed: Callable[[JobFailure], None] | None) -> None:
        super().__init__(owner)
        self._succeeded, self._failed = succeeded, failed
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self.deleteLater()
        if self._succeeded is not None:
            self._succeeded(result)

    @Slot(object)
    def _on_failed(self, failure: JobFailure) -> None:
        self.deleteLater()
        if self._failed is not None:
            self._failed(failure)


def deliver(job: Job, owner: QObject, succeeded: Callable[[Any], None] | None = None,
            failed: Callable[[JobFailure], None] | None = None) -> Job:
    """``job``'s result to ``succeeded``, its failure to ``failed``, while ``owner`` lives."""
    _Relay(job, owner, succeeded, failed)
    return job


def same_project(a: Any, b: Any) -> bool:
    """One project on disk (Project objects are replaced when the project is re-read)."""
    return a is b or (a is not None and b is not None and Path(a.root) == Path(b.root))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["DONE", "Job", "JobFailure", "JobKind", "JobList", "JobState", "Lane", "deliver", "same_project"]
