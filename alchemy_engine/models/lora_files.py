"""Reading and checking LoRA files: what a file is (from its header), our metadata, and fit.

Training writes LoRA files (``training.lora_export``), insertion reads them — ours and LoRAs from
elsewhere; both use this module and neither imports the other.

:func:`inspect_lora` tells from the safetensors header alone (no weights read) which layout a
LoRA uses — kohya with diffusers-style names (``lora_unet_down_blocks_…``), kohya with the original
sgm names SDXL LoRAs from sd-scripts use (``lora_unet_input_blocks_…``), diffusers (``unet.….lora.down``)
or peft (``unet.….lora_A``) — which network type it holds (plain LoRA, or LyCORIS LoHa / LoKr /
IA3 / OFT / …) and which base model it was made for: the cross-attention width of a UNet layer
(768 SD 1.x, 1024 SD 2.x, 2048 SDXL, 1280 the SDXL refiner), the text encoders it patches, the
transformer blocks of FLUX and SD3, and, only when the tensors cannot tell, the ``ss_*`` /
``modelspec.*`` metadata. :func:`require_sdxl_lora` refuses anything but a plain SDXL LoRA with a
message that says what the file is. Metadata is untrusted text: control characters are removed
and lengths bounded before anything else sees it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alchemy_engine.errors import ModelError
from alchemy_engine.models.probe import (
    HeaderError,
    SafetensorsHeader,
    classify,
    clean_text,
    read_safetensors_header,
)
from alchemy_engine.safe_read import regular_file

if TYPE_CHECKING:
    import torch

METADATA_PREFIX = "alchemy."
"""Prefix of our own entries in a LoRA file's safetensors metadata."""
MAX_LORA_BYTES = 4 * 1024**3
MAX_RANK = 1024
_ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers' peft config per component
SDXL_HINT = "Use a LoRA made for SDXL 1.0 (its download page names SDXL as the base model)."
# the UNet layers our LoRAs train: training attaches them (training/lora_io.py), the memory
# estimate counts them (memory/trace.py)
UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
UNET_FEED_FORWARD = ("ff.net.0.proj", "ff.net.2")

_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight",
         ".lora_linear_layer.down.weight")
_ATTN2_KV = re.compile(r"attn2[._](processor[._])?to_[kv]")
_BASES = {"sdxl": "SDXL", "sdxl_refiner": "the SDXL refiner", "sd1": "Stable Diffusion 1.x",
          "sd2": "Stable Diffusion 2.x", "flux": "FLUX", "sd3": "Stable Diffusion 3",
          "transformer": "a transformer-based model (FLUX, SD3, PixArt, …)", "unknown": "an unknown model"}
_KINDS = (("hada_w1", "loha", "LyCORIS LoHa"), ("lokr_w", "lokr", "LyCORIS LoKr"),
          ("oft_", "oft", "LyCORIS OFT"), (".on_input", "ia3", "LyCORIS IA3"),
          (".a1.weight", "glora", "LyCORIS GLoRA"), (".lora_mid.", "locon_cp", "LyCORIS LoCon with CP decomposition"),
          (".diff", "full", "LyCORIS full-weight difference"), (".w_norm", "norm", "LyCORIS with trained norm layers"))
_LAYOUTS = {"kohya": "kohya, diffusers-style names", "kohya_sgm": "kohya, original SDXL names",
            "diffusers": "diffusers", "peft": "diffusers/PEFT"}


def unet_lora_targets(train_ff: bool) -> tuple[str, ...]:
    """The UNet module name endings our LoRAs train: attention, and with ``train_ff`` the feed-forward."""
    return UNET_ATTENTION + (UNET_FEED_FORWARD if train_ff else ())


@dataclass(frozen=True)
class LoraInfo:
    """What a LoRA file holds, from its header. ``base`` and ``kind`` are short ids."""

    path: Path
    layout: str  # kohya, kohya_sgm, diffusers, peft
    kind: str  # lora, loha, lokr, oft, ia3, glora, locon_cp, full, norm
    base: str  # sdxl, sdxl_refiner, sd1, sd2, flux, sd3, transformer, unknown
    unet_layers: int
    text_encoder_layers: int
    title: str = ""

    def description(self) -> str:
        kind = dict((k, d) for _, k, d in _KINDS).get(self.kind, "LoRA")
        parts = f"{self.unet_layers} UNet layers" + (
            f", {self.text_encoder_layers} text-encoder layers" if self.text_encoder_layers else "")
        return f"a {kind} for {_BASES[self.base]} ({_LAYOUTS[self.layout]} format; {parts})"


