"""Write a diffusers SDXL pipeline as ONE checkpoint in the original "sgm" layout.

The inverse of diffusers' single-file conversion, so the demo models and the tests can make a tiny
file shaped like ``sd_xl_base_1.0.safetensors``:

* ``model.diffusion_model.*``: the UNet in LDM naming (input_blocks / middle_block / output_blocks);
* ``first_stage_model.*``: the VAE (encoder.down.N.block.M, mid.attn_1 with 1x1-conv q/k/v);
* ``conditioner.embedders.0.transformer.*``: CLIP ViT-L in Hugging Face naming;
* ``conditioner.embedders.1.model.*``: OpenCLIP bigG (resblocks, fused in_proj, text_projection).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

UNET, VAE = "model.diffusion_model.", "first_stage_model."
CLIP_L, OPEN_CLIP = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    raise KeyError(rest)


def unet_key(key: str, layers_per_block: int) -> str:
    """One diffusers UNet key in LDM naming (diffusers' convert_ldm_unet_checkpoint, reversed)."""
    module, _, param = key.rpartition(".")
    if module in _UNET_TOP:
        return f"{_UNET_TOP[module]}.{param}"
    parts = key.split(".")
    per_level = layers_per_block + 1
    if parts[0] == "down_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.L.downsamplers.0.conv.weight
            return f"input_blocks.{1 + level * per_level + layers_per_block}.0.op.{parts[-1]}"
        block = 1 + level * per_level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{block}.0.{_resnet(rest)}"
        return f"input_blocks.{block}.1.{rest}"
    if parts[0] == "mid_block":
        index, rest = int(parts[2]), ".".join(parts[3:])
        if parts[1] == "resnets":
            return f"middle_block.{2 * index}.{_resnet(rest)}"
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            # the upsampler sits after the resnet (.0) and, in cross-attention levels, the attention (.1)
            block = level * per_level + layers_per_block
            return f"output_blocks.{block}.{{up_slot}}.conv.{parts[-1]}"
        block = level * per_level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{block}.0.{_resnet(rest)}"
        return f"output_blocks.{block}.1.{rest}"
    raise KeyError(key)


def unet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in state.items():
        ldm = unet_key(key, config["layers_per_block"])
        if "{up_slot}" in ldm:
            level = int(key.split(".")[1])
            has_attention = "CrossAttn" in config["up_block_types"][level]
            ldm = ldm.replace("{up_slot}", "2" if has_attention else "1")
        out[UNET + ldm] = value
    return out


def vae_key(key: str, n_levels: int) -> str:
    """One diffusers AutoencoderKL key in LDM naming."""
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    parts = key.split(".")
    if len(parts) > 3 and parts[1] in ("down_blocks", "up_blocks"):
        level = int(parts[2])
        ldm_level = level if parts[1] == "down_blocks" else n_levels - 1 - level
        name = "down" if parts[1] == "down_blocks" else "up"
        if parts[3] == "resnets":
            return f"{parts[0]}.{name}.{ldm_level}.block.{'.'.join(parts[4:])}"
        sampler = "downsample" if name == "down" else "upsample"
        return f"{parts[0]}.{name}.{ldm_level}.{sampler}.{'.'.join(parts[5:])}"  # [5:] = conv.<param>
    if len(parts) > 3 and parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{parts[0]}.mid.block_{int(parts[3]) + 1}.{'.'.join(parts[4:])}"
        rest = ".".join(parts[4:])
        rest = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}.get(
            rest.rpartition(".")[0], rest.rpartition(".")[0]) + "." + rest.rpartition(".")[2]
        return f"{parts[0]}.mid.attn_1.{rest}"
    return key


def vae_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    n_levels = len(config["block_out_channels"])
    out = {}
    for key, value in state.items():
        ldm = vae_key(key, n_levels)
        if ".mid.attn_1." in ldm and ldm.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM stores attention projections as 1x1 convolutions
        out[VAE + ldm] = value
    return out


def clip_l_to_ldm(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        inner = key if key.startswith("text_model.") else "text_model." + key
        out[CLIP_L + inner] = value
    return out


_OPEN_CLIP_LAYER = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                    ("mlp.fc2", "mlp.c_proj"), ("self_attn.out_proj", "attn.out_proj"))


def open_clip_to_ldm(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    state = {k.removeprefix("text_model."): v for k, v in state.items() if not k.endswith("position_ids")}
    out = {OPEN_CLIP + "positional_embedding": state.pop("embeddings.position_embedding.weight"),
           OPEN_CLIP + "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
           OPEN_CLIP + "ln_final.weight": state.pop("final_layer_norm.weight"),
           OPEN_CLIP + "ln_final.bias": state.pop("final_layer_norm.bias"),
           OPEN_CLIP + "text_projection": state.pop("text_projection.weight").T.contiguous()}
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")})
    for i in layers:
        src, dst = f"encoder.layers.{i}.", f"{OPEN_CLIP}transformer.resblocks.{i}."
        for param in ("weight", "bias"):
            out[dst + f"attn.in_proj_{param}"] = torch.cat(
                [state.pop(src + f"self_attn.{p}_proj.{param}") for p in ("q", "k", "v")])
            for new, old in _OPEN_CLIP_LAYER:
                out[dst + f"{old}.{param}"] = state.pop(src + f"{new}.{param}")
    if state:
        raise KeyError(f"unconverted OpenCLIP keys: {sorted(state)[:5]}")
    return out


def write_ldm_checkpoint(pipe: Any, target: Path, markers: tuple[str, ...] = (),
                         metadata: dict[str, str] | None = None) -> Path:
    """Save ``pipe`` (a StableDiffusionXLPipeline) as one LDM-layout .safetensors file; ``markers``:
    empty top-level tensors such as the community's ``v_pred`` / ``ztsnr`` (``models/prediction.py``)."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {name: torch.zeros(0) for name in markers}
    tensors.update(unet_to_ldm(pipe.unet.state_dict(), dict(pipe.unet.config)))
    tensors.update(vae_to_ldm(pipe.vae.state_dict(), dict(pipe.vae.config)))
    tensors.update(clip_l_to_ldm(pipe.text_encoder.state_dict()))
    tensors.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict()))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(target),
              metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base", **(metadata or {})})
    return target
