"""The processes of one training run: rank, size and the few collectives the trainer needs.

A run started by ``torch.distributed.run`` (torchrun, or ``train --gpus N``, which re-runs itself
under it) finds ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in its environment and joins the process
group: NCCL on CUDA, gloo on the CPU (and on Windows, which has no NCCL). A run without them is
:data:`SINGLE`, whose collectives return at once: one process keeps today's path, no wrapper.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from typing import TYPE_CHECKING, Any

from alchemy_engine.errors import InvalidRequest

# Caching latents or making class images happens on some ranks while the others wait at a
# barrier; torch's default (10 min for NCCL) would end a long caching phase (sd-scripts #971).
GROUP_TIMEOUT = datetime.timedelta(hours=24)

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone speaks (progress events) and writes (run folder, checkpoints, exports)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed

            torch.distributed.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.distributed:
            return value
        import torch.distributed

        box = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        import torch.distributed

        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, value)
        return out

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on one: all ranks stop at the same step."""
        if not self.distributed:
            return flag
        import torch

        box = torch.tensor([1 if flag else 0], device=_collective_device())
        torch.distributed.all_reduce(box, op=torch.distributed.ReduceOp.MAX)
        return bool(box.item())

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a scalar tensor (a step's loss)."""
        if not self.distributed:
            return value
        import torch.distributed

        box = value.detach().reshape(1).to(_collective_device(), torch.float32)
        torch.distributed.all_reduce(box)
        return (box / self.size).reshape(())


SINGLE = World()


def from_environment() -> World:
    """This process's place in the run from torchrun's variables; :data:`SINGLE` without them."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return SINGLE
    return World(rank=int(os.environ.get("RANK", "0")), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def is_worker() -> bool:
    """True in a process started by torchrun (with more than one process)."""
    return from_environment().distributed


def join(device: str | None) -> World:
    """Join the run's process group (once per process) and pick this rank's GPU.

    ``device`` is the request's device: CUDA ranks use ``cuda:LOCAL_RANK`` and NCCL; CPU ranks gloo.
    """
    world = from_environment()
    if not world.distributed:
        return world
    import torch

    cuda = (device or "").startswith("cuda") or (not device and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(world.local_rank)
    if not torch.distributed.is_initialized():
        backend = "nccl" if cuda and sys.platform != "win32" else "gloo"
        torch.distributed.init_process_group(backend, timeout=GROUP_TIMEOUT)
    return world


def _collective_device() -> torch.device:
    import torch

    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_gpus(gpus: int, device: str | None) -> None:
    """Refuse a process count this computer cannot run, with what to do instead.

    More than one process needs that many CUDA GPUs, or ``device cpu`` (gloo, for tests and trials);
    Apple GPUs (MPS) cannot be shared by several processes."""
    if gpus <= 1:
        return
    wanted = (device or "").strip().lower()
    if wanted == "mps":
        raise InvalidRequest("gpus above 1 is not available on Apple GPUs (MPS); use gpus 1")
    if wanted == "cpu":
        return
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wanted.startswith("cuda:"):
        raise InvalidRequest(f"device {device} names one GPU, but gpus {gpus} asks for several: "
                             "leave device empty (or 'cuda') with gpus above 1")
    if present < gpus:
        raise InvalidRequest(f"gpus {gpus} asks for more GPUs than this computer has ({present}); "
                             f"use gpus {max(present, 1)}, or device cpu to try several processes on the CPU")
