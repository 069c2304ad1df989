"""Benchmark: SAM at vit_b size (random weights, the real compute) through our SamSegmenter.

* embedding: ``set_image`` on a new image (runs the image encoder, writes the disk cache);
* click → mask: ``predict`` with one positive click (prompt encoder + mask decoder), median;
* cache hit: a fresh segmenter (as after reopening the image or restarting the app) restores
  the embedding from disk, without the encoder; then the first click.

Targets: click → mask ≤ 100 ms, cache hit ≤ 200 ms.

    OMP_NUM_THREADS=2 python bench/sam_bench.py            # CPU
    python bench/sam_bench.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _clock(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="vit_b")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args(argv)

    import torch

    from alchemy_engine.insertion.locate import SamSegmenter
    from alchemy_engine.models.sam import build_sam

    cache = Path(tempfile.mkdtemp(prefix="sam_bench_"))
    os.environ["IMAGE_ALCHEMY_CACHE"] = str(cache)
    try:
        torch.manual_seed(0)
        model = build_sam(args.variant).to(args.device)
        image = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
        warm = np.random.default_rng(1).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
        seg = SamSegmenter(model, args.variant, "bench-random", device=args.device)
        seg.set_image(warm)  # warm-up: kernels, allocator
        seg.predict(points=[(10, 10, 1)])
        embed = _clock(lambda: seg.set_image(image), args.device)
        clicks = []
        rng = np.random.default_rng(2)
        for _ in range(args.clicks):
            point = (float(rng.integers(0, args.width)), float(rng.integers(0, args.height)), 1)
            clicks.append(_clock(lambda: seg.predict(points=[point]), args.device))
        hits, first_clicks = [], []
        for _ in range(5):
            fresh = SamSegmenter(model, args.variant, "bench-random", device=args.device)
            hits.append(_clock(lambda: fresh.set_image(image), args.device))
            first_clicks.append(_clock(lambda: fresh.predict(points=[(100.0, 100.0, 1)]), args.device))
            if fresh.encoder_runs:
                raise RuntimeError("the cache hit ran the image encoder")
        report = {
            "variant": args.variant, "device": args.device, "image": f"{args.width}x{args.height}",
            "card": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
            "threads": torch.get_num_threads(),
            "embedding_s": embed, "click_to_mask_ms_median": 1000 * statistics.median(clicks),
            "click_to_mask_ms_max": 1000 * max(clicks),
            "cache_hit_ms_median": 1000 * statistics.median(hits),
            "cache_hit_plus_first_click_ms_median": 1000 * statistics.median(
                [h + c for h, c in zip(hits, first_clicks)]),
        }
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"embedding {report['embedding_s']:.2f} s | click→mask {report['click_to_mask_ms_median']:.1f} ms "
          f"(target ≤ 100) | cache hit {report['cache_hit_ms_median']:.1f} ms (target ≤ 200)")
    print(json.dumps(report))
    return 0


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
