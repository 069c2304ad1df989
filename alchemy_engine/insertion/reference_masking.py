"""Subject masks for a project's reference photos (what training's "Masked loss" reads).

``auto_mask(request, progress, cancel)`` finds the subject in each photo the way insertion's
automatic mode does (the detector looks for the class noun, SAM outlines its best box) and stores
the mask with the photo (``references/<stem>.mask.png``). A photo where nothing is found is
reported in the result with the reason, and its old mask (if any) is kept. ``import_mask`` stores
a mask PNG the user made elsewhere. It lives in ``insertion/`` because it runs the insertion
stage's segmenting; training only reads the mask files (through ``project/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import device_setting, setting
from alchemy_engine.insertion import masks
from alchemy_engine.insertion.locate import NothingFound
from alchemy_engine.insertion.request import LocateOptions
from alchemy_engine.insertion.segment import build_mask, with_models
from alchemy_engine.insertion.session import InsertionSession, default_session
from alchemy_engine.jobs import CancelToken, JobRequest, Progress, ProgressCallback, Stage, no_progress


@dataclass(frozen=True)
class AutoMaskRequest(JobRequest):
    """Mask the subject in a project's reference photos: ``python main.py project mask PROJECT --auto``."""

    project: str = setting(help="project name, slug or folder", cli=False)
    photos: tuple[str, ...] = setting((), cli=False, help="stored photo names (default: every photo)")
    only_missing: bool = setting(False, label="Only photos without a mask",
                                 help="leave photos that already have a mask as they are")
    sam: str | None = setting(None, metavar="PTH|demo", label="SAM model", remember=False,
                              help="SAM checkpoint (default: the best in models/sam)")
    detector: str | None = setting(None, metavar="FOLDER|demo", label="Detector", remember=False,
                                   help="Grounding DINO folder (default: the first in models/detector)")
    text: str | None = setting(None, metavar="WORD", help="what the detector looks for (default: the "
                                                           "project's class noun)")
    box_threshold: float = setting(0.3, minimum=0.0, maximum=1.0, label="Box threshold",
                                   help="detector box score cut-off")
    text_threshold: float = setting(0.25, minimum=0.0, maximum=1.0, label="Text threshold",
                                    help="detector text score cut-off")
    device: str | None = device_setting()

    def locate(self, class_noun: str) -> LocateOptions:
        return LocateOptions(text=self.text or class_noun, sam=self.sam, detector=self.detector,
                             box_threshold=self.box_threshold, text_threshold=self.text_threshold)

    def validate(self) -> None:
        if not str(self.project).strip():
            raise InvalidRequest("say which project's photos to mask")
        super().validate()
        if self.text is not None and not self.text.strip():
            raise InvalidRequest("the detector text is empty; give a word such as 'dog'")


@dataclass(frozen=True)
class AutoMaskResult:
    project: str
    masked: tuple[str, ...]  # stored photo names that got a new mask
    skipped: tuple[tuple[str, str], ...]  # (photo name, why) for photos left as they were

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "masked": list(self.masked),
                "skipped": [{"photo": name, "reason": why} for name, why in self.skipped]}


def auto_mask(request: AutoMaskRequest, progress: ProgressCallback = no_progress,
              cancel: CancelToken | None = None, session: InsertionSession | None = None) -> AutoMaskResult:
    """Detector + SAM on each photo; each mask is saved as soon as it is made (a cancel keeps them)."""
    from alchemy_engine.image_files import load_rgb
    from alchemy_engine.models.device import device_policy
    from alchemy_engine.project import open_project

    request.validate()
    cancel = cancel or CancelToken()
    project = open_project(request.project)
    photos = _chosen(project, request)
    opts = with_models(request.locate(project.class_noun))
    session = session or default_session()
    device = device_policy(request.device).device
    masked: list[str] = []
    skipped: list[tuple[str, str]] = []
    for index, photo in enumerate(photos):
        cancel.raise_if_cancelled()
        progress(Progress(Stage.SEGMENT, index, len(photos), message=photo.name, path=photo.path))
        if request.only_missing and photo.mask_path is not None:
            skipped.append((photo.name, "it already has a mask"))
            continue
        image = load_rgb(photo.path)
        try:
            with session.lock:
                outcome = build_mask(opts, image, session, device, project.class_noun, cancel=cancel)
        except InvalidRequest as exc:  # an empty mask
            skipped.append((photo.name, str(exc)))
            continue
        except NothingFound as exc:  # the detector saw no class noun
            skipped.append((photo.name, str(exc)))
            continue
        project.set_mask(photo.name, outcome.mask)
        masked.append(photo.name)
    progress(Progress(Stage.SEGMENT, len(photos), len(photos), message="done"))
    return AutoMaskResult(project.slug, tuple(masked), tuple(skipped))


def _chosen(project: Any, request: AutoMaskRequest) -> list[Any]:
    photos = project.reference_photos()
    if not photos:
        raise InvalidRequest(f"Project {project.name!r} has no photos to mask; add some first.")
    if not request.photos:
        return photos
    return [project.photo(name) for name in request.photos]  # an unknown name is a ProjectError


def import_mask(project: Any, photo: str, mask_png: str | Path) -> Any:
    """Store ``mask_png`` (white or opaque = subject, the photo's size) as ``photo``'s mask; returns
    the updated ReferencePhoto."""
    ref = project.photo(photo)
    if not Path(mask_png).is_file():
        raise InvalidRequest(f"mask file not found: {mask_png}")
    mask = masks.read_mask(mask_png, (ref.width, ref.height))
    if not mask.any():
        raise InvalidRequest(f"{mask_png} is all black: it marks no subject. White marks the subject.")
    return project.set_mask(ref.name, mask)


__all__ = ["AutoMaskRequest", "AutoMaskResult", "auto_mask", "import_mask"]