def _header(path: Path) -> SafetensorsHeader:
    path = Path(path)
    regular_file(path, max_bytes=MAX_LORA_BYTES, what="LoRA", error=ModelError)
    try:
        return read_safetensors_header(path)
    except HeaderError as exc:
        raise ModelError(f"{path.name} is not a readable .safetensors LoRA file: {exc}") from exc


def read_metadata(path: Path) -> dict[str, str]:
    """Our ``alchemy.*`` entries of a LoRA file's safetensors metadata, prefix removed, cleaned."""
    raw = _header(path).metadata
    return {clean_text(k[len(METADATA_PREFIX):], 100): clean_text(v)
            for k, v in raw.items() if k.startswith(METADATA_PREFIX)}


def inspect_lora(path: Path) -> LoraInfo:
    """What ``path`` is, from its header; raises ModelError when it is no LoRA at all."""
    path = Path(path)
    header = _header(path)
    family, description = classify(header)
    if family != "lora":
        raise ModelError(f"{path.name} is {description}, not a LoRA file.")
    keys = list(header.tensors)
    downs = [k for k in keys if k.endswith(_DOWN)]
    # kohya-style names: one module per name before the first dot, whatever the network type
    modules = {k.partition(".")[0] for k in keys if k.startswith("lora_")} | {
        k for k in downs if not k.startswith("lora_")}
    text = {m for m in modules if m.startswith(("lora_te", "text_encoder"))}
    meta = header.metadata
    title = clean_text(meta.get("ss_output_name") or meta.get("modelspec.title") or "", 200)
    return LoraInfo(path, _layout(keys), _kind(keys), _base(header, keys, downs), len(modules) - len(text),
                    len(text), title)


def require_sdxl_lora(path: Path) -> LoraInfo:
    """The header's verdict, or a ModelError saying what the file is and what is expected."""
    info = inspect_lora(path)
    name = Path(path).name
    if info.base not in ("sdxl", "unknown"):  # unknown: the shape check of check_lora_file decides
        raise ModelError(f"{name} is {info.description()}: made for a different model architecture, "
                         f"so it cannot be used with SDXL. {SDXL_HINT}")
    if info.kind != "lora":
        raise ModelError(f"{name} is {info.description()}; only plain LoRA files (lora_down/lora_up or "
                         "lora_A/lora_B layers) are supported. Use a plain LoRA version of it.")
    if info.unet_layers + info.text_encoder_layers == 0:
        raise ModelError(f"{name} has no LoRA layers this app can read (is it a LoRA for another model?)")
    return info


def _layout(keys: list[str]) -> str:
    if any(k.startswith(("lora_unet_", "lora_te")) for k in keys):
        sgm = any(k.startswith(("lora_unet_input_blocks", "lora_unet_middle_block", "lora_unet_output_blocks"))
                  for k in keys)
        return "kohya_sgm" if sgm else "kohya"
    return "peft" if any(".lora_A." in k or k.endswith(".lora_A.weight") for k in keys) else "diffusers"


def _kind(keys: list[str]) -> str:
    for marker, kind, _ in _KINDS:
        if any(marker in k for k in keys):
            return kind
    return "lora"


def _base(header: SafetensorsHeader, keys: list[str], downs: list[str]) -> str:
    joined = "\n".join(keys)
    if any(m in joined for m in ("double_blocks", "single_blocks", "single_transformer_blocks")):
        return "flux"
    if "joint_blocks" in joined or "lora_te3_" in joined or "context_block" in joined:
        return "sd3"
    if any(k.startswith(("transformer.", "lora_transformer_")) for k in keys):
        return "sd3" if "add_k_proj" in joined else "transformer"
    inputs = downs + [k for k in keys if k.endswith((".hada_w1_b", ".hada_w2_b"))]  # LoHa: (rank, in)
    widths = {header.tensors[k]["shape"][1] for k in inputs
              if _ATTN2_KV.search(k) and len(header.tensors[k]["shape"]) >= 2}
    by_width = {2048: "sdxl", 768: "sd1", 1024: "sd2", 1280: "sdxl_refiner"}
    for width, base in by_width.items():
        if width in widths:
            return base
    if widths:
        return "unknown"
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for k in keys):
        return "sdxl"
    te_widths = {header.tensors[k]["shape"][1] for k in downs if k.startswith("lora_te_") and "q_proj" in k}
    if te_widths:
        return {768: "sd1", 1024: "sd2"}.get(min(te_widths), "unknown")
    return _base_from_metadata(header.metadata)


