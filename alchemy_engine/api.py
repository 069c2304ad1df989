"""Every job the app can run, in one place: its request, its result and its function.

The CLI and the GUI build these requests and call these functions; nothing else reaches into
the engine's internals. Each function has the shape ``run(request, progress, cancel) -> result``
(see :mod:`alchemy_engine.jobs`). Importing this module is cheap: torch loads when a job runs.
"""

from __future__ import annotations

from alchemy_engine.evaluation import EvaluateRequest, EvaluateResult
from alchemy_engine.evaluation import run as evaluate
from alchemy_engine.insertion import (
    InsertRequest,
    InsertResult,
    LocateOptions,
    SceneRequest,
    SceneResult,
    SegmentRequest,
    SegmentResult,
    make_scene,
    segment,
)
from alchemy_engine.insertion import run as insert
from alchemy_engine.jobs import CancelToken, JobRequest, Progress, ProgressCallback, no_progress
from alchemy_engine.training import TrainRequest, TrainResult, estimate_memory
from alchemy_engine.training import run as train


def eval_models_available(source: str | None = None) -> bool:
    """Whether insertion ranking can run (the GUI turns --rank on by default when it can)."""
    from alchemy_engine.evaluation.ranking import eval_models_available as available

    return available(source)


JOBS = {
    "train": (TrainRequest, train),
    "insert": (InsertRequest, insert),
    "segment": (SegmentRequest, segment),
    "scene": (SceneRequest, make_scene),
    "evaluate": (EvaluateRequest, evaluate),
}
"""Job name → (request class, function): a request saved as JSON names its job and re-runs."""

__all__ = [
    "JOBS", "CancelToken", "EvaluateRequest", "EvaluateResult", "InsertRequest", "InsertResult", "JobRequest",
    "LocateOptions", "Progress",
    "ProgressCallback", "SceneRequest", "SceneResult", "SegmentRequest", "SegmentResult", "TrainRequest", "TrainResult",
    "estimate_memory", "eval_models_available", "evaluate", "insert", "make_scene", "no_progress", "segment", "train",
]
