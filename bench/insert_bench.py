"""Benchmark: crop-to-mask insertion versus diffusers' full-frame SDXL inpaint, same model and steps.

A small subject (mask under 10 % of the frame) in a large square scene. Side by side in one
process, after one warm-up call of each:

* ``crop``: ``alchemy_engine.insertion.run`` (mask ops, crop to about one megapixel, masked
  img2img with a LoRA, exact paste back, PNG with metadata) on the scene;
* ``full``: ``StableDiffusionXLInpaintPipeline`` on the whole frame at the scene's size, sharing
  the same modules (``from_pipe``), the same steps, strength and CFG, no LoRA.

Target: crop time ≤ 0.35 × full-frame time. ``--variations N`` also times N variations one pipeline
call each (``batch_size 1``) against one batched call (``batch_size N``), whole frame at
``--work-size``², and checks the images match per seed. ``--gpu`` also times full-size SDXL text-to-image at
1024², 30 steps with CFG, on CUDA in bfloat16 (random weights; target ≤ 1.5 s per image).

    OMP_NUM_THREADS=2 python bench/insert_bench.py                    # CPU, demo:mid, 2048² scene
    python bench/insert_bench.py --device cuda --gpu                  # on a CUDA machine
    OMP_NUM_THREADS=2 python bench/insert_bench.py --skip-crop --variations 4 --work-size 512
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_lora(target: Path, unet_folder: Path, rank: int = 8) -> Path:
    """A random non-zero LoRA on the attention projections, in diffusers' file layout."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    target.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(save_directory=str(target.parent), weight_name=target.name,
                                                unet_lora_layers=layers)
    return target


def make_scene(folder: Path, size: int, subject_fraction: float) -> tuple[Path, Path, float]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    base = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 128)], axis=-1)
    scene = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    side = int(size * subject_fraction ** 0.5)
    mask = np.zeros((size, size), np.uint8)
    cy, cx = int(size * 0.6), int(size * 0.4)
    mask[(yy - cy) ** 2 / (side / 2) ** 2 + (xx - cx) ** 2 / (side / 2.5) ** 2 <= 1] = 255
    Image.fromarray(scene).save(folder / "scene.png")
    Image.fromarray(mask, "L").save(folder / "mask.png")
    return folder / "scene.png", folder / "mask.png", float((mask > 0).mean())


