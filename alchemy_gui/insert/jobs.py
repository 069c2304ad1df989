"""The Insert area's jobs: plain functions ``job(request, progress, cancel[, session])`` that run on
the :class:`~alchemy_gui.common.workers.JobRunner`'s thread, call the engine's public functions and hand
back in-memory results (numpy masks, QImages built off the UI thread), so the UI thread never
reads the disk, imports torch or waits on the GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from alchemy_engine.api import (
    InsertionSession,
    InsertRequest,
    InsertResult,
    SceneRequest,
    SegmentRequest,
    SegmentResult,
    find_models,
    insert,
    load_scene,
    lora_runs,
    make_scene,
    read_mask,
    save_mask,
    segment,
)
from alchemy_engine.jobs import CancelToken, ProgressCallback
from alchemy_gui.common.images import qimage_from_pil

THUMBNAIL = 128


@dataclass(frozen=True)
class Choice:
    label: str
    value: str
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


def _entries(entries) -> tuple[Choice, ...]:
    """Usable inventory entries, real models before the built-in demo ones."""
    usable = [e for e in entries if e.kind != "unusable"]
    ordered = [e for e in usable if e.kind != "demo"] + [e for e in usable if e.kind == "demo"]
    return tuple(Choice(e.name if e.kind != "demo" else f"{e.name} (random weights)", e.path,
                        f"{e.path}\n{e.note}".strip()) for e in ordered)


def choices_job(project_root: Path, progress: ProgressCallback, cancel: CancelToken) -> Choices:
    inventory = find_models()
    runs = tuple(Choice(p.parent.name, p.parent.name, str(p)) for p in lora_runs(Path(project_root) / "runs"))
    found = {"sdxl": _entries(inventory.sdxl), "sam": _entries(inventory.sam),
             "detector": _entries(inventory.detector)}
    names = {"sdxl": "SDXL", "sam": "SAM", "detector": "detector"}
    demo_only = [kind for kind, entries in found.items() if all(c.value.startswith("demo") for c in entries)]
    notes = ()
    if demo_only:
        root = Path(inventory.folders["sdxl"]).parent
        notes = (f"No real {', '.join(names[k] for k in demo_only)} model found: the demo ones (random "
                 f"weights) stand in. Put real models in {root} ({', '.join(k + '/' for k in demo_only)}).",)
    return Choices(found["sdxl"], found["sam"], found["detector"], runs, notes)


# --- scenes -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedScene:
    path: Path
    image: QImage  # built on the job's thread; QImage (unlike QPixmap) may be


def load_scene_job(path: Path, progress: ProgressCallback, cancel: CancelToken) -> LoadedScene:
    """The scene as the engine will see it: EXIF orientation applied, alpha flattened on white."""
    return LoadedScene(Path(path).resolve(), qimage_from_pil(load_scene(Path(path))))


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
    mask: np.ndarray  # the canvas mask, bool (H, W)
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
    save_mask(job.mask.astype(bool), job.mask_path)
    request = dataclasses.replace(request, locate=dataclasses.replace(request.locate, mask=job.mask_path))
    result = insert(request, progress, cancel, session=session)
    images = tuple(QImage(str(path)) for path in result.project_outputs)
    thumbs = tuple(image.scaled(QSize(THUMBNAIL, THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation) for image in images)
    return InsertOutcome(result, images, thumbs)


__all__ = ["Choice", "Choices", "InsertJob", "InsertOutcome", "LoadedScene", "SamMask", "SceneRequest",
           "choices_job", "generate_scene_job", "insert_job", "load_scene_job", "segment_job"]
