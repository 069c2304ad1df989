"""Ranking insertion variations, and keeping the scorer loaded between jobs.

Every variation gets subject similarity on the inserted region (``dino_subject``, and
``dinov2_subject`` when loaded: DINO of the mask's padded box against the reference photos cropped
to their subject masks), the same on the whole image (``dino``, ``clip_i``) and prompt agreement
(``clip_t``: the insertion prompt without the rare token). CLIP does not see the crop: it would
double the cost of ranking (CLIP-L is the big model) for a score the ranking does not use. Variations are ordered by ``dino_subject``, best first (``clip_t`` breaks ties):
the product exists to put *this* dog into the scene.

Missing evaluation models never fail an insertion: :func:`insertion_ranker` returns None and a
note that says where to put them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.evaluation import encoders as eval_encoders
from alchemy_engine.evaluation import prompts, subject_crop
from alchemy_engine.evaluation.metrics import EmbeddingCache, FidelityScorer, References
from alchemy_engine.models import resident

log = logging.getLogger(__name__)

RANK_KEY = "dino_subject"


class _ScorerHolder:
    """Loaded scorers by (source, clip model, DINOv2, device); freed before training."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scorers: dict[tuple, FidelityScorer] = {}
        resident.register(self)

    def get(self, source: str | None, clip_model: str, dinov2: bool, device: str | None) -> FidelityScorer:
        key = (source, clip_model, dinov2, device)
        with self.lock:
            if key not in self.scorers:
                self.scorers.clear()  # one set of evaluation models in memory at a time
                self.scorers[key] = FidelityScorer.load(source, clip_model, dinov2, device)
            return self.scorers[key]

    def release(self) -> None:
        with self.lock:
            self.scorers.clear()


_holder = _ScorerHolder()


def shared_scorer(source: str | None = None, clip_model: str = eval_encoders.CLIP_L, dinov2: bool = False,
                  device: str | None = None) -> FidelityScorer:
    """A scorer kept loaded for the next job (released with the other resident models)."""
    return _holder.get(source, clip_model, dinov2, device)


def eval_models_available(source: str | None = None, clip_model: str = eval_encoders.CLIP_L) -> bool:
    """Whether ranking can run (the GUI turns it on by default when this is True); loads nothing."""
    return all(eval_encoders.find_eval_model(n, source) is not None for n in (eval_encoders.DINO, clip_model))


class InsertionRanker:
    """Scores insertions of one project's subject; the reference embeddings are computed once."""

    def __init__(self, scorer: FidelityScorer, project: Any, token: str) -> None:
        self.scorer = scorer
        self.token = token
        folder = project.cache_dir / "evaluation"
        if scorer.cache.folder != folder:
            scorer.cache = EmbeddingCache(folder)
        whole, _ = subject_crop.reference_images(project, crop=False)
        crops, self.notes = subject_crop.reference_images(project, crop=True)
        self.refs = scorer.references([r.image for r in whole], [r.key for r in whole])
        self.crop_refs = scorer.references([r.image for r in crops], [r.key for r in crops])

    def score(self, image: Image.Image, mask: np.ndarray, prompt: str) -> dict[str, Any]:
        """Scores of one insertion; ``mask`` is the insertion mask (2-D, the image's size)."""
        row: dict[str, Any] = self.scorer.score([image], self.refs, prompts.without_token(prompt, self.token))[0]
        cropped = subject_crop.crop_to_mask(image, mask)
        if cropped is not None:
            crop_row = self.scorer.score([cropped[0]], self.crop_refs, subject_only=True)[0]
            row.update({f"{k}_subject": v for k, v in crop_row.items()})
            row["subject_box"] = list(cropped[1])
        return {**{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()},
                "models": self.scorer.model_names}


def rank_order(scores: list[dict[str, Any]]) -> list[int]:
    """Indices of ``scores`` best first: by ``dino_subject`` (else ``dino``), then ``clip_t``."""
    def key(i: int) -> tuple[float, float]:
        row = scores[i]
        return (-row.get(RANK_KEY, row.get("dino", 0.0)), -row.get("clip_t", 0.0))

    return sorted(range(len(scores)), key=key)


def insertion_ranker(project: Any, token: str, source: str | None, device: str | None,
                     notes: list[str]) -> InsertionRanker | None:
    """A ranker, or None with a note in ``notes`` when the evaluation models are missing."""
    try:
        scorer = shared_scorer(source, device=device)
    except eval_encoders.EvalModelsMissing as exc:
        log.warning("ranking skipped: %s", exc)
        notes.append(f"ranking skipped: {exc}")
        return None
    ranker = InsertionRanker(scorer, project, token)
    notes.extend(ranker.notes)
    return ranker


__all__ = ["InsertionRanker", "RANK_KEY", "References", "eval_models_available", "insertion_ranker",
           "rank_order", "shared_scorer"]
