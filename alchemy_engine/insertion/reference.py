"""Reference guidance for one insertion: the request's adapter, photos and controls made ready
(:func:`prepare`, before any long work), then attached around the repaint (:meth:`Guidance.attached`).

Steps: resolve and check the adapter (header, then its fit to the loaded UNet) → the photos →
their embeddings (cache, else the encoder, loaded and released here) → the adapter's weights
read once. While attached, :class:`GuidanceHook` gives the pipeline the embeddings and switches
the scale per step for ``--ip-range``; the insertion mask limits it to the repainted region.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from alchemy_engine.insertion import metadata
from alchemy_engine.insertion.request import parse_range
from alchemy_engine.jobs import Progress, ProgressCallback, Stage


@dataclass
class Guidance:
    """Everything one insertion needs to guide with references; ``weights`` are on the CPU."""

    adapter: Path
    info: Any  # models.ip_adapter_files.IpAdapterInfo
    weights: dict
    embeddings: Any  # reference_embeddings.ReferenceEmbeddings
    scale: float
    start: float
    end: float
    mode: str
    masked: bool
    adapter_hash: str

    def metadata(self) -> dict[str, Any]:
        """What the PNG records (and *Reuse parameters* reads back through the request)."""
        return {"adapter": self.adapter.name, "adapter_hash": self.adapter_hash, "variant": self.info.variant,
                "scale": self.scale, "range": [self.start, self.end], "mode": self.mode,
                "photos": list(self.embeddings.photos), "inside_mask_only": self.masked}

    @contextlib.contextmanager
    def attached(self, loaded: Any, repaint: Image.Image) -> Iterator[GuidanceHook]:
        """The adapter on ``loaded``'s UNet for the block, limited to ``repaint`` (work-size mask)."""
        from alchemy_engine.insertion.reference_guidance import attached, set_mask

        unet, dtype = loaded.base.unet, loaded.policy.dtype
        device = next(unet.parameters()).device
        with attached(unet, self.weights, dtype, self.mode) as processors:
            set_mask(processors, _latent_mask(repaint, device, dtype) if self.masked else None)
            yield GuidanceHook(self, processors, device, dtype)


def _latent_mask(repaint: Image.Image, device: Any, dtype: Any) -> Any:
    import numpy as np
    import torch

    width, height = repaint.size
    small = repaint.convert("L").resize((max(width // 8, 1), max(height // 8, 1)), Image.Resampling.BOX)
    array = np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None, None].to(device=device, dtype=dtype)


class GuidanceHook:
    """What :func:`inpaint.inpaint_batch` asks of guidance: pipeline arguments and a step callback."""

    def __init__(self, guidance: Guidance, processors: list, device: Any, dtype: Any) -> None:
        self.guidance, self.processors = guidance, processors
        self.device, self.dtype = device, dtype  # the UNet's compute dtype: the Plus resampler does not cast

    def pipeline_kwargs(self, guidance_scale: float) -> dict[str, Any]:
        """The embeddings, negative first when CFG is on (the pipeline repeats them per image)."""
        embeds = self.guidance.embeddings.for_pipeline(classifier_free=guidance_scale > 1)
        return {"ip_adapter_image_embeds": [embeds.to(device=self.device, dtype=self.dtype)]}

    def wrap(self, callback: Callable, steps: int) -> Callable:
        """Sets the scale for step 0 now and for step i+1 after step i (diffusers calls
        ``callback_on_step_end`` after each step)."""
        from alchemy_engine.insertion.reference_guidance import active, set_scale

        g = self.guidance

        def scale_at(step: int) -> float:
            return g.scale if active(step, steps, g.start, g.end) else 0.0

        set_scale(self.processors, scale_at(0))

        def wrapped(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            result = callback(pipe, step, timestep, tensors)
            set_scale(self.processors, scale_at(step + 1))
            return result

        return wrapped


def prepare(req: Any, project: Any, loaded: Any, progress: ProgressCallback, notes: list[str]) -> Guidance | None:
    """The guidance the request asks for, checked and embedded; None when off (no adapter, scale 0)."""
    from alchemy_engine.insertion.reference_embeddings import choose_photos, embed_references
    from alchemy_engine.models.clip_vision import matching_encoder
    from alchemy_engine.models.inventory import ip_adapter_file
    from alchemy_engine.models.ip_adapter_files import check_fits, inspect_ip_adapter, read_adapter

    if req.ip_adapter is None:
        return None
    if req.ip_scale == 0:
        notes.append("reference guidance at scale 0 is off: the adapter was not attached")
        return None
    unet = loaded.base.unet
    path, demo_encoder = ip_adapter_file(req.ip_adapter, unet)
    info = inspect_ip_adapter(path)
    check_fits(info, unet)
    reads = "hidden" if info.plus else "projection"
    encoder = matching_encoder(req.ip_encoder or demo_encoder, path, reads, info.encoder_width)
    photos = choose_photos(project, req.ip_photos, notes)
    plural = "s" if len(photos) != 1 else ""
    progress(Progress(stage=Stage.LOAD, message=f"reference guidance: {path.name}, {len(photos)} photo{plural}"))
    embeddings = embed_references(project, photos, encoder, info.plus, req.ip_crop, loaded.policy.device,
                                  loaded.policy.dtype)
    start, end = parse_range(req.ip_range)
    return Guidance(path, info, read_adapter(path), embeddings, req.ip_scale, start, end, req.ip_mode,
                    req.ip_inside_mask, metadata.short_hash(path))

