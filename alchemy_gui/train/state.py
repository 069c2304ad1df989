"""UI state of the Train area: the settings of the next run, the running job and its progress, the
project's previous runs and the base models found on this computer.

Widgets bind to its observable properties (``<name>_changed`` fires only when a value really
changes; see :mod:`alchemy_gui.common.binding`) and call one method per user action. Every job (training, memory estimate, model search, run list) goes
through the window's :class:`~alchemy_gui.common.job_list.JobList`, and whether a training run is
running, for which project and how far it got is read from that list's record. Nothing here
touches torch; its only disk access on the UI thread is through the open project's photo records
(``photo_count`` and ``has_masks`` look whether each reference photo has a mask file).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_engine.api import TrainRequest, list_runs_job
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.jobs import Progress, Stage
from alchemy_gui.common.binding import Property
from alchemy_gui.common.images import previews_as_qimages
from alchemy_gui.common.job_list import Job, JobFailure, JobKind, JobList, JobState, same_project
from alchemy_gui.common.presets_model import PresetChoice
from alchemy_gui.common.request_settings import settings_class
from alchemy_gui.train.jobs import (
    TriedCheckpoint,
    estimate_job,
    find_models_job,
    run_settings_job,
    try_checkpoint_job,
)
from alchemy_gui.train.runs_state import PickedRun

NOT_SETTINGS = ("project", "resume_run")
FEW_PHOTOS = 3
TrainSettings = settings_class(TrainRequest, exclude=NOT_SETTINGS)


def default_settings() -> dict[str, Any]:
    """TrainRequest's own defaults (the settings class starts at them): the numbers live in the dataclass."""
    return dict(TrainSettings.initial)


@dataclass(frozen=True)
class Status:
    """One line under the Start button. ``kind``: info, done, stopped or error."""

    text: str = ""
    kind: str = "info"
    detail: str = ""  # a traceback to fold away, for crashes only
    resumable_run: str | None = None  # the run that Resume continues


