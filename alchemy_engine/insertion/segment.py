"""Turn mask sources into one mask: SAM from clicks/box, the detector's boxes, a mask PNG.

``segment(request, progress, cancel)`` is the job behind ``python main.py segment``; insertion
uses :func:`build_mask` the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import coverage, masks
from alchemy_engine.insertion.locate import detect, pick_instances, segment_detections
from alchemy_engine.insertion.request import LocateOptions, SegmentRequest, SegmentResult
from alchemy_engine.insertion.session import InsertionSession, default_session
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.models.inventory import default_detector, default_sam


@dataclass
class MaskOutcome:
    mask: np.ndarray  # bool (H, W), after fill holes and grow/shrink; before feathering
    score: float | None = None
    detections: list[dict] = field(default_factory=list)
    embedding_cached: bool = False
    # uint8 (H, W) when the user's mask has grey levels (a soft brush), shaped like ``mask``
    # (which is then where it is > 0); None for a plain mask.
    coverage: np.ndarray | None = None

    def alpha(self, feather: float) -> np.ndarray:
        """The uint8 alpha the composite blends through: the feathered mask or coverage."""
        if self.coverage is None:
            return masks.feather(self.mask, feather)
        return coverage.feather(self.coverage, feather)


def with_models(opts: LocateOptions) -> LocateOptions:
    """``opts`` with the SAM checkpoint and detector folder it will need filled in, so a missing
    model is reported before any scene is generated, and outputs record what was used."""
    needs_sam = opts.has_prompts or opts.mask is None
    sam = opts.sam or (default_sam() if needs_sam else None)
    detector = opts.detector or (default_detector() if opts.automatic else None)
    return dataclasses.replace(opts, sam=sam, detector=detector)


def _sam_mask(opts: LocateOptions, scene: Image.Image, rgb: np.ndarray, session: InsertionSession,
              device: str, default_text: str | None, progress: ProgressCallback,
              cancel: CancelToken) -> MaskOutcome:
    """SAM from the user's prompts, or from the detector's boxes (automatic mode)."""
    detections: list = []
    if not opts.has_prompts:
        text = opts.text or default_text
        if not text:
            raise InvalidRequest("automatic mode needs a word to look for (--text WORD)")
        progress(Progress(stage=Stage.LOCATE, message=f"detecting '{text}'"))
        detector = session.detector(opts.detector or default_detector(), device)
        found = detect(detector, scene, text, opts.box_threshold, opts.text_threshold)
        detections = pick_instances(found, opts.instance)
    cancel.raise_if_cancelled()
    progress(Progress(stage=Stage.LOCATE, message="segmenting"))
    segmenter = session.sam(opts.sam or default_sam(), device)
    cached = segmenter.set_image(rgb)
    cancel.raise_if_cancelled()
    if detections:
        mask, score = segment_detections(segmenter, detections)
    else:
        pred = segmenter.predict(points=opts.points, box=opts.box)
        mask, score = pred.mask, pred.score
    return MaskOutcome(mask, score, [d.to_dict() for d in detections], cached)


def build_mask(opts: LocateOptions, scene: Image.Image, session: InsertionSession, device: str,
               default_text: str | None = None, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> MaskOutcome:
    """The subject mask for ``scene`` from ``opts``; an empty result is an InvalidRequest."""
    cancel = cancel or CancelToken()
    size = scene.size
    _check_inside(opts, size)
    user = None
    if opts.mask is not None:
        user = coverage.read_coverage(opts.mask, size)
    if opts.has_prompts or user is None:
        outcome = _sam_mask(opts, scene, np.asarray(scene.convert("RGB")), session, device,
                            default_text, progress, cancel)
        if user is not None:
            outcome.coverage = coverage.combine(outcome.mask, user, opts.mask_mode)
    else:
        outcome = MaskOutcome(user > 0, coverage=user)
    if outcome.coverage is not None and coverage.is_hard(outcome.coverage):
        outcome.mask, outcome.coverage = outcome.coverage > 0, None
    if outcome.coverage is None:
        if opts.fill_holes:
            outcome.mask = masks.fill_holes(outcome.mask)
        outcome.mask = masks.grow(outcome.mask, opts.grow)
    else:
        if opts.fill_holes:
            outcome.coverage = coverage.fill_holes(outcome.coverage)
        outcome.coverage = coverage.grow(outcome.coverage, opts.grow)
        outcome.mask = outcome.coverage > 0
    if not outcome.mask.any():
        raise InvalidRequest("the mask is empty: nothing would change. Click on the subject, draw a "
                             "bigger box, grow the mask less (or not at all), or check the mask file")
    return outcome


def _check_inside(opts: LocateOptions, size: tuple[int, int]) -> None:
    w, h = size
    for x, y, _ in opts.points:
        if x >= w or y >= h:
            raise InvalidRequest(f"point {x:g},{y:g} lies outside the {w}x{h} image")
    if opts.box is not None and (opts.box[0] >= w or opts.box[1] >= h):
        raise InvalidRequest(f"box {opts.box} lies outside the {w}x{h} image")


def segment(request: SegmentRequest, progress: ProgressCallback = no_progress,
            cancel: CancelToken | None = None, session: InsertionSession | None = None) -> SegmentResult:
    """The job behind ``python main.py segment``: one image in, one mask PNG out."""
    from alchemy_engine.image_files import load_rgb
    from alchemy_engine.models.device import device_policy

    request.validate()
    request = dataclasses.replace(request, locate=with_models(request.locate))
    cancel = cancel or CancelToken()
    session = session or default_session()
    image = load_rgb(request.image)
    device = device_policy(request.device).device
    with session.lock:
        outcome = build_mask(request.locate, image, session, device, request.locate.text, progress, cancel)
    final = outcome.alpha(request.locate.feather) if request.locate.feather > 0 else outcome.coverage
    masks.save_mask(outcome.mask if final is None else final, request.out)
    box = masks.bbox(outcome.mask)
    progress(Progress(stage=Stage.SEGMENT, step=1, total=1, message="done"))
    return SegmentResult(mask=Path(request.out).resolve(), bbox=box, area_fraction=float(outcome.mask.mean()),
                         score=outcome.score, detections=tuple(outcome.detections),
                         embedding_cached=outcome.embedding_cached)
