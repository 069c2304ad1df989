"""The Insert area's jobs: plain functions ``job(request, progress, cancel[, session])`` that run as
jobs of the window's :class:`~alchemy_gui.common.job_list.JobList`, call the engine's public functions and hand
back in-memory results (numpy masks, QImages built off the UI thread), so the UI thread never
reads the disk, imports torch or waits on the GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from alchemy_engine.api import (
    LORA_FILE,
    InsertionSession,
    InsertRequest,
    InsertResult,
    SceneRequest,
    SegmentRequest,
    SegmentResult,
    eval_models_available,
    find_models,
    insert,
    load_scene,
    load_scene_mask,
    lora_runs,
    make_scene,
    read_mask,
    read_run,
    save_mask,
    segment,
)
from alchemy_engine.jobs import CancelToken, ProgressCallback
from alchemy_gui.common.images import qimage_from_pil
from alchemy_gui.common.model_locations import picker_label

THUMBNAIL = 128


@dataclass(frozen=True)
class Choice:
    label: str
    value: str | None  # None: the entry that chooses none (no style LoRA)
    tooltip: str = ""


@dataclass(frozen=True)
class Choices:
    """What the combos offer; ``runs`` newest first (empty: no trained LoRA yet); ``notes`` say
    which kinds of model only exist as the built-in demo (random weights) and where to put real ones."""

    models: tuple[Choice, ...]
    sams: tuple[Choice, ...]
    detectors: tuple[Choice, ...]
    runs: tuple[Choice, ...]
    notes: tuple[str, ...] = ()
    eval_models: bool = False  # the DINO/CLIP models are there: ranking by fidelity can run


def _entries(entries) -> tuple[Choice, ...]:
    """Usable inventory entries, real models before the built-in demo ones."""
    usable = [e for e in entries if e.kind != "unusable"]
    ordered = [e for e in usable if e.kind != "demo"] + [e for e in usable if e.kind == "demo"]
    return tuple(Choice(picker_label(e.name, e.location) if e.kind != "demo" else f"{e.name} (random weights)",
                        e.path, f"{e.path}\n{e.note}".strip()) for e in ordered)


def run_label(run) -> str:
    """``run name · steps · final loss · date`` of a finished run (a RunInfo)."""
    parts = [run.run_id] + ([f"{run.steps_done} steps"] if run.steps_done else [])
    if run.final_loss is not None:
        parts.append(f"loss {run.final_loss:.3f}")
    lora = Path(run.path) / LORA_FILE
    if lora.is_file():
        parts.append(datetime.fromtimestamp(lora.stat().st_mtime).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def choices_job(project_root: Path, progress: ProgressCallback, cancel: CancelToken) -> Choices:
    inventory = find_models()
    finished = [read_run(p.parent) for p in lora_runs(Path(project_root) / "runs")]  # newest first
    runs = tuple(Choice(run_label(r), r.run_id, str(Path(r.path) / LORA_FILE)) for r in finished)
    found = {"sdxl": _entries(inventory.sdxl), "sam": _entries(inventory.sam),
             "detector": _entries(inventory.detector)}
    names = {"sdxl": "SDXL", "sam": "SAM", "detector": "detector"}
    demo_only = [kind for kind, entries in found.items() if all((c.value or "").startswith("demo") for c in entries)]
    notes: tuple[str, ...] = ()
    if demo_only:
        root = Path(inventory.folders["sdxl"]).parent
        notes = (f"No real {', '.join(names[k] for k in demo_only)} model found: the demo ones (random "
                 f"weights) stand in. Put real models in {root} ({', '.join(k + '/' for k in demo_only)}).",)
    return Choices(found["sdxl"], found["sam"], found["detector"], runs, notes,
                   eval_models=eval_models_available())


# --- scenes -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedScene:
    path: Path
    image: QImage  # built on the job's thread; QImage (unlike QPixmap) may be
    mask: np.ndarray | None = None  # the mask saved with this scene in the project, if any


@dataclass(frozen=True)
class SceneToLoad:
    path: Path
    project_root: Path | None = None  # where to look for a saved mask of this scene


def load_scene_job(scene: SceneToLoad | Path, progress: ProgressCallback, cancel: CancelToken) -> LoadedScene:
    """The scene as the engine will see it (EXIF orientation applied, alpha flattened on white),
    with the mask saved for it in the project."""
    scene = scene if isinstance(scene, SceneToLoad) else SceneToLoad(Path(scene))
    path = Path(scene.path).resolve()
    saved = load_scene_mask(scene.project_root, path) if scene.project_root is not None else None
    return LoadedScene(path, qimage_from_pil(load_scene(path)), saved.mask if saved else None)


def restore_scene_job(project_root: Path, progress: ProgressCallback, cancel: CancelToken) -> LoadedScene | None:
    """The project's current scene and its mask, as saved; None when there is none."""
    saved = load_scene_mask(project_root)
    if saved is None:
        return None
    return LoadedScene(saved.scene, qimage_from_pil(load_scene(saved.scene)), saved.mask)


def generate_scene_job(request: SceneRequest, progress: ProgressCallback, cancel: CancelToken,
                       session: InsertionSession) -> LoadedScene:
    result = make_scene(request, progress, cancel, session=session)
    return LoadedScene(result.path, qimage_from_pil(result.image))


# --- masks --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SamMask:
    mask: np.ndarray  # bool (H, W), the scene's size
    result: SegmentResult
    request: SegmentRequest


def segment_job(request: SegmentRequest, progress: ProgressCallback, cancel: CancelToken,
                session: InsertionSession) -> SamMask:
    """SAM (and the detector, for a text prompt) → the mask PNG → a bool array for the canvas."""
    Path(request.out).parent.mkdir(parents=True, exist_ok=True)
    result = segment(request, progress, cancel, session=session)
    return SamMask(read_mask(result.mask), result, request)


# --- insertion ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InsertJob:
    request: InsertRequest  # its locate.mask is filled in by the job
    mask: np.ndarray  # the canvas mask, uint8 (H, W) grey levels (a soft brush blends)
    mask_path: Path  # where the job writes it as PNG


@dataclass(frozen=True)
class InsertOutcome:
    result: InsertResult
    images: tuple[QImage, ...]  # the outputs, full size
    thumbnails: tuple[QImage, ...]


def insert_job(job: InsertJob, progress: ProgressCallback, cancel: CancelToken,
               session: InsertionSession) -> InsertOutcome:
    """Save the canvas mask, then ``insertion.run`` with it; load the outputs for the UI."""
    request = job.request
    save_mask(job.mask, job.mask_path)  # 8-bit grey: the engine blends where it is grey
    request = dataclasses.replace(request, locate=dataclasses.replace(request.locate, mask=job.mask_path))
    result = insert(request, progress, cancel, session=session)
    images = tuple(QImage(str(path)) for path in result.project_outputs)
    thumbs = tuple(image.scaled(QSize(THUMBNAIL, THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation) for image in images)
    return InsertOutcome(result, images, thumbs)


__all__ = ["Choice", "Choices", "InsertJob", "InsertOutcome", "LoadedScene", "SamMask", "SceneRequest", "SceneToLoad",
           "choices_job", "generate_scene_job", "insert_job", "load_scene_job", "restore_scene_job", "run_label",
           "segment_job"]
