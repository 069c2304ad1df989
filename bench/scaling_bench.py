"""Data-parallel scaling: step time and samples/s of our trainer at 1 and N GPUs, side by side.

    python3 bench/scaling_bench.py --device cuda --gpus 1,2 --size full --resolution 1024 --steps 30
    python3 bench/scaling_bench.py --device cpu --gpus 1,2 --size tiny --resolution 64 --steps 20  # gloo trial

One GPU runs the trainer in this process's child exactly as `train` does (no wrapper); N GPUs run
it under ``torch.distributed.run --standalone`` (rank 0's progress events give the step times).
Every process trains ``--batch`` images per step, so N GPUs train N× the images per step: the
speed-up in samples/s is what data parallelism buys. ``--size full`` is full-size SDXL with random
weights (bench/train_bench.py), the same compute as the real model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def worker(args: argparse.Namespace) -> None:
    import train_bench

    from alchemy_engine.training import TrainRequest, run
    from alchemy_engine.training.world import from_environment

    if args.size == "full":
        train_bench._patch_full_model(args.device)
    stamps: list[float] = []

    def progress(event) -> None:
        if event.stage == "training":
            stamps.append(time.perf_counter())

    request = TrainRequest(project=args.project, model="demo:mid" if args.size == "mid" else "demo", steps=args.steps,
                           resolution=args.resolution, rank=16, batch_size=args.batch, gpus=args.gpus_now,
                           save_every=0, sample_every=0, device=args.device, gradient_checkpointing="on")
    run(request, progress)
    if from_environment().is_main:
        times = [b - a for a, b in zip(stamps, stamps[1:])][args.warmup:]
        Path(args.out).write_text(json.dumps({"step_s": statistics.median(times)}))


def measure(args: argparse.Namespace, gpus: int, project: str, home: Path) -> float:
    out = home / f"scaling_{gpus}.json"
    script = [str(Path(__file__).resolve()), "--worker", "--project", project, "--out", str(out),
              "--gpus-now", str(gpus), "--device", args.device, "--size", args.size, "--resolution",
              str(args.resolution), "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    launcher = [] if gpus == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]
    env = dict(os.environ, IMAGE_ALCHEMY_HOME=str(home))
    subprocess.run([sys.executable, *launcher, *script], check=True, env=env)
    return json.loads(out.read_text())["step_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--gpus", default="1,2", help="process counts to compare, e.g. 1,2,4")
    parser.add_argument("--size", choices=("tiny", "mid", "full"), default="full")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1, help="images per process per step")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--gpus-now", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import train_bench

    from alchemy_engine.project import create_project

    home = Path(tempfile.mkdtemp(prefix="scaling_bench_"))
    os.environ["IMAGE_ALCHEMY_HOME"] = str(home)
    project = str(create_project("Bench", class_noun="dog", images=train_bench.make_photos(home)).root)
    counts = [int(n) for n in args.gpus.split(",")]
    times = {n: measure(args, n, project, home) for n in counts}
    base = times[counts[0]]
    print(f"{args.size} at {args.resolution}², batch {args.batch} per process, {args.device}")
    print(f"{'processes':>9} {'step s':>8} {'samples/s':>10} {'speed-up':>9}")
    for n in counts:
        rate = n * args.batch / times[n]
        print(f"{n:>9} {times[n]:>8.3f} {rate:>10.2f} {rate / (counts[0] * args.batch / base):>8.2f}×")


if __name__ == "__main__":
    main()
