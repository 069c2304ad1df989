"""SDXL inpainting UNets (9 input channels) for insertion: checked from headers and configs, loaded alone.

An inpainting UNet (``diffusers/stable-diffusion-xl-1.0-inpainting-0.1``, the inpainting versions
of fine-tunes) takes the noisy latents (4 channels), the mask (1) and the VAE latents of the
masked image (4) and blends a repaint into its surroundings better than the base UNet. Only its
UNet is read: the text encoders and the VAE are the base model's (an inpainting file carries the
same ones), and the subject LoRA trained on the base model goes on its attention layers, which
have the same names and shapes. Training never uses it (``probe.require_sdxl_checkpoint`` refuses
a 9-channel file as a base model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError

INPAINT_CHANNELS = 9
EXPECTED_INPAINT = ("an SDXL inpainting model with a 9-channel UNet: one .safetensors file such as "
                    "sd_xl_base_1.0_inpainting_0.1.safetensors or an inpainting fine-tune, or a diffusers "
                    "folder such as diffusers/stable-diffusion-xl-1.0-inpainting-0.1")


def _unet_config_file(folder: Path) -> Path:
    for candidate in (folder / "unet" / "config.json", folder / "config.json"):
        if candidate.is_file():
            return candidate
    raise ModelError(f"{folder} has no unet/config.json; expected {EXPECTED_INPAINT}")


def check_inpaint_source(source: Any) -> None:
    """ModelError unless ``source`` (an SdxlSource) holds a 9-channel SDXL UNet; reads headers only."""
    path = Path(source.path)
    if source.kind == "single_file":
        from alchemy_engine.models.probe import probe_checkpoint

        info = probe_checkpoint(path)
        if info.family != "sdxl_inpaint":
            raise ModelError(f"{path.name} is {info.description}, not an inpainting model; expected {EXPECTED_INPAINT}")
        return
    config_file = _unet_config_file(path)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {config_file}: {exc}; repair or re-download the model folder") from exc
    if config.get("in_channels") != INPAINT_CHANNELS or config.get("addition_embed_type") != "text_time":
        raise ModelError(f"{path.name}'s UNet has {config.get('in_channels')} input channels "
                         f"({config.get('addition_embed_type') or 'no'} SDXL conditioning); expected {EXPECTED_INPAINT}")


def load_inpaint_unet(source: Any, policy: Any, base_unet: Any) -> Any:
    """The 9-channel UNet of ``source`` on ``policy``'s device and dtype; it must fit ``base_unet``'s
    text encoders (the same cross-attention width and added conditioning)."""
    from diffusers import UNet2DConditionModel

    from alchemy_engine import paths
    from alchemy_engine.models.loading import lazy_folder, lazy_single_file

    check_inpaint_source(source)
    path = Path(source.path)
    try:
        if source.kind == "single_file":
            config = Path(source.config_dir or paths.sdxl_config_dir())
            with lazy_single_file(policy.dtype):
                unet = UNet2DConditionModel.from_single_file(
                    str(path), config=str(config), subfolder="unet", in_channels=INPAINT_CHANNELS,
                    local_files_only=True, torch_dtype=policy.dtype)
        else:
            folder = _unet_config_file(path).parent
            with lazy_folder(policy.dtype):
                unet = UNet2DConditionModel.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                            torch_dtype=policy.dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load the inpainting UNet from {path}: {exc}") from exc
    for key in ("cross_attention_dim", "projection_class_embeddings_input_dim", "block_out_channels"):
        if unet.config.get(key) != base_unet.config.get(key):
            raise ModelError(f"the inpainting model {path.name} does not fit the base model ({key} "
                             f"{unet.config.get(key)} vs {base_unet.config.get(key)}); choose the inpainting "
                             "version of an SDXL model")
    return unet.to(policy.device)
