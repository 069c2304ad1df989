"""Per-step cost of reference guidance (IP-Adapter) vs none: one CFG UNet step, side by side.

    OMP_NUM_THREADS=2 python bench/reference_bench.py --model demo:mid --size 512 --repeats 5
    python bench/reference_bench.py --model full --size 1024 --device cuda --repeats 5   # bench/gpu.sh

The UNet of the chosen SDXL (demo:mid: the SDXL block layout at reduced width; full: SDXL's own,
random weights, fp16 on CUDA) without an adapter, then with a random adapter of the same shapes
attached (insertion/reference_guidance.py; h94's widths with --real-widths or full),
4 reference photos, guidance inside a mask covering a quarter of the latent; interleaved calls,
median of ``--repeats``. Prints the ratio (goal ≤ 1.15). Embedding the photos is a one-off per
project (cached), so it is not part of a step.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _unet(model: str, device: str) -> tuple:
    """(UNet, compute dtype): ``full`` = SDXL base 1.0's UNet with random weights, built on ``device``."""
    import torch

    if model == "full":
        from alchemy_engine.models.demo import build_sdxl_components

        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        return build_sdxl_components("full", device=device, dtype=dtype)["unet"].eval(), dtype
    from alchemy_engine.insertion.session import InsertionSession

    loaded = InsertionSession().sdxl(model, device, "off")
    return loaded.base.unet, loaded.policy.dtype


def _adapter(unet, plus: bool, real_widths: bool) -> tuple[dict, int, int]:
    """(weights as read_adapter gives them, encoder width, tokens per photo of the encoder)."""
    from alchemy_engine.models.demo.ip_adapter import DEMO_ENCODER, adapter_tensors
    from alchemy_engine.models.ip_adapter_files import cross_attention_names

    hidden = [size for _, size in cross_attention_names(unet)]
    # h94's widths: plain reads bigG's 1280 projection; Plus ViT-H's 1280 hidden (257 tokens), resampler 1280
    embed = 1280 if real_widths else (DEMO_ENCODER["hidden_size"] if plus else DEMO_ENCODER["projection_dim"])
    flat = adapter_tensors(int(unet.config.cross_attention_dim), hidden, plus, embed=embed,
                           plus_width=1280 if real_widths else 64)
    weights: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in flat.items():
        head, _, rest = key.partition(".")
        weights[head][rest] = tensor
    return weights, embed, 257 if real_widths else 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:mid", help="demo, demo:mid, or full (SDXL's UNet, random)")
    parser.add_argument("--size", type=int, default=512, help="work size in pixels (square)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--real-widths", action="store_true", help="h94's adapter widths (implied by --model full)")
    args = parser.parse_args()

    import torch

    from alchemy_engine.insertion.reference_guidance import attached, set_mask, set_scale

    unet, dtype = _unet(args.model, args.device)
    device = next(unet.parameters()).device
    cuda = device.type == "cuda"
    side = args.size // 8
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, side, side, generator=gen).to(device, dtype)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen).to(device, dtype)
    pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    added = {"text_embeds": torch.zeros(2, pooled, device=device, dtype=dtype),
             "time_ids": torch.zeros(2, 6, device=device, dtype=dtype)}
    mask = torch.zeros(1, 1, side, side, device=device, dtype=dtype)
    mask[..., : side // 2, : side // 2] = 1

    def step(**extra) -> tuple[float, int]:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        unet(sample, 500, text, added_cond_kwargs={**added, **extra})
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() if cuda else 0

    results = {}
    real = args.real_widths or args.model == "full"
    for plus in (False, True):
        weights, embed, tokens = _adapter(unet, plus, real)
        shape = (2, args.photos, tokens, embed) if plus else (2, args.photos, embed)
        embeds = [torch.randn(*shape, generator=gen).to(device, dtype)]
        off, on, vram = [], [], [0, 0]
        with torch.no_grad():
            step()  # warm-up
            for _ in range(args.repeats):
                seconds, peak = step()
                off.append(seconds)
                vram[0] = max(vram[0], peak)
                with attached(unet, weights, dtype) as processors:
                    set_scale(processors, 1.0)
                    set_mask(processors, mask)
                    seconds, peak = step(image_embeds=embeds)
                    on.append(seconds)
                    vram[1] = max(vram[1], peak)
        results["Plus" if plus else "plain"] = (statistics.median(off), statistics.median(on), vram)
    print(f"{args.model}, {args.size}² work size, CFG batch 2, {args.photos} photos, device {device}, {dtype}"
          + (", h94's adapter widths" if real else ""))
    print("| adapter | step off | step on | ratio (goal ≤ 1.15) | peak VRAM off / on |")
    print("|---|---|---|---|---|")
    for name, (off_s, on_s, vram) in results.items():
        memory = f"{vram[0] / 2**30:.2f} / {vram[1] / 2**30:.2f} GiB" if cuda else "—"
        print(f"| {name} | {off_s * 1000:.0f} ms | {on_s * 1000:.0f} ms | **{on_s / off_s:.2f}** | {memory} |")


if __name__ == "__main__":
    main()
