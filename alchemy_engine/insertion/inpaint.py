"""Masked img2img with the subject LoRA (the paper's insertion step) and text-to-image scenes.

The SDXL inpaint pipeline on the base 4-channel UNet re-noises the scene's latents to the current
timestep after every step and keeps them outside the mask, so only the masked region is
repainted. Progress is reported and cancellation checked once per denoising step through
``callback_on_step_end``; cancelling raises :class:`JobCancelled` out of the pipeline.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from alchemy_engine.errors import JobCancelled
from alchemy_engine.insertion.masks import grow
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage
from alchemy_engine.models.samplers import DEFAULT_SAMPLER, sampler_in_use


def insertion_prompt(scene_prompt: str | None, token: str, class_noun: str) -> str:
    """The scene prompt with the class noun replaced by "{token} {class noun}".

    "a dog on a beach" → "a sks dog on a beach"; a prompt that does not name the class gets the
    subject in front; no prompt (a loaded photo) gives "a photo of sks dog".
    """
    subject = f"{token} {class_noun}"
    if not scene_prompt or not scene_prompt.strip():
        return f"a photo of {subject}"
    pattern = re.compile(rf"(?<![\w-])(?:{re.escape(token)}\s+)?{re.escape(class_noun)}(?![\w-])", re.IGNORECASE)
    if pattern.search(scene_prompt):
        return pattern.sub(subject, scene_prompt, count=1)
    return f"{subject}, {scene_prompt.strip()}"


def steps_run(steps: int, strength: float) -> int:
    """Denoising steps an img2img/inpaint call actually runs (diffusers' ``get_timesteps``)."""
    return min(int(steps * strength), steps)


def step_callback(progress: ProgressCallback, cancel: CancelToken, stage: Stage, offset: int, total: int,
                  message: str = "", per_step: int = 1):
    """A ``callback_on_step_end`` that reports each step and stops the pipeline when cancelled;
    ``per_step``: how many images one step advances (a batch of variations)."""

    def callback(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        progress(Progress(stage=stage, step=offset + (step + 1) * per_step, total=total, message=message))
        if cancel.cancelled:
            pipe._interrupt = True  # belt and braces: diffusers skips the remaining steps
            raise JobCancelled("cancelled by the user")
        return {}

    return callback


def speed_events(progress: ProgressCallback, loaded: Any, size: tuple[int, int], images: int = 1) -> None:
    """The loaded model's pending notes (compile on/off and why) and, when a compiled UNet meets a
    new size or batch of ``images``, the ``Stage.COMPILE`` event; after a call, a compile that fell
    back to eager."""
    from alchemy_engine.models.inference_speed import compile_failure

    speed = getattr(loaded, "speed", None)
    if speed is None:
        return
    for note in speed.take_notes():
        progress(Progress(stage=Stage.NOTE, message=note))
    notice = speed.compile_notice(loaded.base.unet, size, batch=2 * images)
    if notice:
        progress(Progress(stage=Stage.COMPILE, message=notice))
    failure = compile_failure(loaded.base)
    if failure:
        progress(Progress(stage=Stage.NOTE, message=failure))


def blur_inside(image: Image.Image, mask: Image.Image, radius: float) -> Image.Image:
    """Blur ``image`` only where ``mask`` (L) is set: the paper blurs the region before repainting
    so the old object's details do not pin the new subject's shape."""
    if radius <= 0:
        return image
    blurred = image.filter(ImageFilter.GaussianBlur(radius))
    return Image.composite(blurred, image, mask)


def pipeline_mask(alpha_crop: np.ndarray, work_size: tuple[int, int], latent_cell: int = 8) -> Image.Image:
    """The binary mask SDXL repaints, at work size: every pixel the composite may take, grown by
    1.5 latent cells so the 8x-coarser latent mask never misses a thin or tiny region."""
    soft = Image.fromarray(((alpha_crop > 0) * 255).astype(np.uint8), "L")
    resized = np.asarray(soft.resize(work_size, Image.Resampling.BILINEAR)) > 0
    return Image.fromarray((grow(resized, latent_cell + latent_cell // 2) * 255).astype(np.uint8), "L")


@dataclass(frozen=True)
class Sampling:
    prompt: str
    negative_prompt: str
    steps: int
    guidance: float
    seed: int
    strength: float = 1.0
    sampler: str = DEFAULT_SAMPLER  # an A1111 name (models/samplers.py)
    guidance_rescale: float = 0.0  # CFG rescale φ (models/prediction.py: 0.7 for zero-SNR models)


def _generator(seed: int) -> Any:
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


def inpaint(pipe: Any, image: Image.Image, mask: Image.Image, sampling: Sampling, callback) -> Image.Image:
    """Repaint ``mask`` (L, 255 = repaint) of ``image``; both already at the work size."""
    return inpaint_batch(pipe, image, mask, [sampling], callback)[0]


def inpaint_batch(pipe: Any, image: Image.Image, mask: Image.Image, samplings: list[Sampling],
                  callback, guidance: Any = None) -> list[Image.Image]:
    """One repaint of ``image`` per sampling (same prompt and settings, one seed each) in one call.

    Each image is the one its seed gives alone: one generator per image, and the scene passed once
    per image, because the pipeline VAE-encodes (and samples the latent distribution) per image
    with that image's generator only when it has as many images as generators; the VAE decodes one
    image at a time (slicing), as it does alone, so its memory does not grow with the batch."""
    from alchemy_engine.models.inference_speed import call_with_fallback, vae_tiling

    first = samplings[0]
    if any(dataclasses.replace(s, seed=first.seed) != first for s in samplings):
        raise ValueError("a batch shares every setting but the seed")
    width, height = image.size
    vae_tiling(pipe, width, height)
    count = len(samplings)
    generators = [_generator(s.seed) for s in samplings]
    extra: dict[str, Any] = {}
    if guidance is not None:  # reference guidance (reference.GuidanceHook): embeddings, per-step scale
        extra = guidance.pipeline_kwargs(first.guidance)
        callback = guidance.wrap(callback, steps_run(first.steps, first.strength))
    if count > 1:
        pipe.vae.enable_slicing()
    try:
        with sampler_in_use(pipe, first.sampler):
            result = call_with_fallback(pipe, lambda: pipe(
                prompt=first.prompt, negative_prompt=first.negative_prompt or None,
                image=[image] * count if count > 1 else image, mask_image=[mask] * count if count > 1 else mask,
                width=width, height=height, num_images_per_prompt=count,
                strength=first.strength, num_inference_steps=first.steps, guidance_scale=first.guidance,
                guidance_rescale=first.guidance_rescale, generator=generators if count > 1 else generators[0],
                callback_on_step_end=callback, output_type="pil", **extra,
            ))
    finally:
        if count > 1:
            pipe.vae.disable_slicing()
    return list(result.images)


def text_to_image(pipe: Any, size: tuple[int, int], sampling: Sampling, callback) -> Image.Image:
    from alchemy_engine.models.inference_speed import call_with_fallback, vae_tiling

    width, height = size
    vae_tiling(pipe, width, height)
    with sampler_in_use(pipe, sampling.sampler):
        result = call_with_fallback(pipe, lambda: pipe(
            prompt=sampling.prompt, negative_prompt=sampling.negative_prompt or None,
            width=width, height=height, num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance, guidance_rescale=sampling.guidance_rescale,
            generator=_generator(sampling.seed), callback_on_step_end=callback, output_type="pil",
        ))
    return result.images[0]
