"""``evaluate PROJECT --out DIR``: DINO / CLIP-I / CLIP-T, PRES and DIV of a run's LoRA (DreamBench).

Options are made from :class:`EvaluateRequest`'s fields, like ``train``'s; the paper's Table 1 is
printed beside the result.
"""

from __future__ import annotations

import argparse
from typing import Any

from alchemy_engine.api import field_info, field_infos
from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job
from alchemy_engine.cli.options import add_field_option, add_request_options, given

_SKIP = {"project", "out", "model"}


def register(subparsers: Any) -> None:
    from alchemy_engine.api import EvaluateRequest

    parser = subparsers.add_parser(
        "evaluate", help="score a trained LoRA: DINO, CLIP-I, CLIP-T, PRES, DIV (DreamBench)",
        description="Generate the DreamBench prompts with the run's LoRA and score subject fidelity (DINO, "
                    "CLIP-I), prompt agreement (CLIP-T), prior preservation (PRES) and diversity (DIV). "
                    "Writes images/, scores.csv, summary.json and contact_sheet.png into --out.")
    parser.add_argument("project", help=field_info(EvaluateRequest, "project").help)
    add_field_option(parser, field_info(EvaluateRequest, "out"), required=True, metavar="DIR")
    add_model_arg(parser)
    add_json_flag(parser)
    add_request_options(parser, EvaluateRequest, skip=_SKIP)
    parser.set_defaults(handler=evaluate)


def build_request(args: argparse.Namespace):
    from alchemy_engine.api import EvaluateRequest

    names = [i.name for i in field_infos(EvaluateRequest) if i.cli and i.name not in _SKIP]
    return EvaluateRequest(project=args.project, out=args.out, model=args.model, **given(args, names))


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
