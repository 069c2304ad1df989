"""`insert` (stage 2: put the trained subject into a scene) and `segment` (a mask on its own)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

from alchemy_engine.api import field_info, field_infos
from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job
from alchemy_engine.cli.options import add_field_option, add_request_options, given
from alchemy_engine.errors import InvalidRequest


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_insert(subparsers)
    _register_segment(subparsers)
    _register_scene(subparsers)


# --- argument parsing helpers ------------------------------------------------------------------

def parse_point(text: str) -> tuple[float, float, int]:
    """``X,Y`` (a click on the subject) or ``X,Y,0`` (not the subject) / ``X,Y,1``."""
    parts = [p.strip() for p in text.split(",")]
    problem = argparse.ArgumentTypeError(f"expected X,Y or X,Y,0|1 (pixels), got {text!r}")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("0", "1")):
        raise problem
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise problem from exc
    return x, y, int(parts[2]) if len(parts) == 3 else 1


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (pixels), got {text!r}")
    return values  # type: ignore[return-value]


def parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1216x832, got {text!r}")
    return int(w), int(h)


_LOCATE_CUSTOM = {"points", "box"}


def _add_locate_args(parser: argparse.ArgumentParser, defaults: Any) -> list[str]:
    """LocateOptions' options; ``defaults`` is the LocateOptions whose values --help shows."""
    from alchemy_engine.api import LocateOptions

    group = parser.add_argument_group(
        "mask sources", "clicks and/or a box go to SAM; --mask replaces or combines with that; "
                        "with none of them the detector looks for --text (insert: the class noun)")
    shape = parser.add_argument_group("mask shape")
    add_field_option(group, field_info(LocateOptions, "points"), "--point", action="append", type=parse_point,
                     dest="points", metavar="X,Y[,0|1]", default=None)
    add_field_option(group, field_info(LocateOptions, "box"), type=parse_box)
    names = []
    for info in field_infos(LocateOptions):
        if info.name in _LOCATE_CUSTOM:
            continue
        shown = dataclasses.replace(info, default=getattr(defaults, info.name))
        add_field_option(shape if info.name in ("grow", "feather", "fill_holes") else group, shown)
        names.append(info.name)
    return names + sorted(_LOCATE_CUSTOM)


def _locate(args: argparse.Namespace, defaults: Any) -> Any:
    typed = given(args, [i.name for i in field_infos(type(defaults))])
    if "points" in typed:
        typed["points"] = tuple(typed["points"])
    if "instance" in typed:
        typed["instance"] = str(typed["instance"])
    return dataclasses.replace(defaults, **typed)


# --- insert --------------------------------------------------------------------------------------

_INSERT_CUSTOM = {"variations", "guidance", "crop_to_mask", "colour_match"}


def _register_insert(subparsers: argparse._SubParsersAction) -> None:
    from alchemy_engine.api import InsertRequest

    p = subparsers.add_parser(
        "insert", help="put the trained subject into a scene",
        description="Put the project's trained subject into a scene. With no mask source the "
                    "detector finds the class noun, SAM cuts it out and SDXL repaints it with the LoRA.")
    p.add_argument("project", help=field_info(InsertRequest, "project").help)
    add_model_arg(p)
    scene = p.add_mutually_exclusive_group(required=True)
    add_field_option(scene, field_info(InsertRequest, "scene"))
    add_field_option(scene, field_info(InsertRequest, "scene_prompt"))
    defaults = field_info(InsertRequest, "scene_width").default, field_info(InsertRequest, "scene_height").default
    p.add_argument("--scene-size", type=parse_size, default=None, metavar="WxH",
                   help=f"generated scene size, multiples of 64 (default {defaults[0]}x{defaults[1]}; "
                        "also 1216x832, 832x1216 …)")
    _add_locate_args(p, field_info(InsertRequest, "locate").default)
    g = p.add_argument_group("insertion")
    add_request_options(g, InsertRequest, skip=_INSERT_CUSTOM)
    add_field_option(g, field_info(InsertRequest, "guidance"), "--guidance", "--cfg")
    add_field_option(g, field_info(InsertRequest, "variations"), "-n", "--variations")
    add_field_option(g, field_info(InsertRequest, "crop_to_mask"), "--crop-to-mask", "--crop")
    add_field_option(g, field_info(InsertRequest, "colour_match"), "--colour-match", "--color-match")
    work = math.isqrt(field_info(InsertRequest, "work_pixels").default)
    g.add_argument("--work-size", type=int, default=None, metavar="PX",
                   help=f"SDXL works on about PX x PX pixels (default {work})")
    add_field_option(p, field_info(InsertRequest, "out"), required=True)
    p.add_argument("--layers", action="store_true",
                   help="also save each result as layers (scene, subject cut out by the soft mask, hidden "
                        "mask): an .ora (Krita, GIMP, MyPaint), a .psd and a transparent -subject.png")
    add_json_flag(p)
    p.set_defaults(handler=_insert)


