"""Benchmark: insertion step time per sampler, as a ratio to Euler, on the same model and crop.

Masked img2img through ``alchemy_engine.insertion.inpaint.inpaint_batch`` (the insertion's own
call, each sampler built by ``models/samplers.py``) on ``demo:mid`` by default: one work crop, its
mask, CFG 7, strength 1.0. A step's time is the median interval between two step callbacks, so
the VAE encode/decode around the loop is left out; samplers are measured in interleaved rounds
after one warm-up call each, and the table gives the median per sampler over the rounds.

    OMP_NUM_THREADS=2 python bench/sampler_bench.py                        # CPU, demo:mid, 384²
    python bench/sampler_bench.py --device cuda --model demo:mid --work-size 1024
"""

from __future__ import annotations

import argparse
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


def _step_time(pipe, image, mask, sampler: str, steps: int, device: str) -> float:
    import torch

    from alchemy_engine.insertion.inpaint import Sampling, inpaint_batch

    stamps: list[float] = []

    def callback(_pipe, _step, _timestep, _tensors):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        return {}

    sampling = Sampling("a photo of sks dog", "", steps, 7.0, 0, 1.0, sampler, 0.0)
    inpaint_batch(pipe, image, mask, [sampling], callback)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:mid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work-size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from alchemy_engine.insertion.session import InsertionSession
    from alchemy_engine.models.samplers import SAMPLER_NAMES

    loaded = InsertionSession().sdxl(args.model, args.device, "off")
    pipe = loaded.inpaint
    image, mask = _inputs(args.work_size)
    times: dict[str, list[float]] = {name: [] for name in SAMPLER_NAMES}
    with torch.inference_mode():
        for name in SAMPLER_NAMES:  # warm-up
            _step_time(pipe, image, mask, name, 3, args.device)
        for _ in range(args.rounds):
            for name in SAMPLER_NAMES:
                times[name].append(_step_time(pipe, image, mask, name, args.steps, args.device))
    euler = statistics.median(times["Euler"])
    print(f"{platform.machine()}, {args.device}, torch {torch.__version__}; {args.model}, work "
          f"{args.work_size}², {args.steps} steps, CFG 7, median over {args.rounds} interleaved rounds")
    print("| sampler | step | ratio to Euler |")
    print("|---|---|---|")
    for name in SAMPLER_NAMES:
        step = statistics.median(times[name])
        print(f"| {name} | {step * 1000:.0f} ms | **{step / euler:.2f}** |")


if __name__ == "__main__":
    main()
