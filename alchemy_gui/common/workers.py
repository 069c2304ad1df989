"""Run engine jobs off the UI thread.

A :class:`JobWorker` lives in its own ``QThread``, calls an engine function
``fn(request, progress, cancel)`` and re-emits the engine's plain ``Progress`` events as Qt
signals, which Qt queues onto the GUI thread. :class:`JobRunner` keeps one job at a time (the GPU
is one resource) and queues the rest.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from alchemy_engine.errors import AlchemyError, JobCancelled
from alchemy_engine.jobs import CancelToken, Progress

log = logging.getLogger(__name__)

EngineFunction = Callable[[Any, Callable[[Progress], None], CancelToken], Any]


@dataclass(frozen=True)
class JobFailure:
    """What the GUI shows: a readable message, with the traceback folded away in ``detail``."""

    message: str
    detail: str = ""
    cancelled: bool = False


class JobWorker(QObject):
    progress = Signal(object)  # Progress
    succeeded = Signal(object)  # the engine function's result
    failed = Signal(object)  # JobFailure
    finished = Signal()

    def __init__(self, fn: EngineFunction, request: Any, name: str = "") -> None:
        super().__init__()
        self.fn = fn
        self.request = request
        self.name = name or getattr(fn, "__qualname__", "job")
        self.cancel_token = CancelToken()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(self.request, self.progress.emit, self.cancel_token)
        except JobCancelled:
            self.failed.emit(JobFailure("Cancelled.", cancelled=True))
        except AlchemyError as exc:
            self.failed.emit(JobFailure(str(exc)))
        except Exception as exc:  # the job boundary: log once, show a readable message
            log.exception("%s failed", self.name)
            self.failed.emit(JobFailure(f"{self.name} failed: {exc}", traceback.format_exc()))
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()


class JobRunner(QObject):
    """Runs queued jobs one after another, each in a fresh QThread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[JobWorker] = deque()
        self._current: tuple[JobWorker, QThread] | None = None

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> JobWorker | None:
        return self._current[0] if self._current else None

    def submit(self, fn: EngineFunction, request: Any, name: str = "") -> JobWorker:
        """Queue a job; connect to the returned worker's signals before control returns to Qt."""
        worker = JobWorker(fn, request, name)
        self._queue.append(worker)
        if self._current is None:
            # Deferred to the event loop so callers can connect signals first.
            QTimer.singleShot(0, self._start_next)
        return worker

    def cancel_all(self) -> None:
        for worker in self._queue:
            worker.cancel()
        if self._current:
            self._current[0].cancel()

    def wait_idle(self, timeout_ms: int = 30000) -> bool:
        """Block until the current job ends (shutdown only: the UI never waits on a job)."""
        self._queue.clear()
        if self._current is None:
            return True
        return self._current[1].wait(timeout_ms)

    @Slot()
    def _start_next(self) -> None:
        if self._current is not None or not self._queue:
            return
        worker = self._queue.popleft()
        thread = QThread()
        thread.setObjectName(f"job:{worker.name}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI loop (deadlock in wait_idle).
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        self._current = (worker, thread)
        self.busy_changed.emit(True)
        thread.start()

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._current is None:
            return
        _, thread = self._current
        self._current = None
        thread.wait()  # already finished; makes dropping the last reference safe
        if self._queue:
            self._start_next()
        else:
            self.busy_changed.emit(False)
