"""Subject-fidelity scores: DINO, CLIP-I, CLIP-T, DINOv2 and the subject-crop variant.

* :mod:`~alchemy_engine.evaluation.metrics` — the scorer (load once, embed references once);
* :mod:`~alchemy_engine.evaluation.encoders` — where the evaluation models are found;
* :mod:`~alchemy_engine.evaluation.ranking` — ranking insertion variations;
* :mod:`~alchemy_engine.evaluation.checkpoint_scores` — scores per training checkpoint;
* :mod:`~alchemy_engine.studies.evaluate` — the ``evaluate`` job (DreamBench protocol), one level up.

Importing this package is cheap: torch and transformers load when a model does.
"""

from __future__ import annotations

from alchemy_engine.evaluation.request import EvaluateRequest, EvaluateResult

__all__ = ["EvaluateRequest", "EvaluateResult"]
