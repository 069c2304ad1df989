"""Preview images during training: the same prompt and seed every time, so changes are the LoRA's.

The prompt's embeddings were cached with the training prompts (the text encoders are gone by
now); the VAE visits the training device only while it decodes, with tiled decoding so a 1024 px
preview does not raise the run's peak memory.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from alchemy_engine.atomic import atomic_path
from alchemy_engine.models.prediction import cfg_rescale

GUIDANCE = 5.0


def sample_prompt(request, project) -> str:
    base = request.sample_prompt or request.prompt_template
    return base.format(token=project.token, class_noun=project.class_noun)


@torch.no_grad()
def render(pipe_parts: dict, embeds: tuple[torch.Tensor, torch.Tensor],
           negative: tuple[torch.Tensor, torch.Tensor], *, size: tuple[int, int], steps: int, seed: int,
           device: torch.device, autocast_dtype: torch.dtype | None) -> Image.Image:
    """One image from ``pipe_parts`` (unet, vae, scheduler) and cached prompt embeddings."""
    from diffusers import StableDiffusionXLPipeline

    unet, vae = pipe_parts["unet"], pipe_parts["vae"]
    was_training = unet.training
    vae_device = vae.device
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=None, text_encoder_2=None, tokenizer=None,
                                     tokenizer_2=None, unet=unet, scheduler=pipe_parts["scheduler"])
    pipe.set_progress_bar_config(disable=True)
    unet.eval()
    vae.to(device)
    vae.enable_tiling()
    try:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            image = pipe(prompt_embeds=embeds[0].to(unet.dtype), pooled_prompt_embeds=embeds[1].to(unet.dtype),
                         negative_prompt_embeds=negative[0].to(unet.dtype),
                         negative_pooled_prompt_embeds=negative[1].to(unet.dtype),
                         width=size[0], height=size[1], num_inference_steps=steps, guidance_scale=GUIDANCE,
                         guidance_rescale=cfg_rescale(None, pipe.scheduler.config),
                         generator=generator, output_type="pil").images[0]
    finally:
        vae.disable_tiling()
        vae.to(vae_device)
        unet.train(was_training)
    return image


def save_sample(image: Image.Image, samples_dir: Path, step: int) -> Path:
    target = Path(samples_dir) / f"step-{step:06d}.png"
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return target
