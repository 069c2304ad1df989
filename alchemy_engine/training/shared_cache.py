"""Caching with several processes: each latent and embedding is computed once, by one rank.

Rank ``r`` computes the items ``i`` with ``i % N == r`` that the project cache lacks and writes them
(atomically, each to its own file); after a barrier every rank reads all of them from the cache
(``latent_cache.prepare`` then finds every file). The process group's timeout (``world.GROUP_TIMEOUT``)
covers the wait of the ranks that finish first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from alchemy_engine.jobs import CancelToken
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.training import dataset, latent_cache
from alchemy_engine.training.dataset import TrainImage
from alchemy_engine.training.world import World


def fill(world: World, images: list[TrainImage], encoders: Callable[[], Any], store: latent_cache.TensorCache, *,
         policy: DevicePolicy, resolution: int, flip: bool, extra_prompts: dict[str, str], cancel: CancelToken,
         load_image: Callable) -> latent_cache.CacheStats:
    """Compute this rank's share of what the cache lacks, wait for the others; returns the counts
    of the whole run (every rank's computed items), as one process's cache stats would be."""
    buckets = dataset.make_buckets(resolution)
    variants = (False, True) if flip else (False,)
    latents = [(image, flipped) for image in images for flipped in variants]
    prompts = list(dict.fromkeys([image.prompt for image in images] + list(extra_prompts.values())))
    for i, (image, flipped) in enumerate(latents):
        if i % world.size == world.rank:
            cancel.raise_if_cancelled()
            key = latent_cache._latent_key(store, image, resolution, flipped, policy.vae_dtype)
            store.get_or_compute("latents", key, functools.partial(
                latent_cache._encode_example, encoders, image, buckets, flipped, load_image))
    for i, prompt in enumerate(prompts):
        if i % world.size == world.rank:
            latent_cache._embed(encoders, store, prompt, policy.dtype, cancel)
    world.barrier()
    computed = world.gather((store.stats.latents_computed, store.stats.embeddings_computed))
    made_latents, made_embeddings = (sum(c[k] for c in computed) for k in (0, 1))
    return latent_cache.CacheStats(latents_computed=made_latents, latents_reused=len(latents) - made_latents,
                            embeddings_computed=made_embeddings, embeddings_reused=len(prompts) - made_embeddings)

