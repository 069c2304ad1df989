"""Test helper: which kohya LoRA keys ComfyUI and A1111 would load into a given SDXL pipeline.

Both loaders are re-stated here from their source, deriving the module names they know from the
pipeline's own modules the way they do:

* ComfyUI ``comfy/lora.py``: ``model_lora_keys_unet`` maps ``lora_unet_<diffusers path, . → _>``
  and ``lora_unet_<sgm path, . → _>`` for every weight of the UNet (``utils.unet_to_diffusers``);
  ``model_lora_keys_clip`` maps ``lora_te1_text_model_encoder_layers_N_<LORA_CLIP_MAP>`` (CLIP-L)
  and ``lora_te2_…`` (bigG, only when CLIP-L is present: SDXL base). ``load_lora`` takes
  ``<name>.lora_up.weight`` + ``.lora_down.weight`` and ``<name>.alpha``; any other key is
  "lora key not loaded". (It also reads the older ``<name>_lora.up.weight`` spelling, which has no
  alpha, so the strength ignores alpha/rank: counted here as not loaded.)
* A1111 ``extensions-builtin/Lora/networks.py``: ``convert_diffusers_name_to_compvis`` turns
  ``lora_unet_{down,mid,up}_block(s)_…`` into sgm names, assuming 3 sgm blocks per UNet level
  (``layers_per_block`` 2, true for SD and SDXL; ``per_level`` generalises it for the tiny demo);
  names that are already sgm fall back to ``lora_unet`` → ``diffusion_model``; ``lora_te1_text_model``
  → ``0_transformer_text_model`` (CLIP-L as HF CLIPTextModel *with* ``text_model``);
  ``lora_te2_text_model_encoder_layers_N_…`` → ``1_model_transformer_resblocks_N_…`` (OpenCLIP:
  fused ``attn`` for q/k/v via ``re_x_proj``, ``mlp_c_fc``/``mlp_c_proj``). ``network_lora`` needs
  ``lora_up.weight`` and ``lora_down.weight``; an OpenCLIP attention needs q, k, v and out together.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/engine: ldm_layout

from ldm_layout import OPEN_CLIP, UNET, open_clip_to_ldm, unet_to_ldm  # noqa: E402

LORA_CLIP_MAP = {"mlp.fc1": "mlp_fc1", "mlp.fc2": "mlp_fc2", "self_attn.k_proj": "self_attn_k_proj",
                 "self_attn.q_proj": "self_attn_q_proj", "self_attn.v_proj": "self_attn_v_proj",
                 "self_attn.out_proj": "self_attn_out_proj"}
LORA_PARTS = ("lora_up.weight", "lora_down.weight", "alpha")


@dataclass
class Verdict:
    """How many of a file's keys a loader uses, and why the others are dropped."""

    loaded: int = 0
    total: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.loaded == self.total and not self.problems


def _base_state(module) -> dict:
    """``state_dict`` without peft's wrappers (``base_layer.``) and LoRA tensors."""
    return {k.replace(".base_layer.", "."): v for k, v in module.state_dict().items() if ".lora_" not in k}


def _text_model_names(encoder) -> dict:
    return {"text_model." + k.removeprefix("text_model."): v for k, v in _base_state(encoder).items()}


def sgm_unet_weights(unet) -> dict[str, str]:
    """diffusers UNet module path → sgm module path, for every ``.weight`` (diffusers' mapping, reversed)."""
    state = {k: k for k in _base_state(unet) if k.endswith(".weight")}
    ldm = unet_to_ldm(state, dict(unet.config))
    return {v[: -len(".weight")]: k[len(UNET): -len(".weight")] for k, v in ldm.items()}


def comfyui_key_map(pipe) -> set[str]:
    keys = set()
    for diffusers_name, sgm_name in sgm_unet_weights(pipe.unet).items():
        keys.add("lora_unet_" + diffusers_name.replace(".", "_"))
        keys.add("lora_unet_" + sgm_name.replace(".", "_"))
    for prefix, encoder in (("lora_te1_", pipe.text_encoder), ("lora_te2_", pipe.text_encoder_2)):
        state = _text_model_names(encoder)
        for b in range(48):
            for c, name in LORA_CLIP_MAP.items():
                if f"text_model.encoder.layers.{b}.{c}.weight" in state:
                    keys.add(f"{prefix}text_model_encoder_layers_{b}_{name}")
    return keys


def check_comfyui(tensors: dict, pipe) -> Verdict:
    key_map = comfyui_key_map(pipe)
    verdict = Verdict(total=len(tensors))
    for name, parts in _group(tensors).items():
        if name not in key_map:
            verdict.problems.append(f"{name}: no such layer")
            continue
        if not {"lora_up.weight", "lora_down.weight"} <= parts:
            verdict.problems.append(f"{name}: {sorted(parts)} is not lora_up/lora_down")
            continue
        if "alpha" not in parts:
            verdict.problems.append(f"{name}: no alpha (the strength would ignore alpha/rank)")
        verdict.loaded += len(parts & set(LORA_PARTS))
    return verdict


