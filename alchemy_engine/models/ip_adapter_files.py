"""IP-Adapter files for SDXL: what a file is (from its safetensors header) and whether it fits a UNet.

h94's SDXL adapters in the flattened safetensors layout hold ``image_proj.*`` (how a CLIP image
embedding becomes extra cross-attention tokens) and ``ip_adapter.{1,3,5,…}.to_{k,v}_ip.weight``
(one key/value pair per cross-attention layer, in the UNet's attention-processor order). From the
header alone:

* plain: ``image_proj.proj.weight`` ``[4·width, D]``; D is the encoder's *projection* width
  (1280 ViT-bigG for ``ip-adapter_sdxl``, 1024 ViT-H for ``…_vit-h``);
* Plus: ``image_proj.latents`` ``[1, tokens, hidden]`` and ``proj_in.weight`` ``[hidden, E]``; E is
  the encoder's *hidden* width (1280 ViT-H, 1664 bigG); "face" in the file name: Plus-Face;
* Full / FaceID / FaceID-Plus (``proj.3``, ``perceiver_resampler``, ``norm`` without ``proj``,
  ``*_lora*``) need other encoders or LoRAs: refused, as are SD 1.5 adapters (width 768).

``.bin`` adapters are pickles: refused by name and never opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError
from alchemy_engine.models.probe import (
    PICKLE_SUFFIXES,
    HeaderError,
    SafetensorsHeader,
    read_safetensors_header,
)
from alchemy_engine.safe_read import regular_file

MAX_ADAPTER_BYTES = 4 * 1024**3
PLAIN_TOKENS = 4
_PAIR = re.compile(r"^ip_adapter\.(\d+)\.to_([kv])_ip\.weight$")
_WIDTHS = {768: "Stable Diffusion 1.x", 1024: "Stable Diffusion 2.x", 1280: "the SDXL refiner"}
ENCODERS = {("plain", 1280): "ViT-bigG", ("plain", 1024): "ViT-H", ("plus", 1280): "ViT-H",
            ("plus", 1664): "ViT-bigG"}
HINT = ("Use one of h94's SDXL adapters as .safetensors: ip-adapter_sdxl, ip-adapter_sdxl_vit-h, "
        "ip-adapter-plus_sdxl_vit-h or ip-adapter-plus-face_sdxl_vit-h.")


def is_ip_adapter_header(header: SafetensorsHeader) -> bool:
    return any(k.startswith(("image_proj.", "ip_adapter.")) for k in header.tensors)


@dataclass(frozen=True)
class IpAdapterInfo:
    """What an IP-Adapter file holds. ``encoder_width``: the CLIP output it reads (projection width
    for plain, hidden width for Plus); ``encoder``: ViT-H, ViT-bigG, or "" when no known one."""

    path: Path
    variant: str  # plain, plus, plus_face
    tokens: int  # extra cross-attention tokens per reference image
    encoder_width: int
    cross_width: int  # the UNet cross-attention width it was made for (2048 SDXL)
    layers: int  # cross-attention layers (k/v pairs)
    hidden_sizes: tuple[int, ...]  # rows of each pair, in id order

    @property
    def encoder(self) -> str:
        return ENCODERS.get(("plain" if self.variant == "plain" else "plus", self.encoder_width), "")

    @property
    def plus(self) -> bool:
        return self.variant != "plain"

    def description(self) -> str:
        kind = {"plain": "IP-Adapter", "plus": "IP-Adapter Plus", "plus_face": "IP-Adapter Plus-Face"}[self.variant]
        encoder = self.encoder or f"a CLIP vision encoder of width {self.encoder_width}"
        return (f"an {kind} for SDXL ({self.tokens} tokens per reference image, {self.layers} "
                f"cross-attention layers; reads {encoder})")

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "variant": self.variant, "tokens": self.tokens,
                "encoder_width": self.encoder_width, "encoder": self.encoder, "cross_width": self.cross_width,
                "layers": self.layers, "description": self.description()}


def refuse_pickle(path: Path) -> None:
    """A ``.bin``/``.pt`` adapter is never opened: say which file to use instead."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        twin = path.with_suffix(".safetensors")
        where = (f"use {twin.name} beside it" if twin.is_file()
                 else f"download the .safetensors version ({path.stem}.safetensors) instead")
        raise ModelError(f"{path.name} is a PyTorch pickle file, which can run code when opened; the app never "
                         f"opens it: {where}.")


def _header(path: Path) -> SafetensorsHeader:
    regular_file(path, max_bytes=MAX_ADAPTER_BYTES, what="IP-Adapter", error=ModelError)
    try:
        return read_safetensors_header(path)
    except HeaderError as exc:
        raise ModelError(f"{path.name} is not a readable .safetensors IP-Adapter file: {exc}") from exc


