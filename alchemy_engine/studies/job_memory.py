"""Which footprints a job's request can run with (``memory/footprints.py`` sizes them).

A thin adapter, here rather than in ``memory/``, because telling a request's kind imports both
stages (and ``evaluation``), which sit above the memory package: training is sized by its own
estimate (``training.estimate_memory``), SAM and SDXL jobs by their weights.
"""

from __future__ import annotations

from typing import Any

from alchemy_engine.memory.footprints import JobFootprint, sam_footprints, sdxl_footprint, training_footprint


def job_footprints(request: Any) -> list[JobFootprint]:
    """The footprints ``request`` can run with, preferred first: its own device, then (SAM only, when
    that is a GPU) the CPU. A request of an unknown kind gets none (it runs alone)."""
    from alchemy_engine.evaluation import EvaluateRequest
    from alchemy_engine.insertion import InsertRequest, SceneRequest, SegmentRequest
    from alchemy_engine.insertion.reference_masking import AutoMaskRequest
    from alchemy_engine.training import TrainRequest, estimate_memory

    if isinstance(request, TrainRequest):
        return [training_footprint(estimate_memory(request))]
    if isinstance(request, SegmentRequest | AutoMaskRequest):
        locate = request.locate if isinstance(request, SegmentRequest) else request.locate("")
        return sam_footprints(request.device, locate.sam, with_detector=bool(locate.text))
    if isinstance(request, InsertRequest | SceneRequest | EvaluateRequest):
        return [sdxl_footprint(request.device, request.model)]
    return []
