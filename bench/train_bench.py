"""Benchmark: our LoRA training step versus a bare UNet forward + backward + AdamW step.

For each model size, two fresh worker processes (so each has its own peak RSS / VRAM):

* ``ours``: ``alchemy_engine.training.run`` end to end on a throw-away project (caching, LoRA,
  min-SNR loss, clipping, LR schedule, loss log, progress events); the step time is the interval
  between consecutive ``training`` progress events;
* ``bare``: the same UNet with the same peft LoRA, resolution, batch, precision and gradient
  checkpointing setting, in a loop of forward, MSE, backward, ``AdamW.step``, ``zero_grad`` on
  fixed random tensors — nothing else.

Both report the median steady-state step (the first ``--warmup`` steps left out); ``--repeats``
interleaved pairs are run and the best median of each kind is kept. Target: ours ≤
1.15 × bare. On CUDA, ``--sizes full`` runs full-size SDXL with random weights
(``build_sdxl_components('full', device='cuda', dtype=bf16)``) at 1024², batch 1, bf16, gradient
checkpointing, and adds peak VRAM (target ≤ 7.5 GB), MFU (3 × 6.76 TFLOP per step: forward +
backward, recomputation not counted) and the memory estimate versus the measured peak.

    OMP_NUM_THREADS=2 python bench/train_bench.py                          # CPU: tiny and mid
    python bench/train_bench.py --device cuda --sizes tiny,mid,full        # on a CUDA machine
    OMP_NUM_THREADS=2 python bench/train_bench.py --vs-reference /tmp/ref/train_dreambooth_lora_sdxl.py

``--vs-reference SCRIPT`` runs our trainer and diffusers' ``train_dreambooth_lora_sdxl.py`` (you
supply the file, the version with ``check_min_version("0.37.0.dev0")``; it is not part of this
project) on the same model, photos and settings, alternating, both timed by
``bench/step_probe.py``; see ``bench/vs_reference.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FORWARD_TFLOP_1024 = 6.76
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0}
DEFAULTS = {  # size -> (resolution, steps)
    "tiny": (64, 40),
    "mid": (256, 25),
    "full": (1024, 30),
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _full_pipeline(device: str, without: tuple[str, ...] = ()):
    import torch
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import build_sdxl_components

    parts = build_sdxl_components("full", device=device, dtype=torch.bfloat16)
    pipe = StableDiffusionXLPipeline(**{**parts, **dict.fromkeys(without)})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_photos(folder: Path) -> list[Path]:
    """The benchmark's four photos (the same pixels every time, for ours and the reference)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photos = []
    for i in range(4):
        path = folder / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 255, (768, 768, 3), dtype=np.uint8)).save(path)
        photos.append(path)
    return photos


def _make_project(home: Path):
    from alchemy_engine.project import create_project

    return create_project("Bench", class_noun="dog", images=make_photos(home))


def worker_ours(size: str, device: str, resolution: int, steps: int, checkpointing: str | None,
                compile_mode: str | None = None, model_path: str | None = None, probe: bool = False,
                weight_dtype: str | None = None) -> dict:
    import torch

    from alchemy_engine import paths
    from alchemy_engine.training import TrainRequest, run

    os.environ.setdefault("IMAGE_ALCHEMY_CACHE", str(paths.cache_root()))  # keep demo models between runs
    home = Path(tempfile.mkdtemp(prefix="train_bench_"))
    os.environ["IMAGE_ALCHEMY_HOME"] = str(home)
    project = _make_project(home)
    model = model_path or {"tiny": "demo", "mid": "demo:mid", "full": "demo"}[size]
    if size == "full" and not model_path:  # random full-size SDXL, built in memory on the GPU
        _patch_full_model(device)
    stamps: list[float] = []
    marks: dict[str, float] = {}
    if probe:  # --vs-reference: the instrument the reference's run uses too (bench/step_probe.py)
        from step_probe import install

        step_probe = install()

    def progress(event):
        if event.stage == "caching" and event.message == "encoded" and device.startswith("cuda"):
            torch.cuda.synchronize()
            marks["encode_peak"] = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        if event.stage == "training":
            stamps.append(time.perf_counter())

    chosen = {k: v for k, v in (("gradient_checkpointing", checkpointing), ("compile", compile_mode),
                                ("weight_dtype", weight_dtype)) if v}
    request = TrainRequest(project=str(project.root), model=model, steps=steps, resolution=resolution, rank=16,
                           save_every=0, sample_every=0, device=device, **chosen)
    result = run(request, progress)
    _sync(device)
    out = {"step_times": [b - a for a, b in zip(stamps, stamps[1:])], "peak_rss_mb": _peak_rss_mb(),
           "estimate_bytes": result.memory_estimate["peak_bytes"], "final_loss": result.final_loss,
           "memory_peaks": result.memory_peaks, "phases_gib": result.memory_estimate.get("phases_gib"),
           "notes": list(result.notes), "request": request.to_dict()}
    if probe:
        out["probe"] = step_probe.result()
    if device.startswith("cuda"):
        out["train_peak_bytes"] = torch.cuda.max_memory_allocated()
        out["encode_peak_bytes"] = marks.get("encode_peak")
        out["gpu"] = torch.cuda.get_device_name()
    return out


