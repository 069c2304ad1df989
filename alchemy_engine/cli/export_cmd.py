"""``export PROJECT RUN --step N``: write the LoRA of one kept checkpoint of a run."""

from __future__ import annotations

import argparse
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export the LoRA of a kept checkpoint of a run",
        description="Write runs/<RUN>/exports/step-N/lora.safetensors (diffusers) and lora_kohya.safetensors "
                    "(A1111, Forge, ComfyUI) from the run's checkpoint at step N.")
    parser.add_argument("project", help="project name, slug or folder")
    parser.add_argument("run", help="training run id")
    parser.add_argument("--step", type=int, required=True, metavar="N", help="the checkpoint's step")
    add_json_flag(parser)
    parser.set_defaults(handler=export)


def export(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.api import export_checkpoint_lora, open_project

    lora, kohya = export_checkpoint_lora(open_project(args.project), args.run, args.step)
    out.info(f"LoRA of step {args.step}: {lora}\nkohya layout: {kohya}")
    return {"step": args.step, "lora": str(lora), "lora_kohya": str(kohya)}
