"""Benchmark: host-memory peak of loading an SDXL single ``.safetensors`` file, ours vs diffusers.

The demo SDXL model (``--size mid`` by default) is written as one original-layout file in fp16 and
in fp32, and as a diffusers folder in fp16 (what a one-time conversion of the fp16 file would
cache). Each load runs in a fresh process with the libraries already imported; the figure is the
peak resident set above the process's start while loading and then touching every weight (so
memory-mapped weights count once used), as a multiple of the loaded fp32 models' own size:

* ``diffusers``: ``StableDiffusionXLPipeline.from_single_file`` as it comes (whole file read);
* ``ours``: ``load_sdxl_pipeline`` (streamed tensor by tensor, ``models/loading.py``);
* ``folder``: ``from_pretrained`` of the converted fp16 folder (memory-mapped safetensors).

    OMP_NUM_THREADS=1 python bench/loading_bench.py --size mid
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))  # ldm_layout: the writer of original-layout files
MIB = 1024 ** 2
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _write_inputs(size: str, folder: Path) -> dict[str, Path]:
    import torch
    from ldm_layout import write_ldm_checkpoint

    from alchemy_engine.models.demo import demo_sdxl_dir
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.sdxl import load_sdxl_pipeline

    pipe = load_sdxl_pipeline(demo_sdxl_dir(size), DevicePolicy("cpu", torch.float32, torch.float32))
    files = {"fp32": write_ldm_checkpoint(pipe, folder / "model_fp32.safetensors")}
    pipe.to(torch.float16)
    files["fp16"] = write_ldm_checkpoint(pipe, folder / "model_fp16.safetensors")
    pipe.save_pretrained(folder / "converted_fp16")
    files["converted_fp16"] = folder / "converted_fp16"
    return files


def _load_what_is_not_a_model(config: Path) -> None:
    """Libraries, tokenizers and the scheduler count as the process, not as loading the models.

    The two CLIP tokenizers alone hold ~60 MiB of Python objects whatever the model's size (0.3× of
    demo:mid's models, 0.4 % of SDXL's): they are loaded before the measure and handed out again
    by every load (``from_pretrained`` answered from a memo, by subfolder).
    """
    import diffusers.loaders.single_file_utils  # noqa: F401
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: F401

    for cls in (CLIPTokenizer, EulerDiscreteScheduler):
        load = cls.from_pretrained.__func__
        loaded: dict[str, object] = {}

        def memo(klass, *args, _load=load, _loaded=loaded, **kwargs):
            path = args[0] if args else kwargs["pretrained_model_name_or_path"]
            name = kwargs.get("subfolder") or Path(str(path)).name
            if name not in _loaded:
                _loaded[name] = _load(klass, *args, **kwargs)
            return _loaded[name]

        cls.from_pretrained = classmethod(memo)
    for name in ("tokenizer", "tokenizer_2"):
        CLIPTokenizer.from_pretrained(config, subfolder=name)
    EulerDiscreteScheduler.from_pretrained(config, subfolder="scheduler")


def _measure(method: str, path: str, config: str) -> dict[str, float]:
    """In this (fresh) process: load once, touch every weight, report the peak above the start."""
    import gc

    import torch
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.memory.peaks import PhasePeaks
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.sdxl import _quiet_loading_bars, load_sdxl_pipeline

    _quiet_loading_bars()
    _load_what_is_not_a_model(Path(config))
    gc.collect()
    peaks = PhasePeaks()
    with peaks.phase("loading"), torch.inference_mode():
        if method == "ours":
            pipe = load_sdxl_pipeline(path, DevicePolicy("cpu", torch.float32, torch.float32), config_dir=Path(config))
        elif method == "diffusers":
            pipe = StableDiffusionXLPipeline.from_single_file(path, config=config, local_files_only=True,
                                                              dtype=torch.float32)
        else:
            pipe = StableDiffusionXLPipeline.from_pretrained(path, local_files_only=True, dtype=torch.float32,
                                                             use_safetensors=True)
        tensors = [t for name in COMPONENTS for t in getattr(pipe, name).state_dict().values()]
        checksum = sum(float(t.float().sum()) for t in tensors if t.is_floating_point())
    row = peaks.phases["loading"]
    models = sum(t.numel() * t.element_size() for t in tensors)
    return {"peak_above_start_mib": (row["host_bytes"] - row["host_start_bytes"]) / MIB,
            "models_mib": models / MIB, "checksum": checksum}


def _run_child(method: str, path: Path, config: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--measure", method, str(path), str(config)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _disk_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="mid", choices=("tiny", "mid"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--measure", nargs=3, metavar=("METHOD", "PATH", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(_measure(*args.measure)))
        return 0

    from alchemy_engine.models.demo import demo_sdxl_dir

    config = demo_sdxl_dir(args.size)
    work = Path(tempfile.mkdtemp(prefix="loading_bench_"))
    try:
        files = _write_inputs(args.size, work)
        runs = [("fp16", "diffusers"), ("fp16", "ours"), ("fp32", "diffusers"), ("fp32", "ours"),
                ("converted_fp16", "folder")]
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.repeats):
            for source, method in runs:
                results.setdefault((source, method), []).append(_run_child(method, files[source], config))
        checksums = {r["checksum"] for rows in results.values() for r in rows}
        models = results[("fp32", "ours")][0]["models_mib"]
        print(f"demo:{args.size}: {models:.0f} MiB of fp32 models; peak RSS above the start "
              f"(min and max of {args.repeats}; tokenizers loaded before), × the models' size")
        for source, method in runs:
            peaks = [r["peak_above_start_mib"] for r in results[(source, method)]]
            peak = min(peaks)
            line = f"  {source:>15} {method:>9}: {peak:7.0f} MiB = {peak / models:.2f}× (max {max(peaks) / models:.2f}×)"
            if method == "ours":
                reference = min(r["peak_above_start_mib"] for r in results[(source, "diffusers")])
                line += f"   ours / diffusers {peak / reference:.2f}"
            print(line)
        print(f"  disk: fp16 file {_disk_mib(files['fp16']):.0f} MiB, "
              f"its converted folder {_disk_mib(files['converted_fp16']):.0f} MiB more")
        if len({round(c, 1) for c in checksums}) > 2:  # fp16 and fp32 sources differ by rounding only
            print(f"  WARNING: the loads disagree: weight sums {sorted(checksums)}")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
