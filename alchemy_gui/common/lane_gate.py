"""When a job may start: the lanes' rule, kept in one thread-safe object (no Qt).

Each job takes a :class:`Ticket` when it is submitted (GUI thread) and calls :meth:`LaneGate.admit`
from its own thread before its work begins; admit blocks until

- no earlier unfinished job holds the same ``key`` (disk work keeps its order; two jobs on one
  set of loaded models never overlap), and
- for a model job, one of its footprints fits beside those of the model jobs already running,
  as the engine's :func:`api.fits_together` decides (a SAM click may run beside a training run,
  or on the CPU when the GPU is full);

or its cancel token is set: then it raises ``JobCancelled`` and the job's work never starts.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from alchemy_engine import api
from alchemy_engine.errors import JobCancelled
from alchemy_engine.jobs import CancelToken

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting job looks at its cancel token

WaitCallback = Callable[[str, tuple[int, ...]], None]  # the reason, the ids of the jobs waited for
Sizer = Callable[[], list]  # the job's footprints (api.job_footprints of its request), preferred first
_SIZE = object()  # a decision: footprints must be computed first (outside the lock)


@dataclass
class Ticket:
    id: int
    key: str | None  # what the job must not share with an earlier one ("disk", a session's id)
    sizer: Sizer | None  # None: a light job, never counted against the memory budget
    options: list[api.JobFootprint] | None = None  # its footprints once computed ([] when they cannot be known)
    footprint: api.JobFootprint | None = None  # the one it runs with, once admitted beside others
    admitted: bool = False

    @property
    def model(self) -> bool:
        return self.sizer is not None


class LaneGate:
    """The lanes' rule. A model job alone is admitted at once, unsized; footprints are computed
    (by the thread of the job that asks) only when model jobs would run side by side."""

    def __init__(self, budget: Callable[[], api.MemoryBudget] | None = None) -> None:
        self._budget_of = budget or (lambda: api.memory_budget())  # looked up when first needed
        self._budget: api.MemoryBudget | None = None
        self._cond = threading.Condition()
        self._tickets: dict[int, Ticket] = {}  # unfinished, in submission order
        self._ids = itertools.count(1)

    def ticket(self, key: str | None, sizer: Sizer | None) -> Ticket:
        with self._cond:
            ticket = Ticket(next(self._ids), key, sizer)
            self._tickets[ticket.id] = ticket
            return ticket

    def admit(self, ticket: Ticket, cancel: CancelToken, on_wait: WaitCallback) -> api.JobFootprint | None:
        """Block until ``ticket`` may run; returns the footprint it runs with (None: its own)."""
        said: tuple[str, tuple[int, ...]] | None = None
        while True:
            with self._cond:
                if cancel.cancelled:
                    raise JobCancelled("cancelled before it started")
                decision = self._decide(ticket)
                if decision is not _SIZE:
                    chosen, reason, blockers = decision
                    if not blockers:
                        ticket.admitted, ticket.footprint = True, chosen
                        return chosen
                    if (reason, blockers) != said:
                        said = (reason, blockers)
                        on_wait(reason, blockers)
                    self._cond.wait(POLL_S)
                    continue
                unsized = [t for t in self._tickets.values() if t.model and t.options is None
                           and (t is ticket or t.admitted)]
            self._size(unsized)

    def release(self, ticket: Ticket) -> None:
        with self._cond:
            self._tickets.pop(ticket.id, None)
            self._cond.notify_all()

    def _size(self, tickets: list[Ticket]) -> None:
        """Footprints and the budget, computed outside the lock (they may read files, import torch)."""
        if self._budget is None:
            budget = self._budget_of()
            with self._cond:
                self._budget = budget
        for ticket in tickets:
            try:
                options = list(ticket.sizer()) if ticket.sizer is not None else []
            except Exception:  # the job meets the same problem itself and reports it to the user
                log.warning("Could not estimate the memory of job %s; it is counted as none", ticket.id,
                            exc_info=True)
                options = []
            with self._cond:
                ticket.options = options

    def _decide(self, ticket: Ticket):
        """(the footprint, why it waits, the ids it waits for) — no ids: it may start now — or
        :data:`_SIZE` when footprints must be computed first."""
        earlier = []
        for other in self._tickets.values():
            if other.id == ticket.id:
                break
            earlier.append(other)
        same_key = tuple(o.id for o in earlier if ticket.key is not None and o.key == ticket.key)
        if same_key:
            holding = tuple(i for i in same_key if self._tickets[i].admitted)
            return None, "", holding or same_key[:1]
        running = [o for o in self._tickets.values() if o.admitted and o.model]
        if not ticket.model or not running:
            return None, "", ()
        if self._budget is None or ticket.options is None or any(o.options is None for o in running):
            return _SIZE
        if not ticket.options:  # cannot be sized: it starts, and fails or not on its own
            return None, "", ()
        beside = [f for o in running if (f := o.footprint or (o.options[0] if o.options else None))]
        reason = ""
        for footprint in ticket.options:
            fits, why = api.fits_together([*beside, footprint], self._budget)
            if fits:
                return footprint, "", ()
            reason = reason or why
        return None, reason, tuple(o.id for o in running)
