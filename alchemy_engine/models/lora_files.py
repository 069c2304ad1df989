"""Reading and checking LoRA files: our own metadata, and whether a file's layers fit an SDXL UNet.

Training writes LoRA files (``training.lora_io``), insertion reads them; both use this module and
neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from alchemy_engine.errors import ModelError
from alchemy_engine.safe_read import regular_file

if TYPE_CHECKING:
    import torch

METADATA_PREFIX = "alchemy."
"""Prefix of our own entries in a LoRA file's safetensors metadata."""


MAX_LORA_BYTES = 4 * 1024**3
MAX_TEXT = 200
"""Metadata values are data from a file anyone may have made: at most this many characters."""
MAX_RANK = 1024
_ADAPTER_METADATA_KEY = "lora_adapter_metadata"


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Printable text only (terminal escape codes and other control characters removed), bounded."""
    text = "".join(ch for ch in str(value)[: limit * 4] if ch.isprintable())
    return text[:limit]


def _raw_metadata(path: Path) -> dict[str, str]:
    regular_file(path, max_bytes=MAX_LORA_BYTES, what="LoRA", error=ModelError)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path.name} is not a readable LoRA file (truncated or damaged: {clean_text(exc)})") from exc
    return raw if isinstance(raw, dict) else {}


def read_metadata(path: Path) -> dict[str, str]:
    """Our ``alchemy.*`` entries of a LoRA file's safetensors metadata, prefix removed, as clean,
    bounded text (a token with escape codes or a megabyte of text must not reach the terminal or
    the tokenizer)."""
    raw = _raw_metadata(Path(path))
    return {clean_text(k[len(METADATA_PREFIX):], 64): clean_text(v) for k, v in list(raw.items())[:256]
            if isinstance(k, str) and k.startswith(METADATA_PREFIX)}


def _check_adapter_metadata(path: Path, unet_state: dict) -> None:
    """diffusers builds the adapter from ``lora_adapter_metadata`` (rank, alpha) before loading the
    tensors: a rank of 10⁸ there would allocate gigabytes. It must be a JSON object whose ranks
    match the tensors."""
    text = _raw_metadata(path).get(_ADAPTER_METADATA_KEY)
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


def check_lora_file(path: Path, unet) -> None:
    """Raise ModelError unless every UNet LoRA layer in ``path`` fits a module of ``unet``.

    Catches LoRAs made for another architecture (SD 1.5, SD 2, Flux…) before diffusers fails deep
    inside peft with a shape mismatch.
    """
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft

    path = Path(path)
    _raw_metadata(path)  # a regular file of sane size that safetensors can open
    try:
        state, _ = StableDiffusionXLPipeline.lora_state_dict(str(path), unet_config=unet.config)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:  # unreadable as an SDXL LoRA
        raise ModelError(f"{path.name} is not a LoRA file diffusers can read ({exc})") from exc
    unet_state = convert_unet_state_dict_to_peft(
        {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")})
    if not unet_state:
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
                             f"{module_name} {tuple(tensor.shape)} does not fit this SDXL UNet. "
                             "Use a LoRA trained on SDXL.")


def _shape_fits(module, key: str, tensor: torch.Tensor) -> bool:
    base = getattr(module, "base_layer", module)
    if not hasattr(base, "in_features"):
        return True  # convolution LoRAs: checked by diffusers itself
    if ".lora_A" in key:
        return tensor.ndim == 2 and tensor.shape[1] == base.in_features
    if ".lora_B" in key:
        return tensor.ndim == 2 and tensor.shape[0] == base.out_features
    return True
