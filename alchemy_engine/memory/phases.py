"""The estimated peak of each phase of a run — loading, caching, training — in host RAM and in device
memory, separately. The training phase's device figure is ``memory/training.py``'s measured
activation trace; this module adds what the other phases hold:

* **loading**: the process itself (libraries, measured as the resident set when the estimate is
  made), the weights of the encoders the run loads first (``staged_models.LoadPlan``: the VAE and
  text encoders, or none when everything is cached; every component when class images must be
  drawn), plus the tensors read beside the built models: one at a time (the largest), and, for a
  single file, the few a converter transforms (``models/loading.py``);
* **caching**: those weights plus the VAE encoder's largest activations (its first block's channels
  at full resolution, about four alive at once, six and a half on the CPU), the VAE in the precision it encodes in;
* **training**: the UNet (loaded only now), LoRA, optimizer state and activations; the VAE stays in
  RAM for previews.

On the CPU host and device are the same memory and only the host figures are given.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GIB = 1024 ** 3
PROCESS_FALLBACK = int(0.9 * GIB)  # torch + diffusers + transformers + peft imported, when RSS is unknown
# full-resolution activations of the VAE encoder's first block alive at once: 6.5 measured on the CPU
# (full SDXL, 512²: oneDNN convolutions also keep reordered copies of input and output); 4 on GPUs
VAE_ENCODER_ALIVE_CPU = 6.5
VAE_ENCODER_ALIVE = 4
CPU_SLACK = 96 * 1024 ** 2  # freed encoder memory the C allocator keeps (measured on demo:mid)
FP16_SDXL_IN_PROJ = 300 * 1024 ** 2  # OpenCLIP's fused q/k/v in an fp16 single file
FP16_SDXL_EXTRA = 120 * 1024 ** 2 + FP16_SDXL_IN_PROJ  # its largest tensor (126 MB) + that


@dataclass(frozen=True)
class _WorstCase:
    """The load plan assumed when the run's is not known yet: as if nothing were cached."""

    all_at_once: bool
    text_encoders: bool = True
    vae: bool = True
    loads_encoders: bool = True


def process_bytes() -> int:
    from alchemy_engine.memory.peaks import rss_bytes

    return rss_bytes() or PROCESS_FALLBACK


def _config_root(source) -> Path:
    from alchemy_engine import paths

    folder = Path(source.path)
    return folder if (folder / "unet" / "config.json").is_file() else Path(getattr(source, "config_dir", None) or paths.sdxl_config_dir())


@functools.lru_cache(maxsize=8)
def _component_info(root: str) -> dict[str, int]:
    """Parameter counts of the VAE and both text encoders, and the VAE's first block width (meta device)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(root)
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_json_file(folder / "text_encoder" / "config.json"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_json_file(folder / "text_encoder_2" / "config.json"))
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    return {"vae": sum(p.numel() for p in vae.parameters()),
            "text_encoders": sum(p.numel() for m in (te1, te2) for p in m.parameters()),
            "vae_width": int(vae_config["block_out_channels"][0])}


def component_info(source) -> dict[str, int]:
    return _component_info(str(_config_root(source)))


def _loading_extra_bytes(source) -> int:
    """What loading holds beside the built models (``models/loading.py``): the tensor being cast into
    its model (at most the largest), and, from a single file, the inputs diffusers' converters
    transform rather than rename, all read ahead of their assignment; of those only OpenCLIP's fused
    q/k/v (``in_proj_*``) weigh anything (~0.3 GB in SDXL's fp16 files)."""
    from alchemy_engine.models.probe import HeaderError, read_safetensors_header
    from alchemy_engine.models.sources import weight_files

    if not getattr(source, "kind", ""):  # estimate-only sources have no file
        return 0
    single = source.kind == "single_file"
    try:
        sizes = {f"{file}:{k}": v["data_offsets"][1] - v["data_offsets"][0]
                 for file in weight_files(source) for k, v in read_safetensors_header(file).tensors.items()}
    except (HeaderError, OSError):  # the loader reports it; the estimate assumes SDXL's fp16 figures
        return FP16_SDXL_EXTRA if single else FP16_SDXL_EXTRA - FP16_SDXL_IN_PROJ
    return max(sizes.values(), default=0) + sum(n for k, n in sizes.items() if single and ".in_proj_" in k)


def phases(parts: dict[str, int], request, source, policy, unet_params: int,
           process: int | None = None, plan=None) -> dict[str, dict[str, int | None]]:
    """Phase → ``host_bytes`` and ``device_bytes`` (None on the CPU, where they are the same memory).

    ``plan``: training's ``staged_models.LoadPlan`` (read for ``all_at_once``, ``text_encoders``,
    ``vae``, ``loads_encoders``); None is its default, the worst case: every encoder loaded first,
    and the whole pipeline at once when class images may have to be drawn."""
    plan = plan or _WorstCase(all_at_once=request.prior_preservation)
    device = torch.device(policy.device)
    info = component_info(source)
    dtype_bytes = torch.finfo(policy.dtype).bits // 8
    vae_bytes = torch.finfo(policy.vae_dtype).bits // 8
    unet_w = unet_params * dtype_bytes  # as loaded beside the encoders (class images to draw)
    unet_trained_w = parts.get("unet_weights", unet_w)  # loaded alone: straight in its storage dtype
    # the VAE is loaded in the run's precision and encodes in vae_dtype
    text_w = info["text_encoders"] * dtype_bytes if plan.text_encoders or plan.all_at_once else 0
    vae_w = info["vae"] * vae_bytes if plan.vae or plan.all_at_once else 0
    first_w = text_w + vae_w + (unet_w if plan.all_at_once else 0)
    largest = _loading_extra_bytes(source)  # streamed tensor by tensor, from a folder or a single file
    first_largest = largest if plan.loads_encoders else 0
    alive = VAE_ENCODER_ALIVE_CPU if device.type == "cpu" else VAE_ENCODER_ALIVE
    vae_acts = int(alive * info["vae_width"] * request.resolution ** 2 * vae_bytes) if plan.vae or plan.all_at_once else 0
    train = sum(v for k, v in parts.items() if k not in ("encode_phase",))
    base = process_bytes() if process is None else process
    if device.type == "cpu":
        slack = CPU_SLACK if plan.loads_encoders else 0
        return {"loading": {"host_bytes": base + first_w + first_largest, "device_bytes": None},
                "caching": {"host_bytes": base + first_w + vae_acts, "device_bytes": None},
                "training": {"host_bytes": base + max(train + slack, unet_trained_w + largest), "device_bytes": None}}
    previews = info["vae"] * dtype_bytes if request.sample_every else 0
    unet_waits = unet_w if plan.all_at_once else 0  # drawn class images first: the UNet waits in host RAM
    return {"loading": {"host_bytes": base + first_w + first_largest, "device_bytes": first_w},
            "caching": {"host_bytes": base + unet_waits, "device_bytes": first_w - unet_waits + vae_acts},
            "training": {"host_bytes": base + previews + (0 if plan.all_at_once else unet_trained_w + largest),
                         "device_bytes": train}}


def describe(estimated: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    return {name: {k.replace("_bytes", "_gib"): None if v is None else round(v / GIB, 3) for k, v in row.items()}
            for name, row in estimated.items()}
