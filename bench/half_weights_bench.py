"""Benchmark: frozen UNet weights stored in fp16 versus fp32 while training computes in fp32
(``TrainRequest.weight_dtype``, issue 12).

Each repeat runs two fresh ``train_bench.py --worker ours`` processes, fp32 then fp16 storage, on the
demo model with its UNet file saved in fp16 (as SDXL's own files are, so fp16 storage is lossless
and both runs must end with the same loss), and reports the better median steady step of each, the
process's peak RSS, the training phase's measured and estimated peak RSS and the final loss. Then
the upcast cost, timed in this process: one pass that upcasts every stored weight to fp32, which
each forward does and each backward does again (a third time with gradient checkpointing).

    OMP_NUM_THREADS=2 python bench/half_weights_bench.py --size mid --repeats 3
    OMP_NUM_THREADS=2 python bench/half_weights_bench.py --full-upcast     # the upcast at full SDXL size
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

TRAIN_BENCH = Path(__file__).resolve().parent / "train_bench.py"


def run_ours(model: Path, size: str, resolution: int, steps: int, checkpointing: str, weight_dtype: str) -> dict:
    command = [sys.executable, str(TRAIN_BENCH), "--worker", "ours", "--sizes", size, "--device", "cpu",
               "--resolution", str(resolution), "--steps", str(steps), "--ours-checkpointing", checkpointing,
               "--model", str(model), "--weight-dtype", weight_dtype]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"worker ({weight_dtype}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def upcast_pass_seconds(model: Path, repeats: int = 5) -> tuple[float, int]:
    """Median seconds of one pass upcasting every stored weight, and how many weights there are."""
    import torch
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models import half_weights

    unet = UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=torch.float32)
    half_weights.store_as_asked(unet, "fp16", torch.float32)
    weights = [m.weight for m in half_weights.storable_layers(unet)]
    return _upcast_pass_median(weights, repeats), len(weights)


def full_sdxl_upcast_seconds(repeats: int = 3) -> tuple[float, int]:
    """One upcast pass over full SDXL's stored weight shapes (zero-filled fp16 tensors, 5.1 GB)."""
    import json
    import types

    import torch

    from alchemy_engine import paths
    from alchemy_engine.memory.trace import meta_unet, unet_config
    from alchemy_engine.models import half_weights

    config = unet_config(types.SimpleNamespace(path=paths.sdxl_config_dir()))  # SDXL base 1.0
    shapes = [m.weight.shape for m in half_weights.storable_layers(meta_unet(json.dumps(config), torch.float32)
                                                                    .requires_grad_(False))]
    weights = [torch.zeros(shape, dtype=torch.float16) for shape in shapes]
    return _upcast_pass_median(weights, repeats), sum(w.numel() for w in weights)


def _upcast_pass_median(weights: list, repeats: int) -> float:
    """Median seconds of upcasting every one of ``weights`` to fp32 once."""
    import torch

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for weight in weights:
            weight.to(torch.float32)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="mid", choices=("tiny", "mid"))
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpointing", choices=("on", "off"), default="off")
    parser.add_argument("--full-upcast", action="store_true",
                        help="only time one upcast pass over full SDXL's stored weights (needs ~5.3 GB of RAM)")
    args = parser.parse_args()
    if args.full_upcast:
        seconds, count = full_sdxl_upcast_seconds()
        print(f"full SDXL: one upcast pass over {count / 1e9:.2f} B stored fp16 weights: {seconds:.2f} s")
        return
    from alchemy_engine.models.demo import demo_sdxl_fp16_unet_dir

    model = demo_sdxl_fp16_unet_dir(args.size)
    runs: dict[str, list[dict]] = {"fp32": [], "fp16": []}
    for _ in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits both
        for weight_dtype in runs:
            runs[weight_dtype].append(run_ours(model, args.size, args.resolution, args.steps, args.checkpointing,
                                               weight_dtype))

    def median(run: dict) -> float:
        return statistics.median(run["step_times"][args.warmup:] or run["step_times"])

    best = {k: min(v, key=median) for k, v in runs.items()}
    upcast, count = upcast_pass_seconds(model)
    passes = 3 if args.checkpointing == "on" else 2
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ndemo:{args.size} (UNet file fp16), {args.resolution}², batch 1, rank 16, CPU fp32 compute, "
          f"gradient checkpointing {args.checkpointing}, OMP_NUM_THREADS={threads}, load average {load:.1f}, "
          f"best median of {args.repeats}\n")
    print("| weight storage | step | peak RSS process | training phase RSS measured / estimated | final loss |")
    print("|---|---|---|---|---|")
    for name, run in best.items():
        training = run["memory_peaks"]["training"]["host_mib"]
        estimated = run["phases_gib"]["training"]["host_gib"] * 1024
        print(f"| {name} | {median(run) * 1000:.1f} ms | {run['peak_rss_mb']:.0f} MB | {training:.0f} / "
              f"{estimated:.0f} MiB | {run['final_loss']!r} |")
    ratio = median(best["fp16"]) / median(best["fp32"])
    print(f"\nfp16 / fp32 step: {ratio:.3f}; one upcast pass over the {count} stored weights: "
          f"{upcast * 1000:.1f} ms, × {passes} per step = {passes * upcast * 1000:.1f} ms")


if __name__ == "__main__":
    main()
