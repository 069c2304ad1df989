"""Quitting or deleting while a job runs: say which job, stop it cleanly, then act.

``stop_then(action)`` cancels every job (training saves a checkpoint on cancel) and calls
``action`` once the runners are idle — from the event loop, so the window keeps painting while the
job winds down.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from alchemy_gui.common.workers import JobRunner

LONG_JOBS = {"train": "Training", "insert": "An insertion", "generate scene": "Scene generation"}


class JobGuard(QObject):
    stopping_changed = Signal(bool)

    def __init__(self, runners: list[JobRunner], train_state, insert_state, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runners, self.train_state, self.insert_state = runners, train_state, insert_state
        self._pending: list[Callable[[], None]] = []
        for runner in runners:
            runner.busy_changed.connect(self._check_idle)

    @property
    def stopping(self) -> bool:
        return bool(self._pending)

    def running_job(self) -> str:
        """"Training 'Rex'" while a long job runs, else ""."""
        train, insert = self.train_state, self.insert_state
        if train.running:
            project = getattr(train, "_run_project", None) or train.project
            return f"Training '{project.name}'" if project is not None else "Training"
        for runner in self.runners:
            worker = runner.current
            if worker is not None and worker.name in LONG_JOBS and (worker.name != "train" or train.running):
                project = insert.project if worker.name != "train" else train.project
                what = LONG_JOBS[worker.name]
                return f"{what} in '{project.name}'" if project is not None else what
        return ""

    def runs_on(self, project) -> bool:
        """Whether the running long job works on ``project``."""
        train = self.train_state
        if train.running:
            running = getattr(train, "_run_project", None) or train.project
            return running is not None and project is not None and running.root == project.root
        return bool(self.running_job()) and self.insert_state.project is not None and project is not None \
            and self.insert_state.project.root == project.root

    def cancel(self) -> None:
        """Esc: stop the running job (training and insertion report it in their own area)."""
        if self.train_state.running:
            self.train_state.cancel()
        elif self.insert_state.busy:
            self.insert_state.cancel()
        else:
            for runner in self.runners:
                runner.cancel_all()

    def stop_then(self, action: Callable[[], None]) -> None:
        self._pending.append(action)
        self.stopping_changed.emit(True)
        if self.train_state.running:
            self.train_state.cancel()  # its status line says a checkpoint is being saved
        for runner in self.runners:
            runner.cancel_all()
        self._check_idle()

    def _check_idle(self, *_args) -> None:
        if not self._pending or any(r.busy for r in self.runners):
            return
        actions, self._pending = self._pending, []
        self.stopping_changed.emit(False)
        for action in actions:
            action()


__all__ = ["JobGuard"]
