"""Loss bookkeeping and speed: ``loss.csv``, the smoothed loss, it/s and ETA.

Losses stay on the device until :meth:`LossLog.read`, which reads them all with one host sync; the
trainer reads about twice a second for the progress line, so the GPU is not stalled every step just to
print a number. Rows reach ``loss.csv`` (:meth:`LossLog.flush`) by step, never by the clock: every
:data:`WRITE_EVERY_STEPS` steps, at each checkpoint and at the end, so a run writes the same files at
the same points however fast the machine is (the fault-injection tests count the write points).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import torch

from alchemy_engine.atomic import append_text, atomic_write_text

HEADER = ("step", "loss", "loss_smoothed", "learning_rate")
SMOOTHING = 0.9
READ_EVERY_S = 0.5  # the progress line's loss: what is shown, never what is written
WRITE_EVERY_STEPS = 10


class LossLog:
    """Raw and exponentially smoothed (bias-corrected) loss per optimizer step, mirrored to CSV."""

    def __init__(self, csv_path: Path, then: str = "") -> None:
        self.csv_path = Path(csv_path)
        self.then = then  # what to do after a failed write (resume the run)
        self.ema = 0.0
        self.ema_weight = 0.0
        self.last: tuple[int, float, float] | None = None  # step, raw, smoothed
        self._pending: list[tuple[int, torch.Tensor, float]] = []
        self._unwritten: list[tuple[int, str, str, str]] = []  # rows read, not yet in loss.csv
        self._last_read = time.monotonic()

    def add(self, step: int, loss: torch.Tensor, learning_rate: float) -> None:
        self._pending.append((step, loss, learning_rate))

    def due(self) -> bool:
        """Time to :meth:`read` for the progress line (it writes nothing)."""
        return bool(self._pending) and time.monotonic() - self._last_read >= READ_EVERY_S

    @staticmethod
    def write_due(step: int) -> bool:
        return step % WRITE_EVERY_STEPS == 0

    def read(self) -> None:
        """The pending losses to the host (one sync): the smoothed loss and :attr:`last` follow."""
        self._last_read = time.monotonic()
        if not self._pending:
            return
        values = torch.stack([loss.float() for _, loss, _ in self._pending]).tolist()  # one sync
        for (step, _, lr), value in zip(self._pending, values):
            self.ema = SMOOTHING * self.ema + (1 - SMOOTHING) * value
            self.ema_weight = SMOOTHING * self.ema_weight + (1 - SMOOTHING)
            smoothed = self.ema / self.ema_weight
            self._unwritten.append((step, f"{value:.6g}", f"{smoothed:.6g}", f"{lr:.6g}"))
            self.last = (step, value, smoothed)
        self._pending.clear()

    def flush(self) -> None:
        """Read what is pending and append every row not yet written to ``loss.csv``."""
        self.read()
        if not self._unwritten:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if not self.csv_path.exists():
            writer.writerow(HEADER)
        writer.writerows(self._unwritten)
        self._unwritten.clear()
        append_text(self.csv_path, buffer.getvalue(), self.then)

    def state(self) -> dict:
        return {"ema": self.ema, "ema_weight": self.ema_weight, "last": self.last}

    def restore(self, state: dict, step: int) -> None:
        """Continue after a checkpoint at ``step``: forget rows written after it."""
        self.ema, self.ema_weight = state["ema"], state["ema_weight"]
        self.last = tuple(state["last"]) if state.get("last") else None
        if self.csv_path.exists():
            text = self.csv_path.read_bytes().decode("utf-8", errors="replace")
            kept = [HEADER] + [r for r in csv.reader(io.StringIO(text.replace("\0", ""))) if _row_step(r, step)]
            buffer = io.StringIO()
            csv.writer(buffer).writerows(kept)
            atomic_write_text(self.csv_path, buffer.getvalue(), self.then)


def _row_step(row: list[str], step: int) -> bool:
    """Keep a row of four numbers up to ``step``; a row cut by a crash or garbage is dropped."""
    if len(row) != len(HEADER) or not row[0].isdigit() or int(row[0]) > step:
        return False
    try:
        [float(cell) for cell in row[1:]]
    except ValueError:
        return False
    return True


class StepTimer:
    """it/s from a moving average of step times; the first step (warm-up, caching) is left out."""

    def __init__(self, total: int, start_step: int) -> None:
        self.total = total
        self.start_step = start_step
        self._t0: float | None = None
        self._s0 = start_step
        self.it_per_s: float | None = None

    def tick(self, step: int) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0, self._s0 = now, step
            return
        if step > self._s0 and now > self._t0:
            self.it_per_s = (step - self._s0) / (now - self._t0)

    def eta(self, step: int) -> float | None:
        return (self.total - step) / self.it_per_s if self.it_per_s else None