class TrainState(QObject):
    """The Train area's view-model. ``settings`` holds the next run's TrainRequest fields, each an
    observable property starting at the request's default; the rest are read-mostly properties
    that the widgets bind to."""

    project_changed = Signal(object)  # Project or None
    error_changed = Signal(str)  # why the settings cannot be trained; "" when they can
    models_changed = Signal(object)  # tuple of {name, path, kind, note} from find_models()
    running_changed = Signal(bool)
    progress_changed = Signal(object)  # the last Progress of the running job
    loss_history_changed = Signal(object)  # tuple of (step, smoothed loss) of the running job
    preview_changed = Signal(object)  # QImage: the newest sample image (null when none)
    runs_changed = Signal(object)  # tuple of RunInfo, newest first
    estimate_changed = Signal(str)  # the memory estimate of the current settings; "" when stale
    status_changed = Signal(object)  # Status
    notes_changed = Signal(object)  # tuple of str: settings the engine changed for the running job
    has_masks_changed = Signal(bool)  # some reference photo of the project has a subject mask
    failed = Signal(str, object)  # title, JobFailure (for a window that wants a dialog too)
    checkpoint_ready = Signal(object)  # TriedCheckpoint: offered in the Insert tab's LoRA list

    project = Property(None, same=operator.is_)
    error = Property("")
    models = Property(())
    running = Property(False)
    progress = Property(None, same=operator.is_)
    loss_history = Property(())
    preview = Property(QImage())
    runs = Property(())
    estimate = Property("")
    status = Property(Status())
    notes = Property(())
    has_masks = Property(False)

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.settings = TrainSettings(self)
        self.presets = PresetChoice("train", self.settings, self)
        self.models_folder = ""
        self._models_loaded = False
        self._run_id: str | None = None  # the running job's run folder, once known
        # The running (or last) job's own curve, preview and notes: shown only while its project
        # is the open one.
        self._job: dict[str, Any] = {"loss_history": (), "preview": QImage(), "notes": ()}
        self.picked_run = PickedRun(jobs, self)
        jobs.job_added.connect(self._on_job_changed)
        jobs.job_changed.connect(self._on_job_changed)
        self.picked_run.changed.connect(self.refresh_runs)
        self.settings.changed.connect(self._on_settings_changed)
        self._revalidate()

    @property
    def photo_count(self) -> int:
        return len(self.project.reference_photos()) if self.project is not None else 0

    @property
    def job(self) -> Job | None:
        """The newest training job of the job list (running, queued or the last one)."""
        trains = [j for j in self.jobs.jobs if j.kind is JobKind.TRAIN]
        return trains[-1] if trains else None

    @property
    def active_run_id(self) -> str | None:
        """The run folder the running job writes (None when idle or before it has one)."""
        return self._run_id if self.running else None

    @property
    def can_start(self) -> bool:
        return self.project is not None and not self.running and not self.error

    def request(self, **overrides: Any) -> TrainRequest:
        """The TrainRequest of the current settings (not validated; see :attr:`error`)."""
        slug = self.project.slug if self.project is not None else ""
        return TrainRequest(project=slug, **{**self.settings.values(), **overrides})

    # --- user actions ---------------------------------------------------------------------------
    def set_project(self, project) -> None:
        if project is self.project:
            return
        reread = same_project(project, self.project)  # e.g. photos or masks changed: keep the rest
        self.project = project
        self.has_masks = project is not None and any(p.mask_path for p in project.reference_photos())
        if reread:
            self._revalidate()
            return
        self.runs = ()
        self.estimate = ""
        self.picked_run.select(None)
        if not self.running:
            self.status = Status()
        self._show_job()
        self._revalidate()
        if project is not None:
            self.refresh_runs()
            if not self._models_loaded:
                self.refresh_models()

    def set_field(self, name: str, value: Any) -> None:
        """Set one TrainRequest setting (KeyError for a name that is not one)."""
        self.settings.set(name, value)

    def reset_settings(self) -> None:
        """Back to TrainRequest's defaults (the chosen base model is kept)."""
        self.settings.reset(keep=("model",))

    def add_model(self, path: str) -> None:
        """A model the user browsed to: listed first and chosen (checked when training starts)."""
        entry = {"name": Path(path).name or path, "path": path, "kind": "browsed", "note": path}
        self.models = (entry,) + tuple(m for m in self.models if m["path"] != path)
        self.settings.model = path

    def start(self) -> None:
        if self.can_start:
            self._submit_training(self.request(), run_id=None)

    def resume(self, run_id: str) -> None:
        """Continue ``run_id`` from its newest checkpoint, with the settings saved in it; the form
        shows those settings (read from the run before the training job starts)."""
        if self.project is not None and not self.running and run_id:
            reader = self.jobs.submit(run_settings_job, Path(self.project.runs_dir) / run_id, "read run settings",
                                      project=self.project)
            reader.succeeded.connect(self._on_resumed_run_read)
            reader.failed.connect(self._on_side_job_failed)
            self._submit_training(TrainRequest(project=self.project.slug, resume_run=run_id), run_id=run_id)

    def _on_resumed_run_read(self, found: tuple[dict[str, Any], list[tuple[int, float]]]) -> None:
        saved, curve = found
        self.show_run_settings(saved)
        newer = self._job["loss_history"]  # points the resumed run reported before this read ended
        first = newer[0][0] if newer else None
        self._job["loss_history"] = tuple(p for p in curve if first is None or p[0] < first) + tuple(newer)
        self._show_job()

    def show_run_settings(self, saved: dict[str, Any]) -> None:
        """Put a run's saved TrainRequest fields into the form (unknown or absent ones are left)."""
        names = set(self.settings.names())
        for name, value in saved.items():
            if name in names:
                self.settings.set(name, tuple(value) if isinstance(value, list) else value)

    def cancel(self) -> None:
        """Ask the running job to stop; the engine saves a checkpoint first."""
        job = self.job
        if job is not None and not job.done:
            job.cancel()
            self.status = Status("Stopping after this step and saving a checkpoint…"
                                 if job.state is JobState.RUNNING else "Cancelled before it started.")

    def try_checkpoint(self) -> None:
        """Export the newest kept checkpoint of the running run (or of the selected one) as a LoRA
        and offer it on the Insert tab; a light job, beside the training run."""
        selected = self.picked_run.selected
        run_id = self.active_run_id if self._shows(self.job) and self.running else None
        run_id = run_id or (selected.run_id if selected is not None and selected.checkpoint_step else None)
        if self.project is None or run_id is None:
            self.status = Status("Start training first, or select a run with a checkpoint.", "error")
            return
        job = self.jobs.submit(try_checkpoint_job, Path(self.project.runs_dir) / run_id, "try checkpoint",
                               kind=JobKind.EXPORT, project=self.project)
        job.succeeded.connect(self._on_checkpoint_exported)
        job.failed.connect(self._on_side_job_failed)

    def _on_checkpoint_exported(self, tried: TriedCheckpoint) -> None:
        self.status = Status(f"Step {tried.step} exported: the Insert tab offers it as "
                             f"“{tried.run_id} · step {tried.step} (checkpoint)”.", "done")
        self.checkpoint_ready.emit(tried)

    def estimate_memory(self) -> None:
        if self.project is None or self.error:
            return
        self.estimate = "Estimating…"
        worker = self.jobs.submit(estimate_job, self.request(), "estimate memory", kind=JobKind.ESTIMATE,
                                  project=self.project)
        worker.succeeded.connect(self._on_estimated)
        worker.failed.connect(self._on_estimate_failed)

    def refresh_runs(self) -> None:
        if self.project is not None:
            worker = self.jobs.submit(list_runs_job, Path(self.project.runs_dir), "list runs", project=self.project)
            worker.succeeded.connect(self._on_runs)
            worker.failed.connect(self._on_side_job_failed)

    def refresh_models(self) -> None:
        worker = self.jobs.submit(find_models_job, None, "find models", kind=JobKind.MODELS)
        worker.succeeded.connect(self._on_models)
        worker.failed.connect(self._on_side_job_failed)

    # --- job results ----------------------------------------------------------------------------
    def _submit_training(self, request: TrainRequest, run_id: str | None) -> None:
        self._run_id = run_id
        self._job = {"loss_history": (), "preview": QImage(), "notes": ()}
        self.status = Status("Resuming…" if run_id else "Starting…")
        job = self.jobs.submit(previews_as_qimages(api.train), request, "train", kind=JobKind.TRAIN,
                               project=self.project)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_trained)
        job.failed.connect(self._on_train_failed)

    def _on_job_changed(self, job: Job) -> None:
        """The job list is the one record of training: running, its progress, what it waits for."""
        if job.kind is not JobKind.TRAIN:
            return
        self.running = bool(self.jobs.active(JobKind.TRAIN))
        if job is self.job:
            self._show_job()
            waits = job.wait_text()
            if waits and self._shows(job):
                self.status = Status(f"Training {waits}.")
            elif job.state is JobState.RUNNING and self.status.text.startswith("Training waits"):
                self.status = Status()
        self._revalidate()

    def _shows(self, job: Job | None) -> bool:
        return job is not None and job.project is not None and same_project(job.project, self.project)

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        job = self._job
        if event.run_id:
            self._run_id = event.run_id
        if event.stage == Stage.NOTE:  # a setting the engine changed: a note, not a stage
            job["notes"] = job["notes"] + (event.message,)
            self._show_job()
            return
        if event.stage != Stage.WAITING and self.status.text in ("Starting…", "Resuming…"):
            self.status = Status()  # the progress view says what happens from here on
        # The engine logs losses in batches (about twice a second): a point per new value, not per event.
        history = job["loss_history"]
        last = history[-1] if history else None
        if event.loss_smoothed is not None and (last is None or (event.step > last[0] and event.loss_smoothed != last[1])):
            job["loss_history"] = history + ((event.step, float(event.loss_smoothed)),)
        if event.preview is not None:  # a QImage already (made on the job thread)
            job["preview"] = event.preview
        self._show_job()

    def _show_job(self) -> None:
        """The job's progress, curve, preview and notes when it trains the open project; else none."""
        job = self.job
        shown = job if self._shows(job) else None
        waiting = Progress(Stage.WAITING, message=shown.wait_text() or "starting") \
            if shown is not None and shown.last_progress is None and not shown.done else None
        self.progress = (shown.last_progress or waiting) if shown is not None else None
        self.loss_history = self._job["loss_history"] if shown is not None else ()
        self.preview = self._job["preview"] if shown is not None else QImage()
        self.notes = self._job["notes"] if shown is not None else ()

    @Slot(object)
    def _on_trained(self, result) -> None:
        self._finish()
        smoothed = f", smoothed loss {self.loss_history[-1][1]:.4f}" if self.loss_history else ""
        lines = [f"Done: {result.steps} steps{smoothed}. The LoRA files are in {result.run_dir}:",
                 f"{result.lora.name} (diffusers) · {result.lora_kohya.name} (A1111 / ComfyUI)"]
        lines += [f"Note: {w}" for w in result.warnings]
        self.status = Status("\n".join(lines), "done") if self._shows(self.job) else Status()

    @Slot(object)
    def _on_train_failed(self, failure: JobFailure) -> None:
        step = self.progress.step if self.progress is not None and self.progress.total else 0
        self._finish()
        if failure.cancelled and self._run_id:
            # Resume acts on the open project: offer it only if that is the one that was training.
            here = self._shows(self.job)
            status = Status(f"Stopped at step {step} — Resume continues it.", "stopped",
                            resumable_run=self._run_id if here else None)
        elif failure.cancelled:
            status = Status("Stopped before the first step; nothing was saved.", "stopped")
        else:
            status = Status(f"Training failed: {failure.message}", "error", failure.detail)
            self.failed.emit("Training failed", failure)
        self.status = status

    def _finish(self) -> None:
        self._revalidate()
        self.refresh_runs()

    @Slot(object)
    def _on_estimated(self, text: str) -> None:
        self.estimate = text

    @Slot(object)
    def _on_estimate_failed(self, failure: JobFailure) -> None:
        self.estimate = f"Could not estimate: {failure.message}"

    @Slot(object)
    def _on_runs(self, found: tuple[Path, list]) -> None:
        runs_dir, runs = found
        if self.project is not None and Path(self.project.runs_dir) == runs_dir:  # else: a stale answer
            self.runs = tuple(runs)
            newest = runs[0] if runs else None
            if newest is not None and newest.resumable and not self.running and not self.status.text:
                # e.g. after quitting during a run: the banner comes back with the project
                self.status = Status(f"Stopped at step {newest.checkpoint_step} — Resume continues it.", "stopped",
                                     resumable_run=newest.run_id)
            chosen = self.picked_run.selected
            if chosen is not None:  # follow a rename; forget a deleted run
                self.picked_run.select(next((r for r in runs if r.path == chosen.path), None))

    @Slot(object)
    def _on_models(self, found: tuple[list[dict], str]) -> None:
        entries, self.models_folder = found
        browsed = [m for m in self.models if m["kind"] == "browsed"]
        self._models_loaded = True
        self.models = tuple(browsed + [e for e in entries if e["path"] not in {b["path"] for b in browsed}])
        if self.settings.model is None:  # None means "the first SDXL found" (demo in demo mode): show it
            real = [e for e in entries if e["kind"] not in ("demo", "unusable")]
            demo = [e for e in entries if e["kind"] == "demo"] if api.demo_mode() else []
            if real or demo:
                self.settings.model = (real or demo)[0]["path"]
        self._revalidate()

    @Slot(object)
    def _on_side_job_failed(self, failure: JobFailure) -> None:
        if not self.running:  # never hide the running job's status behind a side job's problem
            self.status = Status(failure.message, "error", failure.detail)
        self.failed.emit("Train area", failure)

    # --- helpers --------------------------------------------------------------------------------
    def _on_settings_changed(self, _name: str) -> None:
        self.estimate = ""  # a stale estimate is not shown
        self._revalidate()

    def _revalidate(self) -> None:
        self.error = self._validation_message()

    def _validation_message(self) -> str:
        if self.project is None:
            return ""
        try:
            self.request().validate()
        except InvalidRequest as exc:
            return str(exc)
        if self.settings.masked_loss and not self.has_masks:
            return ("Masked loss needs subject masks and no photo has one: make them on the Photos tab "
                    "(Auto-mask all), or turn Masked loss off.")
        if self.settings.model is None:
            if not self._models_loaded:
                return "Looking for SDXL models…"
            return (f"No SDXL model found. Put one into {self.models_folder or 'the models folder'}, "
                    "pick one with Browse…, or choose “demo” (random weights, noise images) to try the app.")
        return ""
