"""Encode the training pictures and prompts once; reuse the results across runs.

VAE latents (with the example's SDXL ``time_ids`` and latent-size subject mask) and both text
encoders' embeddings are stored as safetensors files under ``<project cache>/training/``. A file's
name is the sha256 of everything that decides its content — the picture's and mask's bytes, the
resolution, flip, the base model's fingerprint, the encoder dtype and :data:`CACHE_VERSION` — so a
changed photo, mask or model simply misses the cache; nothing is ever stale. Files are written
atomically, and the whole folder is safe to delete.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from alchemy_engine.atomic import atomic_path
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.training import dataset, text_encoders
from alchemy_engine.training.dataset import Example, TrainImage

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclasses.dataclass
class CacheStats:
    latents_computed: int = 0
    latents_reused: int = 0
    embeddings_computed: int = 0
    embeddings_reused: int = 0


class TensorCache:
    """A folder of safetensors files addressed by the hash of a JSON key."""

    def __init__(self, root: Path, model_fingerprint: str) -> None:
        self.root = Path(root)
        self.model_fingerprint = model_fingerprint
        self.stats = CacheStats()

    def key(self, kind: str, **parts) -> str:
        payload = json.dumps({"v": CACHE_VERSION, "kind": kind, "model": self.model_fingerprint, **parts},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def has(self, kind: str, key: str) -> bool:
        return (self.root / kind / f"{key}.safetensors").is_file()

    def get_or_compute(self, kind: str, key: str,
                       compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        file = self.root / kind / f"{key}.safetensors"
        counter = "latents" if kind == "latents" else "embeddings"
        if file.exists():
            try:
                tensors = load_file(file)
                setattr(self.stats, f"{counter}_reused", getattr(self.stats, f"{counter}_reused") + 1)
                return tensors
            except (SafetensorError, OSError, ValueError) as exc:  # damaged: rebuilt, never trusted
                log.warning("cache file %s is damaged (%s); recomputing it", file, exc)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in compute().items()}
        with atomic_path(file) as tmp:
            save_file(tensors, str(tmp))
        setattr(self.stats, f"{counter}_computed", getattr(self.stats, f"{counter}_computed") + 1)
        return tensors


@dataclasses.dataclass
class PreparedData:
    """Everything the training loop reads, already on the training device."""

    examples: list[Example]
    latents: list[torch.Tensor]  # (4, h, w) each
    masks: list[torch.Tensor | None]  # (1, h, w) each, subject = 1
    time_ids: list[torch.Tensor]  # (6,) each
    is_class: list[bool]
    prompt_index: list[int]  # example -> row of prompt_embeds
    prompt_embeds: torch.Tensor  # (P, 77, D)
    pooled_embeds: torch.Tensor  # (P, D_pooled)
    extra_embeds: dict[str, tuple[torch.Tensor, torch.Tensor]]  # e.g. sample prompts
    prompt_tokens: dict[str, torch.Tensor] | None = None  # text-encoder LoRA: (P, 77) per tokenizer
    extra_tokens: dict[str, dict[str, torch.Tensor]] | None = None

    def to(self, device: torch.device, dtype: torch.dtype) -> PreparedData:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return dataclasses.replace(
            self, latents=[move(t) for t in self.latents],
            masks=[None if t is None else move(t) for t in self.masks],
            time_ids=[t.to(device=device, dtype=dtype) for t in self.time_ids],
            prompt_embeds=move(self.prompt_embeds), pooled_embeds=move(self.pooled_embeds),
            extra_embeds={k: (move(a), move(b)) for k, (a, b) in self.extra_embeds.items()},
            prompt_tokens=None if self.prompt_tokens is None else _move_ids(self.prompt_tokens, device),
            extra_tokens={k: _move_ids(v, device) for k, v in (self.extra_tokens or {}).items()} or None)


def _move_ids(ids: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in ids.items()}


def encode_latents(pipe, pixels: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [-1, 1] -> (4, H/8, W/8) scaled latents (the distribution's mean, as kohya caches)."""
    vae = pipe.vae
    sample = pixels[None].to(device=vae.device, dtype=vae.dtype)
    with torch.no_grad():
        latents = vae.encode(sample).latent_dist.mode()
    return (latents[0] * vae.config.scaling_factor).float()


def encode_prompt(pipe, prompt: str) -> dict[str, torch.Tensor]:
    """Both CLIP encoders, exactly as ``StableDiffusionXLPipeline`` conditions at inference."""
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(prompt, device=pipe.text_encoder_2.device,
                                                  num_images_per_prompt=1, do_classifier_free_guidance=False)
    return {"prompt_embeds": embeds[0].float(), "pooled_embeds": pooled[0].float()}


def _latent_key(cache: TensorCache, image: TrainImage, resolution: int, flipped: bool, dtype: torch.dtype) -> str:
    return cache.key("latents", content=image.content_key(), resolution=resolution, flipped=flipped,
                     vae_dtype=str(dtype), masked=image.mask_path is not None)


