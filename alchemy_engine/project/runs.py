"""The layout of a run folder ``runs/<id>/``, and reading previous runs without loading any model.

This module owns the file names the trainer writes (the trainer's modules import them from here)
and imports no torch, so the GUI can list runs cheaply: :func:`list_runs` reads only small files,
``train_request.json``, the names of ``checkpoints/step-*`` folders and the tail of ``loss.csv``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alchemy_engine.atomic import remove_quietly

log = logging.getLogger(__name__)

REQUEST_FILE = "train_request.json"
LOSS_FILE = "loss.csv"
LORA_FILE = "lora.safetensors"
KOHYA_FILE = "lora_kohya.safetensors"
CHANGES_FILE = "settings_changed.json"  # settings the engine chose or changed, and why
NAME_FILE = "run_name.json"  # {"name": ...}: the display name the user gave the run
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
CHECKPOINT_STATE_FILE = "state.json"
LOSS_TAIL_BYTES = 4096


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>``: sorts by start time, unique without a lock."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunInfo:
    """One ``runs/<id>/`` folder as the run list shows it."""

    run_id: str
    path: Path
    steps_done: int
    steps_total: int | None
    has_lora: bool
    checkpoint_step: int | None  # newest complete checkpoint, None if there is none
    final_loss: float | None  # the last smoothed loss in loss.csv
    problem: str = ""  # why the folder could not be read fully (shown in the list, not raised)
    name: str = ""  # the display name the user gave it ("" when none: the id is shown)
    started: datetime | None = None  # when the run started (from its id, else the folder's time)

    @property
    def display_name(self) -> str:
        return self.name or self.run_id

    @property
    def label(self) -> str:
        """``name · steps · final loss · date``, as run lists show a run."""
        loss = f"loss {self.final_loss:.4f}" if self.final_loss is not None else "no loss yet"
        total = f"/{self.steps_total}" if self.steps_total and self.steps_done != self.steps_total else ""
        date = self.started.strftime("%Y-%m-%d %H:%M") if self.started else "unknown date"
        return f"{self.display_name} · {self.steps_done}{total} steps · {loss} · {date}"

    @property
    def resumable(self) -> bool:
        return not self.has_lora and self.checkpoint_step is not None

    @property
    def status(self) -> str:
        if self.problem:
            return self.problem
        if self.has_lora:
            return "finished"
        if self.checkpoint_step is not None:
            return f"stopped at step {self.checkpoint_step} — can resume"
        return "stopped before its first checkpoint"


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run folder under ``runs_dir``, newest first (ids start with a timestamp)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    # Hidden folders are a run folder still being made, or left half-made by a killed process.
    folders = [p for p in runs_dir.iterdir()
               if p.is_dir() and not p.name.startswith(".") and (p / REQUEST_FILE).is_file()]
    return [read_run(p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def read_run(run_dir: Path) -> RunInfo:
    problem = ""
    total = None
    try:
        total = int(json.loads((run_dir / REQUEST_FILE).read_text(encoding="utf-8"))["steps"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("run %s: cannot read %s: %s", run_dir.name, REQUEST_FILE, exc)
        problem = f"{REQUEST_FILE} is damaged"
    checkpoint = _newest_checkpoint(run_dir / CHECKPOINTS_DIR)
    last_step, loss = _loss_tail(run_dir / LOSS_FILE)
    has_lora = (run_dir / LORA_FILE).is_file()
    done = max(last_step or 0, checkpoint or 0)
    return RunInfo(run_id=run_dir.name, path=run_dir, steps_done=done, steps_total=total, has_lora=has_lora,
                   checkpoint_step=checkpoint, final_loss=loss, problem=problem, name=read_run_name(run_dir),
                   started=_started(run_dir))


def read_run_name(run_dir: Path) -> str:
    """The display name saved by :func:`~alchemy_engine.project.run_history.rename_run`; "" if none."""
    path = Path(run_dir) / NAME_FILE
    if not path.is_file():
        return ""
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("run %s: cannot read %s: %s", Path(run_dir).name, NAME_FILE, exc)
        return ""
    return name if isinstance(name, str) else ""


def _started(run_dir: Path) -> datetime | None:
    try:
        return datetime.strptime(run_dir.name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        try:
            return datetime.fromtimestamp(run_dir.stat().st_mtime)
        except OSError:
            return None


def _newest_checkpoint(folder: Path) -> int | None:
    steps = []
    if folder.is_dir():
        for child in folder.iterdir():
            suffix = child.name[len(CHECKPOINT_PREFIX):]
            if child.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() and (child / CHECKPOINT_STATE_FILE).is_file():
                steps.append(int(suffix))
    return max(steps) if steps else None


def _loss_tail(csv_path: Path) -> tuple[int | None, float | None]:
    """(step, smoothed loss) of the last complete row of ``loss.csv``; reads at most a few KiB."""
    if not csv_path.is_file():
        return None, None
    with open(csv_path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - LOSS_TAIL_BYTES))
        tail = handle.read().decode("utf-8", errors="replace")
    for line in reversed(tail.strip().splitlines()):
        cells = line.split(",")
        if len(cells) >= 3 and cells[0].isdigit():
            try:
                return int(cells[0]), float(cells[2])
            except ValueError:
                continue  # a row cut by the tail window or a partial write: try the one before
    return None, None


def list_runs_job(runs_dir: Path, progress, cancel) -> tuple[Path, list[RunInfo]]:
    """As a job ``(request, progress, cancel)``: the folder it read, and its runs."""
    return Path(runs_dir), list_runs(runs_dir)


def lora_runs(runs_dir: Path) -> list[Path]:
    """The ``runs/<id>/lora.safetensors`` files of a project, newest first."""
    found = Path(runs_dir).glob(f"*/{LORA_FILE}")
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.parent.name), reverse=True)


STALE_STAGING_S = 3600  # a run folder is staged in well under a second; an hour-old one was killed


def remove_stale_staging(runs_dir: Path, older_than_s: float = STALE_STAGING_S) -> list[Path]:
    """Delete hidden run folders that a killed process left half-made (``atomic_dir`` staging).

    Only those older than ``older_than_s``: another process may be staging its run right now."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    cutoff = time.time() - older_than_s
    stale = [p for p in runs_dir.glob(".tmp-*") if p.is_dir() and p.stat().st_mtime < cutoff]
    for path in stale:
        log.info("removing a run folder left half-made: %s", path)
        remove_quietly(path)
    return stale

