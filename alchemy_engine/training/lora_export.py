"""Write a trained LoRA twice: for diffusers, and in the kohya layout A1111, Forge and ComfyUI load.

Both files are built straight from the trained peft state (``lora_A`` = down, ``lora_B`` = up, one
``lora_alpha`` for every module), never by converting one file into the other.

* ``lora.safetensors``: the layout ``StableDiffusionXLPipeline.save_lora_weights`` writes
  (``unet.…``, ``text_encoder.text_model.…``, ``text_encoder_2.text_model.…``), with diffusers'
  adapter metadata (``lora_adapter_metadata``: rank and ``lora_alpha``, so alpha ≠ rank loads at
  the right scale) and ours (``alchemy.*``: token, class noun, base model name and hash, …).
* ``lora_kohya.safetensors``: ``lora_unet_<diffusers module path, . → _>`` and
  ``lora_te1_text_model_encoder_layers_N_…`` / ``lora_te2_text_model_…``, each module with
  ``lora_down.weight``, ``lora_up.weight`` and ``alpha``; ``ss_*`` metadata as kohya's sd-scripts
  writes it, so A1111's metadata panel and civitai-style tools read rank, alpha, base model and the
  trigger words.

CLIP text encoders are always named under ``text_model.``, the way both loaders and the original
checkpoints name them, whether or not the installed transformers wraps ``CLIPTextModel`` in a
``text_model`` module (transformers 5 does not).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import ModelError
from alchemy_engine.models.lora_files import METADATA_PREFIX
from alchemy_engine.training.lora_io import ADAPTER, adapter_metadata, peft_state

KOHYA_PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}
_DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY
SDXL_BASE_VERSION = "sdxl_base_v1-0"  # kohya's ss_base_model_version for SDXL base
SDXL_LORA_ARCHITECTURE = "stable-diffusion-xl-v1-base/lora"  # modelspec.architecture


@dataclass(frozen=True)
class LoraModule:
    """One trained LoRA layer: ``down`` (rank × in), ``up`` (out × rank) and its alpha."""

    component: str  # unet, text_encoder, text_encoder_2
    path: str  # module path as the loaders name it (CLIP under text_model.)
    down: torch.Tensor
    up: torch.Tensor
    alpha: float

    @property
    def kohya_name(self) -> str:
        return KOHYA_PREFIX[self.component] + self.path.replace(".", "_")


def module_path(component: str, name: str) -> str:
    """``name`` of a module inside ``component`` as LoRA files name it."""
    if component == "unet":
        return name
    return "text_model." + name.removeprefix("text_model.")


def lora_modules(models: dict[str, torch.nn.Module]) -> Iterator[LoraModule]:
    """Every trained LoRA layer of ``models`` ("unet", "text_encoder", "text_encoder_2")."""
    for component, model in models.items():
        if component not in KOHYA_PREFIX:
            raise ModelError(f"no LoRA file layout for a {component!r} component")
        config = getattr(model, "peft_config")[ADAPTER]  # noqa: B009 - nn.Module's __getattr__ is typed as Tensor
        if config.rank_pattern or config.alpha_pattern:
            raise ModelError("per-layer LoRA ranks or alphas cannot be written as one kohya alpha per "
                             "module yet")
        state = peft_state(model)
        names = sorted(k[: -len(".lora_A.weight")] for k in state if k.endswith(".lora_A.weight"))
        for name in names:
            down, up = state.pop(f"{name}.lora_A.weight"), state.pop(f"{name}.lora_B.weight")
            if down.shape[0] != config.r or up.shape[1] != config.r:
                raise ModelError(f"LoRA layer {component}.{name} has rank {down.shape[0]}, not {config.r}")
            yield LoraModule(component, module_path(component, name), down, up, float(config.lora_alpha))
        if state:
            raise ModelError(f"{component} has LoRA tensors that are not plain down/up pairs: "
                             f"{sorted(state)[:3]}")


def kohya_state_dict(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The kohya (sd-scripts) layout: ``<name>.lora_down.weight``, ``.lora_up.weight``, ``.alpha``."""
    out: dict[str, torch.Tensor] = {}
    for module in lora_modules(models):
        name = module.kohya_name
        if f"{name}.alpha" in out:
            raise ModelError(f"two LoRA layers map to the same kohya name {name}")
        out[f"{name}.lora_down.weight"] = module.down.contiguous()
        out[f"{name}.lora_up.weight"] = module.up.contiguous()
        out[f"{name}.alpha"] = torch.tensor(module.alpha, dtype=torch.float32)
    return out