def _patch_full_model(device: str) -> None:
    from diffusers import UNet2DConditionModel

    from alchemy_engine import paths
    from alchemy_engine.memory import training as memory
    from alchemy_engine.training import staged_models

    staged_models.StagedModels._load = lambda self, without: _full_pipeline(device, without)
    full_config = dict(UNet2DConditionModel.load_config(paths.sdxl_config_dir() / "unet"))
    memory.unet_config = lambda source: full_config


def worker_bare(size: str, device: str, resolution: int, steps: int, checkpointing: bool, lora: bool = True) -> dict:
    """``lora=False`` is the floor: the frozen UNet's forward and the backward to its input, no
    LoRA and no optimizer — what any LoRA trainer's step costs at least (the backward through all
    layers up to the first LoRA is needed whatever is trained)."""
    import torch

    from alchemy_engine.models.demo import build_sdxl_components
    from alchemy_engine.training import lora_io

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    unet = build_sdxl_components(size, device=device, dtype=dtype)["unet"]
    if lora:
        params = lora_io.add_unet_lora(unet, 16, 16.0, train_ff=False)
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)  # as ours (training/optimizers.py)
    else:
        unet.requires_grad_(False)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    cfg = unet.config
    side = resolution // 8
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    latents = torch.randn(1, 4, side, side, device=device, dtype=dtype, requires_grad=not lora)
    noise = torch.randn_like(latents)
    timesteps = torch.tensor([500], device=device)
    embeds = torch.randn(1, 77, cfg.cross_attention_dim, device=device, dtype=dtype)
    added = {"text_embeds": torch.randn(1, text_dim, device=device, dtype=dtype),
             "time_ids": torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], device=device,
                                      dtype=dtype)}
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32)
    stamps = []
    for _ in range(steps):
        with autocast:
            pred = unet(latents, timesteps, embeds, added_cond_kwargs=added, return_dict=False)[0]
        torch.nn.functional.mse_loss(pred.float(), noise.float()).backward()
        if lora:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    _sync(device)
    out = {"step_times": [b - a for a, b in zip(stamps, stamps[1:])], "peak_rss_mb": _peak_rss_mb()}
    if device.startswith("cuda"):
        out["train_peak_bytes"] = torch.cuda.max_memory_allocated()
    return out


