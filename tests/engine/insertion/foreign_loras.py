"""Test helper: LoRA files "from elsewhere" for the tiny demo SDXL, written the way other tools do.

A peft adapter (random, non-zero up weights) on the demo UNet — attention, feed-forward,
``proj_in``/``proj_out`` — and on both text encoders' attention and MLP layers, as kohya's
sd-scripts trains SDXL, saved in three layouts:

* ``kohya``: ``lora_unet_down_blocks_…`` (diffusers module paths), ``lora_te1_text_model_…``;
* ``kohya_sgm``: ``lora_unet_input_blocks_…`` / ``middle_block`` / ``output_blocks`` (the original
  SDXL UNet names sd-scripts writes for SDXL);
* ``peft``: ``unet.….lora_A.weight`` / ``text_encoder.text_model.….lora_B.weight`` (alpha = rank,
  as a peft file without metadata is read).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/engine: ldm_layout

from ldm_layout import unet_key  # noqa: E402

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def adapted_pipe(rank: int = 4, alpha: float = 2.0, seed: int = 0):
    """The demo pipeline with a random LoRA on UNet and both text encoders (adapter "default")."""
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig, inject_adapter_in_model

    from alchemy_engine.models.demo import demo_sdxl_dir

    pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"))
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=UNET_TARGETS))
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, target_modules=TE_TARGETS), encoder)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2):
            for name, param in module.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    return pipe


def _pairs(module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module path → (down, up) of the adapter "default"."""
    out = {}
    for name, sub in module.named_modules():
        if hasattr(sub, "lora_A") and "default" in sub.lora_A:
            out[name] = (sub.lora_A["default"].weight.detach().clone(), sub.lora_B["default"].weight.detach().clone())
    return out


def _te(name: str) -> str:
    return "text_model." + name.removeprefix("text_model.")


def kohya_tensors(pipe, alpha: float, sgm: bool = False) -> dict[str, torch.Tensor]:
    layers = pipe.unet.config.layers_per_block
    out = {}
    for name, (down, up) in _pairs(pipe.unet).items():
        path = unet_key(f"{name}.weight", layers).removesuffix(".weight") if sgm else name
        out.update(_kohya(f"lora_unet_{path.replace('.', '_')}", down, up, alpha))
    for prefix, encoder in (("lora_te1_", pipe.text_encoder), ("lora_te2_", pipe.text_encoder_2)):
        for name, (down, up) in _pairs(encoder).items():
            out.update(_kohya(prefix + _te(name).replace(".", "_"), down, up, alpha))
    return out


def _kohya(name: str, down, up, alpha: float) -> dict[str, torch.Tensor]:
    return {f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up, f"{name}.alpha": torch.tensor(alpha)}


def peft_tensors(pipe) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, module in (("unet.", pipe.unet), ("text_encoder.", pipe.text_encoder),
                           ("text_encoder_2.", pipe.text_encoder_2)):
        for name, (down, up) in _pairs(module).items():
            path = name if prefix == "unet." else _te(name)
            out[f"{prefix}{path}.lora_A.weight"] = down
            out[f"{prefix}{path}.lora_B.weight"] = up
    return out


def outputs(pipe) -> list[torch.Tensor]:
    """Both text encoders' penultimate hidden states and one UNet prediction."""
    ids = pipe.tokenizer(["a photo of a dog"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        te1 = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        te2 = pipe.text_encoder_2(ids, output_hidden_states=True)
        latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
        added = {"text_embeds": te2.text_embeds, "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
        unet = pipe.unet(latents, 10, torch.cat([te1, te2.hidden_states[-2]], -1), added_cond_kwargs=added).sample
    return [te1, te2.hidden_states[-2], unet]
