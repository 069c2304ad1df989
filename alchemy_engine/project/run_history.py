"""A previous training run in detail: its loss curve, preview images and settings; renaming and
deleting it. Reads only small files (no torch), so front-ends call these on a worker thread.

A run's display name lives in ``runs/<id>/run_name.json`` (the id, which names the folder and
sorts runs by start time, never changes). Deleting moves the folder to ``<project>/trash/runs/``:
nothing is destroyed, and a run that is training (its ``runs/<id>/.lock`` is held) is refused.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from alchemy_engine.atomic import atomic_write_json, make_dirs, remove_quietly
from alchemy_engine.errors import InvalidRequest, ProjectError
from alchemy_engine.project.locks import RUN_LOCK_FILE
from alchemy_engine.project.runs import LOSS_FILE, NAME_FILE, REQUEST_FILE, SAMPLES_DIR
from alchemy_engine.project.schema import locked
from alchemy_engine.safe_read import read_json

MAX_NAME = 80
MAX_CURVE_POINTS = 2000
TRASH_DIR = "trash"


def run_dir_of(project: Any, run_id: str) -> Path:
    """``<project>/runs/<run_id>``, refusing ids that are not a plain folder name there."""
    if not run_id or Path(run_id).name != run_id or run_id.startswith("."):
        raise InvalidRequest(f"{run_id!r} is not a run id; use one of `project show`'s runs.")
    folder = Path(project.runs_dir) / run_id
    if not (folder / REQUEST_FILE).is_file():
        raise InvalidRequest(f"Project {project.name!r} has no run {run_id!r}; it may have been deleted. "
                             "Reload the run list.")
    return folder


def read_loss_curve(run_dir: Path) -> list[tuple[int, float]]:
    """``(step, smoothed loss)`` rows of ``loss.csv`` (thinned to at most MAX_CURVE_POINTS)."""
    path = Path(run_dir) / LOSS_FILE
    if not path.is_file():
        return []
    points = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = line.split(",")
        if len(cells) >= 3 and cells[0].isdigit():
            try:
                points.append((int(cells[0]), float(cells[2])))
            except ValueError:
                continue  # a half-written last row of a run that was killed
    stride = max(1, -(-len(points) // MAX_CURVE_POINTS))
    thinned = points[::stride]
    if points and thinned[-1] != points[-1]:
        thinned.append(points[-1])
    return thinned


def run_samples(run_dir: Path) -> list[Path]:
    """The run's preview images (``samples/step-*.png``), in step order."""
    folder = Path(run_dir) / SAMPLES_DIR
    return sorted(folder.glob("step-*.png")) if folder.is_dir() else []


def run_settings(run_dir: Path) -> dict[str, Any]:
    """The run's ``train_request.json`` as a dict of TrainRequest fields (what Resume trains with)."""
    def damaged(detail: str) -> InvalidRequest:
        return InvalidRequest(f"run {Path(run_dir).name}: its {REQUEST_FILE} is damaged ({detail}). "
                              "Its settings cannot be shown; start a new run.")

    data = read_json(Path(run_dir) / REQUEST_FILE, what="training request", damaged=damaged,
                     error=InvalidRequest)
    if not isinstance(data, dict):
        raise damaged("not a JSON object")
    return data


def rename_run(run_dir: Path, name: str) -> str:
    """Give a run a display name (empty: back to its id). Returns the name saved."""
    text = " ".join(str(name).split())
    if len(text) > MAX_NAME:
        raise InvalidRequest(f"A run name is at most {MAX_NAME} characters; this one has {len(text)}. "
                             "Use a shorter name.")
    run_dir = Path(run_dir)
    if not (run_dir / REQUEST_FILE).is_file():
        raise InvalidRequest(f"There is no run at {run_dir} any more. Reload the run list.")
    if text:
        atomic_write_json(run_dir / NAME_FILE, {"name": text}, then="rename the run again")
    else:
        remove_quietly(run_dir / NAME_FILE)
    return text


def delete_run(project: Any, run_id: str) -> Path:
    """Move ``runs/<run_id>`` to ``<project>/trash/runs/<run_id>-<time>/`` and return that path;
    refused (ProjectError) while the run trains, in this process or another."""
    from alchemy_engine.atomic import FileLock

    run_dir = run_dir_of(project, run_id)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = Path(project.root) / TRASH_DIR / "runs" / f"{run_id}-{stamp}-{uuid.uuid4().hex[:4]}"
    with locked(Path(project.root)):
        lock = FileLock(run_dir / RUN_LOCK_FILE, timeout=0)
        if not lock.try_acquire():
            holder = FileLock.read_description(lock.path) or "another process"
            raise ProjectError(f"Run {run_id} is being trained by {holder}; stop it first, then delete it.")
        try:
            make_dirs(target.parent, then="delete the run again")
            try:
                os.rename(run_dir, target)
            except OSError as exc:
                raise ProjectError(f"Cannot move {run_dir} to {target} ({exc}). Close anything using "
                                   "the run folder and try again.") from exc
        finally:
            lock.release()
    return target


def describe_run(run_dir: Path) -> dict[str, Any]:
    """Everything a run's detail view shows, as plain data (``settings`` None when damaged)."""
    from alchemy_engine.project.runs import read_run

    try:
        settings: dict[str, Any] | None = run_settings(run_dir)
        problem = ""
    except InvalidRequest as exc:
        settings, problem = None, str(exc)
    return {"run": read_run(Path(run_dir)), "curve": read_loss_curve(run_dir), "samples": run_samples(run_dir),
            "settings": settings, "problem": problem}


__all__ = ["delete_run", "describe_run", "read_loss_curve", "rename_run", "run_dir_of", "run_samples",
           "run_settings"]