def a1111_layer_names(pipe) -> set[str]:
    names = {"diffusion_model_" + s.replace(".", "_") for s in sgm_unet_weights(pipe.unet).values()}
    for key in _text_model_names(pipe.text_encoder):
        names.add("0_transformer_" + key.rpartition(".")[0].replace(".", "_"))
    for key in open_clip_to_ldm(_text_model_names(pipe.text_encoder_2)):
        if key.endswith("weight"):  # resblocks.N.attn.in_proj_weight: the fused attention itself
            names.add("1_model_" + key[len(OPEN_CLIP):].rpartition(".")[0].replace(".", "_"))
    return names


_SUFFIX = {"conv1": "in_layers_2", "conv2": "out_layers_3", "time_emb_proj": "emb_layers_1",
           "conv_shortcut": "skip_connection"}


def a1111_compvis_name(key: str, per_level: int = 3) -> str:
    """``convert_diffusers_name_to_compvis`` for SDXL (``per_level`` = 3 in A1111)."""
    if m := re.match(r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)", key):
        level, kind, index, rest = int(m[1]), m[2], int(m[3]), m[4]
        rest = _SUFFIX.get(rest, rest) if kind == "resnets" else rest
        return f"diffusion_model_input_blocks_{1 + level * per_level + index}_{int(kind == 'attentions')}_{rest}"
    if m := re.match(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)", key):
        kind, index, rest = m[1], int(m[2]), m[3]
        rest = _SUFFIX.get(rest, rest) if kind == "resnets" else rest
        return f"diffusion_model_middle_block_{1 if kind == 'attentions' else index * 2}_{rest}"
    if m := re.match(r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)", key):
        level, kind, index, rest = int(m[1]), m[2], int(m[3]), m[4]
        rest = _SUFFIX.get(rest, rest) if kind == "resnets" else rest
        return f"diffusion_model_output_blocks_{level * per_level + index}_{int(kind == 'attentions')}_{rest}"
    if m := re.match(r"lora_te2_text_model_encoder_layers_(\d+)_(.+)", key):
        rest = m[2].replace("mlp_fc1", "mlp_c_fc").replace("mlp_fc2", "mlp_c_proj").replace("self_attn", "attn")
        return f"1_model_transformer_resblocks_{m[1]}_{rest}"
    return key


def a1111_resolve(key: str, names: set[str], per_level: int = 3) -> str | None:
    """The A1111 layer a kohya module name lands on (``load_network``), or None."""
    compvis = a1111_compvis_name(key, per_level)
    if compvis in names:
        return compvis
    if (m := re.match(r"(.*)_([qkv]_proj)$", compvis)) and m[1] in names:
        return compvis  # a fused OpenCLIP attention, patched through its q/k/v parts
    if "lora_unet" in key and key.replace("lora_unet", "diffusion_model") in names:
        return key.replace("lora_unet", "diffusion_model")
    if "lora_te1_text_model" in key and key.replace("lora_te1_text_model", "0_transformer_text_model") in names:
        return key.replace("lora_te1_text_model", "0_transformer_text_model")
    return None


def check_a1111(tensors: dict, pipe, per_level: int | None = None) -> Verdict:
    per_level = per_level or pipe.unet.config.layers_per_block + 1
    names = a1111_layer_names(pipe)
    verdict = Verdict(total=len(tensors))
    fused = defaultdict(set)
    for name, parts in _group(tensors).items():
        target = a1111_resolve(name, names, per_level)
        if target is None:
            verdict.problems.append(f"{name}: no such layer")
            continue
        if not {"lora_up.weight", "lora_down.weight"} <= parts:
            verdict.problems.append(f"{name}: {sorted(parts)} is not lora_up/lora_down")
            continue
        if m := re.match(r"(1_model_transformer_resblocks_\d+_attn)_(q|k|v|out)_proj$", target):
            fused[m[1]].add(m[2])
        verdict.loaded += len(parts & set(LORA_PARTS))
    for attn, seen in fused.items():
        if seen != {"q", "k", "v", "out"}:
            verdict.problems.append(f"{attn}: A1111 patches OpenCLIP attention only with q, k, v and out")
    return verdict


def _group(tensors: dict) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for key in tensors:
        name, _, part = key.partition(".")
        groups[name].add(part)
    return groups


def module_shapes_fit(tensors: dict, pipe) -> list[str]:
    """Problems with lora_down (rank × in) / lora_up (out × rank) against the diffusers modules."""
    shapes = {}
    for prefix, module in (("lora_unet_", pipe.unet), ("lora_te1_", pipe.text_encoder),
                           ("lora_te2_", pipe.text_encoder_2)):
        state = _base_state(module) if prefix == "lora_unet_" else _text_model_names(module)
        for key, value in state.items():
            if key.endswith(".weight") and value.ndim == 2:
                shapes[prefix + key[: -len(".weight")].replace(".", "_")] = tuple(value.shape)
    problems = []
    for name in _group(tensors):
        out_in = shapes.get(name)
        down, up = tensors.get(f"{name}.lora_down.weight"), tensors.get(f"{name}.lora_up.weight")
        if out_in is None or down is None or up is None:
            problems.append(f"{name}: no linear layer or no down/up pair")
        elif down.shape[1] != out_in[1] or up.shape[0] != out_in[0] or down.shape[0] != up.shape[1]:
            problems.append(f"{name}: down {tuple(down.shape)} up {tuple(up.shape)} vs layer {out_in}")
    return problems
