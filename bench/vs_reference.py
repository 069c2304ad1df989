"""``train_bench.py --vs-reference SCRIPT``: our trainer against diffusers' DreamBooth-LoRA SDXL script.

Supported script: ``examples/dreambooth/train_dreambooth_lora_sdxl.py`` of the peft era, the
version that opens with ``check_min_version("0.37.0.dev0")`` (diffusers main of late 2025; the
copy checked is the fork ChrisColeTech/diffusers at 725959a41dab7fe82d92cac23db7f6e469cca971). It
runs unchanged on diffusers 0.42.1, peft 0.21, transformers 5.24 and accelerate 1.15, offline, on
the CPU; no shim is needed (without tensorboard installed, accelerate only warns that
``--report_to tensorboard``, the script's default, has no tracker). Scripts from before the peft
rewrite (``LoRALinearLayer``, diffusers ≤ 0.23) cannot run on the installed diffusers and are
refused with that reason. The script is never part of this project: keep it outside the repository.

Both train the same model (the demo SDXL as a diffusers folder; full-size random SDXL on CUDA is
written to a folder first), from the same four photos (``train_bench.make_photos``), with the same
settings: resolution, LoRA rank 16 = alpha on to_q/to_k/to_v/to_out.0 (gaussian init), batch 1,
AdamW lr 1e-4 constant, no warm-up, weight decay 1e-4, gradient clipping 1.0, min-SNR γ 5, seed 0,
fp32 on the CPU (bf16 on CUDA), no validation, no checkpoints, no class images. Gradient
checkpointing and compile are each tool's default unless asked (``--ours-checkpointing``,
``--ref-checkpointing``). What differs by design: ours encodes the photos and the prompt once and
trains from the cache; the reference runs the VAE on the photo at every step.

``bench/step_probe.py`` measures both the same way, in fresh processes alternating ours /
reference ``--repeats`` times: the steady-state step is the median interval between consecutive
``optimizer.step()`` calls after ``--warmup`` steps (best median of the repeats); whole-process
time is start to exit (loading, caching and saving included) and peak RSS the process's maximum.
The settings table is read from what each trainer built (optimizer, UNet, LoRA config, prompts) and
marks every difference. Targets (issue 12): step ≤ 0.5×, peak memory ≤ 0.8×. A third process per
pair times the floor (``train_bench.worker_bare(lora=False)``): the same UNet's forward and backward
to its input with no LoRA and no optimizer, the least a LoRA step can cost on this device.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = ("tiny", "mid", "full")
FULL_DIR = Path(os.environ.get("ALCHEMY_FULL_SDXL_DIR", "/tmp/alchemy_full_sdxl"))
SUPPORTED_MIN_VERSION = "0.37.0.dev0"
PROMPT = "a photo of sks dog"  # what ours trains on: the project's token and class noun, our template


def script_version(text: str) -> str | None:
    """The ``check_min_version("…")`` a training script opens with, or None."""
    found = re.search(r'^check_min_version\("([^"]+)"\)', text, re.MULTILINE)
    return found.group(1) if found else None


def check_script(script: Path) -> str:
    """The script's version; SystemExit with what to do when it cannot run on the installed diffusers."""
    if not script.is_file():
        raise SystemExit(f"no reference script at {script}: save diffusers' "
                         "examples/dreambooth/train_dreambooth_lora_sdxl.py there (outside this repository)")
    text = script.read_text(encoding="utf-8")
    version = script_version(text) or "unknown"
    if "LoraConfig" not in text or "LoRALinearLayer" in text:
        raise SystemExit(f"{script} (check_min_version {version}) predates diffusers' peft LoRA training and "
                         f"cannot run on the installed diffusers: use the version with check_min_version("
                         f'"{SUPPORTED_MIN_VERSION}") (see bench/vs_reference.py)')
    if version != SUPPORTED_MIN_VERSION:
        print(f"note: {script.name} has check_min_version {version}; the harness was checked with "
              f"{SUPPORTED_MIN_VERSION}", file=sys.stderr)
    return version


def _model_dir(size: str) -> Path:
    """The demo model as a diffusers folder; full size: random SDXL written once in bf16 (~7 GB)."""
    sys.path.insert(0, str(HERE.parent))
    from alchemy_engine.models.demo import demo_sdxl_dir

    if size != "full":
        return demo_sdxl_dir(size)
    if not (FULL_DIR / "model_index.json").is_file():
        # in a child process: the 7 GB built here would otherwise stay in this process's heap while both
        # trainers run (on a 24 GB CPU machine the reference was killed for memory)
        subprocess.run([sys.executable, str(HERE / "make_full_sdxl.py"), "--folder", str(FULL_DIR)], check=True)
    return FULL_DIR


