"""Write full-size SDXL with random weights as one original-layout fp16 ``.safetensors`` (6.9 GB),
the shape of a real SDXL checkpoint: same tensors, compute and memory, no download; or, with
``--folder``, as a diffusers folder in bf16 (what ``train_bench.py --vs-reference --sizes full``
gives both trainers).

    OMP_NUM_THREADS=2 python3 bench/make_full_sdxl.py ~/sd_xl_base_random.safetensors

Then, e.g., the full-size CPU training run of ``bench/RESULTS.md``:

    python3 main.py train PROJECT --model ~/sd_xl_base_random.safetensors --steps 2 --resolution 512 --json

Needs ~16 GB of RAM while writing (each component is built in fp16 and written, then freed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path)
    parser.add_argument("--folder", action="store_true", help="a diffusers folder in bf16 instead of one fp16 file")
    args = parser.parse_args()
    import torch
    from diffusers import StableDiffusionXLPipeline
    from ldm_layout import write_ldm_checkpoint

    from alchemy_engine.models.demo import build_sdxl_components

    torch.set_default_dtype(torch.bfloat16 if args.folder else torch.float16)  # half the memory of fp32, cast
    try:
        pipe = StableDiffusionXLPipeline(**build_sdxl_components("full"))
    finally:
        torch.set_default_dtype(torch.float32)
    args.target.parent.mkdir(parents=True, exist_ok=True)
    if args.folder:
        pipe.save_pretrained(args.target)
    else:
        write_ldm_checkpoint(pipe, args.target)
    files = args.target.rglob("*") if args.folder else [args.target]
    print(f"wrote {args.target} ({sum(f.stat().st_size for f in files if f.is_file()) / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
