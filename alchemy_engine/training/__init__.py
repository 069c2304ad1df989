"""Stage 1: DreamBooth-LoRA training of a project's subject on SDXL.

``run(request, progress, cancel) -> TrainResult`` is the job (CLI and GUI call the same one);
``estimate_memory(request)`` answers "will it fit?" without loading any weights.
"""

from __future__ import annotations

from alchemy_engine.training.request import TrainRequest, TrainResult

__all__ = ["TrainRequest", "TrainResult", "run", "estimate_memory", "launch_gpus"]


def run(request, progress=None, cancel=None):
    """See :func:`alchemy_engine.training.trainer.run`."""
    from alchemy_engine.jobs import CancelToken, no_progress
    from alchemy_engine.models.resident import SDXL_LIBRARIES, import_long_lived
    from alchemy_engine.training.world import is_worker

    if not is_worker() and (gpus := launch_gpus(request)) > 1:  # the app asks for several GPUs
        from alchemy_engine.training import processes

        return processes.run(request, gpus, progress or no_progress, cancel or CancelToken())

    import_long_lived("alchemy_engine.training.trainer", *SDXL_LIBRARIES)
    from alchemy_engine.training.trainer import run as _run

    return _run(request, progress or no_progress, cancel)


def estimate_memory(request: TrainRequest):
    """The peak-memory estimate (and, with ``fit_memory``, the fitted settings) for ``request``.

    Returns a :class:`~alchemy_engine.memory.training.MemoryEstimate`; loads no weights.
    """
    from alchemy_engine.memory import training as memory
    from alchemy_engine.training import setup

    run_setup = setup.prepare(request)
    if run_setup.request.fit_memory and not run_setup.request.resume_run:
        return memory.fit(run_setup.request, run_setup.source, run_setup.policy)
    return memory.estimate(run_setup.request, run_setup.source, run_setup.policy)


def launch_gpus(request: TrainRequest) -> int:
    """How many processes ``request`` trains with: its ``gpus``, or the resumed run's own.

    Raises ``InvalidRequest`` when this computer cannot run that many (see ``world.check_gpus``)."""
    from alchemy_engine.training import setup, world

    request.validate()
    gpus, device = request.gpus, request.device
    if request.resume_run:
        from alchemy_engine.project import open_project

        saved = setup.saved_request(setup.find_run(open_project(request.project), request.resume_run))
        gpus, device = saved.gpus, saved.device
    world.check_gpus(gpus, device)
    return gpus