def _timed(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return done, time.perf_counter() - started


def reference_command(script: Path, model: Path, photos: Path, out_dir: Path, args) -> list[str]:
    precision = getattr(args, "ref_precision", None) or ("bf16" if args.device.startswith("cuda") else "no")
    command = [str(script), "--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(photos),
               "--instance_prompt", PROMPT, "--output_dir", str(out_dir),
               "--resolution", str(args.resolution), "--train_batch_size", "1",
               "--max_train_steps", str(args.steps), "--learning_rate", "1e-4", "--lr_scheduler", "constant",
               "--lr_warmup_steps", "0", "--rank", "16", "--snr_gamma", "5.0", "--seed", "0",
               "--mixed_precision", precision, "--checkpointing_steps", str(10 * args.steps), "--center_crop"]
    return command + (["--gradient_checkpointing"] if args.ref_checkpointing else [])


def run_reference(script: Path, model: Path, photos: Path, args, work: Path) -> dict:
    result = work / f"ref_{time.monotonic_ns()}.json"
    out_dir = work / f"ref_out_{time.monotonic_ns()}"
    command = [sys.executable, str(HERE / "reference_run.py"), str(result),
               *reference_command(script, model, photos, out_dir, args)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    done, seconds = _timed(command, env)
    if done.returncode != 0 or not result.is_file():
        raise SystemExit(f"the reference script failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    data = json.loads(result.read_text())
    data["seconds"] = seconds
    return data


def run_ours(args, model: Path) -> dict:
    command = [sys.executable, str(HERE / "train_bench.py"), "--worker", "ours", "--sizes", args.sizes,
               "--model", str(model), "--probe",
               "--device", args.device, "--resolution", str(args.resolution), "--steps", str(args.steps),
               "--ours-checkpointing", args.ours_checkpointing or "auto"]
    command += ["--compile", args.compile] if args.compile else []
    done, seconds = _timed(command, dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"our trainer failed:\n{done.stderr[-4000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data.update(data.pop("probe"))  # step_times, steps, settings: measured as the reference's are
    data["seconds"] = seconds
    return data


def _median(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:] or times)


def compare(args) -> None:
    script = Path(args.vs_reference).expanduser().resolve()
    args.script_version = check_script(script)
    if args.sizes not in SIZES:
        raise SystemExit("--vs-reference runs one size: --sizes tiny, mid or full (CUDA)")
    args.resolution = args.resolution or (1024 if args.sizes == "full" else 256)
    args.steps = args.steps or 60
    if args.steps <= args.warmup + 1:
        raise SystemExit(f"--steps {args.steps} leaves no steady-state steps after --warmup {args.warmup}")
    model = _model_dir(args.sizes)
    work = Path(tempfile.mkdtemp(prefix="vs_reference_"))
    from train_bench import make_photos

    photos = work / "photos"
    make_photos(photos)
    from train_bench import run_worker

    runs: dict[str, list[dict]] = {"ours": [], "reference": [], "floor": []}
    for n in range(args.repeats):
        runs["ours"].append(run_ours(args, model))
        runs["reference"].append(run_reference(script, model, photos, args, work))
        runs["floor"].append(run_worker("floor", args.sizes, args.device, args.resolution, args.steps,
                                        bool(runs["ours"][-1]["settings"].get("unet", {}).get("gradient_checkpointing"))))
        print(f"pair {n + 1}/{args.repeats}: done", file=sys.stderr, flush=True)
    print(settings_table(runs["ours"][0], runs["reference"][0]))
    print(table(runs, args))


def _settings_rows(ours: dict, ref: dict) -> list[tuple[str, object, object]]:
    o, r = ours["settings"], ref["settings"]
    ou, ru = o.get("unet", {}), r.get("unet", {})
    oo, ro = o.get("optimizer", {}), r.get("optimizer", {})
    req, cli = ours.get("request", {}), ref.get("args", {})
    rows: list[tuple[str, object, object]] = [
        ("prompts tokenized", o.get("prompts"), r.get("prompts")),
        ("UNet latents (batch, 4, h, w)", ou.get("latents"), ru.get("latents")),
        ("UNet text embeddings", ou.get("text_embeds"), ru.get("text_embeds")),
        ("UNet dtype", ou.get("dtype"), ru.get("dtype")),
        ("gradient checkpointing", ou.get("gradient_checkpointing"), ru.get("gradient_checkpointing")),
        ("LoRA", ou.get("lora"), ru.get("lora")),
        ("trained weights", oo.get("trained_params"), ro.get("trained_params")),
        ("trained dtype", oo.get("trained_dtype"), ro.get("trained_dtype")),
        ("optimizer", oo.get("class"), ro.get("class")),
        ("lr, betas, eps, weight decay", [oo.get(k) for k in ("lr", "betas", "eps", "weight_decay")],
         [ro.get(k) for k in ("lr", "betas", "eps", "weight_decay")]),
        ("LR schedule, warm-up", [req.get("lr_scheduler"), req.get("lr_warmup_steps")],
         [cli.get("lr_scheduler"), cli.get("lr_warmup_steps")]),
        ("gradient clipping", req.get("max_grad_norm"), cli.get("max_grad_norm")),
        ("min-SNR γ", req.get("min_snr_gamma"), cli.get("snr_gamma")),
        ("seed", req.get("seed"), cli.get("seed")),
        ("optimizer steps", ours.get("steps"), ref.get("steps")),
    ]
    return rows


def settings_table(ours: dict, ref: dict) -> str:
    """What each trainer really used (first run of each), with every difference marked."""
    lines = ["\nsettings as built (bench/step_probe.py; first run of each):", "",
             "| setting | ours | reference | |", "|---|---|---|---|"]
    for name, mine, theirs in _settings_rows(ours, ref):
        lines.append(f"| {name} | {_cell(mine)} | {_cell(theirs)} | {'=' if mine == theirs else '**differs**'} |")
    lines.append("| photo latents | encoded once, cached | VAE encode every step | by design |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return json.dumps(value, ensure_ascii=False).replace("|", "\\|") if not isinstance(value, str) else value


def table(runs: dict[str, list[dict]], args) -> str:
    best = {k: min(v, key=lambda r: _median(r["step_times"], args.warmup)) for k, v in runs.items() if v}
    ours, ref = best["ours"], best["reference"]
    o_step, r_step = _median(ours["step_times"], args.warmup), _median(ref["step_times"], args.warmup)
    o_sec = min(r["seconds"] for r in runs["ours"])
    r_sec = min(r["seconds"] for r in runs["reference"])
    o_rss = min(r["peak_rss_mb"] for r in runs["ours"])
    r_rss = min(r["peak_rss_mb"] for r in runs["reference"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    o_ckpt = ours["settings"].get("unet", {}).get("gradient_checkpointing")
    r_ckpt = ref["settings"].get("unet", {}).get("gradient_checkpointing")
    chosen = [n for n in ours.get("notes", []) if n.startswith(("gradient_checkpointing", "compile"))]
    equal = "equal" if o_ckpt == r_ckpt else ("NOT equal: for equal settings rerun with --ours-checkpointing "
                                               f"{'on' if r_ckpt else 'off'}")
    steady = min(len(ours["step_times"]), len(ref["step_times"])) - args.warmup
    lines = [f"\nours vs {Path(args.vs_reference).name} (check_min_version {getattr(args, 'script_version', '?')}): "
             f"demo:{args.sizes}, {args.resolution}², {args.steps} steps, rank 16, batch 1, device {args.device}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, load average {load:.1f}, "
             f"{args.repeats} alternating pairs (best of each); the reference's --mixed_precision "
             f"{getattr(args, 'ref_precision', None) or 'as ours'}",
             f"gradient checkpointing ours {_on(o_ckpt)} / reference {_on(r_ckpt)} ({equal}); ours chose: "
             f"{'; '.join(chosen) or 'n/a'}; the reference's default is off", "",
             "| measure | ours | reference | ours / reference | target |", "|---|---|---|---|---|",
             f"| steady-state step (median of {steady} after {args.warmup} warm-up) | {o_step * 1000:.1f} ms | "
             f"{r_step * 1000:.1f} ms | **{o_step / r_step:.2f}** | ≤ 0.5 |",
             f"| whole process (best) | {o_sec:.1f} s | {r_sec:.1f} s | **{o_sec / r_sec:.2f}** | — |",
             f"| peak RSS (best) | {o_rss:.0f} MB | {r_rss:.0f} MB | **{o_rss / r_rss:.2f}** | ≤ 0.8 |",
             f"| optimizer steps timed | {ours['steps']} | {ref['steps']} | | |"]
    if "floor" in best:
        f_step = _median(best["floor"]["step_times"], args.warmup)
        lines.append(f"| floor: the UNet's forward + backward alone, no LoRA, no optimizer | {f_step * 1000:.1f} ms | "
                     f"{r_step * 1000:.1f} ms | **{f_step / r_step:.2f}** | (no LoRA trainer's step is below it) |")
    return "\n".join(lines)


def _on(flag: object) -> str:
    return "on" if flag else "off" if flag is not None else "?"
