"""Stage 2: put the trained subject into a scene (scene → locate → mask → masked img2img → paste).

Public API::

    from alchemy_engine.insertion import InsertRequest, LocateOptions, SegmentRequest, run, segment
    result = run(InsertRequest(project="Rex", scene=Path("beach.jpg")), progress, cancel)

Pass the same :class:`InsertionSession` to every call (the GUI holds one) to keep SDXL, the
LoRAs, SAM and the detector loaded between jobs; without one a process-wide session is used.
"""

from alchemy_engine.insertion.request import (
                                              InsertRequest,
                                              InsertResult,
                                              LocateOptions,
                                              SceneRequest,
                                              SceneResult,
                                              SegmentRequest,
                                              SegmentResult,
)
from alchemy_engine.insertion.scene import make_scene
from alchemy_engine.insertion.segment import segment
from alchemy_engine.insertion.service import run
from alchemy_engine.insertion.session import InsertionSession, default_session

__all__ = ["InsertRequest", "InsertResult", "InsertionSession", "LocateOptions", "SceneRequest",
           "SceneResult", "SegmentRequest", "SegmentResult", "default_session", "make_scene", "run", "segment"]
