"""UI state of the Train area: the settings of the next run, the running job and its progress, the
project's previous runs and the base models found on this computer.

Widgets bind to the ``<noun>_changed`` signals (emitted only when a value really changes) and call
one method per user action. Every job (training, memory estimate, model search, run list) goes
through the shared :class:`~alchemy_gui.common.workers.JobRunner`; nothing here touches torch or waits on
the disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_engine.api import RunInfo, TrainRequest, list_runs_job
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.jobs import Progress
from alchemy_gui.common.images import qimage_from_pil
from alchemy_gui.common.workers import JobFailure, JobRunner

NOT_SETTINGS = ("project", "resume_run")
FEW_PHOTOS = 3


def default_settings() -> dict[str, Any]:
    """TrainRequest's own defaults: the numbers live in one place, the dataclass."""
    return {f.name: f.default for f in dataclasses.fields(TrainRequest) if f.name not in NOT_SETTINGS}


@dataclass(frozen=True)
class Status:
    """One line under the Start button. ``kind``: info, done, stopped or error."""

    text: str = ""
    kind: str = "info"
    detail: str = ""  # a traceback to fold away, for crashes only
    resumable_run: str | None = None  # the run that Resume continues


def _find_models_job(request: None, progress, cancel) -> tuple[list[dict], str]:
    from alchemy_engine.api import find_models

    inventory = find_models().to_dict()
    return inventory["sdxl"], inventory["folders"]["sdxl"]


def _estimate_job(request: TrainRequest, progress, cancel) -> str:
    estimate = api.estimate_memory(request)
    verdict = ("fits" if estimate.fits else
               "may NOT fit — lower resolution, rank or batch size, or tick “Fit to memory”")
    return f"{estimate.summary()}: {verdict}"


