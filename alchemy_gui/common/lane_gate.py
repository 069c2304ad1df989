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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from alchemy_engine import api
from alchemy_engine.errors import JobCancelled
from alchemy_engine.jobs import CancelToken

POLL_S = 0.1  # how often a waiting job looks at its cancel token

WaitCallback = Callable[[str, tuple[int, ...]], None]  # the reason, the ids of the jobs waited for


@dataclass
class Ticket:
    id: int
    key: str | None  # what the job must not share with an earlier one ("disk", a session's id)
    model: bool  # sized by its footprints and counted against the memory budget
    footprint: api.JobFootprint | None = field(default=None)  # the one it runs with, once admitted
    admitted: bool = False


class LaneGate:
    def __init__(self, budget: Callable[[], api.MemoryBudget] | None = None) -> None:
        self._budget_of = budget or (lambda: api.memory_budget())  # looked up when first needed
        self._budget: api.MemoryBudget | None = None
        self._cond = threading.Condition()
        self._tickets: dict[int, Ticket] = {}  # unfinished, in submission order
        self._ids = itertools.count(1)

    def ticket(self, key: str | None, model: bool) -> Ticket:
        with self._cond:
            ticket = Ticket(next(self._ids), key, model)
            self._tickets[ticket.id] = ticket
            return ticket

    def admit(self, ticket: Ticket, footprints: list[api.JobFootprint], cancel: CancelToken,
              on_wait: WaitCallback) -> api.JobFootprint | None:
        """Block until ``ticket`` may run; returns the footprint it runs with (None: unsized)."""
        budget = self.budget() if ticket.model and footprints else None
        said: tuple[str, tuple[int, ...]] | None = None
        with self._cond:
            while True:
                if cancel.cancelled:
                    raise JobCancelled("cancelled before it started")
                chosen, reason, blockers = self._decide(ticket, footprints, budget)
                if not blockers:
                    ticket.admitted, ticket.footprint = True, chosen
                    return chosen
                if (reason, blockers) != said:
                    said = (reason, blockers)
                    on_wait(reason, blockers)
                self._cond.wait(POLL_S)

    def release(self, ticket: Ticket) -> None:
        with self._cond:
            self._tickets.pop(ticket.id, None)
            self._cond.notify_all()

    def budget(self) -> api.MemoryBudget:
        if self._budget is None:
            self._budget = self._budget_of()
        return self._budget

    def _decide(self, ticket: Ticket, footprints: list[api.JobFootprint], budget: api.MemoryBudget | None
                ) -> tuple[api.JobFootprint | None, str, tuple[int, ...]]:
        """(the footprint, why it waits, the ids it waits for); no ids: it may start now."""
        earlier = []
        for other in self._tickets.values():
            if other.id == ticket.id:
                break
            earlier.append(other)
        same_key = tuple(o.id for o in earlier if ticket.key is not None and o.key == ticket.key)
        if same_key:
            holding = tuple(i for i in same_key if self._tickets[i].admitted)
            return None, "", holding or same_key[:1]
        if not ticket.model or not footprints or budget is None:
            return (footprints[0] if footprints else None), "", ()
        running = [o for o in self._tickets.values() if o.admitted and o.model and o.footprint is not None]
        reason = ""
        for footprint in footprints:
            fits, why = api.fits_together([o.footprint for o in running] + [footprint], budget)
            if fits:
                return footprint, "", ()
            reason = reason or why
        return None, reason, tuple(o.id for o in running)
