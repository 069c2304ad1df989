"""The compiled UNet in training: compile up front, one graph per bucket, eager when it fails.

``torch.compile`` compiles lazily, at the first call with a new input shape. Left alone, that would
hide minutes of compiling inside the first training step of each bucket, and a compile failure
would stop the run in the middle. So before the first step :func:`warm_up` runs one forward and
backward pass of the compiled UNet per distinct batch shape of the data (zeros as latents, the
cached embeddings; the LoRA gradients are dropped afterwards and no random number is drawn, so
training is unchanged by it) and reports it as its own stage, ``Stage.COMPILE``. If compiling
fails, the UNet goes back to eager and the run continues with a note. :func:`guarded_step` covers
the rare shape met later (prior-preservation batches that pair differently in a later epoch):
a failure there restores the step's random state and data position and repeats the step eagerly.

With compile off the loop is exactly the eager loop (resume stays bit-identical); with compile on,
a resumed run recompiles and matches an uninterrupted compiled run up to float rounding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from alchemy_engine.jobs import Progress, ProgressCallback, Stage
from alchemy_engine.models import torch_compile
from alchemy_engine.training import loop
from alchemy_engine.training.loop import LoopState

log = logging.getLogger(__name__)


def batch_shapes(state: LoopState) -> list[dict]:
    """One batch of every distinct input shape in the first epoch (shapes repeat every epoch)."""
    seen: dict[tuple, dict] = {}
    for passes in loop._epoch_plan(state, 0):
        for batch in passes:
            seen.setdefault(tuple(batch["latents"].shape), batch)
    return list(seen.values())


def _forward_backward(state: LoopState, batch: dict) -> None:
    latents = torch.zeros_like(batch["latents"], dtype=state.weight_dtype)
    timesteps = torch.zeros(latents.shape[0], dtype=torch.long, device=state.device)
    with torch.autocast(state.device.type, dtype=state.autocast_dtype, enabled=state.autocast_dtype is not None):
        pred = state.unet(latents, timesteps, batch["embeds"], return_dict=False,
                          added_cond_kwargs={"text_embeds": batch["pooled"], "time_ids": batch["time_ids"]})[0]
    pred.float().mean().backward()
    for param in state.params:
        param.grad = None


def warm_up(state: LoopState, progress: ProgressCallback) -> str:
    """Compile the UNet for every batch shape; returns the note for the user (time, graphs, or why eager)."""
    shapes = batch_shapes(state)
    if state.data.prompt_tokens is not None:
        return _eager(state, "text-encoder LoRA encodes prompts inside the step; the UNet stays eager")
    graphs_before = torch_compile.graphs_compiled()
    started = time.perf_counter()
    torch_compile.compile_in_place(state.unet)
    for n, batch in enumerate(shapes):
        progress(Progress(Stage.COMPILE, step=n, total=len(shapes),
                          message=f"compiling the UNet for {tuple(batch['latents'].shape)}"))
        try:
            _forward_backward(state, batch)
        except torch_compile.compile_errors() as exc:
            if torch_compile.is_out_of_memory(exc):
                raise
            log.warning("compiling the UNet failed; training eagerly", exc_info=True)
            return _eager(state, f"compiling failed ({torch_compile.describe_failure(exc)}); training runs uncompiled")
    seconds = time.perf_counter() - started
    graphs = torch_compile.graphs_compiled() - graphs_before
    progress(Progress(Stage.COMPILE, step=len(shapes), total=len(shapes), message=f"compiled in {seconds:.1f} s"))
    return (f"compiled in {seconds:.1f} s for {len(shapes)} batch shape(s), {graphs} graph(s); "
            f"at most {torch_compile.RECOMPILE_LIMIT} per frame, then eager")


def _eager(state: LoopState, why: str) -> str:
    torch_compile.uncompile(state.unet)
    for param in state.params:
        param.grad = None
    return why


def guarded_step(state: LoopState, step: Callable[[LoopState], torch.Tensor],
                 notes: list[str]) -> torch.Tensor:
    """``step(state)``; if the compiled UNet fails on a new shape, repeat the step eagerly."""
    if not torch_compile.is_compiled(state.unet):
        return step(state)
    rng, micro, epoch = state.generator.get_state(), state.micro_step, state._epoch
    try:
        return step(state)
    except torch_compile.compile_errors() as exc:
        if torch_compile.is_out_of_memory(exc):
            raise
        log.warning("the compiled UNet failed at step %d; continuing eagerly", state.step, exc_info=True)
        notes.append(f"compile: failed at step {state.step} ({torch_compile.describe_failure(exc)}); "
                     "continued uncompiled")
        torch_compile.uncompile(state.unet)
        state.generator.set_state(rng)
        state.micro_step, state._epoch = micro, epoch
        state.optimizer.zero_grad(set_to_none=True)
        return step(state)