class TrainState(QObject):
    project_changed = Signal(object)  # Project or None
    settings_changed = Signal(dict)  # field name -> value (TrainRequest fields, less project/resume_run)
    error_changed = Signal(str)  # why the settings cannot be trained; "" when they can
    models_changed = Signal(list)  # [{name, path, kind, note}] from models.find_models()
    running_changed = Signal(bool)
    progress_changed = Signal(object)  # the last Progress of the running job
    loss_history_changed = Signal(list)  # [(step, smoothed loss)] of the running job
    preview_changed = Signal(QImage)  # the newest sample image (null when none)
    runs_changed = Signal(list)  # [RunInfo], newest first
    estimate_changed = Signal(str)  # the memory estimate of the current settings; "" when stale
    status_changed = Signal(object)  # Status
    failed = Signal(str, object)  # title, JobFailure (for a window that wants a dialog too)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._project = None
        self._settings = default_settings()
        self._error = ""
        self._models: list[dict] = []
        self._models_folder = ""
        self._models_loaded = False
        self._worker = None
        self._progress: Progress | None = None
        self._loss_history: list[tuple[int, float]] = []
        self._preview = QImage()
        self._runs: list[RunInfo] = []
        self._estimate = ""
        self._status = Status()
        self._run_id: str | None = None  # the running job's run folder, once known
        self._run_project = None  # the project the running (or last) job trains
        self._revalidate()

    # --- read-only views ------------------------------------------------------------------------
    project = property(lambda self: self._project)
    settings = property(lambda self: dict(self._settings))
    error = property(lambda self: self._error)
    models = property(lambda self: list(self._models))
    models_folder = property(lambda self: self._models_folder)
    running = property(lambda self: self._worker is not None)
    worker = property(lambda self: self._worker)
    progress = property(lambda self: self._progress)
    loss_history = property(lambda self: list(self._loss_history))
    preview = property(lambda self: self._preview)
    runs = property(lambda self: list(self._runs))
    estimate = property(lambda self: self._estimate)
    status = property(lambda self: self._status)

    @property
    def photo_count(self) -> int:
        return len(self._project.reference_photos()) if self._project is not None else 0

    @property
    def can_start(self) -> bool:
        return self._project is not None and not self.running and not self._error

    def request(self, **overrides: Any) -> TrainRequest:
        """The TrainRequest of the current settings (not validated; see :attr:`error`)."""
        slug = self._project.slug if self._project is not None else ""
        return TrainRequest(project=slug, **{**self._settings, **overrides})

    # --- user actions ---------------------------------------------------------------------------
    def set_project(self, project) -> None:
        if project is self._project:
            return
        self._project = project
        self._set("_runs", [], self.runs_changed)
        self._set("_estimate", "", self.estimate_changed)
        if not self.running:
            self._set("_status", Status(), self.status_changed)
        self.project_changed.emit(project)
        self._revalidate()
        if project is not None:
            self.refresh_runs()
            if not self._models_loaded:
                self.refresh_models()

    def set_field(self, name: str, value: Any) -> None:
        if name not in self._settings:
            raise KeyError(f"TrainRequest has no setting {name!r}")
        if self._settings[name] == value and type(self._settings[name]) is type(value):
            return
        self._settings = {**self._settings, name: value}
        self.settings_changed.emit(dict(self._settings))
        self._set("_estimate", "", self.estimate_changed)
        self._revalidate()

    def reset_settings(self) -> None:
        """Back to TrainRequest's defaults (the chosen base model is kept)."""
        settings = {**default_settings(), "model": self._settings["model"]}
        if settings != self._settings:
            self._settings = settings
            self.settings_changed.emit(dict(settings))
            self._set("_estimate", "", self.estimate_changed)
            self._revalidate()

    def add_model(self, path: str) -> None:
        """A model the user browsed to: listed first and chosen (checked when training starts)."""
        entry = {"name": Path(path).name or path, "path": path, "kind": "browsed", "note": path}
        self._set("_models", [entry] + [m for m in self._models if m["path"] != path], self.models_changed)
        self.set_field("model", path)

    def start(self) -> None:
        if self.can_start:
            self._submit_training(self.request(), run_id=None)

    def resume(self, run_id: str) -> None:
        """Continue ``run_id`` from its newest checkpoint, with the settings saved in it."""
        if self._project is not None and not self.running:
            self._submit_training(TrainRequest(project=self._project.slug, resume_run=run_id), run_id=run_id)

    def cancel(self) -> None:
        """Ask the running job to stop; the engine saves a checkpoint first."""
        if self._worker is not None:
            self._worker.cancel()
            self._set("_status", Status("Stopping after this step and saving a checkpoint…"), self.status_changed)

    def estimate_memory(self) -> None:
        if self._project is None or self._error:
            return
        self._set("_estimate", "Estimating…", self.estimate_changed)
        worker = self.runner.submit(_estimate_job, self.request(), "estimate memory")
        worker.succeeded.connect(self._on_estimated)
        worker.failed.connect(self._on_estimate_failed)

    def refresh_runs(self) -> None:
        if self._project is not None:
            worker = self.runner.submit(list_runs_job, Path(self._project.runs_dir), "list runs")
            worker.succeeded.connect(self._on_runs)
            worker.failed.connect(self._on_side_job_failed)

    def refresh_models(self) -> None:
        worker = self.runner.submit(_find_models_job, None, "find models")
        worker.succeeded.connect(self._on_models)
        worker.failed.connect(self._on_side_job_failed)

    # --- job results ----------------------------------------------------------------------------
    def _submit_training(self, request: TrainRequest, run_id: str | None) -> None:
        self._run_id, self._run_project = run_id, self._project
        self._set("_loss_history", [], self.loss_history_changed)
        self._set("_preview", QImage(), self.preview_changed)
        self._progress = Progress("waiting", message="waiting for the current job to finish")
        self.progress_changed.emit(self._progress)
        self._set("_status", Status("Resuming…" if run_id else "Starting…"), self.status_changed)
        self._worker = self.runner.submit(api.train, request, "train")
        self._worker.progress.connect(self._on_progress)
        self._worker.succeeded.connect(self._on_trained)
        self._worker.failed.connect(self._on_train_failed)
        self.running_changed.emit(True)
        self._revalidate()

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        self._progress = event
        self.progress_changed.emit(event)
        if event.run_id:
            self._run_id = event.run_id
        # The engine logs losses in batches (about twice a second): a point per new value, not per event.
        last = self._loss_history[-1] if self._loss_history else None
        if event.loss_smoothed is not None and (last is None or (event.step > last[0] and event.loss_smoothed != last[1])):
            self._loss_history.append((event.step, float(event.loss_smoothed)))
            self.loss_history_changed.emit(list(self._loss_history))
        if event.preview is not None:
            self._set("_preview", qimage_from_pil(event.preview), self.preview_changed)

    @Slot(object)
    def _on_trained(self, result) -> None:
        self._finish()
        smoothed = f", smoothed loss {self._loss_history[-1][1]:.4f}" if self._loss_history else ""
        lines = [f"Done: {result.steps} steps{smoothed}. The LoRA files are in {result.run_dir}:",
                 f"{result.lora.name} (diffusers) · {result.lora_kohya.name} (A1111 / ComfyUI)"]
        lines += [f"Note: {w}" for w in result.warnings]
        self._set("_status", Status("\n".join(lines), "done"), self.status_changed)

    @Slot(object)
    def _on_train_failed(self, failure: JobFailure) -> None:
        step = self._progress.step if self._progress is not None and self._progress.total else 0
        self._finish()
        if failure.cancelled and self._run_id:
            # Resume acts on the open project: offer it only if that is the one that was training.
            here = self._run_project is self._project
            status = Status(f"Stopped at step {step} — Resume continues it.", "stopped",
                            resumable_run=self._run_id if here else None)
        elif failure.cancelled:
            status = Status("Stopped before the first step; nothing was saved.", "stopped")
        else:
            status = Status(f"Training failed: {failure.message}", "error", failure.detail)
            self.failed.emit("Training failed", failure)
        self._set("_status", status, self.status_changed)

    def _finish(self) -> None:
        self._worker = None
        self.running_changed.emit(False)
        self._revalidate()
        self.refresh_runs()

    @Slot(object)
    def _on_estimated(self, text: str) -> None:
        self._set("_estimate", text, self.estimate_changed)

    @Slot(object)
    def _on_estimate_failed(self, failure: JobFailure) -> None:
        self._set("_estimate", f"Could not estimate: {failure.message}", self.estimate_changed)

    @Slot(object)
    def _on_runs(self, found: tuple[Path, list]) -> None:
        runs_dir, runs = found
        if self._project is not None and Path(self._project.runs_dir) == runs_dir:  # else: a stale answer
            self._set("_runs", list(runs), self.runs_changed)

    @Slot(object)
    def _on_models(self, found: tuple[list[dict], str]) -> None:
        entries, self._models_folder = found
        browsed = [m for m in self._models if m["kind"] == "browsed"]
        self._models_loaded = True
        self._set("_models", browsed + [e for e in entries if e["path"] not in {b["path"] for b in browsed}],
                  self.models_changed)
        if self._settings["model"] is None:  # None means "the first SDXL found": make that visible
            real = [e for e in entries if e["kind"] not in ("demo", "unusable")]
            if real:
                self.set_field("model", real[0]["path"])
        self._revalidate()

    @Slot(object)
    def _on_side_job_failed(self, failure: JobFailure) -> None:
        if not self.running:  # never hide the running job's status behind a side job's problem
            self._set("_status", Status(failure.message, "error", failure.detail), self.status_changed)
        self.failed.emit("Train area", failure)

    # --- helpers --------------------------------------------------------------------------------
    def _revalidate(self) -> None:
        self._set("_error", self._validation_message(), self.error_changed)

    def _validation_message(self) -> str:
        if self._project is None:
            return ""
        try:
            self.request().validate()
        except InvalidRequest as exc:
            return str(exc)
        if self._settings["model"] is None:
            if not self._models_loaded:
                return "Looking for SDXL models…"
            return (f"No SDXL model found. Put one into {self._models_folder or 'the models folder'}, "
                    "pick one with Browse…, or choose “demo” (random weights, noise images) to try the app.")
        return ""

    def _set(self, attr: str, value: Any, signal) -> None:
        if getattr(self, attr) == value and type(getattr(self, attr)) is type(value):
            return
        setattr(self, attr, value)
        signal.emit(value)
