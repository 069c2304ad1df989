"""Variations in batches: several seeds through the loaded inpaint pipeline in one call.

The batch size is the request's ``batch_size`` or, for ``auto``, what the device's free memory
holds at the work size (``memory/inference.py``); the choice and its reason are reported as
a ``Stage.NOTE``. Each image is the one its seed gives alone (``inpaint.inpaint_batch``). When a
batch runs out of device memory it is retried in halves, down to one image, with a note; the
cancel token is checked between batches and, inside one, at every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from PIL import Image

from alchemy_engine.insertion.inpaint import Sampling, inpaint_batch, speed_events, step_callback, steps_run
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage
from alchemy_engine.memory.inference import BatchChoice, choose_batch_size, parse_batch_size


def choose(requested: str | int, variations: int, loaded: Any, work_size: tuple[int, int],
           guidance: float) -> BatchChoice:
    """The batch size for this job; measures free memory only when ``auto`` has something to decide."""
    from alchemy_engine.memory.inference import per_image_bytes
    from alchemy_engine.models.device import free_device_bytes

    device = str(loaded.policy.device)
    free, per_image = None, 0
    if parse_batch_size(requested) is None and variations > 1 and device.split(":")[0] in ("cuda", "mps"):
        latent = (work_size[1] // 8, work_size[0] // 8)
        per_image = per_image_bytes(loaded.base.unet.config, latent, loaded.policy.dtype, device, guidance > 1)
        free = free_device_bytes(device)
    return choose_batch_size(requested, variations, device, free, per_image)


def batch_message(indices: list[int], seeds: list[int], total: int) -> str:
    if len(indices) == 1:
        return f"variation {indices[0] + 1}/{total} (seed {seeds[0]})"
    return (f"variations {indices[0] + 1}–{indices[-1] + 1}/{total} "
            f"(seeds {', '.join(str(s) for s in seeds)})")


class BatchRunner:
    """Repaints the prepared work crop for many seeds, ``size`` at a time, in seed order."""

    def __init__(self, loaded: Any, work: Image.Image, repaint: Image.Image, sampling: Sampling,
                 progress: ProgressCallback, cancel: CancelToken, notes: list[str], guidance: Any = None,
                 pipe: Any = None) -> None:
        self.loaded, self.work, self.repaint, self.sampling = loaded, work, repaint, sampling
        self.progress, self.cancel, self.notes = progress, cancel, notes
        self.guidance = guidance  # reference.GuidanceHook while an IP-Adapter is attached, else None
        self.pipe = pipe  # an inpaint pipeline other than the loaded model's own (an inpainting UNet)

    def images(self, seeds: list[int], size: int) -> Iterator[tuple[int, Image.Image]]:
        """``(index, work-size image)`` for each seed, in order; ``size`` images per call at most."""
        per = steps_run(self.sampling.steps, self.sampling.strength)
        total_steps = per * len(seeds)
        start = 0
        while start < len(seeds):
            self.cancel.raise_if_cancelled()
            indices = list(range(start, min(start + size, len(seeds))))
            try:
                images = self._call([seeds[i] for i in indices], indices, per, total_steps, len(seeds))
            except RuntimeError as exc:
                if len(indices) == 1 or not _out_of_memory(exc):
                    raise
                size = len(indices) // 2
                self._out_of_memory_note(len(indices), size)
                continue
            yield from zip(indices, images)
            start += len(indices)

    def _call(self, seeds: list[int], indices: list[int], per: int, total_steps: int,
              variations: int) -> list[Image.Image]:
        callback = step_callback(self.progress, self.cancel, Stage.INSERT, indices[0] * per, total_steps,
                                 message=batch_message(indices, seeds, variations), per_step=len(indices))
        samplings = [dataclasses.replace(self.sampling, seed=seed) for seed in seeds]
        speed_events(self.progress, self.loaded, self.work.size, images=len(seeds))
        guided = {} if self.guidance is None else {"guidance": self.guidance}
        images = inpaint_batch(self.pipe or self.loaded.inpaint, self.work, self.repaint, samplings, callback,
                               **guided)
        speed_events(self.progress, self.loaded, self.work.size, images=len(seeds))
        return images

    def _out_of_memory_note(self, tried: int, size: int) -> None:
        from alchemy_engine.models.resident import free_device_memory

        free_device_memory()
        note = (f"out of memory with {tried} variations in one batch; trying {size} at a time "
                "(set --batch-size to choose)")
        self.notes.append(note)
        self.progress(Progress(stage=Stage.NOTE, message=note))


def _out_of_memory(exc: BaseException) -> bool:
    from alchemy_engine.models.torch_compile import is_out_of_memory

    return is_out_of_memory(exc)


def run_batches(runner: BatchRunner, seeds: list[int], choice: BatchChoice,
                finish: Callable[[int, Image.Image], None]) -> None:
    """Report the batch choice, then hand each finished work image to ``finish`` in seed order."""
    if len(seeds) > 1:
        runner.progress(Progress(stage=Stage.NOTE, message=choice.reason))
    for index, image in runner.images(seeds, choice.size):
        finish(index, image)
