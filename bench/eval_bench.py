"""Benchmark: what ranking costs next to making the variations it ranks (``insert -n 4 --rank``).

In one process, on a 1024² scene with a subject mask:

* ``generate``: ``alchemy_engine.insertion.run`` making 4 variations (crop to mask at about one
  megapixel, masked img2img with a LoRA, paste back, PNGs) — the work ``--rank`` adds scores to;
* ``score``: :class:`InsertionRanker` scoring those 4 images (DINO and CLIP on the whole image,
  DINO and CLIP on the subject crop, CLIP-T), with the evaluation models loaded and the reference
  embeddings already cached (as from the second insertion of a project on). The one-off cost of
  embedding the references is printed separately.

Evaluation models: ``demo:mid`` (default: DINO with the real ViT-S/16 shape of dino-vits16, a
reduced CLIP) or ``--real-size`` (random weights in the real shapes of dino-vits16 and
clip-vit-large-patch14, built in memory). Target: score ≤ 0.10 × generate.

    OMP_NUM_THREADS=2 python bench/eval_bench.py                 # CPU, demo:mid SDXL and eval models
    OMP_NUM_THREADS=2 python bench/eval_bench.py --real-size     # real-size DINO + CLIP-L shapes
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _photos(folder: Path, count: int = 3) -> list[Path]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(count):
        array = rng.integers(0, 256, (768, 640, 3), dtype=np.uint8)
        out.append(folder / f"ref{i}.png")
        Image.fromarray(array).save(out[-1])
    return out


def _real_size_scorer():
    """dino-vits16 and clip-vit-large-patch14 shapes with random weights, built in memory."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer, ViTConfig, ViTModel

    from alchemy_engine import paths
    from alchemy_engine.evaluation.metrics import DINO_PROTOCOL, Encoder, FidelityScorer
    from alchemy_engine.evaluation.preprocess import ProcessorSpec, resource_config

    torch.manual_seed(0)
    dino = ViTModel(ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                              intermediate_size=1536, patch_size=16, image_size=224), add_pooling_layer=False).eval()
    clip = CLIPModel(CLIPConfig(
        text_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        vision_config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096, patch_size=14, image_size=224),
        projection_dim=768)).eval()
    tokenizer = CLIPTokenizer.from_pretrained(paths.sdxl_config_dir() / "tokenizer")
    return FidelityScorer({
        "dino-vits16": Encoder("dino-vits16", "vit", dino, ProcessorSpec.from_config(resource_config(DINO_PROTOCOL)),
                               "cpu", torch.float32, "bench-dino"),
        "clip-vit-large-patch14": Encoder("clip-vit-large-patch14", "clip", clip,
                                          ProcessorSpec.from_config(resource_config("clip-vit-large-patch14")),
                                          "cpu", torch.float32, "bench-clip", tokenizer)})


def bench(args: argparse.Namespace, work: Path) -> dict:
    from insert_bench import make_lora, make_scene

    from alchemy_engine.evaluation.ranking import InsertionRanker, shared_scorer
    from alchemy_engine.insertion import InsertionSession, InsertRequest, LocateOptions, run
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.project import create_project

    project = create_project("Bench", class_noun="dog", images=_photos(work))
    make_lora(project.runs_dir / "bench" / "lora.safetensors", resolve_sdxl(args.model).path / "unet")
    scene, mask, fraction = make_scene(work, args.scene_size, args.subject_fraction)
    session = InsertionSession()
    request = InsertRequest(project="Bench", model=args.model, scene=scene, steps=args.steps, strength=args.strength,
                            locate=LocateOptions(mask=mask, grow=8, feather=8.0), seed=1, variations=4,
                            work_pixels=args.work_size ** 2)
    run(request.with_seed(100), session=session)  # warm-up: model load, LoRA, first-call allocations
    start = time.perf_counter()
    result = run(request, session=session)
    generate_s = time.perf_counter() - start
    print(f"generate 4 variations: {generate_s:.2f} s", flush=True)

    scorer = _real_size_scorer() if args.real_size else shared_scorer("demo:mid", device="cpu")
    start = time.perf_counter()
    ranker = InsertionRanker(scorer, project, project.token)  # embeds the references (once per project)
    references_s = time.perf_counter() - start
    images = [Image.open(p).convert("RGB") for p in result.outputs]
    alpha = np.asarray(Image.open(result.mask)) > 0
    ranker.score(images[0], alpha, result.prompt)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for image in images:
            ranker.score(image, alpha, result.prompt)
        times.append(time.perf_counter() - start)
    score_s = statistics.median(times)
    print(f"score 4 variations: {score_s:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}); "
          f"references once: {references_s:.2f} s", flush=True)
    return {"generate_s": generate_s, "score_s": score_s, "score_runs_s": times, "references_s": references_s,
            "ratio": score_s / generate_s, "mask_fraction": fraction, "work_size": result.work_size,
            "eval_models": "real-size random" if args.real_size else "demo:mid", "models": scorer.model_names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="demo:mid", help="SDXL model (default demo:mid)")
    parser.add_argument("--scene-size", type=int, default=1024)
    parser.add_argument("--subject-fraction", type=float, default=0.1, help="mask area / frame area")
    parser.add_argument("--work-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--real-size", action="store_true",
                        help="score with random-weight models of the real dino-vits16 and CLIP-L/14 shapes")
    args = parser.parse_args(argv)

    import torch

    from alchemy_engine import paths

    work = Path(tempfile.mkdtemp(prefix="eval_bench_"))
    os.environ.setdefault("IMAGE_ALCHEMY_CACHE", str(paths.cache_root()))  # keep built demo models
    os.environ["IMAGE_ALCHEMY_HOME"] = str(work / "home")
    os.environ["HF_HUB_OFFLINE"] = "1"
    report = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "args": vars(args)}
    try:
        report["result"] = bench(args, work)
        print(f"ratio score / generate = {report['result']['ratio']:.3f} (target <= 0.10)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
