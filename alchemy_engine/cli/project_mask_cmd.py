"""``project mask PROJECT``: subject masks of the reference photos (what "Masked loss" trains on).

``--auto`` finds the subject in every photo (the detector looks for the class noun, SAM outlines
it); ``--photo NAME --mask PNG`` stores a mask made elsewhere; ``--photo NAME --clear`` removes one.
Without an action it lists which photos have a mask.
"""

from __future__ import annotations

import argparse
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, run_job
from alchemy_engine.cli.options import add_field_option, given
from alchemy_engine.errors import InvalidRequest

_OPTIONS = ("sam", "detector", "text", "box_threshold", "text_threshold", "only_missing", "device")


def register(commands: argparse._SubParsersAction) -> None:
    from alchemy_engine.api import AutoMaskRequest, field_info

    mask = commands.add_parser("mask", help="make, import or list the subject masks of the photos",
                               description=__doc__.split("\n\n")[1].replace("``", "'"))
    mask.add_argument("name", help="project name, slug or folder")
    mask.add_argument("--auto", action="store_true",
                      help="find the subject in the photos with the detector and SAM")
    mask.add_argument("--photo", metavar="NAME", action="append", default=[],
                      help="a stored photo name (see `project show`); with --auto, repeatable")
    mask.add_argument("--mask", metavar="PNG", help="with --photo: store this mask (white = subject)")
    mask.add_argument("--clear", action="store_true", help="with --photo: remove its mask")
    for name in _OPTIONS:
        add_field_option(mask, field_info(AutoMaskRequest, name))
    add_json_flag(mask)
    mask.set_defaults(handler=_mask)


def _mask(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import AutoMaskRequest, auto_mask, import_mask, open_project

    actions = sum((args.auto, args.mask is not None, args.clear))
    if actions > 1:
        raise InvalidRequest("give one of --auto, --mask PNG or --clear")
    if (args.mask is not None or args.clear) and len(args.photo) != 1:
        raise InvalidRequest("--mask and --clear need exactly one --photo NAME")
    project = open_project(args.name)
    if args.auto:
        request = AutoMaskRequest(project=str(project.root), photos=tuple(args.photo),
                                  **given(args, list(_OPTIONS)))
        result = run_job(out, auto_mask, request)
        out.info(f"masked {len(result.masked)} photo(s) of {project.name!r}")
        for name, why in result.skipped:
            out.info(f"skipped {name}: {why}")
        return result.to_dict()
    if args.mask is not None:
        photo = import_mask(project, args.photo[0], args.mask)
        out.info(f"stored the mask of {photo.name} at {photo.mask_path}")
    elif args.clear:
        project.set_mask(args.photo[0], None)
        out.info(f"removed the mask of {args.photo[0]}")
    photos = project.reference_photos()
    if not (args.mask or args.clear):
        for photo in photos:
            out.info(f"  {photo.name}  {'mask' if photo.mask_path else 'no mask'}")
    if not out.json_mode:  # the lines above said it
        return None
    return {"project": project.slug,
            "photos": [{"photo": p.name, "mask_path": str(p.mask_path) if p.mask_path else None} for p in photos]}
