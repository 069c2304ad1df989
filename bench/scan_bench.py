"""Model-folder scan: a first scan (every header read) vs a rescan of unchanged files (the cache).

Builds N small safetensors files shaped like SDXL checkpoints and LoRAs (sparse: the headers are
real, the data is a hole) in a temporary model folder, then times, in this one process,
``scan_models`` cold (empty cache), warm (nothing changed) and after touching 1 % of the files.
Prints the times and the warm / cold ratio; nothing is asserted.

    python bench/scan_bench.py --files 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]


def build(folder: Path, count: int) -> list[Path]:
    from ldm_layout import write_fake_safetensors
    from test_model_folders import SDXL_LORA
    from test_models_probe import SDXL_BASE

    files = []
    for n in range(count):
        sub = folder / f"set{n % 20}"
        sub.mkdir(parents=True, exist_ok=True)
        shapes = SDXL_BASE if n % 10 == 0 else SDXL_LORA
        files.append(write_fake_safetensors(sub / f"model{n}.safetensors", shapes))
    return files


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["IMAGE_ALCHEMY_HOME"] = str(Path(tmp) / "home")
        from alchemy_engine.models import scanner
        from alchemy_engine.models.scanner import ScanRequest, scan_models

        folder = Path(tmp) / "models"
        files = build(folder, args.files)
        request = ScanRequest((str(folder),))
        cold, warm, touched = [], [], []
        for _ in range(args.repeats):
            scanner._cache_path().unlink(missing_ok=True)
            cold.append(timed(lambda: scan_models(request)))
            warm.append(timed(lambda: scan_models(request)))
            for path in files[:: 100]:
                os.utime(path, ns=(time.time_ns(), time.time_ns()))
            touched.append(timed(lambda: scan_models(request)))
        result = scan_models(request)
        c, w, t = statistics.median(cold), statistics.median(warm), statistics.median(touched)
        print(f"{len(result.models)} files ({len(result.of_use('sdxl'))} SDXL, {len(result.of_use('lora'))} LoRAs), "
              f"median of {args.repeats}")
        print(f"cold scan (every header read): {c * 1000:8.1f} ms")
        print(f"rescan, nothing changed:       {w * 1000:8.1f} ms   ratio {w / c:.3f}")
        print(f"rescan, 1 % of files touched:  {t * 1000:8.1f} ms   ratio {t / c:.3f}")


if __name__ == "__main__":
    main()
