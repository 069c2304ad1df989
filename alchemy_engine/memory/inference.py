"""How many images one denoising call can take at once: the UNet's inference memory per image;
and, on the CPU, whether the UNet's weights must stay in half precision to fit (:func:`choose_unet_storage`).

Measured, not guessed, like the training estimate (``memory/training.py``; the trace is in
``memory/trace.py``): the UNet is built on PyTorch's ``meta`` device (shapes only, no storage) and
run forward once at the working latent size under a dispatch mode that sees every tensor the forward creates and, through weak references,
when it is freed; the most bytes alive at once is the activation peak of one image (two rows with
classifier-free guidance). Attention counts as fused kernels keep it (q, k, v, output) on CUDA,
where SDPA uses flash / memory-efficient kernels; elsewhere the score matrix is counted as well.
LoRA layers add small temporaries that the margin of :func:`choose_batch_size` covers; the VAE
decodes one image at a time in a batched call (``insertion/inpaint.py``), so it does not scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BATCH = 8
MARGIN = 0.25  # allocator rounding, fragmentation, LoRA temporaries, the scheduler's tensors
# peak RSS of an insertion on the CPU over its models' fp32 weights, the process aside: full SDXL
# from a single fp16 file, 512² work size, 16.2 GiB over 12.9 GiB (bench/RESULTS.md)
CPU_MODELS_PEAK = 1.25
GIB = 1024 ** 3


@dataclass(frozen=True)
class BatchChoice:
    """How many variations go through the pipeline in one call, and why (a note for the user)."""

    size: int
    reason: str


def parse_batch_size(value: str | int) -> int | None:
    """``"auto"`` → None; ``"4"`` or ``4`` → 4; anything else → ValueError."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise ValueError(f"batch size must be auto or a whole number from 1 to {MAX_BATCH}; got {value!r}")
    return int(text)


def choose_batch_size(requested: str | int, variations: int, device: str, free_bytes: int | None,
                      per_image_bytes: int) -> BatchChoice:
    """The batch size for ``variations`` images: the user's, or for ``auto`` what fits.

    ``auto`` batches only on GPUs (CUDA, MPS): on the CPU a batch of four ran at most a few percent
    faster than one at a time, within the noise (``bench/insert_bench.py --variations 4``,
    ``bench/RESULTS.md``), and holds four images' activations. On a GPU it is as many images as fit ``free_bytes`` less :data:`MARGIN`, at
    most :data:`MAX_BATCH`; 1 when the free memory cannot be measured."""
    forced = parse_batch_size(requested)
    if variations <= 1:
        return BatchChoice(1, "one variation")
    if forced is not None:
        size = min(forced, variations)
        return BatchChoice(size, f"batch size {forced} as asked" + (f" ({size} variations)" if size < forced else ""))
    kind = device.split(":")[0]
    if kind not in ("cuda", "mps"):
        return BatchChoice(1, "batch size auto: 1 on the CPU, where batching is not measurably faster")
    need = f"{per_image_bytes / GIB:.2f} GiB a variation"
    if free_bytes is None:
        return BatchChoice(1, f"batch size auto: 1, the free memory of {kind} cannot be measured")
    fits = int(free_bytes * (1 - MARGIN) // max(per_image_bytes, 1))
    size = max(1, min(fits, MAX_BATCH, variations))
    return BatchChoice(size, f"batch size auto: {size} ({need}, {free_bytes / GIB:.1f} GiB free, "
                             f"{MARGIN:.0%} kept spare)")


def choose_unet_storage(source: Any, policy: Any, available_bytes: int | None,
                        process_bytes: int = 0) -> tuple[Any, str]:
    """The precision to keep the UNet's frozen weights in for inference (None: as the run computes),
    and why (a note for the user; empty when nothing changes).

    Only on the CPU, where models run in fp32: half precision (the file's own fp16 / bf16, so the
    upcast is exact and the images are the same bit for bit) when the fp32 models would not fit the
    available RAM — :data:`CPU_MODELS_PEAK` times their weights, plus the process. It halves the
    UNet's weights (full SDXL: 10.3 → 5.1 GB) at the cost of one upcast pass over them per step."""
    import torch

    from alchemy_engine.models.half_weights import HALF_DTYPES
    from alchemy_engine.models.sources import stored_unet_dtype, weight_values

    if policy.device != "cpu" or policy.dtype != torch.float32 or available_bytes is None:
        return None, ""
    stored, _ = stored_unet_dtype(source)
    values = weight_values(source)
    if stored not in HALF_DTYPES or values is None:
        return None, ""
    need = int(values * 4 * CPU_MODELS_PEAK) + process_bytes
    if need <= available_bytes:
        return None, ""
    return HALF_DTYPES[stored], (f"UNet weights kept in {stored} as the file stores them (exact; computed in fp32): "
                                 f"in fp32 the models would need about {need / GIB:.1f} GiB of the "
                                 f"{available_bytes / GIB:.1f} GiB free")


def per_image_bytes(unet_config: dict[str, Any], latent_size: tuple[int, int], dtype: Any, device: str,
                    guidance: bool = True) -> int:
    """Peak activation bytes of one UNet step for one image at ``latent_size`` (height, width)."""
    from alchemy_engine.memory.trace import unet_peak  # imports torch: only when an estimate is asked for

    return unet_peak(json.dumps(dict(unet_config), sort_keys=True, default=list), int(latent_size[0]),
                     int(latent_size[1]), str(dtype), 2 if guidance else 1, device.startswith("cuda"))