def run_worker(kind: str, size: str, device: str, resolution: int, steps: int, checkpointing: bool | str,
               compile_mode: str | None = None) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--sizes", size, "--device", device,
               "--resolution", str(resolution), "--steps", str(steps)]
    if isinstance(checkpointing, str):  # "auto" (our default), "on", "off"
        command += ["--ours-checkpointing", checkpointing]
    else:
        command += ["--checkpointing"] if checkpointing else []
    command += ["--compile", compile_mode] if compile_mode else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker for {size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(times: list[float], warmup: int) -> float:
    steady = times[warmup:] or times
    return statistics.median(steady)


def _peak_tflops(gpu: str | None) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if gpu and key in gpu:
            return value
    return None


def report(size: str, resolution: int, ours: dict, bare: dict, warmup: int) -> list[str]:
    o, b = _median(ours["step_times"], warmup), _median(bare["step_times"], warmup)
    rows = [f"| {size} | {resolution}² | ours step | {o * 1000:.1f} ms | ratio vs bare **{o / b:.3f}** (target ≤ 1.15) |",
            f"| {size} | {resolution}² | bare step | {b * 1000:.1f} ms | |",
            f"| {size} | {resolution}² | peak RSS ours / bare | {ours['peak_rss_mb']:.0f} / {bare['peak_rss_mb']:.0f} MB | |"]
    if "train_peak_bytes" in ours:
        gb = 1e9
        rows.append(f"| {size} | {resolution}² | peak VRAM training ours / bare | {ours['train_peak_bytes'] / gb:.2f} / "
                    f"{bare['train_peak_bytes'] / gb:.2f} GB | target ≤ 7.5 GB (full) |")
        if ours.get("encode_peak_bytes"):
            rows.append(f"| {size} | {resolution}² | peak VRAM caching phase | {ours['encode_peak_bytes'] / gb:.2f} GB | |")
        measured = max(ours["train_peak_bytes"], ours.get("encode_peak_bytes") or 0)
        rows.append(f"| {size} | {resolution}² | estimate / measured peak | {ours['estimate_bytes'] / gb:.2f} / "
                    f"{measured / gb:.2f} GB | ratio {ours['estimate_bytes'] / measured:.2f} |")
        peak = _peak_tflops(ours.get("gpu"))
        if size == "full" and peak:
            achieved = 3 * FORWARD_TFLOP_1024 * (resolution / 1024) ** 2 / o
            rows.append(f"| {size} | {resolution}² | MFU ({ours['gpu']}) | {achieved:.0f} TFLOP/s | "
                        f"{100 * achieved / peak:.1f} % of {peak:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="tiny,mid")
    parser.add_argument("--resolution", type=int, default=None, help="override every size's resolution")
    parser.add_argument("--steps", type=int, default=None, help="override every size's step count")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3,
                        help="worker pairs per size; the best median of each kind is reported")
    parser.add_argument("--checkpointing", action="store_true",
                        help="gradient checkpointing in both loops (always on for 'full')")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default=None,
                        help="our trainer's --compile (default: its own default, auto)")
    parser.add_argument("--vs-reference", metavar="SCRIPT", type=Path, default=None,
                        help="compare with diffusers' train_dreambooth_lora_sdxl.py at SCRIPT instead of the bare step")
    parser.add_argument("--worker", choices=("ours", "bare", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)  # ours: a diffusers folder
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # ours: bench/step_probe.py
    parser.add_argument("--weight-dtype", default=None, help=argparse.SUPPRESS)  # ours: bench/half_weights_bench.py
    parser.add_argument("--ours-checkpointing", choices=("auto", "on", "off"), default=None,
                        help="with --vs-reference: our gradient checkpointing (default: auto, our default)")
    parser.add_argument("--ref-precision", choices=("no", "fp16", "bf16"), default=None,
                        help="with --vs-reference: the reference's --mixed_precision (default: the precision ours "
                             "uses on the device, bf16 on CUDA; 'no' is the script's own default, fp32)")
    parser.add_argument("--ref-checkpointing", action="store_true",
                        help="with --vs-reference: pass --gradient_checkpointing to the reference script")
    args = parser.parse_args()
    if args.worker:
        size = args.sizes
        if args.worker == "ours":
            checkpointing = args.ours_checkpointing or ("on" if args.checkpointing else "off")
            out = worker_ours(size, args.device, args.resolution, args.steps, checkpointing, args.compile,
                              args.model, args.probe, args.weight_dtype)
        else:
            out = worker_bare(size, args.device, args.resolution, args.steps, args.checkpointing,
                              lora=args.worker == "bare")
        print(json.dumps(out))
        return
    if args.vs_reference:
        from vs_reference import compare

        compare(args)
        return
    lines = ["| model | resolution | measure | value | note |", "|---|---|---|---|---|"]
    for size in args.sizes.split(","):
        resolution = args.resolution or DEFAULTS[size][0]
        steps = args.steps or DEFAULTS[size][1]
        checkpointing = args.checkpointing or size == "full"
        runs: dict[str, list[dict]] = {"ours": [], "bare": []}
        for _ in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits both
            for kind in ("ours", "bare"):
                runs[kind].append(run_worker(kind, size, args.device, resolution, steps, checkpointing,
                                             args.compile if kind == "ours" else None))
        ours, bare = (min(runs[k], key=lambda r: _median(r["step_times"], args.warmup)) for k in ("ours", "bare"))
        lines += report(size, resolution, ours, bare, args.warmup)
        print(f"{size}: done", file=sys.stderr, flush=True)
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nDevice {args.device}, OMP_NUM_THREADS={threads}, load average {load:.1f}, batch 1, rank 16, "
          f"gradient checkpointing {'on' if args.checkpointing else 'off (on for full)'}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
