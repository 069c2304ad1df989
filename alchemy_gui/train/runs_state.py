"""The previous run the user picked in the Train area: its details (loss curve, previews,
settings), renaming and deleting it. Owned by :class:`~alchemy_gui.train.state.TrainState`
(``train_state.picked_run``); every disk read runs as a job as a light job of the window's job list.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_engine.api import RunInfo
from alchemy_gui.common.binding import Property
from alchemy_gui.common.job_list import JobFailure, JobKind, JobList

SAMPLE_THUMBNAIL = 112
MAX_SAMPLES = 12  # the newest ones; the folder has them all


@dataclass(frozen=True)
class RunDetails:
    run: RunInfo
    curve: tuple[tuple[int, float], ...]  # (step, smoothed loss) from loss.csv
    samples: tuple[tuple[str, QImage], ...]  # (file name, thumbnail), in step order
    settings: dict[str, Any] | None  # the run's train_request.json; None when damaged
    problem: str = ""
    scores: tuple[dict[str, Any], ...] = ()  # scores.csv rows (step, dino, clip_t, ...), step order
    best_step: int | None = None  # the scored step with the highest DINO + CLIP-T
    checkpoints: tuple[int, ...] = ()  # steps of the kept checkpoints (each can be exported)


def _details_job(run_dir: Path, progress, cancel) -> RunDetails:
    found = api.describe_run(run_dir)
    thumbs = []
    for path in found["samples"][-MAX_SAMPLES:]:
        image = QImage(str(path))  # QImage (unlike QPixmap) may be made off the UI thread
        if not image.isNull():
            image = image.scaled(QSize(SAMPLE_THUMBNAIL, SAMPLE_THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        thumbs.append((path.name, image))
    problem = found["problem"]
    try:
        scores = tuple(api.read_scores(run_dir))
    except (ValueError, KeyError, TypeError) as exc:  # a damaged scores.csv: the rest still shows
        scores, problem = (), "\n".join(filter(None, [problem, f"scores.csv cannot be read ({exc})"]))
    return RunDetails(found["run"], tuple(found["curve"]), tuple(thumbs), found["settings"], problem,
                      scores=scores, best_step=api.best_scored_step(list(scores)),
                      checkpoints=tuple(api.kept_checkpoint_steps(run_dir)))


@dataclass(frozen=True)
class _Export:
    run_dir: Path  # <project>/runs/<id>
    step: int


def _export_job(request: _Export, progress, cancel) -> tuple[Path, Path]:
    return api.export_checkpoint_lora(request.run_dir.parent.parent, request.run_dir.name, request.step)


@dataclass(frozen=True)
class _Rename:
    run_dir: Path
    name: str


def _rename_job(request: _Rename, progress, cancel) -> str:
    return api.rename_run(request.run_dir, request.name)


@dataclass(frozen=True)
class _Delete:
    project: api.Project
    run_id: str


def _delete_job(request: _Delete, progress, cancel) -> Path:
    return api.delete_run(request.project, request.run_id)


class PickedRun(QObject):
    """``selected`` run and its ``details``; ``changed`` fires when a run was renamed or deleted."""

    selected_changed = Signal(object)  # RunInfo or None
    details_changed = Signal(object)  # RunDetails or None (none selected, or still loading)
    message_changed = Signal(str)  # the outcome of the last rename or delete ("" when none)
    changed = Signal()  # the run list on disk changed: reload it
    failed = Signal(str, object)  # title, JobFailure

    selected = Property(None, same=operator.is_)
    details = Property(None, same=operator.is_)
    message = Property("")

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs

    def select(self, run: RunInfo | None) -> None:
        """Show ``run``'s details (loaded as a job); None clears them."""
        if run is not None and self.selected is not None and run.path == self.selected.path \
                and self.details is not None and self.details.run == run:
            return
        self.selected = run
        self.details = None
        if run is not None:
            worker = self.jobs.submit(_details_job, Path(run.path), "read run")
            worker.succeeded.connect(self._on_details)
            worker.failed.connect(lambda failure: self.failed.emit("Could not read the run", failure))

    def rename(self, run: RunInfo, name: str) -> None:
        worker = self.jobs.submit(_rename_job, _Rename(Path(run.path), name), "rename run")
        worker.succeeded.connect(lambda saved: self._done(f"Renamed to “{saved or run.run_id}”."))
        worker.failed.connect(lambda failure: self._failed("Could not rename the run", failure))

    def delete(self, project: api.Project, run: RunInfo) -> None:
        worker = self.jobs.submit(_delete_job, _Delete(project, run.run_id), "delete run")
        worker.succeeded.connect(lambda trash: self._done(f"Moved run “{run.display_name}” to {trash}."))
        worker.failed.connect(lambda failure: self._failed("Could not delete the run", failure))

    def export_step(self, run: RunInfo, step: int) -> None:
        """Write the LoRA of ``run``'s kept checkpoint at ``step`` (runs/<id>/exports/step-N/)."""
        worker = self.jobs.submit(_export_job, _Export(Path(run.path), step), "export LoRA", kind=JobKind.EXPORT)
        worker.succeeded.connect(lambda paths: self._exported(step, paths))
        worker.failed.connect(lambda failure: self._failed("Could not export the LoRA", failure))

    def _exported(self, step: int, paths: tuple[Path, Path]) -> None:
        self.message = f"Exported the LoRA of step {step}: {paths[0]} (kohya layout: {paths[1].name})."

    @Slot(object)
    def _on_details(self, details: RunDetails) -> None:
        if self.selected is not None and Path(details.run.path) == Path(self.selected.path):  # else: stale
            self.details = details

    def _done(self, message: str) -> None:
        self.message = message
        self.changed.emit()

    def _failed(self, title: str, failure: JobFailure) -> None:
        self.message = failure.message
        self.failed.emit(title, failure)
        self.changed.emit()
