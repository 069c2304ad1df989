"""Data-parallel training: N processes train the LoRA that one process trains with N× the batch.

The invariant, and how it holds:

- every rank builds the same global batch plan (``batch_size × N`` per step, so every rank is in
  the same bucket at every pass) and keeps a contiguous share of each pass (:func:`rank_share`);
  a rank whose share is empty (the tail of a bucket) runs a zero-weight copy, so every rank makes
  the same forward and backward passes and none waits forever in a collective;
- noise and timesteps are drawn for the whole pass from the shared generator (same seed on every
  rank) and cut to the share (``loop.forward_loss``);
- each sample's weight is scaled so that the sum over ranks of the rank losses is the one-process
  mean: DDP averages gradients over N ranks, so a rank's loss is ``N × Σ(its samples) / global count``;
- gradients are synchronised on the last backward of a step (``no_sync`` before), once per
  optimizer step, and the LR scheduler is stepped once per step (it is not "prepared");
- DDP ignores the frozen weights (no broadcast of the whole UNet at start) and is told about
  unused parameters when the text encoders carry LoRA (SDXL skips TE1's last layer).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from alchemy_engine.errors import AlchemyError, InvalidRequest
from alchemy_engine.training import checkpoints
from alchemy_engine.training.loop import LoopState
from alchemy_engine.training.loss_log import LossLog
from alchemy_engine.training.world import World, check_gpus


def wrap(state: LoopState, world: World) -> None:
    """Put the modules that carry LoRA under DDP; the raw ones stay in ``state.models`` (saving,
    previews). Reentrant checkpointing would mark parameters ready twice: diffusers' UNet uses
    ``use_reentrant=False``."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [world.local_rank] if state.device.type == "cuda" else None
    text_lora = state.text_encoders is not None
    wrapped = {}
    for name, module in state.models.items():
        frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
        frozen += [n for n, _ in module.named_buffers()]
        DDP._set_params_and_buffers_to_ignore_for_model(module, frozen)
        # SDXL conditions on TE1's penultimate layer: its last layer's LoRA gets no gradient
        wrapped[name] = DDP(module, device_ids=device_ids, find_unused_parameters=name == "text_encoder")
    state.unet = wrapped["unet"]
    if text_lora:
        state.text_encoders = (wrapped["text_encoder"], wrapped["text_encoder_2"])

    def grad_sync(last: bool):
        if last:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        for module in wrapped.values():
            stack.enter_context(module.no_sync())
        return stack

    state.grad_sync = grad_sync


def step(world: World, optimizer_step):
    """``optimizer_step`` returning the loss of the whole global batch (the mean over ranks)."""
    def run(state: LoopState) -> torch.Tensor:
        return world.mean(optimizer_step(state))

    return run


class SilentLossLog(LossLog):
    """The loss log of a rank other than 0: it keeps the position, and writes nothing."""

    def read(self) -> None:
        self._pending.clear()

    def flush(self) -> None:
        self._pending.clear()


def require_same_lora(state: LoopState, world: World) -> None:
    """Before a checkpoint: every rank must hold the same LoRA (a checksum, compared exactly)."""
    if not world.distributed:
        return
    with torch.no_grad():
        sums = [float(p.detach().double().sum()) + float(p.detach().double().abs().sum()) for p in state.params]
    seen = world.gather(sums)
    if any(other != seen[0] for other in seen[1:]):
        raise AlchemyError(f"the training processes hold different LoRA weights at step {state.step} "
                           "(a bug, or a process that skipped a step); the last checkpoint is intact: resume it")


def rng_to_save(world: World, generator: torch.Generator) -> dict[str, Any]:
    """``rng.pt``: every rank's random states, by rank, and the world size (on every rank)."""
    states = checkpoints.rng_states(generator)
    if not world.distributed:
        return states
    return {"world_size": world.size, "ranks": world.gather(states)}


def match_world(run_setup, world: World) -> None:
    """The run's ``gpus`` is the number of processes it trains with (recorded with the run).

    A new run started by torchrun takes the process count from it (noted); a resumed run must have
    the process count it was trained with, since the data order and the random states depend on it.
    """
    request = run_setup.request
    check_gpus(world.size, request.device)
    if request.gpus == world.size:
        return
    if request.resume_run:
        raise InvalidRequest(f"run {request.resume_run} was trained by {request.gpus} process(es) and cannot "
                             f"continue with {world.size}: resume it with gpus {request.gpus}")
    if not world.distributed:
        raise InvalidRequest(f"gpus {request.gpus} needs {request.gpus} processes: start it with "
                             f"`train PROJECT --gpus {request.gpus}` (which starts them) or under torchrun")
    run_setup.change("gpus", world.size, f"started by torchrun with {world.size} processes")


def smallest_free_bytes(run_setup) -> int | None:
    """The free memory every rank's decisions use: the smallest of all ranks' (None if one cannot
    tell), so rank 0's choices (``--fit``, ``auto``) fit every GPU; -1 (ask) for one process."""
    world = run_setup.world
    if not world.distributed:
        return -1
    from alchemy_engine.models.device import free_device_bytes

    seen = world.gather(free_device_bytes(run_setup.device))
    return None if any(free is None for free in seen) else min(seen)
