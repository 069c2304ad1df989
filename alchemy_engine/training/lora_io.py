"""LoRA layers: attach them for training, save them for diffusers and for A1111/ComfyUI.

* Training: peft LoRA on the UNet's attention projections (``to_q``, ``to_k``, ``to_v``,
  ``to_out.0``; optionally the feed-forward ``ff.net.0.proj`` and ``ff.net.2``), base weights
  frozen, LoRA weights in fp32 (:func:`diffusers.training_utils.cast_training_params`).
* ``lora.safetensors``: the layout ``StableDiffusionXLPipeline.save_lora_weights`` writes
  (``unet.…`` keys via ``convert_state_dict_to_diffusers``), with diffusers' adapter metadata
  (``lora_adapter_metadata``: rank and ``lora_alpha``, so alpha ≠ rank loads at the right scale)
  and ours (``alchemy.*``: token, class noun, base model name and hash, steps, learning rate).
* ``lora_kohya.safetensors``: ``convert_state_dict_to_kohya`` on the peft-format state
  (``lora_unet_…``/``lora_te1_…`` keys); its ``.alpha`` tensors are then set to our alpha,
  because the converter writes alpha = rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import ModelError
from alchemy_engine.models.lora_files import METADATA_PREFIX

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
UNET_FEED_FORWARD = ("ff.net.0.proj", "ff.net.2")
TEXT_ENCODER_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
ADAPTER = "default"
_DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))


def add_unet_lora(unet, rank: int, alpha: float, train_ff: bool) -> list[torch.nn.Parameter]:
    """Freeze ``unet``, attach LoRA (fp32 weights) and return the trainable parameters."""
    from diffusers.training_utils import cast_training_params

    unet.requires_grad_(False)
    unet.add_adapter(lora_config(rank, alpha, UNET_ATTENTION + (UNET_FEED_FORWARD if train_ff else ())))
    cast_training_params(unet, dtype=torch.float32)
    return [p for p in unet.parameters() if p.requires_grad]


def add_text_encoder_lora(text_encoder, rank: int, alpha: float) -> list[torch.nn.Parameter]:
    """Freeze a CLIP text encoder and attach LoRA to its attention projections (peft directly)."""
    from diffusers.training_utils import cast_training_params
    from peft import inject_adapter_in_model

    text_encoder.requires_grad_(False)
    config = lora_config(rank, alpha, TEXT_ENCODER_ATTENTION)
    inject_adapter_in_model(config, text_encoder, ADAPTER)
    text_encoder.peft_config = {ADAPTER: config}  # what get_peft_model_state_dict reads
    cast_training_params(text_encoder, dtype=torch.float32)
    return [p for p in text_encoder.parameters() if p.requires_grad]


def trainable_tensors(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every trainable parameter, keyed ``<component>/<parameter name>`` (checkpoints)."""
    return {f"{name}/{pname}": p.detach() for name, model in models.items()
            for pname, p in model.named_parameters() if p.requires_grad}


def load_trainable_tensors(models: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    params = {f"{name}/{pname}": p for name, model in models.items()
              for pname, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(tensors):
        missing = sorted(set(params) ^ set(tensors))[:3]
        raise ModelError(f"the checkpoint's LoRA layers do not match this run's settings (e.g. {missing})")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(tensors[key])


def peft_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().to("cpu", torch.float32).contiguous()
            for k, v in get_peft_model_state_dict(model, adapter_name=ADAPTER).items()}


def adapter_metadata(model: torch.nn.Module) -> dict[str, Any]:
    config = model.peft_config[ADAPTER].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def save_diffusers(path: Path, models: dict[str, torch.nn.Module], info: dict[str, Any]) -> None:
    """``models`` maps "unet" / "text_encoder" / "text_encoder_2" to a module with LoRA attached."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    layers = {f"{name}_lora_layers": convert_state_dict_to_diffusers(peft_state(model))
              for name, model in models.items()}
    packed = {f"{name}.{k}": v for name, model in models.items() for k, v in adapter_metadata(model).items()}
    metadata = {"format": "pt", _DIFFUSERS_METADATA_KEY: json.dumps(packed, indent=2, sort_keys=True),
                **_our_metadata(info)}
    path = Path(path)
    with atomic_path(path) as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            save_directory=str(tmp.parent), weight_name=tmp.name,
            save_function=lambda weights, filename: save_file(weights, filename, metadata=metadata),
            **layers)


def save_kohya(path: Path, diffusers_file: Path, alpha: float, info: dict[str, Any]) -> None:
    """Convert the saved diffusers file to kohya keys (diffusers' converters), alpha as trained."""
    from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya
    from safetensors.torch import load_file

    kohya = convert_state_dict_to_kohya(convert_all_state_dict_to_peft(load_file(str(diffusers_file))))
    for key in [k for k in kohya if k.endswith(".alpha")]:
        kohya[key] = torch.tensor(float(alpha), dtype=torch.float32)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": str(info.get("rank")),
                "ss_network_alpha": str(alpha), "ss_base_model_version": "sdxl_base_v1-0",
                **_our_metadata(info)}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in kohya.items()}, str(tmp), metadata=metadata)


def _our_metadata(info: dict[str, Any]) -> dict[str, str]:
    return {f"{METADATA_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in info.items()}
