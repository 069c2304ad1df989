"""Benchmark: how much memory the C allocator keeps beyond the live tensors in a CPU training step
(glibc only: it reads ``mallinfo2``), next to what the memory estimate predicts for it.

Each configuration runs in a fresh process: the UNet with rank-16 LoRA (attention), AdamW, one
warm-up step, ``malloc_trim``, then two steps while a thread samples the resident set and glibc's
live bytes (``uordblks + hblkhd``) every 0.5 ms. "Retained" is the rise of the resident set minus
the rise of the live bytes: freed temporaries the heap keeps. The estimate's figure is
``memory.CPU_RETAINED_CHECKPOINTED`` / ``CPU_RETAINED`` times what one forward saves for backward
(``memory.activation_bytes(...)["forward"]``).

    OMP_NUM_THREADS=2 python bench/allocator_retention.py                      # demo:mid, 256²–1024²
    OMP_NUM_THREADS=2 python bench/allocator_retention.py --full ~/sd_xl_base_random.safetensors
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIB = 1024 ** 2
DEMO_CONFIGS = [("mid", "fp16", 256, "off"), ("mid", "fp16", 512, "off"), ("mid", "fp16", 512, "on"),
                ("mid", "fp32", 512, "on"), ("mid", "fp16", 1024, "on")]
FULL_CONFIGS = [("full", "fp16", 512, "on")]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc():
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return libc


def _load_unet(model: str, storage: str, full_file: str | None):
    import torch

    from alchemy_engine.models import half_weights
    from alchemy_engine.models.device import DevicePolicy

    half = storage == "fp16"
    if model == "full":
        from alchemy_engine.models.sdxl import load_sdxl_pipeline

        policy = DevicePolicy("cpu", torch.float16 if half else torch.float32, torch.float32)
        unet = load_sdxl_pipeline(full_file, policy, without=("text_encoder", "text_encoder_2", "vae")).unet
        if half:
            half_weights.finish_half_loaded(unet, torch.float16, torch.float32)
        return unet.requires_grad_(False)
    from alchemy_engine.models.demo import build_sdxl_components

    unet = build_sdxl_components(model)["unet"].requires_grad_(False)
    if half:
        half_weights.store_frozen_weights(unet, torch.float16)
    return unet


def worker(model: str, storage: str, resolution: int, checkpointing: bool, full_file: str | None) -> dict:
    import torch

    from alchemy_engine.memory import training as memory
    from alchemy_engine.training import lora_io

    libc, page = _glibc(), os.sysconf("SC_PAGE_SIZE")

    def live() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * page

    unet = _load_unet(model, storage, full_file)
    cfg = unet.config
    acts = memory.activation_bytes(json.dumps(dict(cfg), sort_keys=True), 1, resolution // 8, resolution // 8,
                                   "torch.float32", checkpointing, False, "torch.float16" if storage == "fp16" else "")
    params = lora_io.add_unet_lora(unet, 16, 16.0, train_ff=False)
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    side = resolution // 8
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    latents = torch.randn(1, 4, side, side)
    noise = torch.randn_like(latents)
    embeds = torch.randn(1, 77, cfg.cross_attention_dim)
    added = {"text_embeds": torch.randn(1, text_dim),
             "time_ids": torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], dtype=torch.float32)}

    def step() -> None:
        pred = unet(latents, torch.tensor([500]), embeds, added_cond_kwargs=added, return_dict=False)[0]
        torch.nn.functional.mse_loss(pred, noise).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    libc.malloc_trim(0)
    live0, rss0 = live(), rss()
    peaks, done = {"live": live0, "rss": rss0}, threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks["live"], peaks["rss"] = max(peaks["live"], live()), max(peaks["rss"], rss())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    step()
    step()
    seconds = (time.perf_counter() - start) / 2
    done.set()
    sampler.join()
    share = memory.CPU_RETAINED_CHECKPOINTED if checkpointing else memory.CPU_RETAINED
    return {"step_s": seconds, "live_rise": peaks["live"] - live0, "rss_rise": peaks["rss"] - rss0,
            "retained": (peaks["rss"] - rss0) - (peaks["live"] - live0), "forward": acts["forward"],
            "estimated": share * acts["forward"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", metavar="FILE", help="also full-size SDXL from this single .safetensors file")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model, storage, resolution, checkpointing = args.worker
        print(json.dumps(worker(model, storage, int(resolution), checkpointing == "on", args.full)))
        return
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        raise SystemExit("this benchmark reads glibc's mallinfo2: Linux with glibc ≥ 2.33 only")
    print("| model | weights | resolution | checkpointing | step | live rise | RSS rise | retained | "
          "forward saves | retained / forward | estimate's figure |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config in DEMO_CONFIGS + (FULL_CONFIGS if args.full else []):
        command = [sys.executable, __file__, "--worker", *map(str, config)] + (["--full", args.full] if args.full else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"worker {config} failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        model, storage, resolution, checkpointing = config
        print(f"| {model} | {storage} | {resolution}² | {checkpointing} | {r['step_s']:.2f} s | "
              f"{r['live_rise'] / MIB:.0f} MiB | {r['rss_rise'] / MIB:.0f} MiB | {r['retained'] / MIB:.0f} MiB | "
              f"{r['forward'] / MIB:.0f} MiB | {r['retained'] / r['forward']:.2f} | {r['estimated'] / MIB:.0f} MiB |",
              flush=True)


if __name__ == "__main__":
    main()