def inspect_ip_adapter(path: str | Path) -> IpAdapterInfo:
    """What ``path`` is, from its header; raises ModelError (one line, what the file is) when it is
    not an SDXL IP-Adapter the app can use."""
    path = Path(path).expanduser()
    refuse_pickle(path)
    header = _header(path)
    keys = set(header.tensors)
    name = path.name
    if not is_ip_adapter_header(header):
        raise ModelError(f"{name} is not an IP-Adapter (no image_proj.* / ip_adapter.* tensors). {HINT}")
    if any("lora" in k for k in keys) or any(k.startswith("image_proj.perceiver_resampler.") for k in keys):
        raise ModelError(f"{name} is an IP-Adapter FaceID model (it needs InsightFace embeddings and its own "
                         f"LoRA), which the app does not support. {HINT}")
    if "image_proj.proj.3.weight" in keys:
        raise ModelError(f"{name} is an IP-Adapter Full-Face model (257 tokens from an MLP), which the app "
                         f"does not support. {HINT}")
    if "image_proj.norm.weight" in keys and "image_proj.proj.weight" not in keys and "image_proj.latents" not in keys:
        raise ModelError(f"{name} is an IP-Adapter FaceID model, which the app does not support. {HINT}")
    pairs = _pairs(name, header)
    cross = pairs[0][1]
    if cross in _WIDTHS:
        raise ModelError(f"{name} is an IP-Adapter for {_WIDTHS[cross]} (cross-attention width {cross}), "
                         f"not SDXL. {HINT}")
    variant, tokens, width = _projection(name, header)
    return IpAdapterInfo(path, variant, tokens, width, cross, len(pairs), tuple(rows for rows, _ in pairs))


def _pairs(name: str, header: SafetensorsHeader) -> list[tuple[int, int]]:
    """``(rows, cross width)`` of each k/v pair in id order; refuses incomplete or odd pairs."""
    found: dict[int, dict[str, list[int]]] = {}
    for key in header.tensors:
        match = _PAIR.match(key)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = list(header.tensors[key]["shape"])
        elif key.startswith("ip_adapter."):
            raise ModelError(f"{name} has an unexpected IP-Adapter tensor {key!r}; it is not in h94's layout. {HINT}")
    if not found:
        raise ModelError(f"{name} has no ip_adapter.N.to_k_ip / to_v_ip weights. {HINT}")
    pairs = []
    for index in sorted(found):
        entry = found[index]
        k, v = entry.get("k"), entry.get("v")
        if k is None or v is None or k != v or len(k) != 2:
            raise ModelError(f"{name}: layer {index} of the IP-Adapter is incomplete or misshapen; download it again")
        pairs.append((k[0], k[1]))
    if len({cross for _, cross in pairs}) != 1:
        raise ModelError(f"{name}: its layers disagree on the cross-attention width; download it again")
    return pairs


def _projection(name: str, header: SafetensorsHeader) -> tuple[str, int, int]:
    proj = header.shape("image_proj.proj.weight")
    if proj is not None and len(proj) == 2:
        return "plain", PLAIN_TOKENS, proj[1]
    latents, proj_in = header.shape("image_proj.latents"), header.shape("image_proj.proj_in.weight")
    if latents is not None and proj_in is not None and len(latents) == 3 and len(proj_in) == 2:
        variant = "plus_face" if "face" in name.lower() else "plus"
        return variant, latents[1], proj_in[1]
    raise ModelError(f"{name} is an IP-Adapter of an unknown kind (its image projection is neither plain "
                     f"nor Plus). {HINT}")


def check_fits(info: IpAdapterInfo, unet: Any) -> None:
    """Refuse an adapter whose widths or layer count do not match ``unet`` (one line, what differs)."""
    names = cross_attention_names(unet)
    cross = int(unet.config.cross_attention_dim)
    name = info.path.name
    if info.cross_width != cross:
        raise ModelError(f"{name} was made for a cross-attention width of {info.cross_width}, but this SDXL "
                         f"model's is {cross}. {HINT}")
    if info.layers != len(names):
        raise ModelError(f"{name} has {info.layers} cross-attention layers; this model has {len(names)}. "
                         f"It was made for another UNet layout. {HINT}")
    for (proc, hidden), rows in zip(names, info.hidden_sizes):
        if rows != hidden:
            raise ModelError(f"{name}: layer {proc} is {rows} wide in the adapter but {hidden} in this model. {HINT}")


def cross_attention_names(unet: Any) -> list[tuple[str, int]]:
    """``(processor name, hidden size)`` of every cross-attention layer, in the adapter's order."""
    blocks = list(unet.config.block_out_channels)
    found = []
    for proc in unet.attn_processors:
        if not proc.endswith("attn2.processor"):
            continue
        if proc.startswith("mid_block"):
            hidden = blocks[-1]
        elif proc.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(proc.split(".")[1])]
        else:
            hidden = blocks[int(proc.split(".")[1])]
        found.append((proc, hidden))
    return found


def read_adapter(path: Path) -> dict[str, dict[str, Any]]:
    """The weights as ``{"image_proj": {...}, "ip_adapter": {...}}`` (prefixes removed), on the CPU."""
    from safetensors.torch import load_file

    flat = load_file(str(path), device="cpu")
    parts: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in flat.items():
        head, _, rest = key.partition(".")
        parts.setdefault(head, {})[rest] = tensor
    return parts
