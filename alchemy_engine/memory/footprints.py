"""What a job needs in memory, and whether several jobs fit the computer together.

A front-end that runs jobs side by side (the GUI's model lane: a SAM click beside a training run)
asks ``studies/job_memory.job_footprints`` for each job before it starts (it knows the request
types; this module sizes them) and :func:`fits_together` whether the jobs already running plus the
new one fit. Training uses its own measured estimate (:func:`training_footprint` of
``memory/training.py``'s estimate); inference jobs are sized from their weight files plus
activations (:func:`sam_footprints`, :func:`sdxl_footprint`), a deliberately generous figure (the
cost of a wrong "fits" is an out-of-memory failure, of a wrong "does not fit" a short wait).
Nothing here loads weights.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024 ** 3
MIB = 1024 ** 2
MARGIN = 0.15  # of each budget kept free: allocator rounding, the GUI, the desktop
SAM_ACTIVATIONS = 2 * GIB  # ViT image encoder at 1024², beside its weights
SDXL_ACTIVATIONS = 3 * GIB  # one 1024² image with guidance, the VAE decode; the batch adds more
DEMO_BYTES = 64 * MIB  # the demo models are a few MiB: enough that the sum is never zero


@dataclass(frozen=True)
class JobFootprint:
    """Bytes a job holds at its peak: on its device (0 on the CPU) and in RAM."""

    device: str  # "cpu", "cuda", "cuda:1", "mps"
    device_bytes: int
    host_bytes: int
    note: str = ""  # said to the user when this footprint is the one used (e.g. SAM moved to the CPU)

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    def describe(self) -> str:
        where = f"{self.device_bytes / GIB:.1f} GiB on {self.device}, " if self.on_gpu else ""
        return f"{where}{self.host_bytes / GIB:.1f} GiB RAM"


@dataclass(frozen=True)
class MemoryBudget:
    """What the computer has: total bytes of each GPU and of RAM (None: cannot be known)."""

    device_bytes: dict[str, int]
    host_bytes: int | None


def memory_budget() -> MemoryBudget:
    """Total memory of each CUDA device and of RAM (a job's total, not what is free now: the jobs
    already running hold the difference, and :func:`fits_together` counts them)."""
    import torch

    devices = {}
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            total = int(torch.cuda.get_device_properties(index).total_memory)
            devices[f"cuda:{index}"] = total
        devices["cuda"] = devices[f"cuda:{torch.cuda.current_device()}"]
    return MemoryBudget(devices, _host_total())


def fits_together(footprints: Sequence[JobFootprint], budget: MemoryBudget) -> tuple[bool, str]:
    """Whether the last of ``footprints`` fits beside the others (already running): the sum on its
    device and the sum in RAM each within the budget less :data:`MARGIN`; the reason when it does
    not ("needs 2.0 GiB on cuda, 0.4 GiB left beside the running jobs")."""
    if len(footprints) <= 1:
        return True, ""
    new = footprints[-1]
    total = budget.device_bytes.get(new.device) if new.on_gpu else None
    if total is not None:  # None: the CPU, or an Apple GPU (it shares RAM: checked below)
        need = sum(f.device_bytes for f in footprints if f.device == new.device)
        if need > total * (1 - MARGIN):
            return False, _short(new.device, new.device_bytes, total * (1 - MARGIN) - (need - new.device_bytes))
    host_need = sum(f.host_bytes + (f.device_bytes if f.device == "mps" else 0) for f in footprints)
    if budget.host_bytes is not None and host_need > budget.host_bytes * (1 - MARGIN):
        room = budget.host_bytes * (1 - MARGIN) - (host_need - new.host_bytes)
        return False, _short("RAM", new.host_bytes, room)
    return True, ""


def _short(where: str, need: int, room: float) -> str:
    return f"needs {need / GIB:.1f} GiB on {where}, {max(0.0, room) / GIB:.1f} GiB left beside the running jobs"


def training_footprint(estimate: Any) -> JobFootprint:
    """The footprint of a training run from its estimate (``memory/training.MemoryEstimate``)."""
    if estimate.device == "cpu":
        return JobFootprint("cpu", 0, max(estimate.need_bytes, 0))
    host = max((int(row.get("host_bytes") or 0) for row in estimate.phases.values()), default=0)
    return JobFootprint(estimate.device, estimate.total_bytes, max(host - estimate.resident_bytes, 0))


def sam_footprints(prefer: str | None, sam: str | None, with_detector: bool) -> list[JobFootprint]:
    """A SAM job on its own device, then, when that is a GPU, on the CPU."""
    own = _sam(prefer, sam, with_detector)
    if not own.on_gpu:
        return [own]
    cpu = _sam("cpu", sam, with_detector)
    return [own, dataclasses.replace(cpu, note="SAM runs on the CPU this time: the GPU is full")]


def _device(prefer: str | None) -> str:
    from alchemy_engine.models.device import device_policy

    return device_policy(prefer).device


def _sam(prefer: str | None, sam: str | None, with_detector: bool) -> JobFootprint:
    from alchemy_engine.models.inventory import default_detector, default_sam, detector_folder, sam_checkpoint

    device = _device(prefer)
    spec = sam or default_sam()
    if spec == "demo":
        need = weights = DEMO_BYTES
    else:
        weights = _size(sam_checkpoint(spec))
        if with_detector and default_detector() != "demo":
            weights += _size(detector_folder(default_detector()))
        need = weights + SAM_ACTIVATIONS
    return JobFootprint(device, need if device != "cpu" else 0, need if device == "cpu" else weights // 4)


def sdxl_footprint(prefer: str | None, model: str | None) -> JobFootprint:
    """An SDXL inference job (insertion, a scene, an evaluation): its weight files plus activations."""
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.models.sources import weight_files

    device = _device(prefer)
    source = resolve_sdxl(model)
    if source.kind == "demo":
        need = DEMO_BYTES
    else:
        need = sum(_size(f) for f in weight_files(source)) + SDXL_ACTIVATIONS
    # On a GPU the weights are read through RAM once; a quarter is a fair share of what stays.
    return JobFootprint(device, need if device != "cpu" else 0, need if device == "cpu" else need // 4)


def _size(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.is_file() else 0


def _host_total() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system (Windows): ask psutil
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().total)