def _base_from_metadata(meta: dict[str, str]) -> str:
    hint = (meta.get("ss_base_model_version", "") + " " + meta.get("modelspec.architecture", "")).lower()
    for marker, base in (("refiner", "sdxl_refiner"), ("sdxl", "sdxl"), ("-xl-", "sdxl"), ("flux", "flux"),
                         ("sd3", "sd3"), ("stable-diffusion-3", "sd3"), ("sd_v1", "sd1"),
                         ("stable-diffusion-v1", "sd1"), ("sd_v2", "sd2"), ("stable-diffusion-v2", "sd2")):
        if marker in hint:
            return base
    return "unknown"


def _check_adapter_metadata(path: Path, unet_state: dict) -> None:
    """diffusers builds the adapter from ``lora_adapter_metadata`` (rank, alpha) before loading the
    tensors: a rank of 10⁸ there would allocate gigabytes. It must be a JSON object whose ranks
    match the tensors."""
    text = _header(path).metadata.get(_ADAPTER_METADATA_KEY)
    if text is None:
        return
    try:
        packed = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path.name}: its adapter metadata is not valid JSON; the file is damaged") from exc
    ranks = {int(t.shape[0]) for k, t in unet_state.items() if ".lora_A" in k and t.ndim == 2}
    problem = "" if isinstance(packed, dict) else "it is not a JSON object"
    for key, value in (packed.items() if isinstance(packed, dict) else ()):
        name = key.rsplit(".", 1)[-1]
        if name == "r" and not (isinstance(value, int) and 0 < value <= MAX_RANK and (not ranks or value in ranks)):
            problem = f"rank {clean_text(value, 20)} does not match its weights (rank {sorted(ranks)})"
        elif name == "lora_alpha" and not (isinstance(value, (int, float)) and abs(value) <= 1e6):
            problem = f"alpha {clean_text(value, 20)} is not a number in range"
        elif name in ("rank_pattern", "alpha_pattern") and not (
                isinstance(value, dict) and all(isinstance(v, (int, float)) and 0 < v <= MAX_RANK
                                                for v in value.values())):
            problem = f"{name} is not a map of layer names to small numbers"
    if problem:
        raise ModelError(f"{path.name}: its adapter metadata is wrong ({problem}); the file is damaged "
                         "or not made for diffusers. Train it again or pick another LoRA.")


def check_lora_file(path: Path, unet) -> LoraInfo:
    """Raise ModelError unless ``path`` is a plain SDXL LoRA whose UNet layers fit ``unet``.

    The header check refuses LoRAs for other architectures and LyCORIS types with a message that
    says what the file is; the shape check then catches what the header cannot (an SDXL-width
    LoRA whose layers do not exist in this UNet) before diffusers fails deep inside peft.
    """
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft
    from safetensors import SafetensorError

    info = require_sdxl_lora(path)
    path = Path(path)
    try:
        state, _ = StableDiffusionXLPipeline.lora_state_dict(str(path), unet_config=unet.config)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:  # unreadable as an SDXL LoRA
        raise ModelError(f"{path.name} is not a LoRA file diffusers can read ({exc})") from exc
    unet_state = convert_unet_state_dict_to_peft(
        {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")})
    if not unet_state and not info.text_encoder_layers:
        raise ModelError(f"{path.name} has no SDXL UNet LoRA layers (is it a LoRA for another model?)")
    _check_adapter_metadata(path, unet_state)
    if not all(bool(t.isfinite().all()) for t in state.values() if t.is_floating_point()):
        raise ModelError(f"{path.name} holds NaN or infinite weights (training diverged) and would paint "
                         "black; train again with a lower learning rate, or pick another run.")
    modules = dict(unet.named_modules())
    for key, tensor in unet_state.items():
        module_name = key.split(".lora_")[0]
        module = modules.get(module_name) or modules.get(module_name.removesuffix(".base_layer"))
        if module is None or not _shape_fits(module, key, tensor):
            raise ModelError(f"{path.name} was made for a different model architecture: its layer "
                             f"{module_name} {tuple(tensor.shape)} does not fit this SDXL UNet. {SDXL_HINT}")
    return info


def _shape_fits(module, key: str, tensor: torch.Tensor) -> bool:
    base = getattr(module, "base_layer", module)
    if not hasattr(base, "in_features"):
        return True  # convolution LoRAs: checked by diffusers itself
    if ".lora_A" in key:
        return tensor.ndim == 2 and tensor.shape[1] == base.in_features
    if ".lora_B" in key:
        return tensor.ndim == 2 and tensor.shape[0] == base.out_features
    return True
