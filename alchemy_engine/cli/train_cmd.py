"""``train PROJECT``: teach SDXL the project's subject (a LoRA), with a progress bar or JSON lines.

Options are made from :class:`TrainRequest`'s fields (``--learning-rate``, ``--gradient-checkpointing``
/ ``--no-gradient-checkpointing``…), so the CLI and the GUI cannot drift apart. ``--estimate-only``
prints the peak-memory estimate (after ``--fit``'s changes) and trains nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from alchemy_engine.api import field_info, field_infos
from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job
from alchemy_engine.cli.options import add_request_options, given

_SKIP = {"project", "model", "resume_run", "fit_memory"}


def register(subparsers: Any) -> None:
    from alchemy_engine.api import TrainRequest

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
    parser.add_argument("--fit", action="store_true", help=field_info(TrainRequest, "fit_memory").help)
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the peak-memory estimate for these settings and exit")
    add_request_options(parser, TrainRequest, skip=_SKIP)
    # the app's several-process training (training/processes.py) passes its whole request as a file
    parser.add_argument("--request", metavar="FILE", default=None, help=argparse.SUPPRESS)
    # before "auto" existed gradient checkpointing was an on/off flag; keep the old spelling working
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_const",
                        const="off", help=argparse.SUPPRESS)
    parser.set_defaults(handler=train)


def build_request(args: argparse.Namespace):
    from alchemy_engine.api import TrainRequest

    if getattr(args, "request", None):
        with open(args.request, encoding="utf-8") as file:
            return TrainRequest.from_json(file.read())

    return TrainRequest(project=args.project, model=args.model, resume_run=args.resume,
                        fit_memory=args.fit, **given(args, _option_names()))


def train(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import estimate_memory, launch_gpus, launch_training, training_world
    from alchemy_engine.api import train as run

    request = build_request(args)
    if args.estimate_only:
        estimate = estimate_memory(request)
        out.info(f"{estimate.summary()}; {estimate.phase_summary()}")
        return estimate.to_dict()
    world = training_world()  # set when torchrun started this process (by --gpus, or by hand)
    if not world.distributed and (gpus := launch_gpus(request)) > 1:
        raise SystemExit(launch_training(gpus, args.argv))
    if args.resume and _overrides(args) and world.is_main:
        out.info("note: --resume continues with the run's own settings; other training options are ignored")
    result = run_job(out, run, request)
    if not world.is_main:  # only rank 0 speaks
        return None
    for warning in result.warnings:
        out.info(f"warning: {warning}")
    return result.to_dict()


def _overrides(args: argparse.Namespace) -> bool:
    return bool(given(args, _option_names()))


def _option_names() -> list[str]:
    from alchemy_engine.api import TrainRequest

    return [i.name for i in field_infos(TrainRequest) if i.cli and i.name not in _SKIP]