def diffusers_layers(models: dict[str, torch.nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"unet_lora_layers": …, "text_encoder_lora_layers": …}`` for ``save_lora_weights``."""
    from diffusers.utils import convert_state_dict_to_diffusers

    layers: dict[str, dict[str, torch.Tensor]] = {}
    for component, model in models.items():
        state = peft_state(model)
        if component != "unet":
            state = {module_path(component, k): v for k, v in state.items()}
        layers[f"{component}_lora_layers"] = convert_state_dict_to_diffusers(state)
    return layers


def save_diffusers(path: Path, models: dict[str, torch.nn.Module], info: dict[str, Any]) -> None:
    """``models`` maps "unet" / "text_encoder" / "text_encoder_2" to a module with LoRA attached."""
    from diffusers import StableDiffusionXLPipeline

    packed = {f"{name}.{k}": v for name, model in models.items() for k, v in adapter_metadata(model).items()}
    metadata = {"format": "pt", _DIFFUSERS_METADATA_KEY: json.dumps(packed, indent=2, sort_keys=True),
                **our_metadata(info)}
    path = Path(path)
    with atomic_path(path) as tmp:
        StableDiffusionXLPipeline.save_lora_weights(
            save_directory=str(tmp.parent), weight_name=tmp.name,
            save_function=lambda weights, filename: save_file(weights, filename, metadata=metadata),
            **diffusers_layers(models))


def save_kohya(path: Path, models: dict[str, torch.nn.Module], info: dict[str, Any]) -> None:
    """The kohya-layout file, with kohya's ``ss_*`` metadata and ours."""
    tensors = kohya_state_dict(models)
    metadata = {**kohya_metadata(info, text_encoders=any(k != "unet" for k in models)), **our_metadata(info)}
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def kohya_metadata(info: dict[str, Any], text_encoders: bool) -> dict[str, str]:
    """The ``ss_*`` (kohya sd-scripts) and ``modelspec.*`` entries readers look for."""
    trigger = str(info.get("trigger") or "")
    resolution = int(info.get("resolution") or 1024)
    learning_rate = info.get("learning_rate")
    te_lr = info.get("text_encoder_lr") or learning_rate
    name = str(info.get("output_name") or "image-alchemy-lora")
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(info.get("rank")),
        "ss_network_alpha": str(float(info.get("alpha") or info.get("rank") or 0)),
        "ss_base_model_version": SDXL_BASE_VERSION,
        "ss_v2": "False",
        "ss_sd_model_name": str(info.get("base_model") or ""),
        "ss_output_name": name,
        "ss_max_train_steps": str(info.get("steps")),
        "ss_steps": str(info.get("steps")),
        "ss_learning_rate": str(learning_rate),
        "ss_unet_lr": str(learning_rate),
        "ss_text_encoder_lr": str(te_lr if text_encoders else 0.0),
        "ss_network_train_unet_only": str(not text_encoders),
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_seed": str(info.get("seed")),
        "ss_training_comment": f"Image Alchemy DreamBooth LoRA; trigger: {trigger}",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": SDXL_LORA_ARCHITECTURE,
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": name,
        "modelspec.resolution": f"{resolution}x{resolution}",
    }
    if info.get("prediction_type"):  # as sd-scripts writes them for a v-prediction / zero-SNR base
        v_pred = info["prediction_type"] == "v_prediction"
        meta["ss_v_parameterization"] = str(v_pred)
        meta["ss_zero_terminal_snr"] = str(bool(info.get("zero_terminal_snr")))
        meta["modelspec.prediction_type"] = "v" if v_pred else "epsilon"
    if trigger:  # A1111 lists these as the LoRA's training tags (its trigger words)
        photos = int(info.get("photos") or 1)
        meta["ss_tag_frequency"] = json.dumps({f"1_{trigger}": {trigger: photos}})
        meta["ss_num_train_images"] = str(photos)
    return meta


def our_metadata(info: dict[str, Any]) -> dict[str, str]:
    return {f"{METADATA_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in info.items()}