def _embedding_key(cache: TensorCache, prompt: str, dtype: torch.dtype) -> str:
    return cache.key("embeddings", prompt=prompt, dtype=str(dtype))


def fully_cached(images: list[TrainImage], cache: TensorCache, *, resolution: int, flip: bool,
                 extra_prompts: dict[str, str], policy: DevicePolicy) -> dict[str, bool]:
    """Whether every latent (``"latents"``) and every embedding (``"embeddings"``) is in the cache:
    what is, needs no VAE or text encoder loaded."""
    variants = (False, True) if flip else (False,)
    prompts = {image.prompt for image in images} | set(extra_prompts.values())
    return {"latents": all(cache.has("latents", _latent_key(cache, image, resolution, flipped, policy.vae_dtype))
                           for image in images for flipped in variants),
            "embeddings": all(cache.has("embeddings", _embedding_key(cache, p, policy.dtype)) for p in prompts)}


def prepare(images: list[TrainImage], encoders: Callable[[], Any], cache: TensorCache, *, policy: DevicePolicy,
            resolution: int, flip: bool, extra_prompts: dict[str, str], progress: ProgressCallback,
            cancel: CancelToken, load_image: Callable, keep_tokens: bool = False) -> PreparedData:
    """Encode (or reuse) every example's latents and every prompt's embeddings.

    ``encoders()`` gives a pipeline with the VAE (in ``policy.vae_dtype``) and both text encoders
    (in ``policy.dtype``); it is called only for what the cache lacks, so a fully cached run never
    needs it."""
    buckets = dataset.make_buckets(resolution)
    examples: list[Example] = []
    latents: list[torch.Tensor] = []
    masks: list[torch.Tensor | None] = []
    time_ids: list[torch.Tensor] = []
    is_class: list[bool] = []
    prompt_index: list[int] = []
    prompts: dict[str, int] = {}
    variants = (False, True) if flip else (False,)
    total = len(images) * len(variants)
    for image_index, image in enumerate(images):
        for flipped in variants:
            progress(Progress(Stage.CACHING, step=len(examples), total=total, message="encoding photos"))
            cancel.raise_if_cancelled()
            key = _latent_key(cache, image, resolution, flipped, policy.vae_dtype)
            tensors = cache.get_or_compute("latents", key, functools.partial(
                _encode_example, encoders, image, buckets, flipped, load_image))
            lat = tensors["latents"]
            examples.append(Example(image_index, flipped, (lat.shape[-1] * 8, lat.shape[-2] * 8)))
            latents.append(lat)
            masks.append(tensors.get("mask"))
            time_ids.append(tensors["time_ids"])
            is_class.append(image.is_class)
            prompt_index.append(prompts.setdefault(image.prompt, len(prompts)))
    rows = [_embed(encoders, cache, p, policy.dtype, cancel) for p in prompts]
    extra = {name: _embed(encoders, cache, p, policy.dtype, cancel) for name, p in extra_prompts.items()}
    progress(Progress(Stage.CACHING, step=total, total=total, message="encoded"))
    data = PreparedData(examples, latents, masks, time_ids, is_class, prompt_index,
                        torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]),
                        {name: (a[None], b[None]) for name, (a, b) in extra.items()})
    if keep_tokens:
        pipe = encoders()
        data.prompt_tokens = _stack_tokens([text_encoders.tokenize(pipe, p) for p in prompts])
        data.extra_tokens = {name: _stack_tokens([text_encoders.tokenize(pipe, p)]) for name, p in extra_prompts.items()}
    return data


def _stack_tokens(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def _encode_example(encoders: Callable[[], Any], image: TrainImage, buckets, flipped: bool,
                    load_image) -> dict[str, torch.Tensor]:
    picture = load_image(image.path)
    bucket = dataset.nearest_bucket(picture.size, buckets)
    placement = dataset.place(picture.size, bucket)
    out = {"latents": encode_latents(encoders(), dataset.pixels(picture, placement, flipped)),
           "time_ids": torch.tensor(placement.time_ids(flipped), dtype=torch.float32)}
    if image.mask_path is not None:
        from PIL import Image

        from alchemy_engine.image_files import open_image

        with open_image(image.mask_path) as mask:
            if mask.size != picture.size:
                mask = mask.resize(picture.size, Image.Resampling.BILINEAR)
            out["mask"] = dataset.latent_mask(mask, placement, flipped)
    return out


def _embed(encoders: Callable[[], Any], cache: TensorCache, prompt: str, dtype: torch.dtype,
           cancel: CancelToken) -> tuple[torch.Tensor, torch.Tensor]:
    cancel.raise_if_cancelled()
    key = _embedding_key(cache, prompt, dtype)
    tensors = cache.get_or_compute("embeddings", key, lambda: encode_prompt(encoders(), prompt))
    return tensors["prompt_embeds"], tensors["pooled_embeds"]
