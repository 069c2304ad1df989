"""LoRA layers for training: attach them (peft), and read/restore their tensors for checkpoints.

* peft LoRA on the UNet's attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``;
  optionally the feed-forward ``ff.net.0.proj`` and ``ff.net.2``) and, optionally, on both CLIP
  text encoders' attention projections; base weights frozen, LoRA weights in fp32
  (:func:`diffusers.training_utils.cast_training_params`).
* The finished LoRA files are written by :mod:`alchemy_engine.training.lora_export`.
"""

from __future__ import annotations

from typing import Any

import torch

from alchemy_engine.errors import ModelError
from alchemy_engine.models.lora_files import unet_lora_targets

TEXT_ENCODER_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
ADAPTER = "default"


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))


def add_unet_lora(unet, rank: int, alpha: float, train_ff: bool) -> list[torch.nn.Parameter]:
    """Freeze ``unet``, attach LoRA (fp32 weights) and return the trainable parameters."""
    from diffusers.training_utils import cast_training_params

    from alchemy_engine.models.resident import building_models

    unet.requires_grad_(False)
    with building_models():  # new layers: not while another thread builds under init_empty_weights
        unet.add_adapter(lora_config(rank, alpha, unet_lora_targets(train_ff)))
    cast_training_params(unet, dtype=torch.float32)
    return [p for p in unet.parameters() if p.requires_grad]


def add_text_encoder_lora(text_encoder, rank: int, alpha: float) -> list[torch.nn.Parameter]:
    """Freeze a CLIP text encoder and attach LoRA to its attention projections (peft directly)."""
    from diffusers.training_utils import cast_training_params
    from peft import inject_adapter_in_model

    text_encoder.requires_grad_(False)
    config = lora_config(rank, alpha, TEXT_ENCODER_ATTENTION)
    from alchemy_engine.models.resident import building_models

    with building_models():
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
    saved = getattr(model, "saved_peft_state", None)  # a SavedLora read back from a checkpoint
    if saved is not None:
        return dict(saved)
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().to("cpu", torch.float32).contiguous()
            for k, v in get_peft_model_state_dict(model, adapter_name=ADAPTER).items()}


def adapter_metadata(model: Any) -> dict[str, Any]:
    """peft's config of our adapter (``model`` carries peft's LoRA layers and ``peft_config``)."""
    config = model.peft_config[ADAPTER].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
