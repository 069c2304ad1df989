"""Find the subject: text detector boxes and the user's clicks/box, turned into a SAM mask.

:class:`SamSegmenter` wraps ``segment_anything.SamPredictor``. The image embedding (the only
expensive step) is computed once per image and kept on disk under
``cache_root()/sam_embeddings``, keyed by the SHA-256 of the decoded pixels, the SAM variant and
the checkpoint's identity. A second click, or the same image opened again later, restores the
predictor's state from that file instead of running the image encoder.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import AlchemyError

log = logging.getLogger(__name__)

EMBEDDING_FORMAT = 1


class NothingFound(AlchemyError):
    """The detector found no instance of the text in the image."""


def image_key(image: np.ndarray) -> str:
    """Content hash of an RGB uint8 array (shape included)."""
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}|".encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def checkpoint_id(checkpoint: Path) -> str:
    """Cheap identity of a checkpoint file: name, size and modification time."""
    stat = Path(checkpoint).stat()
    return hashlib.sha256(f"{Path(checkpoint).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def embedding_cache_dir() -> Path:
    return paths.cache_root() / "sam_embeddings"


@dataclass(frozen=True)
class SamPrediction:
    mask: np.ndarray  # bool (H, W)
    score: float


class SamSegmenter:
    """A loaded SAM model with a predictor whose embedding is cached per image on disk."""

    def __init__(self, model: Any, variant_name: str, weights_id: str, device: str = "cpu") -> None:
        from segment_anything import SamPredictor

        self.model = model
        self.variant = variant_name
        self.weights_id = weights_id
        self.device = device
        self.predictor = SamPredictor(model)
        self._current: str | None = None
        self.encoder_runs = 0  # how many times the image encoder actually ran (tests, benchmarks)

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> SamSegmenter:
        from alchemy_engine.models.inventory import sam_checkpoint
        from alchemy_engine.models.sam import load_sam

        checkpoint = sam_checkpoint(checkpoint)
        model, variant = load_sam(checkpoint, device=device)
        return cls(model, variant.name, checkpoint_id(Path(checkpoint)), device=device)

    def _cache_file(self, key: str) -> Path:
        return embedding_cache_dir() / self.variant / f"{key}-{self.weights_id}.safetensors"

    def set_image(self, image: np.ndarray) -> bool:
        """Make ``image`` (RGB uint8 HxWx3) current; True when the embedding came from a cache."""
        key = image_key(image)
        if key == self._current:
            return True
        cache = self._cache_file(key)
        if cache.is_file() and self._restore(cache):
            self._current = key
            return True
        import torch

        with torch.inference_mode():
            self.predictor.set_image(image, image_format="RGB")
        self.encoder_runs += 1
        self._store(cache)
        self._current = key
        return False

    def _store(self, cache: Path) -> None:
        from safetensors.torch import save_file

        p = self.predictor
        meta = {"format": str(EMBEDDING_FORMAT), "original_size": "%d,%d" % tuple(p.original_size),
                "input_size": "%d,%d" % tuple(p.input_size), "variant": self.variant}
        try:
            with atomic_path(cache) as tmp:
                save_file({"features": p.features.detach().float().cpu().contiguous()}, str(tmp), metadata=meta)
        except OSError as exc:  # a full or read-only cache only costs speed
            log.warning("could not cache the SAM embedding in %s: %s", cache, exc)

    def _restore(self, cache: Path) -> bool:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(cache), framework="pt", device="cpu") as handle:
                meta = handle.metadata() or {}
                features = handle.get_tensor("features")
        except (OSError, SafetensorError) as exc:
            log.warning("ignoring unreadable SAM embedding cache %s: %s", cache, exc)
            return False
        if meta.get("format") != str(EMBEDDING_FORMAT) or meta.get("variant") != self.variant:
            return False
        p = self.predictor
        p.reset_image()
        dtype = next(self.model.parameters()).dtype
        p.features = features.to(self.device, dtype=dtype)
        p.original_size = tuple(int(v) for v in meta["original_size"].split(","))
        p.input_size = tuple(int(v) for v in meta["input_size"].split(","))
        p.is_image_set = True
        return True

    def predict(self, points: Sequence[tuple[float, float, int]] = (),
                box: Sequence[float] | None = None) -> SamPrediction:
        """One mask for the current image from clicks and/or a box (pixel coordinates).

        A single click is ambiguous, so SAM proposes three masks and the best-scored one wins;
        with a box or several clicks one mask is asked for, as SAM's authors recommend. Only the
        chosen low-resolution mask is upscaled to the image size (``SamPredictor.predict`` upscales
        all three, which costs more than the decoder on a large photo).
        """
        import torch

        p = self.predictor
        if not p.is_image_set:
            raise RuntimeError("set_image() must be called before predict()")
        point_input = box_input = None
        if points:
            coords = p.transform.apply_coords(np.array([[q[0], q[1]] for q in points], dtype=np.float32),
                                              p.original_size)
            labels = np.array([int(q[2]) for q in points], dtype=np.int64)
            point_input = (torch.as_tensor(coords, device=self.device)[None],
                           torch.as_tensor(labels, device=self.device)[None])
        if box is not None:
            boxes = p.transform.apply_boxes(np.array(box, dtype=np.float32)[None], p.original_size)
            box_input = torch.as_tensor(boxes, device=self.device)
        multimask = box is None and len(points) == 1
        model = self.model
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points=point_input, boxes=box_input, masks=None)
            low_res, scores = model.mask_decoder(
                image_embeddings=p.features, image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            best = int(torch.argmax(scores[0]))
            full = model.postprocess_masks(low_res[:, best:best + 1], p.input_size, p.original_size)
            mask = (full[0, 0] > model.mask_threshold).cpu().numpy()
        return SamPrediction(mask=mask, score=float(scores[0, best]))


def pick_instances(detections: Sequence[Any], instance: str) -> list[Any]:
    """``best`` → the top score, ``all`` → every one, ``"2"`` → the third best."""
    ranked = sorted(detections, key=lambda d: d.score, reverse=True)
    if instance == "all":
        return ranked
    index = 0 if instance == "best" else int(instance)
    if index >= len(ranked):
        raise NothingFound(f"instance {index} asked for, but only {len(ranked)} found "
                           f"(0 is the highest score); pick a smaller index or 'all'")
    return [ranked[index]]


def detect(detector: Any, image: Any, text: str, box_threshold: float, text_threshold: float) -> list[Any]:
    """Detector boxes for ``text``; NothingFound (with what to try next) when there are none."""
    found = detector.detect(image, text, box_threshold=box_threshold, text_threshold=text_threshold)
    if not found:
        raise NothingFound(
            f"the detector found no '{text}' in the scene (box threshold {box_threshold:g}); lower "
            "--box-threshold, change --text, or mark the subject yourself with --point X,Y, "
            "--box X0,Y0,X1,Y1 or --mask FILE")
    return found


def segment_detections(segmenter: SamSegmenter, detections: Sequence[Any]) -> tuple[np.ndarray, float]:
    """Union of the SAM masks of each detection's box; the score is the lowest SAM score."""
    union: np.ndarray | None = None
    scores = []
    for det in detections:
        pred = segmenter.predict(box=det.box)
        union = pred.mask if union is None else union | pred.mask
        scores.append(pred.score)
    if union is None:
        raise ValueError("segment_detections needs at least one detection")
    return union, min(scores)
