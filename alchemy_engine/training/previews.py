"""What a run shows while it trains: the preview image of its sample prompt and the fidelity scores
of its checkpoints, both rendered from the cached prompt embeddings (trainer.py calls these)."""

from __future__ import annotations

import torch

from alchemy_engine.jobs import Progress, Stage
from alchemy_engine.training import samples, setup
from alchemy_engine.training.loop import LoopState, sample_embeddings
from alchemy_engine.training.request import TrainRequest

SAMPLE = "sample"  # the cached prompt the previews are drawn from


def render(run_setup: setup.RunSetup, state: LoopState, prompt_name: str):
    """The preview image of a cached prompt: same size, steps and seed every time."""
    request = run_setup.request
    embeds = sample_embeddings(state, prompt_name)
    negative = (torch.zeros_like(embeds[0]), torch.zeros_like(embeds[1]))  # SDXL: zeros for an empty prompt
    return samples.render(state.parts, embeds, negative, size=(request.resolution, request.resolution),
                          steps=request.sample_steps, seed=request.sample_seed, device=state.device,
                          autocast_dtype=run_setup.autocast_dtype)


def eval_prompts(request: TrainRequest, project) -> dict[str, str]:
    if not request.eval_every:
        return {}
    from alchemy_engine.evaluation.checkpoint_scores import eval_prompt_names

    return eval_prompt_names(request.eval_prompts, project.token, project.class_noun)


def checkpoint_scores(run_setup: setup.RunSetup, state: LoopState):
    """Fidelity scores per checkpoint (``eval_every``), or None (off, or no evaluation models)."""
    request = run_setup.request
    if not request.eval_every:
        return None
    from alchemy_engine.evaluation.checkpoint_scores import CheckpointScores

    return CheckpointScores.create(run_setup.folder, run_setup.project, eval_prompts(request, run_setup.project),
                                   source=request.eval_models, device=str(state.device),
                                   resumed_from=state.resumed_from, warnings=run_setup.warnings)


def sample(run_setup: setup.RunSetup, state: LoopState, progress):
    request = run_setup.request
    image = render(run_setup, state, SAMPLE)
    path = samples.save_sample(image, run_setup.folder / "samples", state.step)
    progress(Progress(Stage.SAMPLE, step=state.step, total=request.steps, preview=image, preview_path=path))
    return path
