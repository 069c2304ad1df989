"""Benchmark: what each sampler costs per insertion step, as a ratio to Euler.

A step of masked img2img is the UNet (twice with CFG) plus the sampler's own arithmetic. Measured
for every sampler of ``models/samplers.py``, each built on the model's scheduler config as
insertion builds it:

* UNet calls per step: counted with a forward hook on the UNet during a real insertion call
  (``insertion.inpaint.inpaint_batch`` on ``--model``, default ``demo:mid``) — exact, not timed;
* the sampler's own time per step: ``scheduler.step`` on SDXL-sized latents (128×128, a 1024²
  image) with a fixed model output, ``--steps`` steps, best of ``--repeats``;
* with ``--full``: the whole insertion step (UNet included) on ``--model`` at ``--work-size``²,
  interleaved rounds after a warm-up, median; a ratio to Euler.

The step cost relative to Euler is then (UNet calls × UNet time + sampler time) / Euler's; with the
sampler's time far below a UNet call, it is the ratio of UNet calls.

    OMP_NUM_THREADS=2 python bench/sampler_bench.py                  # counts + sampler arithmetic
    OMP_NUM_THREADS=2 python bench/sampler_bench.py --full --work-size 256 --rounds 2
"""

from __future__ import annotations

import argparse
import inspect
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _inputs(size: int) -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 128)], axis=-1)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    mask = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2).astype(np.uint8) * 255
    return Image.fromarray(image), Image.fromarray(mask, "L")


def _insert(pipe, image, mask, sampler: str, steps: int, device: str) -> tuple[float, int]:
    """(seconds from the first to the last UNet call / steps, UNet calls per step) of one insertion call."""
    import torch

    from alchemy_engine.insertion.inpaint import Sampling, inpaint_batch

    stamps: list[float] = []

    def on_forward(_module, _args, _output):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    hook = pipe.unet.register_forward_hook(on_forward)
    try:
        sampling = Sampling("a photo of sks dog", "", steps, 7.0, 0, 1.0, sampler, 0.0)
        inpaint_batch(pipe, image, mask, [sampling], lambda *args: {})
    finally:
        hook.remove()
    calls = len(stamps)
    per_call = (stamps[-1] - stamps[0]) / max(calls - 1, 1)
    return per_call * calls / steps, round(calls / steps)


def _sampler_arithmetic(name: str, model_config, steps: int, repeats: int) -> float:
    """Seconds per step of the sampler alone on SDXL-sized latents (batch 1, 4×128×128)."""
    import torch

    from alchemy_engine.models.samplers import build_scheduler

    best = float("inf")
    for _ in range(repeats):
        scheduler = build_scheduler(name, model_config)
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(1, 4, 128, 128, generator=generator) * scheduler.init_noise_sigma
        output = torch.randn(1, 4, 128, 128, generator=generator)
        extra = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
        start = time.perf_counter()
        for t in scheduler.timesteps:
            scheduler.scale_model_input(sample, t)  # what a pipeline calls before the UNet (Euler insists)
            sample = scheduler.step(output, t, sample, **extra).prev_sample
        best = min(best, (time.perf_counter() - start) / steps)  # per step asked (SDE: two UNet calls each)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:mid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time whole insertion steps (slow on a CPU)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from alchemy_engine.insertion.session import InsertionSession
    from alchemy_engine.models.samplers import SAMPLER_NAMES

    loaded = InsertionSession().sdxl(args.model, args.device, "off")
    pipe, config = loaded.inpaint, loaded.base.scheduler.config
    image, mask = _inputs(args.work_size)
    rows: dict[str, dict] = {}
    with torch.inference_mode():
        for name in SAMPLER_NAMES:
            _, calls = _insert(pipe, *_inputs(64), name, 4, args.device)
            rows[name] = {"calls": calls, "arithmetic": _sampler_arithmetic(name, config, args.steps, args.repeats),
                          "full": []}
        if args.full:
            for name in SAMPLER_NAMES:  # warm-up
                _insert(pipe, image, mask, name, 2, args.device)
            for _ in range(args.rounds):
                for name in SAMPLER_NAMES:
                    rows[name]["full"].append(_insert(pipe, image, mask, name, 5, args.device)[0])
    print(f"{platform.machine()}, {args.device}, torch {torch.__version__}; {args.model}; sampler arithmetic on "
          f"4×128×128 latents, {args.steps} steps, best of {args.repeats}"
          + (f"; whole steps at {args.work_size}², CFG 7, median of {args.rounds} rounds" if args.full else ""))
    head = "| sampler | UNet calls per step | sampler alone per step |" + (" whole step | ratio to Euler |"
                                                                           if args.full else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    euler = statistics.median(rows["Euler"]["full"]) if args.full else 0.0
    for name, row in rows.items():
        line = f"| {name} | {row['calls']} | {row['arithmetic'] * 1000:.1f} ms |"
        if args.full:
            step = statistics.median(row["full"])
            line += f" {step * 1000:.0f} ms | **{step / euler:.2f}** |"
        print(line)


if __name__ == "__main__":
    main()
