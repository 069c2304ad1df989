"""``train PROJECT``: teach SDXL the project's subject (a LoRA), with a progress bar or JSON lines.

Options are made from :class:`TrainRequest`'s fields (``--learning-rate``, ``--gradient-checkpointing``
/ ``--no-gradient-checkpointing``…), so the CLI and the GUI cannot drift apart. ``--estimate-only``
prints the peak-memory estimate (after ``--fit``'s changes) and trains nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job

_HELP = {
    "steps": "optimizer steps (default 500)",
    "learning_rate": "AdamW learning rate (default 1e-4)",
    "rank": "LoRA rank (default 16)",
    "alpha": "LoRA alpha (default: equal to rank, i.e. scale 1)",
    "train_ff": "also put LoRA on the feed-forward layers",
    "text_encoder_lora": "also train LoRA on both text encoders (embeddings are then not cached)",
    "resolution": "training resolution; photos are bucketed by aspect ratio around it (default 1024)",
    "flip": "random horizontal flips (off by default: subjects are often asymmetric)",
    "min_snr_gamma": "min-SNR loss weighting γ (default 5; 0 turns it off)",
    "noise_offset": "noise offset (e.g. 0.0357) for darker darks / brighter brights",
    "prior_preservation": "regularise with class images made by the base model",
    "class_images": "number of class images for prior preservation (default 100)",
    "prior_weight": "weight of the class-image loss (default 1.0)",
    "masked_loss": "learn only from the subject (uses the photos' subject masks)",
    "background_weight": "loss weight outside the subject mask with --masked-loss (default 0.1)",
    "gradient_checkpointing": "recompute activations in the backward pass: much less memory, ~25%% slower",
    "optimizer": "adamw, adamw8bit (bitsandbytes + CUDA) or prodigy (needs prodigyopt)",
    "mixed_precision": "auto (bf16/fp16 on GPUs, fp32 on CPU), no, fp16 or bf16",
    "fit_memory": "lower settings until the memory estimate fits the free memory",
    "save_every": "save a resumable checkpoint every N steps (0 = never)",
    "keep_last": "keep this many newest checkpoints (default 2)",
    "sample_every": "draw a preview image every N steps (0 = never)",
    "device": "cpu, cuda, cuda:N or mps (default: the best available)",
    "eval_every": "score the LoRA every N steps (DINO, CLIP-I, CLIP-T on fixed prompts) into scores.csv (0 = never)",
    "eval_prompts": "how many fixed DreamBench prompts --eval-every renders (1-8, default 4)",
    "eval_models": "where the evaluation models are: a folder of model folders, or 'demo' (default: models/eval/)",
}
_SKIP = {"project", "model", "resume_run", "fit_memory"}


def register(subparsers: Any) -> None:
    from alchemy_engine.training.request import TrainRequest

    parser = subparsers.add_parser(
        "train", help="train a LoRA of the project's subject",
        description="Train a DreamBooth-LoRA of the project's subject on SDXL. Writes runs/<id>/ with "
                    "lora.safetensors (diffusers), lora_kohya.safetensors (A1111/ComfyUI), loss.csv, "
                    "samples/ and checkpoints/. Ctrl+C stops after the current step and saves a "
                    "checkpoint; continue with --resume.")
    parser.add_argument("project", help="project name, slug or folder")
    add_model_arg(parser)
    add_json_flag(parser)
    parser.add_argument("--resume", metavar="RUN", default=None,
                        help="continue run RUN (its id or folder) from its newest checkpoint, with its own settings")
    parser.add_argument("--fit", action="store_true", help=_HELP["fit_memory"])
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the peak-memory estimate for these settings and exit")
    hints = typing.get_type_hints(TrainRequest)
    for field in dataclasses.fields(TrainRequest):
        if field.name not in _SKIP:
            _add_field_option(parser, field, hints[field.name])
    parser.set_defaults(handler=train)


def _add_field_option(parser: argparse.ArgumentParser, field: dataclasses.Field, hint: Any) -> None:
    flag = "--" + field.name.replace("_", "-")
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0]
    default_text = f" (default {field.default})" if field.name not in _HELP else ""
    help_text = _HELP.get(field.name, field.name.replace("_", " ")) + default_text
    if kind is bool:
        parser.add_argument(flag, dest=field.name, default=None, action=argparse.BooleanOptionalAction,
                            help=help_text)
    else:
        parser.add_argument(flag, dest=field.name, default=None, type=kind, help=help_text,
                            metavar=field.name.upper())


def build_request(args: argparse.Namespace):
    from alchemy_engine.training.request import TrainRequest

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainRequest)
             if f.name not in _SKIP and getattr(args, f.name, None) is not None}
    return TrainRequest(project=args.project, model=args.model, resume_run=args.resume,
                        fit_memory=args.fit, **given)


def train(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.training import estimate_memory, run

    request = build_request(args)
    if args.estimate_only:
        estimate = estimate_memory(request)
        out.info(estimate.summary())
        return estimate.to_dict()
    if args.resume and _overrides(args):
        out.info("note: --resume continues with the run's own settings; other training options are ignored")
    result = run_job(out, run, request)
    for warning in result.warnings:
        out.info(f"warning: {warning}")
    return result.to_dict()


def _overrides(args: argparse.Namespace) -> bool:
    from alchemy_engine.training.request import TrainRequest

    return any(getattr(args, f.name, None) is not None for f in dataclasses.fields(TrainRequest)
               if f.name not in _SKIP)
