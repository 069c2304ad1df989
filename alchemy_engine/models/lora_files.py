"""Reading and checking LoRA files: our own metadata, and whether a file's layers fit an SDXL UNet.

Training writes LoRA files (``training.lora_io``), insertion reads them; both use this module and
neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from alchemy_engine.errors import ModelError

if TYPE_CHECKING:
    import torch

METADATA_PREFIX = "alchemy."
"""Prefix of our own entries in a LoRA file's safetensors metadata."""


def read_metadata(path: Path) -> dict[str, str]:
    """Our ``alchemy.*`` entries of a LoRA file's safetensors metadata, prefix removed."""
    with safe_open(str(path), framework="pt") as handle:
        raw = handle.metadata() or {}
    return {k[len(METADATA_PREFIX):]: v for k, v in raw.items() if k.startswith(METADATA_PREFIX)}


def check_lora_file(path: Path, unet) -> None:
    """Raise ModelError unless every UNet LoRA layer in ``path`` fits a module of ``unet``.

    Catches LoRAs made for another architecture (SD 1.5, SD 2, Flux…) before diffusers fails deep
    inside peft with a shape mismatch.
    """
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft

    path = Path(path)
    try:
        state, _ = StableDiffusionXLPipeline.lora_state_dict(str(path), unet_config=unet.config)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:  # unreadable as an SDXL LoRA
        raise ModelError(f"{path.name} is not a LoRA file diffusers can read ({exc})") from exc
    unet_state = convert_unet_state_dict_to_peft(
        {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")})
    if not unet_state:
        raise ModelError(f"{path.name} has no SDXL UNet LoRA layers (is it a LoRA for another model?)")
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
