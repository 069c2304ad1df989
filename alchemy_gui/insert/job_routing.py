"""The Insert area's jobs, as the job list keeps them: submitted and routed by :class:`JobRouting`,
owned by :class:`~alchemy_gui.insert.state.InsertState` (whose ``busy``, ``progress`` and message
it sets).

Every job is submitted for a project and its result goes to that project: shown when it is still
the open one, else left where the engine wrote it (a scene opened meanwhile becomes that project's
current scene). Busy, progress and "waits for …" of the open project's model jobs are read from
the :class:`~alchemy_gui.common.job_list.JobList`, which keeps the only record of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alchemy_engine import api
from alchemy_gui.common.job_list import (
    Job,
    JobFailure,
    JobKind,
    JobList,
    JobState,
    Lane,
    deliver,
    same_project,
)
from alchemy_gui.insert.jobs import LoadedScene
from alchemy_gui.insert.result_jobs import SceneMaskToSave, save_scene_job

if TYPE_CHECKING:
    from alchemy_gui.insert.state import InsertState

LONG_KINDS = (JobKind.INSERT, JobKind.SCENE)  # the progress bar and Cancel follow these


class JobRouting:
    def __init__(self, state: InsertState, jobs: JobList, session_key: str) -> None:
        self.state = state
        self.jobs = jobs
        self.session_key = session_key  # the model jobs of one InsertionSession never overlap
        jobs.job_added.connect(self.follow)
        jobs.job_changed.connect(self.follow)

    def cancel(self) -> None:
        """Stop this project's insertion or scene generation (a queued one never starts)."""
        for job in self._long_jobs():
            job.cancel()
            running = job.state is JobState.RUNNING
            self.state.set_message("Cancelling…" if running else "Cancelled before it started.")

    def keep_scene(self, project: api.Project, scene: LoadedScene) -> None:
        """A scene opened (or made) for a ``project`` that is no longer on screen: it becomes that
        project's current scene, with its saved mask, as if it had stayed open."""
        mask = scene.mask.copy() if scene.mask is not None else None
        self.submit(save_scene_job, SceneMaskToSave(Path(project.root), scene.path, mask), "save scene",
                     lambda _saved: None, project=project)

    def submit(self, fn, request, name: str, on_success, kind: JobKind = JobKind.DISK, sized=None,
                elsewhere=None, project=None) -> Job:
        """Submit for the open project (or ``project``); ``on_success`` runs if that project is still
        the open one when the job ends, else ``elsewhere(project, result)`` with the job's project (by
        default nothing: the engine has already written the result into its project)."""
        shares = self.session_key if kind.lane is Lane.MODEL else None
        job = self.jobs.submit(fn, request, name, kind=kind, project=project or self.state.project, shares=shares,
                               sized=sized)
        return deliver(job, self.state, lambda result: self._landed(job, result, on_success, elsewhere),
                       lambda failure: self._failed(job, failure))

    def _landed(self, job: Job, result: Any, on_success, elsewhere) -> None:
        if same_project(job.project, self.state.project):
            on_success(result)
        elif elsewhere is not None and job.project is not None:
            elsewhere(job.project, result)

    def _failed(self, job: Job, failure: JobFailure) -> None:
        if same_project(job.project, self.state.project):
            self.state.fail(failure)

    def _long_jobs(self) -> list[Job]:
        return [j for j in self.jobs.active(project=self.state.project) if j.kind in LONG_KINDS] \
            if self.state.project is not None else []

    def follow(self, job: Job) -> None:
        """The job list changed: busy, progress and "waits for …" follow this project's jobs."""
        if not same_project(job.project, self.state.project) or job.lane is not Lane.MODEL:
            return
        if job.kind in LONG_KINDS:
            self.show_long_job()
        waits = job.wait_text()
        if waits and not job.done:
            self.state.set_message(f"{job.kind.label} {waits}.")
        elif job.note and job.state is JobState.RUNNING:
            self.state.set_message(f"Note: {job.note}.")
        elif job.state is JobState.RUNNING and self.state.message.text.startswith(f"{job.kind.label} waits"):
            self.state.set_message(f"{job.kind.label} running…")

    def show_long_job(self) -> None:
        running = self._long_jobs()
        self.state.busy = bool(running)
        self.state.progress = running[-1].last_progress if running else None


__all__ = ["LONG_KINDS", "JobRouting"]
