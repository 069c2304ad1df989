"""Per-step cost of reference guidance (IP-Adapter) vs none: one CFG UNet step, side by side.

    OMP_NUM_THREADS=2 python bench/reference_bench.py --model demo:mid --size 512 --repeats 5

The UNet of the chosen SDXL (demo:mid: the SDXL block layout at reduced width) with the LoRA-free
processors, then with a demo adapter of the same shapes attached (insertion/reference_guidance.py),
4 reference photos, guidance inside a mask covering a quarter of the latent; interleaved calls,
median of ``--repeats``. Prints the ratio (goal ≤ 1.15). Embedding the photos is a one-off per
project (cached), so it is not part of a step.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:mid")
    parser.add_argument("--size", type=int, default=512, help="work size in pixels (square)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from alchemy_engine.insertion.reference_guidance import attached, set_mask, set_scale
    from alchemy_engine.insertion.session import InsertionSession
    from alchemy_engine.models.demo.ip_adapter import DEMO_ENCODER, PLUS_TOKENS, demo_ip_adapter
    from alchemy_engine.models.ip_adapter_files import read_adapter

    loaded = InsertionSession().sdxl(args.model, args.device, "off")
    unet, dtype = loaded.base.unet, loaded.policy.dtype
    device = next(unet.parameters()).device
    side = args.size // 8
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, side, side, generator=gen).to(device, dtype)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen).to(device, dtype)
    pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    added = {"text_embeds": torch.zeros(2, pooled, device=device, dtype=dtype),
             "time_ids": torch.zeros(2, 6, device=device, dtype=dtype)}
    mask = torch.zeros(1, 1, side, side, device=device, dtype=dtype)
    mask[..., : side // 2, : side // 2] = 1
    results = {}
    for plus in (False, True):
        weights = read_adapter(demo_ip_adapter(unet, plus=plus))
        width = DEMO_ENCODER["hidden_size"] if plus else DEMO_ENCODER["projection_dim"]
        shape = (2, args.photos, 50, width) if plus else (2, args.photos, width)
        embeds = [torch.randn(*shape, generator=gen).to(device, dtype)]
        off, on = [], []
        with torch.no_grad():
            unet(sample, 500, text, added_cond_kwargs=added)  # warm-up
            for _ in range(args.repeats):
                start = time.perf_counter()
                unet(sample, 500, text, added_cond_kwargs=added)
                off.append(time.perf_counter() - start)
                with attached(unet, weights, dtype) as processors:
                    set_scale(processors, 1.0)
                    set_mask(processors, mask)
                    start = time.perf_counter()
                    unet(sample, 500, text, added_cond_kwargs={**added, "image_embeds": embeds})
                    on.append(time.perf_counter() - start)
        results["Plus" if plus else "plain"] = (statistics.median(off), statistics.median(on))
    tokens = {"plain": 4, "Plus": PLUS_TOKENS}
    print(f"{args.model}, {args.size}² work size, CFG batch 2, {args.photos} photos, device {device}")
    print("| adapter | tokens/photo | step off | step on | ratio (goal ≤ 1.15) |")
    print("|---|---|---|---|---|")
    for name, (off_s, on_s) in results.items():
        print(f"| {name} | {tokens[name]} | {off_s * 1000:.0f} ms | {on_s * 1000:.0f} ms | **{on_s / off_s:.2f}** |")


if __name__ == "__main__":
    main()
