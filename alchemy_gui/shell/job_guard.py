"""Quitting or deleting while jobs run: say which ones, stop them cleanly, then act.

Reads the window's :class:`~alchemy_gui.common.job_list.JobList` and nothing else: the jobs that
matter are the model lane's (training, insertion, SAM...), queued or running; quick disk jobs end
by themselves. ``stop_then(action)`` cancels every job (training saves a checkpoint on cancel) and
calls ``action`` once the list is idle — from the event loop, so the window keeps painting while
the jobs wind down.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from alchemy_gui.common.job_list import Job, JobList, JobState, Lane


class JobGuard(QObject):
    stopping_changed = Signal(bool)

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self._pending: list[Callable[[], object]] = []
        jobs.busy_changed.connect(self._check_idle)

    @property
    def stopping(self) -> bool:
        return bool(self._pending)

    def running_jobs(self, project=None) -> list[Job]:
        """Model jobs queued or running (of ``project`` when given), oldest first."""
        return [j for j in self.jobs.active(project=project) if j.lane is Lane.MODEL]

    def running_job(self) -> str:
        """"Training 'Rex'" / "3 jobs" — "" when none runs."""
        found = self.running_jobs()
        return "" if not found else _line(found[0]) if len(found) == 1 else f"{len(found)} jobs"

    def question(self, then: str, it: str = "") -> str:
        """"Training 'Rex' is running — stop{it} and {then}?", or every running job in a list."""
        found = self.running_jobs()
        if len(found) == 1:
            return f"{_line(found[0])} is running — stop{it} and {then}?"
        lines = "\n".join(f"• {_line(j)}" for j in found)
        return f"{len(found)} jobs are running:\n{lines}\n\nStop them and {then}?"

    def cancel(self) -> None:
        """Esc: stop the newest running model job (training reports it in its own area); none
        running: every queued job."""
        running = [j for j in self.running_jobs() if j.state is JobState.RUNNING]
        for job in running[-1:] or self.jobs.active():
            job.cancel()

    def stop_then(self, action: Callable[[], object]) -> None:
        self._pending.append(action)
        self.stopping_changed.emit(True)
        self.jobs.cancel_all()
        self._check_idle()

    def _check_idle(self, *_args) -> None:
        if not self._pending or self.jobs.busy:
            return
        actions, self._pending = self._pending, []
        self.stopping_changed.emit(False)
        for action in actions:
            action()


def _line(job: Job) -> str:
    waiting = " (queued)" if job.state is JobState.QUEUED else ""
    return f"{job.title}{waiting}"


__all__ = ["JobGuard"]
