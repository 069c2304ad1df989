"""Reference guidance (IP-Adapter) attached to the loaded UNet for one insertion, then removed.

IP-Adapter's decoupled cross-attention: every cross-attention layer also attends to a few tokens
made from CLIP embeddings of the subject's photos, ``out = Attn(q, K_text, V_text) + s·m·Attn(q,
K_ip, V_ip)``, with ``s`` the scale (per block by mode, per step by range) and ``m`` the insertion
mask at that layer's resolution, so guidance acts only where the subject is repainted.

diffusers' ``pipe.load_ip_adapter`` is not used: it casts the whole UNet to one dtype (undoing
half-stored weights) and replaces every processor (dropping fused q/k/v). :func:`attached` swaps
only the cross-attention processors for :class:`ReferenceAttnProcessor` (which calls the one it
replaced whenever guidance is off, so a step without guidance is the step without an adapter),
sets the image projection (diffusers' converter of h94's layout), and on leaving restores the
exact previous processor objects, projection and config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from alchemy_engine.insertion.request import IP_MODES as MODES
from alchemy_engine.models.ip_adapter_files import cross_attention_names


class ReferenceAttnProcessor(torch.nn.Module):
    """Cross-attention plus the reference tokens; ``scale`` 0 (or no tokens) runs ``previous``."""

    def __init__(self, previous: Any, hidden: int, cross: int, to_k: torch.Tensor, to_v: torch.Tensor) -> None:
        super().__init__()
        self._previous = (previous,)  # a tuple: not registered as a submodule of the UNet
        # built on "meta" and given the file's tensors: no random init of 70 layers' weights
        self.to_k_ip = torch.nn.Linear(cross, hidden, bias=False, device="meta")
        self.to_v_ip = torch.nn.Linear(cross, hidden, bias=False, device="meta")
        self.to_k_ip.weight = torch.nn.Parameter(to_k, requires_grad=False)
        self.to_v_ip.weight = torch.nn.Parameter(to_v, requires_grad=False)
        self.scale = 0.0
        self.block_factor = 1.0
        self.mask: torch.Tensor | None = None  # [1, 1, latent h, latent w], 0..1
        self._masks: dict[int, torch.Tensor] = {}

    @property
    def previous(self) -> Any:
        return self._previous[0]

    def set_mask(self, mask: torch.Tensor | None) -> None:
        self.mask, self._masks = mask, {}

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Any = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        text, images = (encoder_hidden_states if isinstance(encoder_hidden_states, tuple)
                        else (encoder_hidden_states, None))
        scale = self.scale * self.block_factor
        if images is None or scale == 0:
            return self.previous(attn, hidden_states, text, attention_mask, temb, *args, **kwargs)
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError("reference guidance supports SDXL's cross-attention layers only")
        batch = hidden_states.shape[0]
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)
        query, key, value = attn.to_q(hidden_states), attn.to_k(text), attn.to_v(text)
        head_dim = key.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

        def merge(x: torch.Tensor) -> torch.Tensor:
            return x.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, text.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        q = heads(query)
        out = merge(F.scaled_dot_product_attention(q, heads(key), heads(value), attn_mask=attention_mask))
        tokens = torch.cat([t.reshape(batch, -1, t.shape[-1]) for t in images], dim=1).to(query.dtype)
        ip = merge(F.scaled_dot_product_attention(q, heads(self.to_k_ip(tokens)), heads(self.to_v_ip(tokens))))
        if self.mask is not None:
            ip = ip * self._mask_at(ip.shape[1]).to(ip.dtype)
        out = attn.to_out[1](attn.to_out[0](out + scale * ip))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor

    def _mask_at(self, tokens: int) -> torch.Tensor:
        """The mask at a layer of ``tokens`` positions: the latent grid halved (rounding up) per level."""
        if tokens not in self._masks:
            assert self.mask is not None
            h, w = self.mask.shape[-2:]
            while h * w > tokens:
                h, w = (h + 1) // 2, (w + 1) // 2
            if h * w != tokens:
                raise ValueError(f"a layer of {tokens} positions does not fit the {tuple(self.mask.shape[-2:])} mask")
            small = F.interpolate(self.mask.float(), size=(h, w), mode="area")
            self._masks[tokens] = small.reshape(1, h * w, 1)
        return self._masks[tokens]


def _cached_projection(layers: list[Any]) -> Any:
    """diffusers' ``MultiIPAdapterImageProjection`` that projects the same embeddings once: the
    pipeline passes the very same tensors at every step, and the Plus resampler (4 attention blocks
    over 257 tokens per photo) would otherwise run again each step for an unchanged result."""
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    class CachedProjection(MultiIPAdapterImageProjection):
        def forward(self, image_embeds: Any) -> Any:
            # the same tensor objects, unchanged in place; holding them keeps their memory from reuse
            key = [(t, t._version) for t in image_embeds] if isinstance(image_embeds, list) else None
            old = getattr(self, "_key", None)
            same = (key is not None and old is not None and len(key) == len(old)
                    and all(a is b and u == v for (a, u), (b, v) in zip(key, old)))
            if not same:
                self._key, self._out = key, super().forward(image_embeds)
            return self._out

    return CachedProjection(layers)


def block_factors(unet: Any, mode: str) -> dict[str, float]:
    """Per cross-attention processor, the share of the scale it gets in ``mode``, from the UNet's
    own layout: style = the second attention of the first up block (InvokeAI's "style"), layout =
    the last attention of the deepest down block (its "composition"); full = every layer."""
    names = [name for name, _ in cross_attention_names(unet)]
    if mode == "full":
        return dict.fromkeys(names, 1.0)
    if mode not in MODES:
        raise ValueError(f"unknown reference mode {mode!r}")
    groups: dict[tuple[str, int, int], None] = {}
    for name in names:
        parts = name.split(".")
        if parts[0] in ("up_blocks", "down_blocks") and parts[2] == "attentions":
            groups[(parts[0], int(parts[1]), int(parts[3]))] = None
    if mode == "style":
        first = min(b for kind, b, _ in groups if kind == "up_blocks")
        inner = sorted(a for kind, b, a in groups if kind == "up_blocks" and b == first)
        chosen = ("up_blocks", first, inner[1] if len(inner) > 1 else inner[-1])
    else:
        deepest = max(b for kind, b, _ in groups if kind == "down_blocks")
        chosen = ("down_blocks", deepest, max(a for kind, b, a in groups if kind == "down_blocks" and b == deepest))
    prefix = f"{chosen[0]}.{chosen[1]}.attentions.{chosen[2]}."
    return {name: 1.0 if name.startswith(prefix) else 0.0 for name in names}


@contextlib.contextmanager
def attached(unet: Any, weights: dict[str, dict[str, Any]], dtype: Any, mode: str = "full"
             ) -> Iterator[list[ReferenceAttnProcessor]]:
    """Attach an adapter's weights (``ip_adapter_files.read_adapter``) to ``unet`` for the block;
    yields the new processors (scale 0 until set). Everything is restored on leaving, also on error."""
    device = next(unet.parameters()).device
    saved = dict(unet.attn_processors)
    saved_proj, saved_type = unet.encoder_hid_proj, unet.config.encoder_hid_dim_type
    pairs = weights["ip_adapter"]
    ids = sorted({int(key.split(".")[0]) for key in pairs})
    cross = int(unet.config.cross_attention_dim)
    factors = block_factors(unet, mode)
    replaced = dict(saved)
    mine = []
    for index, (name, hidden) in zip(ids, cross_attention_names(unet), strict=True):
        proc = ReferenceAttnProcessor(saved[name], hidden, cross, pairs[f"{index}.to_k_ip.weight"],
                                      pairs[f"{index}.to_v_ip.weight"]).to(device=device, dtype=dtype)
        proc.block_factor = factors[name]
        replaced[name] = proc
        mine.append(proc)
    image_proj = {k: v.to(dtype=torch.float32) for k, v in weights["image_proj"].items()}
    projection = unet._convert_ip_adapter_image_proj_to_diffusers(image_proj, low_cpu_mem_usage=False)
    projection = projection.to(device=device, dtype=dtype).eval()
    try:
        unet.set_attn_processor(replaced)
        unet.encoder_hid_proj = _cached_projection([projection])
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        yield mine
    finally:
        # projection first: the Plus resampler brings attention modules of its own
        unet.encoder_hid_proj = saved_proj
        unet.config.encoder_hid_dim_type = saved_type
        unet.set_attn_processor(dict(saved))  # a copy: the method pops entries


def set_scale(processors: list[ReferenceAttnProcessor], scale: float) -> None:
    for proc in processors:
        proc.scale = float(scale)


def set_mask(processors: list[ReferenceAttnProcessor], mask: torch.Tensor | None) -> None:
    for proc in processors:
        proc.set_mask(mask)


def active(step: int, steps: int, start: float, end: float) -> bool:
    """Whether guidance acts at ``step`` (0-based) of ``steps`` run, for a START:END range of fractions."""
    position = step / max(steps, 1)
    return start <= position < end or (end >= 1.0 and position >= start)
