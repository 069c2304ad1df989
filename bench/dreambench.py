"""DreamBench end to end: train a LoRA per subject, evaluate it, average over the subjects.

For a user who has the public DreamBench dataset locally (the ``dataset/`` folder of
google/dreambooth: 30 subject folders of 4–6 photos, and ``prompts_and_classes.txt``). Each
subject becomes a throw-away project (its class noun from ``prompts_and_classes.txt``, else the
folder name), is trained with the given settings, then evaluated with the live prompts (cats and
dogs) or the object prompts, ``--per-prompt`` images each. Prints and writes the mean DINO /
CLIP-I / CLIP-T, PRES and DIV over the subjects beside the paper's Table 1. Meant for GPU
machines (30 trainings + 30 × 25 × 4 images at 1024²).

    python bench/dreambench.py ~/dreambooth/dataset --out dreambench-results/ [--subjects dog,cat]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIVE = re.compile(r"^(cat|dog)\d*$")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def read_classes(dataset: Path) -> dict[str, str]:
    """``subject_name,class`` lines of ``prompts_and_classes.txt`` (next to or above the folder)."""
    for candidate in (dataset / "prompts_and_classes.txt", dataset.parent / "prompts_and_classes.txt"):
        if candidate.is_file():
            pairs = {}
            for line in candidate.read_text(encoding="utf-8").splitlines():
                name, sep, noun = line.strip().partition(",")
                if sep and name and noun and " " not in name and not name.startswith(("Object", "Live")):
                    pairs[name.strip()] = noun.strip()
            return pairs
    return {}


def subjects(dataset: Path, only: list[str] | None) -> list[Path]:
    found = sorted(p for p in dataset.iterdir() if p.is_dir() and any(
        f.suffix.lower() in PHOTO_SUFFIXES for f in p.iterdir()))
    return [p for p in found if not only or p.name in only]


def run_subject(folder: Path, noun: str, args: argparse.Namespace) -> dict:
    from alchemy_engine.api import EvaluateRequest, TrainRequest, evaluate, train
    from alchemy_engine.cli.common import CliOutput
    from alchemy_engine.project import create_project

    photos = sorted(f for f in folder.iterdir() if f.suffix.lower() in PHOTO_SUFFIXES)
    project = create_project(f"dreambench-{folder.name}", class_noun=noun, images=photos)
    out = CliOutput(json_mode=False)
    trained = train(TrainRequest(project=str(project.root), model=args.model, steps=args.steps,
                                 resolution=args.resolution, rank=args.rank, save_every=0), out.progress)
    result = evaluate(EvaluateRequest(
        project=str(project.root), out=Path(args.out) / folder.name, lora=trained.lora, model=args.model,
        prompts="live" if LIVE.match(folder.name) else "object", per_prompt=args.per_prompt,
        resolution=args.resolution, eval_models=args.eval_models, clip_model=args.clip_model,
        baseline=args.baseline), out.progress)
    return result.summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path, help="the DreamBench dataset/ folder (30 subject folders)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--subjects", help="comma-separated subject folder names (default: all)")
    parser.add_argument("--model", default=None, help="SDXL model (default: the first found)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--eval-models", default=None)
    parser.add_argument("--clip-model", default="clip-vit-large-patch14")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    args = parser.parse_args(argv)

    from alchemy_engine.atomic import atomic_write_json
    from alchemy_engine.evaluation.report import PAPER_TABLE_1, mean, table_text

    os.environ.setdefault("IMAGE_ALCHEMY_HOME", tempfile.mkdtemp(prefix="dreambench_"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    classes = read_classes(args.dataset)
    chosen = subjects(args.dataset, args.subjects.split(",") if args.subjects else None)
    per_subject = {}
    for folder in chosen:
        noun = classes.get(folder.name) or re.sub(r"\d+$", "", folder.name).replace("_", " ")
        print(f"== {folder.name} ({noun})", flush=True)
        per_subject[folder.name] = run_subject(folder, noun, args)
    overall = {"mean": {k: mean([s["mean"].get(k) for s in per_subject.values()]) for k in ("dino", "clip_i", "clip_t")},
               "pres": mean([s.get("pres") for s in per_subject.values()]),
               "div": mean([s.get("div") for s in per_subject.values()]),
               "models": next(iter(per_subject.values()))["models"] if per_subject else {},
               "subjects": per_subject, "paper_table_1": PAPER_TABLE_1, "args": {k: str(v) for k, v in vars(args).items()}}
    atomic_write_json(args.out / "dreambench_summary.json", overall)
    print(table_text(overall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