def _insert_request(args: argparse.Namespace) -> Any:
    from alchemy_engine.api import InsertRequest

    names = [i.name for i in field_infos(InsertRequest) if i.name not in ("project", "locate")]
    typed = given(args, names)
    if args.scene_size is not None:
        typed["scene_width"], typed["scene_height"] = args.scene_size
    if args.work_size is not None:
        typed["work_pixels"] = args.work_size * args.work_size
    return InsertRequest(project=args.project, locate=_locate(args, field_info(InsertRequest, "locate").default),
                         **typed)


def _insert(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.api import insert as run

    request = _insert_request(args)
    request.validate()
    result = run_job(out, run, request)
    for note in result.notes:
        out.info(f"note: {note}")
    payload = result.to_dict()
    if getattr(args, "layers", False):
        from alchemy_engine.api import export_layers

        payload["layered"] = [str(p) for image in result.outputs
                              for p in export_layers(image, result.scene, result.mask)]
        for path in payload["layered"]:
            out.info(f"layers: {path}")
    return payload


# --- segment -------------------------------------------------------------------------------------

def _register_segment(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("segment", help="cut a subject out of an image as a mask PNG (SAM)",
                              description="Segment one image with clicks, a box or a detector word.")
    from alchemy_engine.api import LocateOptions, SegmentRequest

    p.add_argument("image", type=Path, metavar="IMG", help=field_info(SegmentRequest, "image").help)
    _add_locate_args(p, LocateOptions())
    add_field_option(p, field_info(SegmentRequest, "device"))
    add_field_option(p, field_info(SegmentRequest, "out"), required=True, metavar="MASK.png")
    add_json_flag(p)
    p.set_defaults(handler=_segment)


def _segment(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.api import LocateOptions, SegmentRequest, segment

    if not args.points and args.box is None and args.text is None and args.mask is None:
        raise InvalidRequest("say what to segment: --point X,Y, --box X0,Y0,X1,Y1 or --text WORD")
    request = SegmentRequest(image=args.image, out=args.out, locate=_locate(args, LocateOptions()),
                             **given(args, ["device"]))
    result = run_job(out, segment, request)
    return result.to_dict()


# --- scene ---------------------------------------------------------------------------------------

def _register_scene(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scene", help="make a scene with plain SDXL (no LoRA) for later insertion",
                              description="Generate a scene that names the class noun, into the project's scenes/.")
    from alchemy_engine.api import SceneRequest

    p.add_argument("project", help=field_info(SceneRequest, "project").help)
    add_field_option(p, field_info(SceneRequest, "prompt"), required=True)
    size = field_info(SceneRequest, "width").default, field_info(SceneRequest, "height").default
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help=f"an SDXL resolution such as 1024x1024 or 1216x832 (default {size[0]}x{size[1]})")
    add_request_options(p, SceneRequest)
    add_model_arg(p)
    add_json_flag(p)
    p.set_defaults(handler=_scene)


def _scene(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.api import SceneRequest, make_scene

    typed = given(args, [i.name for i in field_infos(SceneRequest) if i.name not in ("project", "prompt")])
    if args.size is not None:
        typed["width"], typed["height"] = args.size
    request = SceneRequest(project=args.project, prompt=args.prompt, **typed)
    request.validate()
    return run_job(out, make_scene, request).to_dict()
