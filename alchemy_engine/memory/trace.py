"""An SDXL UNet and one step's inputs on PyTorch's ``meta`` device: shapes without memory, for the
memory estimates of training (``training/memory.py``) and of batched insertion
(``models/inference_memory.py``)."""

from __future__ import annotations

import json
from typing import Any


def meta_unet(config_json: str, dtype: Any) -> Any:
    """The UNet of ``config_json`` on the meta device, in ``dtype``."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(json.loads(config_json))
    return torch.nn.Module.to(unet, dtype)  # ModelMixin.to would warn about fp32-only modules


def meta_unet_inputs(config: Any, rows: int, height: int, width: int, dtype: Any) -> dict[str, Any]:
    """The keyword arguments of one UNet call on ``rows`` latents of ``height × width`` (SDXL's
    pooled text embedding and six time ids as added conditions, 77 text tokens)."""
    import torch

    text_dim = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    return dict(sample=torch.empty(rows, config.in_channels, height, width, device="meta", dtype=dtype),
                timestep=torch.zeros(rows, device="meta", dtype=torch.long),
                encoder_hidden_states=torch.empty(rows, 77, config.cross_attention_dim, device="meta", dtype=dtype),
                added_cond_kwargs={"text_embeds": torch.empty(rows, text_dim, device="meta", dtype=dtype),
                                   "time_ids": torch.empty(rows, 6, device="meta", dtype=dtype)})
