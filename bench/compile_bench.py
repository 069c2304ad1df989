"""Benchmark: does ``torch.compile`` of the UNet pay on this machine?

One fresh process per variant (eager, compiled) on the same demo UNet with the same peft LoRA:

* ``train``: forward + MSE + backward + AdamW step at ``--resolution`` (what the training loop does);
* ``infer``: a no-grad forward of batch 2 (classifier-free guidance), what insertion does per step.

Prints the compile time (the first call, which compiles), the steady-state step time of each variant,
their ratio, and the number of steps after which compiling has paid for itself:
``compile_s / (eager_step - compiled_step)``. ``--compile auto`` turns compile on for a device only
where that break-even is well below a usual run (500 training steps; 30 steps × a few images).

    OMP_NUM_THREADS=2 python bench/compile_bench.py --size mid --resolution 256
    python bench/compile_bench.py --device cuda --size full --resolution 1024      # on a CUDA machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker(kind: str, compiled: bool, size: str, device: str, resolution: int, steps: int) -> dict:
    import torch

    from alchemy_engine.models.demo import build_sdxl_components
    from alchemy_engine.training import lora_io

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    unet = build_sdxl_components(size, device=device, dtype=dtype)["unet"]
    params = lora_io.add_unet_lora(unet, 16, 16.0, train_ff=False)
    batch = 1 if kind == "train" else 2
    cfg = unet.config
    side = resolution // 8
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    latents = torch.randn(batch, 4, side, side, device=device, dtype=dtype)
    embeds = torch.randn(batch, 77, cfg.cross_attention_dim, device=device, dtype=dtype)
    added = {"text_embeds": torch.randn(batch, text_dim, device=device, dtype=dtype),
             "time_ids": torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch,
                                      device=device, dtype=dtype)}
    timesteps = torch.tensor([500] * batch, device=device)
    if compiled:
        unet.compile(dynamic=False)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32)
    if kind == "train":
        unet.train()
    else:
        unet.eval()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        if kind == "train":
            with autocast:
                pred = unet(latents, timesteps, embeds, added_cond_kwargs=added, return_dict=False)[0]
            torch.nn.functional.mse_loss(pred.float(), latents.float()).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), autocast:
                unet(latents, timesteps, embeds, added_cond_kwargs=added, return_dict=False)
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"first_s": times[0], "steady_s": statistics.median(times[2:] or times)}


def run(kind: str, compiled: bool, args) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--size", args.size, "--device", args.device,
               "--resolution", str(args.resolution), "--steps", str(args.steps)] + (["--compiled"] if compiled else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} {'compiled' if compiled else 'eager'} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="mid")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--kinds", default="train,infer")
    parser.add_argument("--worker", choices=("train", "infer"), help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.compiled, args.size, args.device, args.resolution, args.steps)))
        return
    rows = ["| what | eager step | compiled step | ratio | compile time (first call − step) | break-even |",
            "|---|---|---|---|---|---|"]
    for kind in args.kinds.split(","):
        eager, compiled = run(kind, False, args), run(kind, True, args)
        gain = eager["steady_s"] - compiled["steady_s"]
        compile_s = compiled["first_s"] - compiled["steady_s"]
        even = f"{compile_s / gain:.0f} steps" if gain > 0 else "never"
        rows.append(f"| {kind} {args.size} {args.resolution}² | {eager['steady_s'] * 1000:.1f} ms | "
                    f"{compiled['steady_s'] * 1000:.1f} ms | **{compiled['steady_s'] / eager['steady_s']:.2f}** | "
                    f"{compile_s:.1f} s | {even} |")
        print(f"{kind}: {rows[-1]}", file=sys.stderr, flush=True)  # a row at a time: compiles are slow
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nDevice {args.device}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, "
          f"load average {load:.1f}, LoRA rank 16, dynamic=False\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
