"""`insert` (stage 2: put the trained subject into a scene) and `segment` (a mask on its own)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, add_model_arg, run_job
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


def _add_locate_args(parser: argparse.ArgumentParser, grow: int, feather: float) -> None:
    group = parser.add_argument_group(
        "mask sources", "clicks and/or a box go to SAM; --mask replaces or combines with that; "
                        "with none of them the detector looks for --text (insert: the class noun)")
    group.add_argument("--point", action="append", type=parse_point, default=[], metavar="X,Y[,0|1]",
                       help="a click in pixels: 1 (default) on the subject, 0 on what is not; repeatable")
    group.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="a box around the subject, pixels")
    group.add_argument("--mask", type=Path, metavar="PNG", help="your own mask (white = subject), scene-sized")
    group.add_argument("--mask-mode", choices=("replace", "union", "intersect"), default="replace",
                       help="how --mask combines with the SAM mask when both are given (default: replace)")
    group.add_argument("--text", metavar="WORD", help="what the detector looks for")
    group.add_argument("--instance", default="best", metavar="best|all|N",
                       help="which detection to use when several are found: the best score (default), "
                            "all of them, or the N-th best (0 = best)")
    group.add_argument("--sam", metavar="PTH|demo", help="SAM checkpoint (default: the first in models/sam)")
    group.add_argument("--detector", metavar="FOLDER|demo",
                       help="Grounding DINO folder (default: the first in models/detector)")
    group.add_argument("--box-threshold", type=float, default=0.3, help="detector box score cut-off")
    group.add_argument("--text-threshold", type=float, default=0.25, help="detector text score cut-off")
    shape = parser.add_argument_group("mask shape")
    shape.add_argument("--grow", type=int, default=grow, metavar="PX", help=f"grow (or, < 0, shrink) the "
                                                                              f"mask (default {grow})")
    shape.add_argument("--feather", type=float, default=feather, metavar="PX",
                       help=f"soft edge outside the grown mask (default {feather:g})")
    shape.add_argument("--no-fill-holes", dest="fill_holes", action="store_false",
                       help="keep holes inside the mask")


def _locate(args: argparse.Namespace) -> Any:
    from alchemy_engine.insertion.request import LocateOptions

    return LocateOptions(
        points=tuple(args.point), box=args.box, mask=args.mask, mask_mode=args.mask_mode, text=args.text,
        instance=str(args.instance), sam=args.sam, detector=args.detector,
        box_threshold=args.box_threshold, text_threshold=args.text_threshold,
        grow=args.grow, feather=args.feather, fill_holes=args.fill_holes)


# --- insert --------------------------------------------------------------------------------------

def _register_insert(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "insert", help="put the trained subject into a scene",
        description="Put the project's trained subject into a scene. With no mask source the "
                    "detector finds the class noun, SAM cuts it out and SDXL repaints it with the LoRA.")
    p.add_argument("project", help="project name, slug or folder")
    p.add_argument("--run", help="training run id (default: the newest run with a LoRA)")
    p.add_argument("--lora", type=Path, help="a LoRA .safetensors file instead of the project's run")
    add_model_arg(p)
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    scene = p.add_mutually_exclusive_group(required=True)
    scene.add_argument("--scene", type=Path, metavar="IMG", help="scene photo (any size)")
    scene.add_argument("--scene-prompt", metavar="TEXT",
                       help="generate the scene with plain SDXL; name the class noun: 'a dog on a beach'")
    p.add_argument("--scene-seed", type=int, help="seed of the generated scene (default: --seed)")
    p.add_argument("--scene-size", type=parse_size, default=(1024, 1024), metavar="WxH",
                   help="generated scene size, multiples of 64 (default 1024x1024; also 1216x832, 832x1216 …)")
    p.add_argument("--scene-steps", type=int, default=30, help="steps for the generated scene (default 30)")
    _add_locate_args(p, grow=8, feather=8.0)
    g = p.add_argument_group("insertion")
    g.add_argument("--prompt", help="insertion prompt (default: the scene prompt with 'dog' → 'sks dog')")
    g.add_argument("--negative-prompt", help="negative prompt")
    g.add_argument("--strength", type=float, default=0.85, help="how much to repaint, (0, 1] (default 0.85)")
    g.add_argument("--steps", type=int, default=30, help="denoising steps (default 30)")
    g.add_argument("--guidance", "--cfg", type=float, default=7.0, help="CFG scale (default 7)")
    g.add_argument("--lora-scale", type=float, default=1.0, help="LoRA weight (default 1)")
    g.add_argument("--seed", type=int, help="first seed; variations use seed+1, seed+2 … (default: random)")
    g.add_argument("-n", "--variations", type=int, default=1, help="how many images (default 1)")
    g.add_argument("--blur", type=float, default=0.0, metavar="PX",
                   help="blur the masked region before repainting, as the paper does (default 0: off)")
    g.add_argument("--no-crop", dest="crop_to_mask", action="store_false",
                   help="repaint the whole frame at about 1 MP instead of a box around the mask")
    g.add_argument("--crop-padding", type=float, default=0.25,
                   help="context around the mask box, as a fraction of its size (default 0.25)")
    g.add_argument("--work-size", type=int, default=1024, metavar="PX",
                   help="SDXL works on about PX x PX pixels (default 1024)")
    g.add_argument("--colour-match", "--color-match", dest="colour_match", action="store_true",
                   help="match the repainted region's colours to the scene")
    g.add_argument("--rank", action="store_true",
                   help="score every variation (DINO on the subject, CLIP-T) and list them best first; "
                        "needs the evaluation models (python main.py models)")
    g.add_argument("--eval-models", metavar="FOLDER|demo",
                   help="where the evaluation models are (default: models/eval/ or the Hugging Face cache)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the finished images (they are also kept in the project's outputs/)")
    add_json_flag(p)
    p.set_defaults(handler=_insert)


def _insert_request(args: argparse.Namespace) -> Any:
    from alchemy_engine.insertion.request import DEFAULT_NEGATIVE, InsertRequest

    return InsertRequest(
        project=args.project, out=args.out, run=args.run, lora=args.lora, model=args.model,
        device=args.device, scene=args.scene, scene_prompt=args.scene_prompt, scene_seed=args.scene_seed,
        scene_width=args.scene_size[0], scene_height=args.scene_size[1], scene_steps=args.scene_steps,
        locate=_locate(args), prompt=args.prompt,
        negative_prompt=DEFAULT_NEGATIVE if args.negative_prompt is None else args.negative_prompt,
        strength=args.strength, steps=args.steps, guidance=args.guidance, lora_scale=args.lora_scale,
        seed=args.seed, variations=args.variations, blur=args.blur, crop_to_mask=args.crop_to_mask,
        crop_padding=args.crop_padding, work_pixels=args.work_size * args.work_size,
        colour_match=args.colour_match, rank=args.rank, eval_models=args.eval_models)


def _insert(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.insertion import run

    request = _insert_request(args)
    request.validate()
    result = run_job(out, run, request)
    for note in result.notes:
        out.info(f"note: {note}")
    return result.to_dict()


# --- segment -------------------------------------------------------------------------------------

def _register_segment(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("segment", help="cut a subject out of an image as a mask PNG (SAM)",
                              description="Segment one image with clicks, a box or a detector word.")
    p.add_argument("image", type=Path, metavar="IMG")
    _add_locate_args(p, grow=0, feather=0.0)
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument("--out", type=Path, required=True, metavar="MASK.png", help="where to write the mask")
    add_json_flag(p)
    p.set_defaults(handler=_segment)


def _segment(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.insertion import SegmentRequest, segment

    if not args.point and args.box is None and args.text is None and args.mask is None:
        raise InvalidRequest("say what to segment: --point X,Y, --box X0,Y0,X1,Y1 or --text WORD")
    request = SegmentRequest(image=args.image, out=args.out, locate=_locate(args), device=args.device)
    result = run_job(out, segment, request)
    return result.to_dict()


# --- scene ---------------------------------------------------------------------------------------

def _register_scene(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scene", help="make a scene with plain SDXL (no LoRA) for later insertion",
                              description="Generate a scene that names the class noun, into the project's scenes/.")
    p.add_argument("project")
    p.add_argument("--prompt", required=True, help='a prompt naming the class noun, e.g. "a dog on a beach"')
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--size", type=parse_size, default=(1024, 1024), metavar="WxH",
                   help="an SDXL resolution such as 1024x1024 or 1216x832 (default 1024x1024)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=7.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    add_model_arg(p)
    add_json_flag(p)
    p.set_defaults(handler=_scene)


def _scene(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    from alchemy_engine.insertion import SceneRequest, make_scene

    extra = {"negative_prompt": args.negative_prompt} if args.negative_prompt is not None else {}
    request = SceneRequest(project=args.project, prompt=args.prompt, model=args.model, width=args.size[0],
                           height=args.size[1], steps=args.steps, guidance=args.guidance, seed=args.seed,
                           device=args.device, **extra)
    request.validate()
    return run_job(out, make_scene, request).to_dict()
