"""Benchmark: UNet inference variants for insertion — fused q/k/v (LoRA kept), channels-last.

One process, the same demo UNet with a rank-16 LoRA on the attention projections (as insertion
runs it), batch 2 (classifier-free guidance), no grad. Variants are timed round-robin (``--rounds``
rounds of ``--steps`` calls each, the median per variant) so a busy spell hits all of them:

* ``plain``: diffusers' default (SDPA attention, separate q/k/v);
* ``fused``: ``models/fast_attention.fuse_self_attention`` (one matmul for self-attention q/k/v);
* ``channels_last`` and ``fused+channels_last``: the UNet's convolution weights in NHWC.

    OMP_NUM_THREADS=2 python bench/inference_bench.py --size mid --resolution 512
    python bench/inference_bench.py --device cuda --size full --resolution 1024      # on a CUDA machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("plain", "fused", "channels_last", "fused+channels_last")


def build(variant: str, size: str, device: str, dtype):
    import torch
    from peft import LoraConfig

    from alchemy_engine.models import fast_attention
    from alchemy_engine.models.demo import build_sdxl_components

    unet = build_sdxl_components(size, device=device, dtype=dtype)["unet"].eval()
    unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    if "channels_last" in variant:
        unet.to(memory_format=torch.channels_last)
    if "fused" in variant:
        fast_attention.fuse_self_attention(unet)
    return unet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="mid")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    unets = {v: build(v, args.size, args.device, dtype) for v in VARIANTS}
    cfg = unets["plain"].config
    side = args.resolution // 8
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, side, side, generator=g).to(args.device, dtype)
    t = torch.tensor([500, 500], device=args.device)
    emb = torch.randn(2, 77, cfg.cross_attention_dim, generator=g).to(args.device, dtype)
    added = {"text_embeds": torch.randn(2, text_dim, generator=g).to(args.device, dtype),
             "time_ids": torch.tensor([[args.resolution] * 2 + [0, 0] + [args.resolution] * 2] * 2,
                                      device=args.device, dtype=dtype)}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    outputs = {}
    with torch.no_grad():
        for v in VARIANTS:  # warm-up, and the outputs to compare
            outputs[v] = unets[v](x, t, emb, added_cond_kwargs=added).sample.float()
        for _ in range(args.rounds):
            for v in VARIANTS:
                for _ in range(args.steps):
                    start = time.perf_counter()
                    unets[v](x, t, emb, added_cond_kwargs=added)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    times[v].append(time.perf_counter() - start)
    base = statistics.median(times["plain"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nDevice {args.device}, demo:{args.size}, {args.resolution}², batch 2, LoRA rank 16, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, load average {load:.1f}\n")
    print("| variant | UNet forward (median) | vs plain | max abs diff vs plain |\n|---|---|---|---|")
    for v in VARIANTS:
        med = statistics.median(times[v])
        diff = (outputs[v] - outputs["plain"]).abs().max().item()
        print(f"| {v} | {med * 1000:.1f} ms | **{med / base:.3f}** | {diff:.2e} |")


if __name__ == "__main__":
    main()
