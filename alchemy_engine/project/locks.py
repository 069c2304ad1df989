"""Who is using a project right now, so nothing is renamed, deleted or resumed under a running job.

A running job (training, insertion) holds an OS lock on a file of its own in ``<project>/.jobs/``
whose text says what it is ("training run 20261128-120000-ab12cd, pid 4242"). The OS drops the
lock when the process dies, even under ``kill -9``, so a file left behind is recognised as stale
and removed. Registering a job and checking for jobs both happen under the project lock, so a
rename cannot slip in between. A training run also holds ``runs/<id>/.lock`` for as long as it
writes there: a second ``--resume`` of the same run is refused instead of interleaving files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from alchemy_engine.atomic import FileLock, make_dirs, remove_quietly
from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.project.schema import PROJECT_FILE, locked

log = logging.getLogger(__name__)

JOBS_DIR = ".jobs"
RUN_LOCK_FILE = ".lock"


class ProjectJob:
    """A registered job; :meth:`describe` updates what others are told it is."""

    def __init__(self, lock: FileLock, what: str) -> None:
        self._lock = lock
        self.describe(what)

    def describe(self, what: str) -> None:
        self._lock.describe(f"{what} (pid {os.getpid()})")


@contextlib.contextmanager
def project_job(root: str | os.PathLike, what: str) -> Iterator[ProjectJob]:
    """Register a job on the project at ``root`` for the duration of the ``with`` block."""
    root = Path(root)
    with locked(root):
        if not (root / PROJECT_FILE).is_file():
            raise ProjectError(f"There is no project at {root} any more (renamed or deleted). Open it again.")
        path = make_dirs(root / JOBS_DIR) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.lock"
        lock = FileLock(path, timeout=0)
        lock.acquire()
        job = ProjectJob(lock, what)
    try:
        yield job
    finally:
        lock.release()
        remove_quietly(path)


def active_jobs(root: str | os.PathLike) -> list[str]:
    """What runs on the project now (call under the project lock); stale entries are removed."""
    folder = Path(root) / JOBS_DIR
    found = []
    for path in sorted(folder.glob("*.lock")) if folder.is_dir() else []:
        lock = FileLock(path, timeout=0)
        if lock.try_acquire():  # its process is gone
            lock.release()
            remove_quietly(path)
        else:
            found.append(FileLock.read_description(path) or "another Image Alchemy process")
    return found


def refuse_if_busy(root: str | os.PathLike, action: str) -> None:
    """Raise ProjectError naming the job when one runs on the project (call under its lock)."""
    jobs = active_jobs(root)
    if jobs:
        more = f" and {len(jobs) - 1} more" if len(jobs) > 1 else ""
        raise ProjectError(f"Cannot {action} project {Path(root).name!r}: it is in use by {jobs[0]}{more}. "
                           "Stop that job or wait for it to finish, then try again.")


def _take_run_lock(run_dir: Path) -> FileLock:
    lock = FileLock(Path(run_dir) / RUN_LOCK_FILE, timeout=0)
    if not lock.try_acquire():
        holder = FileLock.read_description(lock.path) or "another process"
        raise InvalidRequest(f"run {Path(run_dir).name} is already being trained by {holder}; wait for it "
                             "to finish or stop it, then try again.")
    return lock


def check_run_free(run_dir: Path) -> None:
    """Refuse early (before looking at its checkpoints) when another process trains the run."""
    _take_run_lock(run_dir).release()


@contextlib.contextmanager
def run_lock(run_dir: Path, what: str) -> Iterator[None]:
    """Hold ``runs/<id>/.lock``; refused at once if another process trains or resumes the run."""
    lock = _take_run_lock(run_dir)
    lock.describe(f"{what} (pid {os.getpid()})")
    try:
        yield
    finally:
        lock.release()
