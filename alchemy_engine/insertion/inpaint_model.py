"""Insertion with an SDXL inpainting UNet (``InsertRequest.inpaint_model``).

The 9-channel UNet (``models/inpaint_unet.py``) replaces the base UNet in an inpaint pipeline over
the base model's very text encoders, tokenizers and VAE (no copies); diffusers'
``StableDiffusionXLInpaintPipeline`` sees ``unet.config.in_channels == 9`` and feeds it the mask and
the masked image's latents beside the noisy latents. The subject LoRA (and a style LoRA), trained
on the base model, is loaded onto the inpainting UNet's attention layers with diffusers' own
``load_lora_into_unet``; the text-encoder part of a LoRA stays where the session put it, on the
shared encoders. Every UNet layer of the LoRA must find its layer here, or the LoRA is refused.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError


@dataclass
class InpaintModel:
    name: str
    unet: Any  # UNet2DConditionModel with 9 input channels
    pipe: Any  # StableDiffusionXLInpaintPipeline: the base model's encoders and VAE around ``unet``
    adapters: dict[str, int] = field(default_factory=dict)  # adapter name -> UNet layers it holds


def open_inpaint_model(loaded: Any, spec: str) -> InpaintModel:
    """Load the inpainting UNet named by ``spec`` beside ``loaded`` (a session's LoadedSdxl)."""
    from diffusers import StableDiffusionXLInpaintPipeline

    from alchemy_engine.models.inpaint_unet import load_inpaint_unet
    from alchemy_engine.models.inventory import resolve_inpaint_model

    source = resolve_inpaint_model(spec)
    unet = load_inpaint_unet(source, loaded.policy, loaded.base.unet)
    accepted = inspect.signature(StableDiffusionXLInpaintPipeline.__init__).parameters
    components = {name: module for name, module in loaded.base.components.items() if name in accepted}
    pipe = StableDiffusionXLInpaintPipeline(**{**components, "unet": unet},
                                            force_zeros_for_empty_prompt=loaded.base.config.force_zeros_for_empty_prompt)
    pipe.set_progress_bar_config(disable=True)
    return InpaintModel(source.name, unet, pipe)


def use_loras(model: InpaintModel, base_unet: Any, loras: list[tuple[Path, float]], names: list[str]) -> str:
    """Make exactly these LoRAs (the session's adapter ``names``) active on the inpainting UNet, each at
    its scale; returns a note saying how many layers matched."""
    from alchemy_engine.models.lora_files import check_lora_file

    counts = []
    for (path, _), name in zip(loras, names):
        if name not in model.adapters:
            expected = check_lora_file(path, base_unet).unet_layers
            model.adapters[name] = _load_adapter(model, Path(path), name, expected)
        counts.append(f"{Path(path).name}: {model.adapters[name]} UNet layers")
    model.unet.set_adapters(names, weights=[float(scale) for _, scale in loras])
    return (f"inpainting model {model.name}: every UNet layer of the LoRA found its attention layer "
            f"({'; '.join(counts)})")


def _load_adapter(model: InpaintModel, path: Path, name: str, expected: int) -> int:
    from diffusers import StableDiffusionXLPipeline

    try:
        state, alphas, metadata = StableDiffusionXLPipeline.lora_state_dict(
            str(path.parent), weight_name=path.name, unet_config=model.unet.config, local_files_only=True,
            return_lora_metadata=True)
        StableDiffusionXLPipeline.load_lora_into_unet(state, alphas, unet=model.unet, adapter_name=name,
                                                      metadata=metadata)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load the LoRA {path.name} onto the inpainting model {model.name}: {exc}. "
                         "Use the inpainting version of the model the LoRA was trained on, or leave "
                         "--inpaint-model out") from exc
    found = sum(1 for m in model.unet.modules() if name in (getattr(m, "lora_A", None) or {}))
    if found != expected:
        model.unet.delete_adapters(name)
        raise ModelError(f"{path.name} fits only {found} of its {expected} UNet layers in the inpainting model "
                         f"{model.name}; refusing to insert with layers silently missing. Leave --inpaint-model "
                         "out to repaint with the base model")
    return found
