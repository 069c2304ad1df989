"""Which SDXL parts a training run loads, and when: the UNet never beside the encoders.

1. **Encoders**: the VAE and both text encoders, only for what the project cache lacks (photo
   latents, prompt embeddings) or what training still needs (the VAE for previews, the text
   encoders for text-encoder LoRA); nothing at all when every latent and embedding is cached.
2. They are released (text encoders kept for text-encoder LoRA, the VAE parked on the CPU for
   previews), **then the UNet** is loaded.

Only class images still to be drawn (prior preservation) need the whole pipeline, at once, first.

The peak is then the larger of the encoders' phase and the UNet's training instead of all models
at once: full SDXL in fp32 on a CPU holds 10.3 GB of UNet and 3.6 GB of encoders; a re-run with
the same photos and prompts does not read the encoders' 3.6 GB (1.7 GB in fp16) at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from alchemy_engine.errors import ModelError
from alchemy_engine.jobs import Progress, ProgressCallback, Stage
from alchemy_engine.models import half_weights
from alchemy_engine.models.device import DevicePolicy


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    all_at_once: bool = False  # class images still to be drawn: the whole pipeline, first
    text_encoders: bool = True
    vae: bool = True

    @property
    def loads_encoders(self) -> bool:
        return self.all_at_once or self.text_encoders or self.vae

    def without(self) -> tuple[str, ...]:
        """The components the first load leaves out (``load_sdxl_pipeline(without=...)``)."""
        if self.all_at_once:
            return ()
        return ("unet", *(() if self.text_encoders else ("text_encoder", "text_encoder_2")),
                *(() if self.vae else ("vae",)))


def plan(request, *, class_images_missing: bool, cached: dict[str, bool]) -> LoadPlan:
    """``cached``: :func:`cache.fully_cached` for this run's pictures and prompts."""
    previews = bool(request.sample_every or request.eval_every)
    return LoadPlan(all_at_once=class_images_missing,
                    text_encoders=not cached["embeddings"] or request.text_encoder_lora,
                    vae=not cached["latents"] or previews)


class StagedModels:
    """Loads the run's parts in :class:`LoadPlan`'s order; holds them until released."""

    def __init__(self, run_setup, load_plan: LoadPlan, progress: ProgressCallback) -> None:
        self.run_setup = run_setup
        self.plan = load_plan
        self.progress = progress
        self.pipe: Any = None

    def load_first(self) -> None:
        if self.plan.loads_encoders:
            self.pipe = self._load(self.plan.without())

    def whole_pipeline(self) -> Any:
        """The pipeline with every part (drawing class images)."""
        if self.pipe is None or self.pipe.unet is None:
            self.pipe = self._load(())
        return self.pipe

    def encoders(self) -> Any:
        """A pipeline with the VAE (in the precision it must encode in) and both text encoders;
        loaded now if the first load left any out (a cache file turned out to be damaged)."""
        pipe = self.pipe
        if pipe is None or any(getattr(pipe, name) is None for name in ("text_encoder", "text_encoder_2", "vae")):
            self.pipe = pipe = self._load(("unet",) if pipe is None or pipe.unet is None else ())
        policy = self.run_setup.policy
        if pipe.vae.dtype != policy.vae_dtype:  # SDXL's VAE overflows in float16: encode in float32
            pipe.vae.to(dtype=policy.vae_dtype)
        return pipe

    def release_encoders(self) -> dict[str, Any]:
        """The parts training keeps (VAE on the CPU for previews, text encoders for their LoRA, the
        UNet and scheduler if the whole pipeline was loaded); the rest is dropped."""
        request, pipe = self.run_setup.request, self.pipe
        parts: dict[str, Any] = {}
        if pipe is not None:
            if (request.sample_every or request.eval_every) and pipe.vae is not None:
                parts["vae"] = pipe.vae.to("cpu", dtype=self.run_setup.policy.dtype)
            if request.text_encoder_lora:
                parts.update(text_encoder=pipe.text_encoder, text_encoder_2=pipe.text_encoder_2)
            if pipe.unet is not None:
                parts.update(unet=pipe.unet, scheduler=pipe.scheduler)
        self.pipe = None
        return parts

    def add_unet(self, parts: dict[str, Any]) -> dict[str, Any]:
        """``parts`` with the UNet and scheduler on the training device, loaded now if needed;
        with half weight storage (``weight_dtype``) loaded straight in half, so its full-precision
        copy never exists."""
        compute = self.run_setup.policy.dtype
        storage = half_weights.storage_dtype(self.run_setup.request.weight_dtype, compute)
        if "unet" not in parts:
            policy = dataclasses.replace(self.run_setup.policy, dtype=storage) if storage else None
            pipe = self._load(("text_encoder", "text_encoder_2", "vae"), policy)
            parts.update(unet=pipe.unet, scheduler=pipe.scheduler)
            if storage:
                half_weights.finish_half_loaded(parts["unet"], storage, compute)
        else:  # loaded whole, beside the encoders, in the compute precision
            half_weights.store_as_asked(parts["unet"], self.run_setup.request.weight_dtype, compute)
        parts.setdefault("vae", None)
        parts["unet"].to(self.run_setup.device)
        return parts

    def _load(self, without: tuple[str, ...], policy: DevicePolicy | None = None) -> Any:
        from alchemy_engine.models.sdxl import load_sdxl_pipeline

        source = self.run_setup.source
        what = "the UNet" if "text_encoder" in without and "vae" in without else \
            "the encoders" if "unet" in without else "the whole model"
        self.progress(Progress(Stage.LOADING, message=f"loading {what} of {source.name}"))
        pipe = load_sdxl_pipeline(source, policy or self.run_setup.policy, without=without,
                                  prediction=self.run_setup.request.prediction_type)
        if pipe.text_encoder_2 is None and "text_encoder_2" not in without:
            raise ModelError(f"{source.name} is not an SDXL base model (it has no second text encoder); "
                             "choose an SDXL checkpoint")
        return pipe
