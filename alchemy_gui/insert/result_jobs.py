"""Jobs of the Insert area's history and persistence: the project's outputs with thumbnails, the
parameters an output was made with, deleting one to the project's trash, saving the scene's mask,
checking a LoRA file from elsewhere. They run as light jobs of the window's job list (disk and decoding off the
UI thread) and call only the engine's surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from alchemy_engine.api import (
    LoraInfo,
    list_outputs,
    read_output_parameters,
    require_sdxl_lora,
    save_scene_mask,
    trash_output,
)
from alchemy_engine.jobs import CancelToken, ProgressCallback

THUMBNAIL = 128


@dataclass(frozen=True)
class InsertedImage:
    """One output of the project as the results strip shows it; the full image loads on demand."""

    path: Path
    thumbnail: QImage
    seed: int | None
    prompt: str
    scene: Path | None = None  # what it was made from, for Before/After
    scores: dict[str, float] = field(default_factory=dict)
    modified: float = 0.0


def thumbnail(image: QImage) -> QImage:
    return image.scaled(QSize(THUMBNAIL, THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def results_job(project_root: Path, progress: ProgressCallback, cancel: CancelToken) -> tuple[InsertedImage, ...]:
    """Every output of the project, newest first, with its thumbnail (a file that cannot be read as
    an image is left out of the strip; the engine logs why)."""
    found = []
    for info in list_outputs(Path(project_root)):
        cancel.raise_if_cancelled()
        image = QImage(str(info.path))
        if image.isNull():
            continue
        found.append(InsertedImage(info.path, thumbnail(image), info.seed, info.prompt, info.scene,
                                   dict(info.scores), info.modified))
    return tuple(found)


def parameters_job(path: Path, progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
    return read_output_parameters(path)


def trash_job(job: tuple[Path, Path], progress: ProgressCallback, cancel: CancelToken) -> tuple[Path, Path]:
    """(project root, output) → (the output, where it went)."""
    root, path = job
    return path, trash_output(root, path)


@dataclass(frozen=True)
class SceneMaskToSave:
    project_root: Path
    scene: Path
    mask: np.ndarray | None  # a copy, taken on the UI thread


def save_scene_job(job: SceneMaskToSave, progress: ProgressCallback, cancel: CancelToken) -> SceneMaskToSave:
    save_scene_mask(job.project_root, job.scene, job.mask)
    return job


def check_lora_job(path: Path, progress: ProgressCallback, cancel: CancelToken) -> LoraInfo:
    """The file's header says it is an SDXL LoRA, or a one-line ModelError says what it is."""
    return require_sdxl_lora(Path(path))


__all__ = ["InsertedImage", "SceneMaskToSave", "check_lora_job", "results_job", "parameters_job",
           "save_scene_job", "thumbnail", "trash_job"]
