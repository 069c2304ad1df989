"""The Insert area's view-model: the open project, the scene and its mask document, the model and
sampling settings, the loaded models (one :class:`InsertionSession`) and the jobs that use them.

No widgets here: the panel binds to the observable properties (see
:mod:`alchemy_gui.common.binding`) and calls one method per user action. Every disk, SAM and SDXL
step runs as a job on the shared :class:`~alchemy_gui.common.workers.JobRunner`, so nothing here
imports torch or waits on the disk. Settings start at the engine's request defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from alchemy_engine import api
from alchemy_engine.api import InsertionSession, InsertRequest, LocateOptions, SceneRequest, SegmentRequest
from alchemy_engine.jobs import Progress
from alchemy_gui.common.binding import Property
from alchemy_gui.common.request_settings import settings_class
from alchemy_gui.common.workers import JobFailure, JobRunner, JobWorker
from alchemy_gui.insert.jobs import (
    Choice,
    Choices,
    InsertJob,
    InsertOutcome,
    LoadedScene,
    SamMask,
    choices_job,
    generate_scene_job,
    insert_job,
    load_scene_job,
    segment_job,
)
from alchemy_gui.insert.mask_document import MaskDocument, Tool

INSERT_FIELDS = ("model", "run", "prompt", "negative_prompt", "strength", "steps", "guidance", "lora_scale",
                 "seed", "variations", "work_pixels")
LOCATE_FIELDS = ("sam", "detector", "grow", "feather")
InsertionSettings = settings_class(InsertRequest, INSERT_FIELDS)
# The mask shaping an insertion starts from is InsertRequest's (grown and feathered), not LocateOptions'.
LocateSettings = settings_class(LocateOptions, LOCATE_FIELDS,
                                initial=vars(api.defaults(InsertRequest)["locate"]))
SCENE_DEFAULTS = api.defaults(SceneRequest)
BRUSH_SIZE = 24  # pixels of the image


@dataclass(frozen=True)
class Message:
    """The one status line of the Insert area; ``detail`` is a traceback to fold away."""

    text: str = ""
    error: bool = False
    detail: str = ""


@dataclass(frozen=True)
class InsertedImage:
    path: Path
    image: QImage  # full size
    thumbnail: QImage
    seed: int
    prompt: str


def same_project(a: Any, b: Any) -> bool:
    return a is b or (a is not None and b is not None and a.root == b.root)


def _pick(current: Any, choices: tuple[Choice, ...]) -> Any:
    """Keep the current choice while it is offered, else the first one (None when none is)."""
    values = [c.value for c in choices]
    return current if current in values else (values[0] if values else None)


class InsertState(QObject):
    project_changed = Signal(object)
    choices_changed = Signal(object)  # Choices or None (not listed yet)
    scene_prompt_changed = Signal(object)
    scene_size_changed = Signal(object)  # (width, height) of a generated scene
    tool_changed = Signal(object)  # Tool
    brush_size_changed = Signal(object)
    busy_changed = Signal(object)  # an insertion or scene generation is running
    progress_changed = Signal(object)  # the last Progress of that job
    message_changed = Signal(object)  # Message
    results_changed = Signal(object)  # tuple of InsertedImage, newest first
    scene_ready = Signal(object)  # LoadedScene, after the document shows it
    mask_ready = Signal(object)  # SamMask, after it replaced the document's mask
    insert_finished = Signal(object)  # InsertResult
    job_failed = Signal(object)  # JobFailure, after the message shows it

    project = Property(None, same=operator.is_)
    choices = Property(None)
    scene_prompt = Property("")
    scene_size = Property((SCENE_DEFAULTS["width"], SCENE_DEFAULTS["height"]))
    tool = Property(Tool.CLICK)
    brush_size = Property(BRUSH_SIZE)
    busy = Property(False)
    progress = Property(None, same=operator.is_)
    message = Property(Message())
    results = Property(())

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = InsertionSession()  # the loaded models, kept between jobs
        self.document = MaskDocument(self)
        self.settings = InsertionSettings(self)
        self.locate = LocateSettings(self)
        self._long_job: JobWorker | None = None
        self._auto_prompt = ""
        self.scene_prompt_changed.connect(self._follow_scene_prompt)

    @property
    def class_noun(self) -> str:
        return self.project.class_noun if self.project is not None else "subject"

    # --- project and choices ------------------------------------------------------------------------
    def set_project(self, project) -> None:
        if same_project(project, self.project) and project is not None:
            self.project = project  # the same project re-read (e.g. photos added): keep the work
            self.refresh_choices()
            return
        self.project = project
        self.results = ()
        self.document.set_scene(None)
        self.set_message("")
        if project is None:
            return
        self.settings.prompt = None
        self._auto_prompt = ""
        self.scene_prompt = f"a photo of a {project.class_noun} in a park"
        self._follow_scene_prompt()
        self.refresh_choices()

    def refresh_choices(self) -> None:
        """Re-list models and the project's LoRA runs (call after a training run finishes)."""
        if self.project is not None:
            self._submit(choices_job, self.project.root, "insert choices", self._on_choices)

    def _on_choices(self, choices: Choices) -> None:
        self.choices = choices
        self.settings.model = _pick(self.settings.model, choices.models)
        self.settings.run = _pick(self.settings.run, choices.runs)
        self.locate.sam = _pick(self.locate.sam, choices.sams)
        self.locate.detector = _pick(self.locate.detector, choices.detectors)
        if choices.notes and not self.message.text:
            self.set_message(" ".join(choices.notes))

    def _follow_scene_prompt(self, *_: object) -> None:
        """The insertion prompt follows the scene prompt until the user edits it."""
        if (self.settings.prompt or "") == self._auto_prompt and self.project is not None:
            self._auto_prompt = api.insertion_prompt(self.scene_prompt, self.project.token, self.class_noun)
            self.settings.prompt = self._auto_prompt

    # --- scene --------------------------------------------------------------------------------------
    def open_scene(self, path: Path) -> None:
        self.set_message(f"Opening {Path(path).name}…")
        self._submit(load_scene_job, Path(path), "open scene", self._on_scene_loaded)

    def generate_scene(self) -> None:
        if self.project is not None:
            self._submit(functools.partial(generate_scene_job, session=self.session), self.scene_request(),
                         "generate scene", self._on_scene_loaded, long=True)

    def _on_scene_loaded(self, scene: LoadedScene) -> None:
        self.document.set_scene(scene.path, scene.image)
        self.set_message(f"Scene {scene.path.name}, {scene.image.width()}×{scene.image.height()} px. "
                         "Click on the subject, drag a box, or paint the mask.")
        self.scene_ready.emit(scene)

    # --- masks --------------------------------------------------------------------------------------
    def request_mask(self) -> None:
        """SAM for the current points and box (after each click or drag on the canvas)."""
        doc = self.document
        request = self.segment_request(points=doc.points, box=doc.box)
        if request is not None and (doc.points or doc.box is not None):
            self._submit(functools.partial(segment_job, session=self.session), request, "segment", self._on_mask)

    def auto_detect(self) -> None:
        """The detector finds the class noun, SAM cuts it out; points and box are cleared."""
        self.document.clear()
        request = self.segment_request(text=self.class_noun)
        if request is None:
            self.set_message("Open or generate a scene first.")
            return
        self.set_message(f"Looking for “{self.class_noun}”…")
        self._submit(functools.partial(segment_job, session=self.session), request, "auto-detect", self._on_mask)

    def _on_mask(self, sam: SamMask) -> None:
        doc, locate = self.document, sam.request.locate
        current = doc.scene_path == sam.request.image and (doc.points, doc.box) == (locate.points, locate.box)
        if not current or doc.mask is None or sam.mask.shape != doc.mask.shape:
            return  # the user clicked again or changed the scene meanwhile: a newer job follows
        doc.set_mask(sam.mask)
        found = sam.result.detections
        what = f"found “{locate.text}” ({len(found)} box{'es' if len(found) != 1 else ''})" if locate.text \
            else "mask updated"
        self.set_message(f"SAM: {what}, {sam.result.area_fraction:.0%} of the scene.")
        self.mask_ready.emit(sam)

    # --- insertion ----------------------------------------------------------------------------------
    def insert(self) -> None:
        if self.project is None:
            return
        if self.document.scene_path is None:
            self._fail(JobFailure("Open or generate a scene first."))
            return
        if not self.document.has_mask:
            self._fail(JobFailure("The mask is empty: click on the subject, drag a box around it, paint "
                                  "it with the brush, or press Auto-detect."))
            return
        mask_path = Path(self.project.cache_dir) / "gui" / "insert-mask.png"
        job = InsertJob(self.insert_request(), self.document.mask.copy(), mask_path)
        self._submit(functools.partial(insert_job, session=self.session), job, "insert", self._on_inserted,
                     long=True)

    def _on_inserted(self, outcome: InsertOutcome) -> None:
        result = outcome.result
        new = [InsertedImage(path, image, thumb, seed, result.prompt) for path, image, thumb, seed
               in zip(result.project_outputs, outcome.images, outcome.thumbnails, result.seeds)]
        self.results = tuple(reversed(new)) + self.results
        notes = " ".join(f"Note: {n}." for n in result.notes)
        self.set_message(f"Done: {len(result.project_outputs)} image(s) in {result.project_outputs[0].parent}. "
                         + notes)
        self.insert_finished.emit(result)

    def cancel(self) -> None:
        if self._long_job is not None:
            self._long_job.cancel()
            self.set_message("Cancelling…")

    def result_image(self, path: str | Path) -> QImage | None:
        return next((r.image for r in self.results if r.path == Path(path)), None)

    # --- requests -----------------------------------------------------------------------------------
    def locate_options(self, **changes: Any) -> LocateOptions:
        """SAM and detector choices for clicks, boxes and Auto-detect; None lets the engine choose."""
        return LocateOptions(sam=self.locate.sam, detector=self.locate.detector, **changes)

    def segment_request(self, **locate: Any) -> SegmentRequest | None:
        if self.project is None or self.document.scene_path is None:
            return None
        out = Path(self.project.cache_dir) / "gui" / "mask.png"
        return SegmentRequest(image=self.document.scene_path, out=out, locate=self.locate_options(**locate))

    def insert_request(self) -> InsertRequest:
        """The insertion request; its mask is filled in by the job that saves the document's mask."""
        values = self.settings.values()
        values["prompt"] = (values["prompt"] or "").strip() or None
        locate = dataclasses.replace(api.defaults(InsertRequest)["locate"], grow=self.locate.grow,
                                     feather=float(self.locate.feather))
        return InsertRequest(project=str(self.project.root), scene=Path(self.document.scene_path), locate=locate,
                             **values)

    def scene_request(self) -> SceneRequest:
        width, height = self.scene_size
        seed = self.settings.seed
        return SceneRequest(project=str(self.project.root), prompt=self.scene_prompt.strip(),
                            negative_prompt=self.settings.negative_prompt, model=self.settings.model,
                            width=width, height=height, steps=self.settings.steps, guidance=self.settings.guidance,
                            seed=random.randrange(2**32) if seed is None else seed)

    # --- jobs and messages ----------------------------------------------------------------------------
    def _submit(self, fn, request, name: str, on_success, long: bool = False) -> JobWorker:
        worker = self.runner.submit(fn, request, name)
        guard = _Guard(self, self.project, on_success, long)
        worker.succeeded.connect(guard.succeeded)
        worker.failed.connect(guard.failed)
        worker.progress.connect(guard.progress)
        if long:
            self._long_job = worker
            self.busy = True
        return worker

    def _job_done(self, long: bool) -> None:
        if long:
            self._long_job = None
            self.busy = False

    def _fail(self, failure: JobFailure) -> None:
        self.message = Message(failure.message, error=not failure.cancelled, detail=failure.detail)
        self.job_failed.emit(failure)

    def set_message(self, text: str) -> None:
        self.message = Message(text)


class _Guard(QObject):
    """Routes one job's signals to the state, dropping results meant for a project since closed."""

    def __init__(self, state: InsertState, project, on_success, long: bool) -> None:
        super().__init__(state)
        self.state, self.project, self.on_success, self.long = state, project, on_success, long

    def succeeded(self, result) -> None:
        self._done()
        if same_project(self.state.project, self.project):
            self.on_success(result)

    def failed(self, failure: JobFailure) -> None:
        self._done()
        if same_project(self.state.project, self.project):
            self.state._fail(failure)

    def progress(self, event: Progress) -> None:
        if self.long and same_project(self.state.project, self.project):
            self.state.progress = event

    def _done(self) -> None:
        self.state._job_done(self.long)
        self.deleteLater()


__all__ = ["InsertState", "InsertedImage", "Message", "Tool"]