def _timed(fn, repeats: int, device: str) -> list[float]:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def crop_vs_full(args: argparse.Namespace, work: Path) -> dict:
    from alchemy_engine.insertion import InsertionSession, InsertRequest, LocateOptions, run
    from alchemy_engine.insertion.request import DEFAULT_NEGATIVE
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.project import create_project

    project = create_project("Bench", class_noun="dog")
    session = InsertionSession()
    loaded = session.sdxl(args.model, args.device)
    make_lora(project.runs_dir / "bench" / "lora.safetensors", resolve_sdxl(args.model).path / "unet")
    scene, mask, fraction = make_scene(work, args.scene_size, args.subject_fraction)
    request = InsertRequest(project="Bench", model=args.model, device=args.device, scene=scene,
                            locate=LocateOptions(mask=mask, grow=8, feather=8.0), steps=args.steps,
                            strength=args.strength, guidance=args.guidance, seed=1,
                            work_pixels=args.work_size ** 2)
    scene_img = Image.open(scene).convert("RGB")
    mask_img = Image.open(mask).convert("L")

    def full_frame():
        import torch

        loaded.inpaint.disable_lora()
        loaded.inpaint(prompt="a photo of sks dog", negative_prompt=DEFAULT_NEGATIVE, image=scene_img,
                       mask_image=mask_img, width=args.scene_size, height=args.scene_size,
                       strength=args.strength, num_inference_steps=args.steps, guidance_scale=args.guidance,
                       generator=torch.Generator().manual_seed(1))

    results = {}
    for name, fn in (("crop", lambda: run(request, session=session)), ("full", full_frame)):
        fn()  # warm-up: first-call allocations, LoRA load
        times = _timed(fn, args.repeats, loaded.policy.device)
        results[name] = {"median_s": statistics.median(times), "times_s": times}
        print(f"{name}: {statistics.median(times):.2f} s (runs {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    result = run(request, session=session)
    results.update(mask_fraction=fraction, crop_box=result.crop_box, work_size=result.work_size,
                   ratio=results["crop"]["median_s"] / results["full"]["median_s"])
    return results


def batched_vs_sequential(args: argparse.Namespace, work: Path) -> dict:
    """``--variations N`` images of one insertion, one pipeline call each vs all N in one call; the
    whole frame at ``--work-size``², same seeds; also the largest pixel difference per seed."""
    from alchemy_engine.insertion import InsertionSession, InsertRequest, LocateOptions, run
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.project import create_project

    project = create_project("Batch", class_noun="dog")
    session = InsertionSession()
    loaded = session.sdxl(args.model, args.device)
    make_lora(project.runs_dir / "bench" / "lora.safetensors", resolve_sdxl(args.model).path / "unet")
    folder = work / "batch"
    folder.mkdir()
    scene, mask, _ = make_scene(folder, args.work_size, 0.2)
    base = InsertRequest(project="Batch", model=args.model, device=args.device, scene=scene,
                         locate=LocateOptions(mask=mask, grow=8, feather=8.0), steps=args.steps,
                         strength=args.strength, guidance=args.guidance, seed=1, crop_to_mask=False,
                         work_pixels=args.work_size ** 2, variations=args.variations)
    requests = {"sequential": dataclasses.replace(base, batch_size="1"),
                "batched": dataclasses.replace(base, batch_size=str(args.variations))}
    images = {name: run(request, session=session) for name, request in requests.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(args.repeats):  # alternated, so a change in the machine's load hits both
        for name, request in requests.items():
            times[name] += _timed(lambda: images.__setitem__(name, run(request, session=session)), 1,
                                  loaded.policy.device)
    results: dict = {}
    for name, request in requests.items():
        results[name] = {"median_s": statistics.median(times[name]), "times_s": times[name]}
        print(f"{name} ({args.variations} variations, batch size {request.batch_size}): "
              f"{statistics.median(times[name]):.2f} s (runs {', '.join(f'{t:.2f}' for t in times[name])})",
              flush=True)
    diffs = [int(np.abs(np.asarray(Image.open(a), dtype=int) - np.asarray(Image.open(b), dtype=int)).max())
             for a, b in zip(images["sequential"].project_outputs, images["batched"].project_outputs)]
    results.update(ratio=results["batched"]["median_s"] / results["sequential"]["median_s"],
                   ratio_fastest=min(times["batched"]) / min(times["sequential"]), max_pixel_difference=diffs)
    print(f"ratio batched / sequential = {results['ratio']:.3f} (medians), {results['ratio_fastest']:.3f} "
          f"(fastest runs); largest pixel difference per seed {diffs}", flush=True)
    return results


def gpu_full_size(args: argparse.Namespace) -> dict:
    """Full-size SDXL (random weights) at 1024², 30 steps with CFG, bfloat16 on CUDA."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import build_sdxl_components

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU"}
    torch.backends.cuda.matmul.allow_tf32 = True
    pipe = StableDiffusionXLPipeline(**build_sdxl_components("full", device="cuda", dtype=torch.bfloat16))
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    if args.compile:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs", fullgraph=True)

    def one():
        pipe(prompt="a photo of a dog on a beach", negative_prompt="blurry", width=1024, height=1024,
             num_inference_steps=30, guidance_scale=7.0, generator=torch.Generator().manual_seed(0))

    one()  # warm-up (and compilation)
    times = _timed(one, args.repeats, "cuda")
    out = {"card": torch.cuda.get_device_name(0), "median_s": statistics.median(times), "times_s": times,
           "compile": args.compile, "dtype": "bfloat16", "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
    print(f"gpu full-size SDXL 1024² 30 steps CFG: {out['median_s']:.2f} s/image on {out['card']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="demo:mid", help="SDXL model (default demo:mid)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: best available)")
    parser.add_argument("--scene-size", type=int, default=2048)
    parser.add_argument("--subject-fraction", type=float, default=0.05, help="mask area / frame area")
    parser.add_argument("--work-size", type=int, default=1024, help="crop-to-mask works on about N² pixels")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--gpu", action="store_true", help="also time full-size SDXL on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet for --gpu")
    parser.add_argument("--skip-crop", action="store_true", help="skip crop vs full (only --gpu / --variations)")
    parser.add_argument("--variations", type=int, default=0,
                        help="also time N variations one call each vs batched (whole frame at --work-size²)")
    args = parser.parse_args(argv)

    import torch

    from alchemy_engine import paths

    work = Path(tempfile.mkdtemp(prefix="insert_bench_"))
    os.environ.setdefault("IMAGE_ALCHEMY_CACHE", str(paths.cache_root()))  # keep built demo models
    os.environ["IMAGE_ALCHEMY_HOME"] = str(work / "home")  # a throw-away project
    os.environ["HF_HUB_OFFLINE"] = "1"
    report = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "args": vars(args)}
    try:
        if not args.skip_crop:
            report["crop_vs_full"] = crop_vs_full(args, work)
            print(f"ratio crop / full = {report['crop_vs_full']['ratio']:.3f} (target <= 0.35)", flush=True)
        if args.variations > 1:
            report["batched_vs_sequential"] = batched_vs_sequential(args, work)
        if args.gpu:
            report["gpu"] = gpu_full_size(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
