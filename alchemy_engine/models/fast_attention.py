"""Inference attention for SDXL's UNet: SDPA everywhere, and fused q/k/v that keeps LoRA correct.

diffusers' own ``fuse_qkv_projections`` computes self-attention's q, k and v with one
concatenated matrix ``to_qkv`` — and so skips any LoRA on ``to_q``/``to_k``/``to_v`` (peft wraps
those layers, not ``to_qkv``). Here the *base* weights are fused instead and each projection's
LoRA update is added to its slice:

    q, k, v = split(x @ [Wq; Wk; Wv]ᵀ) + Σ_adapters scale · B(A(x))   (per projection)

which is what the unfused layers compute. The fused matrix owns the storage and ``to_q`` / ``to_k``
/ ``to_v``'s base weights become views of it, so fusing costs no memory; a layer whose base weight
no longer shares that storage (moved, merged with ``fuse_lora``), uses DoRA or gets unusual inputs
(masks, 4-D inputs, norms) takes the plain SDPA path. Cross-attention keeps its separate
projections (its keys and values come from the 77 prompt tokens: nothing to gain).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

_FUSED = "_alchemy_qkv"


def _base(layer: Any) -> Any:
    return getattr(layer, "base_layer", layer)


def _lora_delta(layer: Any, x: torch.Tensor) -> torch.Tensor | None:
    """The LoRA update peft's ``lora.Linear`` adds to its base layer's output (None: no adapter on)."""
    lora_a = getattr(layer, "lora_A", None)
    if not lora_a or getattr(layer, "disable_adapters", False):
        return None
    total = None
    for name in layer.active_adapters:
        if name not in lora_a:
            continue
        a, b = lora_a[name], layer.lora_B[name]
        out = b(a(layer.lora_dropout[name](x.to(a.weight.dtype)))) * layer.scaling[name]
        total = out if total is None else total + out
    return total


def _usable(attn: Any) -> bool:
    fused = getattr(attn, _FUSED, None)
    if fused is None:
        return False
    size = fused.shape[0] // 3
    for i, layer in enumerate((attn.to_q, attn.to_k, attn.to_v)):
        base = _base(layer)
        if base.weight.data_ptr() != fused.data_ptr() + i * size * fused.shape[1] * fused.element_size():
            return False  # moved or merged: the views are gone
        if getattr(layer, "merged_adapters", None) or any((getattr(layer, "use_dora", None) or {}).values()):
            return False
    return True


class FusedQKVLoraProcessor(AttnProcessor2_0):
    """SDPA attention computing self-attention's q/k/v with one matmul (LoRA added per projection)."""

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        if (encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3
                or attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None
                or attn.norm_k is not None or not _usable(attn)):
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        residual = hidden_states
        batch = hidden_states.shape[0]
        fused = getattr(attn, _FUSED)
        qkv = F.linear(hidden_states, fused.to(hidden_states.dtype) if fused.dtype != hidden_states.dtype else fused)
        parts = list(qkv.chunk(3, dim=-1))
        for i, layer in enumerate((attn.to_q, attn.to_k, attn.to_v)):
            bias = _base(layer).bias
            if bias is not None:
                parts[i] = parts[i] + bias
            delta = _lora_delta(layer, hidden_states)
            if delta is not None:
                parts[i] = parts[i] + delta.to(parts[i].dtype)
        head_dim = parts[0].shape[-1] // attn.heads
        q, k, v = (p.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for p in parts)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def fuse_self_attention(unet: Any) -> int:
    """Fuse every self-attention's base q/k/v weights (in place, no extra memory); returns how many.

    Call after the UNet is on its device and in its dtype (moving it breaks the shared storage, and
    the processor then quietly takes the unfused path). LoRAs may be loaded before or after."""
    count = 0
    for module in unet.modules():
        if not isinstance(module, Attention) or module.is_cross_attention:
            continue
        attn: Any = module
        bases = [_base(attn.to_q), _base(attn.to_k), _base(attn.to_v)]
        shapes = {tuple(b.weight.shape) for b in bases}
        if len(shapes) != 1:
            continue
        with torch.no_grad():
            fused = torch.cat([b.weight.detach() for b in bases], dim=0).contiguous()
        rows = fused.shape[0] // 3
        for i, base in enumerate(bases):
            base.weight = torch.nn.Parameter(fused[i * rows:(i + 1) * rows], requires_grad=False)
        setattr(attn, _FUSED, fused)
        attn.set_processor(FusedQKVLoraProcessor())
        count += 1
    return count


def use_sdpa(*models: Any) -> None:
    """PyTorch's scaled_dot_product_attention for every diffusers attention (it is diffusers' default;
    this undoes xformers or slicing set elsewhere). CLIP from transformers uses SDPA by default."""
    for model in models:
        if model is not None and hasattr(model, "attn_processors"):
            if any(not isinstance(proc, AttnProcessor2_0) for proc in model.attn_processors.values()):
                model.set_attn_processor(AttnProcessor2_0())
