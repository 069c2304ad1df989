"""The Insert area's view-model: the open project, the scene and its mask document, the model and
sampling settings, the loaded models (one :class:`InsertionSession`) and the jobs that use them.

No widgets here: the panel binds to the observable properties (:mod:`alchemy_gui.common.binding`)
and calls one method per user action. Disk, SAM and SDXL work runs as jobs of the window's
:class:`~alchemy_gui.common.job_list.JobList`: disk work in the light lane, model work in the model
lane, one job at a time on this area's loaded models. Whether an insertion runs, and how far it
got, is read from the list. Each job carries the project it was asked for: a result lands in that
project (a scene opened for a project closed since is saved into it), never in the one on screen.
Settings start at the engine's request defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from alchemy_engine import api
from alchemy_engine.api import InsertionSession, InsertRequest, LocateOptions, SceneRequest, SegmentRequest
from alchemy_gui.common.binding import Property
from alchemy_gui.common.job_list import JobFailure, JobKind, JobList, same_project
from alchemy_gui.common.presets_model import PresetChoice
from alchemy_gui.common.request_settings import settings_class
from alchemy_gui.insert.added_loras import LoraFiles
from alchemy_gui.insert.brush_settings import BRUSH_HARDNESS, BRUSH_SIZE, BrushSettings
from alchemy_gui.insert.job_routing import JobRouting
from alchemy_gui.insert.jobs import (
    Choice,
    Choices,
    InsertJob,
    InsertOutcome,
    LoadedScene,
    SamMask,
    SceneToLoad,
    choices_job,
    generate_scene_job,
    insert_job,
    load_scene_job,
    restore_scene_job,
    segment_job,
)
from alchemy_gui.insert.mask_document import MaskDocument, Tool
from alchemy_gui.insert.result_jobs import InsertedImage, SceneMaskToSave, results_job, save_scene_job
from alchemy_gui.insert.results import InsertResults

# ``run`` holds a run id of the project or the path of a LoRA file added from elsewhere.
INSERT_FIELDS = ("model", "run", "prompt", "negative_prompt", "strength", "steps", "guidance", "lora_scale",
                 "style_lora", "style_lora_scale", "seed", "variations", "batch_size", "work_pixels",
                 "rank", "ip_adapter", "ip_scale", "ip_range", "ip_mode", "ip_photos", "ip_crop", "ip_inside_mask",
                 "sampler", "prediction_type", "inpaint_model")
AUTOSAVE_MS = 1500
LOCATE_FIELDS = ("sam", "detector", "grow", "feather")
InsertionSettings = settings_class(InsertRequest, INSERT_FIELDS)
# The mask shaping an insertion starts from is InsertRequest's (grown and feathered), not LocateOptions'.
LocateSettings = settings_class(LocateOptions, LOCATE_FIELDS,
                                initial=vars(api.defaults(InsertRequest)["locate"]))
SCENE_DEFAULTS = api.defaults(SceneRequest)


@dataclass(frozen=True)
class Message:
    """The one status line of the Insert area; ``detail`` is a traceback to fold away."""

    text: str = ""
    error: bool = False
    detail: str = ""


def _pick(current: Any, choices: tuple[Choice, ...]) -> Any:
    """Keep the current choice while it is offered, else the first one (None when none is)."""
    values = [c.value for c in choices]
    return current if current in values else (values[0] if values else None)


class InsertState(QObject):
    # object: a payload that is None at times, or a Python class (Qt would convert or refuse it)
    project_changed = Signal(object)  # api.Project or None
    choices_changed = Signal(object)  # Choices or None (not listed yet)
    scene_prompt_changed = Signal(str)
    scene_size_changed = Signal(tuple)  # (width, height) of a generated scene
    tool_changed = Signal(object)  # Tool
    brush_size_changed = Signal(int)  # diameter in pixels of the image
    brush_hardness_changed = Signal(int)  # percent, 0 (soft) to 100 (hard)
    busy_changed = Signal(bool)  # an insertion or scene generation is running
    progress_changed = Signal(object)  # the last Progress of that job, or None
    message_changed = Signal(object)  # Message
    results_changed = Signal(tuple)  # tuple of InsertedImage, newest first
    result_order_changed = Signal(str)  # "newest" or the name of a score
    lora_files_changed = Signal(tuple)  # tuple of Choice: LoRA files added from elsewhere
    parameters_reused = Signal(object)  # the dict read back from an output (Signal(dict) drops non-str keys)
    scene_ready = Signal(object)  # LoadedScene, after the document shows it
    mask_ready = Signal(object)  # SamMask, after it replaced the document's mask
    insert_finished = Signal(object)  # InsertResult
    job_failed = Signal(object)  # JobFailure, after the message shows it

    project = Property(None, same=operator.is_)
    choices = Property(None)
    scene_prompt = Property("")
    scene_size = Property((SCENE_DEFAULTS["width"], SCENE_DEFAULTS["height"]))
    tool = Property(Tool.CLICK)
    brush_size = BRUSH_SIZE  # limits: brush_settings.py
    brush_hardness = BRUSH_HARDNESS
    busy = Property(False)
    progress = Property(None, same=operator.is_)
    message = Property(Message())
    results = Property(())
    result_order = Property("newest")
    lora_files = Property(())

    def __init__(self, jobs: JobList, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.session = InsertionSession()  # the loaded models, kept between jobs
        self.routing = JobRouting(self, jobs, f"insertion-session-{id(self.session)}")
        self.document = MaskDocument(self)
        self.settings = InsertionSettings(self)
        self.presets = PresetChoice("insert", self.settings, self)
        self.outputs = InsertResults(self)  # the list is ``results``; what is done with one, there
        self.added_loras = LoraFiles(self)  # the list is ``lora_files``; adding, remembering, removing
        self.locate = LocateSettings(self)
        self.brush = BrushSettings(self)  # remembered with the other settings (main_window)
        self._auto_prompt = ""
        self._rank_defaulted = False  # Rank by fidelity is turned on once, when the scorers are found
        self._message_from_sam = False  # the status line reports a SAM result (gone after Undo/Clear)
        self.scene_prompt_changed.connect(self._follow_scene_prompt)
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave.timeout.connect(self.save_work)
        self.document.modified_changed.connect(lambda modified: modified and self._autosave.start())
        self.document.mask_changed.connect(lambda _region: self.document.modified and self._autosave.start())

    @property
    def class_noun(self) -> str:
        return self.project.class_noun if self.project is not None else "subject"

    # --- project and choices ------------------------------------------------------------------------
    def set_project(self, project) -> None:
        if same_project(project, self.project) and project is not None:
            self.project = project  # the same project re-read (e.g. photos added): keep the work
            self.refresh_choices()
            return
        self.save_work()  # the scene and mask stay with the project they belong to
        self.project = project
        self.routing.show_long_job()
        self.results = ()
        self.outputs.forget()
        self.choices = None
        self.document.set_scene(None)
        self.set_message("")
        if project is None:
            return
        self.settings.prompt = None
        self._auto_prompt = ""
        self.scene_prompt = f"a photo of a {project.class_noun} in a park"
        self._follow_scene_prompt()
        self.refresh_choices()
        self.routing.submit(results_job, Path(project.root), "insert results", self.outputs.add_found)
        self.routing.submit(restore_scene_job, Path(project.root), "restore scene", self._on_scene_restored)

    def refresh_choices(self) -> None:
        """Re-list models and the project's LoRA runs (call after a training run finishes: the
        newest finished run is then selected)."""
        if self.project is not None:
            self.routing.submit(choices_job, self.project.root, "insert choices", self._on_choices)

    def _on_choices(self, choices: Choices) -> None:
        before = self.choices
        choices = dataclasses.replace(choices, runs=choices.runs + self.lora_files)
        self.choices = choices
        self.settings.model = _pick(self.settings.model, choices.models)
        newest = choices.runs[0].value if choices.runs and choices.runs[0] not in self.lora_files else None
        known = {c.value for c in before.runs} if before is not None else set()
        if newest is not None and before is not None and newest not in known:
            self.settings.run = newest  # a run finished since the last listing: use it
        else:
            self.settings.run = _pick(self.settings.run, choices.runs)
        if choices.eval_models and not self._rank_defaulted:  # on by default when it can run
            self._rank_defaulted = True
            self.settings.rank = True
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
        """Open a scene file; the current scene's mask is saved first, and a mask saved earlier
        for the new scene comes back with it."""
        self.save_work()
        self.set_message(f"Opening {Path(path).name}…")
        root = Path(self.project.root) if self.project is not None else None
        self.routing.submit(load_scene_job, SceneToLoad(Path(path), root), "open scene", self._on_scene_loaded,
                     elsewhere=self.routing.keep_scene)

    def generate_scene(self) -> None:
        if self.project is not None:
            self.routing.submit(functools.partial(generate_scene_job, session=self.session), self.scene_request(),
                         "generate scene", self._on_scene_loaded, kind=JobKind.SCENE, elsewhere=self.routing.keep_scene)

    def _on_scene_loaded(self, scene: LoadedScene) -> None:
        self.document.set_scene(scene.path, scene.image, scene.mask)
        kept = " Its saved mask is back." if scene.mask is not None and scene.mask.any() else ""
        self.set_message(f"Scene {scene.path.name}, {scene.image.width()}×{scene.image.height()} px.{kept} "
                         "Click on the subject, drag a box, or paint the mask.")
        self.save_work(force=True)  # remember it as the project's current scene
        self.scene_ready.emit(scene)

    def _on_scene_restored(self, scene: LoadedScene | None) -> None:
        if scene is not None and self.document.scene_path is None:
            self._on_scene_loaded(scene)

    def save_work(self, force: bool = False) -> None:
        """Save the scene's mask in the project (a job; atomic), when it changed or ``force``."""
        self._autosave.stop()
        doc = self.document
        if self.project is None or doc.scene_path is None or not (doc.modified or force):
            return
        mask = doc.mask.copy() if doc.mask is not None and doc.has_mask else None
        doc.mark_saved()
        self.routing.submit(save_scene_job, SceneMaskToSave(Path(self.project.root), doc.scene_path, mask),
                     "save scene mask", lambda _job: None)

    # --- masks --------------------------------------------------------------------------------------
    def request_mask(self) -> None:
        """SAM for the current points and box (after each click or drag on the canvas)."""
        doc = self.document
        request = self.segment_request(points=doc.points, box=doc.box)
        if request is not None and (doc.points or doc.box is not None):
            self.routing.submit(functools.partial(segment_job, session=self.session), request, "segment", self._on_mask,
                         kind=JobKind.SEGMENT)

    def auto_detect(self) -> None:
        """The detector finds every instance of the class noun, SAM cuts them all out and the boxes
        are shown (:meth:`pick_detection` keeps one); points and box are cleared."""
        self.document.clear()
        request = self.segment_request(text=self.class_noun, instance="all")
        if request is None:
            self.set_message("Open or generate a scene first.")
            return
        self.set_message(f"Looking for “{self.class_noun}”…")
        self.routing.submit(functools.partial(segment_job, session=self.session), request, "auto-detect", self._on_mask,
                     kind=JobKind.AUTO_DETECT)

    def _on_mask(self, sam: SamMask) -> None:
        doc, locate = self.document, sam.request.locate
        current = doc.scene_path == sam.request.image and (doc.points, doc.box) == (locate.points, locate.box)
        if not current or doc.mask is None or sam.mask.shape != doc.mask.shape:
            return  # the user clicked again or changed the scene meanwhile: a newer job follows
        doc.set_mask(sam.mask)
        found = sam.result.detections
        if locate.text:
            doc.set_detections(tuple((tuple(d["box"]), float(d["score"]), d.get("label", "")) for d in found))
        what = f"found “{locate.text}” ({len(found)} box{'es' if len(found) != 1 else ''})" if locate.text \
            else "mask updated"
        pick = " Pick one in the “Auto-detect found” list to keep only it." if len(found) > 1 else ""
        self.set_message(f"SAM: {what}, {sam.result.area_fraction:.0%} of the scene.{pick}")
        self._message_from_sam = True
        self.mask_ready.emit(sam)

    def pick_detection(self, index: int | None) -> None:
        """Keep the ``index``-th detection (best first) as the box prompt, or all of them (None)."""
        found = self.document.detections
        if index is None:
            self.auto_detect()
        elif 0 <= index < len(found) and self.document.set_box(found[index][0]):
            self.request_mask()

    def undo(self) -> None:
        self.document.undo()
        self._forget_sam_message()

    def redo(self) -> None:
        self.document.redo()
        self._forget_sam_message()

    def clear_mask(self) -> None:
        self.document.clear()
        self._forget_sam_message()

    def _forget_sam_message(self) -> None:
        """A SAM status line describes a mask that Undo, Redo or Clear has just changed."""
        if self._message_from_sam:
            self.set_message("")

    # --- insertion ----------------------------------------------------------------------------------
    def insert(self) -> None:
        if self.project is None or self.busy:
            return
        if self.document.scene_path is None:
            self.fail(JobFailure("Open or generate a scene first."))
            return
        mask = self.document.mask
        if mask is None or not self.document.has_mask:
            self.fail(JobFailure("The mask is empty: click on the subject, drag a box around it, paint "
                                  "it with the brush, or press Auto-detect."))
            return
        mask_path = Path(self.project.cache_dir) / "gui" / "insert-mask.png"
        job = InsertJob(self.insert_request(), mask.copy(), mask_path)
        self.routing.submit(functools.partial(insert_job, session=self.session), job, "insert", self._on_inserted,
                     kind=JobKind.INSERT, sized=job.request)

    def _on_inserted(self, outcome: InsertOutcome) -> None:
        result = outcome.result
        new = [InsertedImage(path, thumb, seed, result.prompt, result.scene) for path, thumb, seed
               in zip(result.project_outputs, outcome.thumbnails, result.seeds)]
        self.outputs.images.update(zip(result.project_outputs, outcome.images))
        self.results = tuple(reversed(new)) + self.results
        notes = " ".join(f"Note: {n}." for n in result.notes)
        self.set_message(f"Done: {len(result.project_outputs)} image(s) in {result.project_outputs[0].parent}. "
                         + notes)
        self.insert_finished.emit(result)

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
        scene = self.document.scene_path
        if scene is None:
            raise ValueError("no scene is open (insert() says so to the user before asking)")
        values = self.settings.values()
        values["prompt"] = (values["prompt"] or "").strip() or None
        if values["run"] in {c.value for c in self.lora_files}:  # a file from elsewhere, not a run
            values["lora"], values["run"] = Path(values["run"]), None
        values["style_lora"] = Path(values["style_lora"]) if values["style_lora"] else None
        values["inpaint_model"] = (values["inpaint_model"] or "").strip() or None
        locate = dataclasses.replace(api.defaults(InsertRequest)["locate"], grow=self.locate.grow,
                                     feather=float(self.locate.feather))
        return InsertRequest(project=str(self.project.root), scene=scene, locate=locate,
                             **values)

    def scene_request(self) -> SceneRequest:
        width, height = self.scene_size
        seed = self.settings.seed
        return SceneRequest(project=str(self.project.root), prompt=self.scene_prompt.strip(),
                            negative_prompt=self.settings.negative_prompt, model=self.settings.model,
                            width=width, height=height, steps=self.settings.steps, guidance=self.settings.guidance,
                            seed=api.random_seed() if seed is None else seed, sampler=self.settings.sampler,
                            prediction_type=self.settings.prediction_type)

    # --- what the window and the form ask of the owned objects ------------------------------------------
    def cancel(self) -> None:
        self.routing.cancel()

    def offer_checkpoint(self, tried: Any) -> None:
        self.added_loras.offer_checkpoint(tried)

    def lora_file_entries(self) -> list[dict[str, Any]]:
        return self.added_loras.entries()

    def restore_lora_files(self, entries: Any) -> None:
        self.added_loras.restore(entries)

    def missing_lora_files(self) -> list[str]:
        return self.added_loras.missing()

    def remove_lora_file(self, path: str | None) -> None:
        self.added_loras.remove(path)

    # --- messages -------------------------------------------------------------------------------------
    def fail(self, failure: JobFailure) -> None:
        self._message_from_sam = False
        self.message = Message(failure.message, error=not failure.cancelled, detail=failure.detail)
        self.job_failed.emit(failure)

    def set_message(self, text: str) -> None:
        self._message_from_sam = False
        self.message = Message(text)


__all__ = ["InsertState", "InsertedImage", "Message", "Tool"]
