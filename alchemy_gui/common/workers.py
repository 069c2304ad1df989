"""Run engine jobs off the UI thread.

A :class:`JobWorker` lives in its own ``QThread``: it waits at the :class:`LaneGate` until its lane
lets it start (see :mod:`alchemy_gui.common.lane_gate`), calls an engine function
``fn(request, progress, cancel)`` and re-emits the engine's plain ``Progress`` events as Qt
signals, which Qt queues onto the GUI thread. The record every view reads is the
:class:`~alchemy_gui.common.job_list.Job` that owns the worker.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from alchemy_engine.errors import AlchemyError, JobCancelled
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback
from alchemy_gui.common.lane_gate import LaneGate, Ticket

log = logging.getLogger(__name__)

EngineFunction = Callable[[Any, ProgressCallback, CancelToken], Any]


@dataclass(frozen=True)
class JobFailure:
    """What the GUI shows: a readable message, with the traceback folded away in ``detail``."""

    message: str
    detail: str = ""
    cancelled: bool = False


class JobWorker(QObject):
    waiting = Signal(str, object)  # why it has not started, the ids of the jobs it waits for
    started = Signal(object)  # the api.JobFootprint it runs with, or None
    progress = Signal(object)  # Progress
    succeeded = Signal(object)  # the engine function's result
    failed = Signal(object)  # JobFailure
    finished = Signal()

    def __init__(self, fn: EngineFunction, request: Any, name: str, gate: LaneGate, ticket: Ticket) -> None:
        super().__init__()
        self.fn, self.request, self.name = fn, request, name
        self.gate, self.ticket = gate, ticket
        self.cancel_token = CancelToken()
        self._home = QThread.currentThread()  # where it goes back to when done, to be deleted there

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot()
    def run(self) -> None:
        try:
            chosen = self.gate.admit(self.ticket, self.cancel_token, self.waiting.emit)
            self.started.emit(chosen)
            result = self.fn(self._placed(chosen), self._report, self.cancel_token)
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
            self.gate.release(self.ticket)
            self.moveToThread(self._home)
            self.finished.emit()

    def _report(self, event: Progress) -> None:
        self.progress.emit(event)

    def _placed(self, chosen) -> Any:
        """The request, moved to the device its footprint was admitted on (SAM to the CPU)."""
        request = self.request
        if chosen is not None and chosen.note and dataclasses.is_dataclass(request) and not isinstance(request, type) \
                and getattr(request, "device", chosen.device) != chosen.device:
            return dataclasses.replace(request, device=chosen.device)
        return request
