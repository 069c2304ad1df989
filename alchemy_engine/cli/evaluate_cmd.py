"""``evaluate PROJECT --out DIR``: DINO / CLIP-I / CLIP-T, PRES and DIV of a run's LoRA (DreamBench).

Options are made from :class:`EvaluateRequest`'s fields, like ``train``'s; the paper's Table 1 is
printed beside the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job

_HELP = {
    "run": "training run id (default: the newest run with a LoRA)",
    "lora": "a LoRA .safetensors file instead of the project's run",
    "device": "cpu, cuda, cuda:N or mps (default: the best available)",
    "prompts": "auto (live set for pets and people, else object), live, object, or a text file (one prompt a "
               "line; {token} and {class_noun} are filled in)",
    "max_prompts": "use only the first N prompts of the set (default 0: all 25)",
    "per_prompt": "images per prompt, seeds SEED, SEED+1, … (default 4)",
    "resolution": "image size in pixels, square (default 1024)",
    "class_images": "images of the plain class prompt for PRES (default 8; 0 skips PRES)",
    "baseline": "also generate with the LoRA off, for the base model's PRES and DIV (default on; doubles the time)",
    "insert_into": "a folder of scenes: insert the subject into each (a SCENE.mask.png beside a scene is its "
                   "mask) and score the subject crop",
    "sam": "SAM checkpoint for --insert-into (default: the first in models/sam)",
    "detector": "Grounding DINO folder for --insert-into (default: the first in models/detector)",
    "eval_models": "where the evaluation models are: a folder of model folders, or 'demo' (default: "
                   "models/eval/ or the Hugging Face cache)",
    "clip_model": "clip-vit-large-patch14 (default) or clip-vit-base-patch32",
    "dinov2": "also score with DINOv2 (facebook/dinov2-base)",
}
_SKIP = {"project", "out", "model"}


def register(subparsers: Any) -> None:
    from alchemy_engine.api import EvaluateRequest

    parser = subparsers.add_parser(
        "evaluate", help="score a trained LoRA: DINO, CLIP-I, CLIP-T, PRES, DIV (DreamBench)",
        description="Generate the DreamBench prompts with the run's LoRA and score subject fidelity (DINO, "
                    "CLIP-I), prompt agreement (CLIP-T), prior preservation (PRES) and diversity (DIV). "
                    "Writes images/, scores.csv, summary.json and contact_sheet.png into --out.")
    parser.add_argument("project", help="project name, slug or folder")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the results")
    add_model_arg(parser)
    add_json_flag(parser)
    hints = typing.get_type_hints(EvaluateRequest)
    for field in dataclasses.fields(EvaluateRequest):
        if field.name not in _SKIP:
            _add_option(parser, field, hints[field.name])
    parser.set_defaults(handler=evaluate)


def _add_option(parser: argparse.ArgumentParser, field: dataclasses.Field, hint: Any) -> None:
    flag = "--" + field.name.replace("_", "-")
    kind = ([a for a in typing.get_args(hint) if a is not type(None)] or [hint])[0]
    help_text = _HELP.get(field.name, f"{field.name.replace('_', ' ')} (default {field.default})")
    if kind is bool:
        parser.add_argument(flag, dest=field.name, default=None, action=argparse.BooleanOptionalAction, help=help_text)
    else:
        parser.add_argument(flag, dest=field.name, default=None, type=kind, help=help_text,
                            metavar=field.name.upper())


def build_request(args: argparse.Namespace):
    from alchemy_engine.api import EvaluateRequest

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvaluateRequest)
             if f.name not in _SKIP and getattr(args, f.name, None) is not None}
    return EvaluateRequest(project=args.project, out=args.out, model=args.model, **given)


def evaluate(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.api import evaluate as run
    from alchemy_engine.api import fidelity_table as table_text

    request = build_request(args)
    request.validate()
    result = run_job(out, run, request)
    out.info(table_text(result.summary))
    for note in result.notes:
        out.info(f"note: {note}")
    return result.to_dict()
