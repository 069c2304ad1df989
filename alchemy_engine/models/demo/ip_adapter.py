"""A tiny random CLIP vision encoder and tiny plain / Plus IP-Adapters in h94's real file layout.

The adapters are derived from a UNet's own shapes (its cross-attention width and each
cross-attention layer's hidden size), so they fit the demo SDXL of any size. The encoder's
projection (24) differs from its hidden width (32): an adapter fed the wrong output fails.
The Plus resampler has depth 4 and a 64-wide head, as diffusers' converter expects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from alchemy_engine.models.demo.demo_cache import build_once, demo_cache_dir

DEMO_ENCODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                    image_size=224, patch_size=32, projection_dim=24)
PLUS_TOKENS = 16
_PLUS_HIDDEN = 64  # one 64-wide head
_DEPTH = 4


def demo_clip_vision_dir() -> Path:
    """A ``CLIPVisionModelWithProjection`` folder (config.json + model.safetensors), random weights."""

    def write(folder: Path) -> None:
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        torch.manual_seed(0)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**DEMO_ENCODER))
        model.save_pretrained(str(folder), safe_serialization=True)

    return build_once(demo_cache_dir() / "clip-vision-demo", write)


def demo_ip_adapter(unet: Any, plus: bool = False) -> Path:
    """An adapter file fitting ``unet`` (cached per UNet shape)."""
    from alchemy_engine.models.ip_adapter_files import cross_attention_names

    cross = int(unet.config.cross_attention_dim)
    hidden = [size for _, size in cross_attention_names(unet)]
    key = hashlib.sha256(repr((cross, hidden)).encode()).hexdigest()[:10]
    name = f"ip-adapter{'-plus' if plus else ''}_demo-{key}.safetensors"
    return build_once(demo_cache_dir() / "ip-adapters" / name, lambda file: _write(file, cross, hidden, plus))


def _write(file: Path, cross: int, hidden: list[int], plus: bool) -> None:
    from safetensors.torch import save_file

    tensors = adapter_tensors(cross, hidden, plus)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(file))


def adapter_tensors(cross: int, hidden: list[int], plus: bool, embed: int | None = None,
                    plus_width: int = _PLUS_HIDDEN, seed: int | None = None) -> dict[str, Any]:
    """Random adapter tensors in h94's flattened names. ``embed``: the encoder output it reads (default:
    the demo encoder's); ``plus_width``: the resampler's width (h94's: 1280, 20 heads of 64)."""
    import torch

    generator = torch.Generator().manual_seed((1 if plus else 0) if seed is None else seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.05

    if plus:
        tensors = _plus_projection(rand, cross, embed or DEMO_ENCODER["hidden_size"], plus_width)
    else:
        tensors = _plain_projection(rand, cross, embed or DEMO_ENCODER["projection_dim"])
    for index, rows in enumerate(hidden):
        for part in ("k", "v"):
            tensors[f"ip_adapter.{2 * index + 1}.to_{part}_ip.weight"] = rand(rows, cross)
    return tensors


def _norm(prefix: str, width: int) -> dict[str, Any]:
    import torch

    return {f"{prefix}.weight": torch.ones(width), f"{prefix}.bias": torch.zeros(width)}


def _plain_projection(rand: Any, cross: int, embed: int) -> dict[str, Any]:
    return {"image_proj.proj.weight": rand(4 * cross, embed), "image_proj.proj.bias": rand(4 * cross),
            **_norm("image_proj.norm", cross)}


def _plus_projection(rand: Any, cross: int, embed: int, width: int) -> dict[str, Any]:
    """h94's Resampler names (``layers.N.0`` = perceiver attention, ``layers.N.1`` = feed-forward)."""
    inner = width  # heads of 64: width // 64 of them
    out = {"image_proj.latents": rand(1, PLUS_TOKENS, width), "image_proj.proj_in.weight": rand(width, embed),
           "image_proj.proj_in.bias": rand(width), "image_proj.proj_out.weight": rand(cross, width),
           "image_proj.proj_out.bias": rand(cross), **_norm("image_proj.norm_out", cross)}
    for i in range(_DEPTH):
        layer = f"image_proj.layers.{i}"
        out |= _norm(f"{layer}.0.norm1", width) | _norm(f"{layer}.0.norm2", width) | _norm(f"{layer}.1.0", width)
        out |= {f"{layer}.0.to_q.weight": rand(inner, width), f"{layer}.0.to_kv.weight": rand(2 * inner, width),
                f"{layer}.0.to_out.weight": rand(width, inner), f"{layer}.1.1.weight": rand(4 * width, width),
                f"{layer}.1.3.weight": rand(width, 4 * width)}
    return out
