"""``train_bench.py --vs-reference SCRIPT``: our trainer against diffusers' DreamBooth-LoRA SDXL script.

Both train the same model (the demo SDXL as a diffusers folder; full-size random SDXL on CUDA is
written to a folder first), from the same four photos, with the same settings: resolution, LoRA
rank 16 on to_q/to_k/to_v/to_out.0, batch 1, learning rate 1e-4 constant, no warm-up, seed 0,
fp32 on the CPU (bf16 on CUDA), no validation, no checkpoints, no class images. Each tool runs with
its own defaults for what the user would not set: ours picks gradient checkpointing and compile
(``auto``), the reference has both off unless ``--ref-checkpointing``. Fresh processes,
alternating ours / reference ``--repeats`` times; the best median of each is kept.

Printed: steady-state step (median after ``--warmup`` steps; ours from its progress events, the
reference's from its optimizer's ``step`` calls, ``bench/reference_run.py``), whole-process wall
time (start to exit, loading and caching included) and peak RSS, with ours / reference ratios.
Targets (issue 12): step ≤ 0.5×, peak memory ≤ 0.8×.

The reference script is never part of this project: take it from the diffusers release that is
installed (``examples/dreambooth/train_dreambooth_lora_sdxl.py`` at the matching tag). It imports
torchvision, accelerate and (for tensorboard logging, optional) tensorboard; install what it
lacks for the benchmark only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = {"tiny": "tiny", "mid": "mid", "full": "full"}
FULL_DIR = Path(os.environ.get("ALCHEMY_FULL_SDXL_DIR", "/tmp/alchemy_full_sdxl"))


def _model_dir(size: str) -> Path:
    """The demo model as a diffusers folder; full size: random SDXL written once in bf16 (~7 GB)."""
    sys.path.insert(0, str(HERE.parent))
    from alchemy_engine.models.demo import build_sdxl_components, demo_sdxl_dir

    if size != "full":
        return demo_sdxl_dir(size)
    if not (FULL_DIR / "model_index.json").is_file():
        import torch
        from diffusers import StableDiffusionXLPipeline

        StableDiffusionXLPipeline(**build_sdxl_components("full", dtype=torch.bfloat16)).save_pretrained(FULL_DIR)
    return FULL_DIR


def _timed(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return done, time.perf_counter() - started


def run_reference(script: Path, model: Path, photos: Path, args, work: Path) -> dict:
    out_dir = work / f"ref_out_{time.monotonic_ns()}"
    result = work / f"ref_{time.monotonic_ns()}.json"
    precision = "bf16" if args.device.startswith("cuda") else "no"
    command = [sys.executable, str(HERE / "reference_run.py"), str(result), str(script),
               "--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(photos),
               "--instance_prompt", "a photo of sks dog", "--output_dir", str(out_dir),
               "--resolution", str(args.resolution), "--train_batch_size", "1",
               "--max_train_steps", str(args.steps), "--learning_rate", "1e-4", "--lr_scheduler", "constant",
               "--lr_warmup_steps", "0", "--rank", "16", "--seed", "0", "--mixed_precision", precision,
               "--checkpointing_steps", str(10 * args.steps), "--center_crop"]
    command += ["--gradient_checkpointing"] if args.ref_checkpointing else []
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    done, seconds = _timed(command, env)
    if done.returncode != 0 or not result.is_file():
        raise SystemExit(f"the reference script failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    data = json.loads(result.read_text())
    data["seconds"] = seconds
    return data


def run_ours(args, model: Path) -> dict:
    command = [sys.executable, str(HERE / "train_bench.py"), "--worker", "ours", "--sizes", args.sizes,
               "--model", str(model),
               "--device", args.device, "--resolution", str(args.resolution), "--steps", str(args.steps),
               "--ours-checkpointing", args.ours_checkpointing or "auto"]
    command += ["--compile", args.compile] if args.compile else []
    done, seconds = _timed(command, dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"our trainer failed:\n{done.stderr[-4000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["seconds"] = seconds
    return data


def _median(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:] or times)


def compare(args) -> None:
    script = Path(args.vs_reference).expanduser().resolve()
    if not script.is_file():
        raise SystemExit(f"no reference script at {script}")
    if args.sizes not in MODEL:
        raise SystemExit("--vs-reference runs one size: --sizes tiny, mid or full (CUDA)")
    args.resolution = args.resolution or (1024 if args.sizes == "full" else 256)
    args.steps = args.steps or 60
    model = _model_dir(MODEL[args.sizes])
    work = Path(tempfile.mkdtemp(prefix="vs_reference_"))
    from train_bench import make_photos

    photos = work / "photos"
    make_photos(photos)
    runs: dict[str, list[dict]] = {"ours": [], "reference": []}
    for n in range(args.repeats):
        runs["ours"].append(run_ours(args, model))
        runs["reference"].append(run_reference(script, model, photos, args, work))
        print(f"pair {n + 1}/{args.repeats}: done", file=sys.stderr, flush=True)
    print(table(runs, args))


def table(runs: dict[str, list[dict]], args) -> str:
    best = {k: min(v, key=lambda r: _median(r["step_times"], args.warmup)) for k, v in runs.items()}
    ours, ref = best["ours"], best["reference"]
    o_step, r_step = _median(ours["step_times"], args.warmup), _median(ref["step_times"], args.warmup)
    o_sec = min(r["seconds"] for r in runs["ours"])
    r_sec = min(r["seconds"] for r in runs["reference"])
    o_rss = min(r["peak_rss_mb"] for r in runs["ours"])
    r_rss = min(r["peak_rss_mb"] for r in runs["reference"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    chosen = [n for n in ours.get("notes", []) if n.startswith(("gradient_checkpointing", "compile"))]
    lines = [f"\nours vs {Path(args.vs_reference).name}: demo:{args.sizes}, {args.resolution}², {args.steps} steps, "
             f"rank 16, batch 1, device {args.device}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, "
             f"load average {load:.1f}, {args.repeats} alternating pairs (best of each)",
             f"ours chose: {'; '.join(chosen) or 'n/a'}; reference: gradient checkpointing "
             f"{'on' if args.ref_checkpointing else 'off'} (its default is off)", "",
             "| measure | ours | reference | ours / reference | target |", "|---|---|---|---|---|",
             f"| steady-state step (median) | {o_step * 1000:.1f} ms | {r_step * 1000:.1f} ms | **{o_step / r_step:.2f}** | ≤ 0.5 |",
             f"| whole process (best) | {o_sec:.1f} s | {r_sec:.1f} s | **{o_sec / r_sec:.2f}** | — |",
             f"| peak RSS (best) | {o_rss:.0f} MB | {r_rss:.0f} MB | **{o_rss / r_rss:.2f}** | ≤ 0.8 |",
             f"| steps timed | {len(ours['step_times']) + 1} | {len(ref['step_times']) + 1} | | |"]
    return "\n".join(lines)
