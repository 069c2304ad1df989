"""Requests and results of stage 2 (insertion) and of segmentation on its own.

Plain frozen dataclasses that round-trip through JSON (see :mod:`alchemy_engine.jobs`); each
``validate()`` raises :class:`InvalidRequest` with a message that says what to change, before any
model is loaded.

Mask sources, in the order they are applied: SAM from ``points`` and/or ``box`` (the user's
prompts), else the detector's boxes for ``text`` (automatic mode, the paper's route); then the
user's ``mask`` PNG replaces, unites with or intersects that mask (``mask_mode``). With only a
``mask`` and no prompts the PNG is the mask.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import SEED_MAX, device_setting, eval_models_setting, model_setting, setting
from alchemy_engine.jobs import JobRequest
from alchemy_engine.memory.inference import MAX_BATCH
from alchemy_engine.models.prediction import (
    cfg_rescale_setting,
    prediction_type_setting,
)
from alchemy_engine.models.samplers import (
    sampler_setting,
)

MASK_MODES = ("replace", "union", "intersect")
IP_MODES = ("full", "style", "layout")
BATCH_SIZES = ("auto", *(str(n) for n in range(1, MAX_BATCH + 1)))
DEFAULT_NEGATIVE = "blurry, lowres, deformed, disfigured, watermark, text"
SDXL_RESOLUTIONS = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216),
                    (1344, 768), (768, 1344), (1536, 640), (640, 1536))

Point = tuple[float, float, int]
BoxF = tuple[float, float, float, float]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidRequest(message)


def _check_prompts(points: tuple, box: BoxF | None, instance: str) -> None:
    for point in points:
        _check(len(point) == 3 and int(point[2]) in (0, 1),
               f"a point is X,Y or X,Y,LABEL with LABEL 1 (subject) or 0 (not subject); got {point}")
        _check(point[0] >= 0 and point[1] >= 0, f"point {point[:2]} lies outside the image")
    if box is not None:
        _check(len(box) == 4 and box[0] < box[2] and box[1] < box[3] and min(box) >= 0,
               f"a box is X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1; got {box}")
    _check(instance in ("best", "all") or instance.isdigit(),
           f"instance must be 'best', 'all' or an index (0 = highest score); got {instance!r}")


def parse_range(text: str) -> tuple[float, float]:
    """``START:END`` fractions of the steps run, 0 ≤ START < END ≤ 1; ValueError says what is wrong."""
    start, sep, end = str(text).partition(":")
    try:
        values = float(start), float(end)
    except ValueError:
        values = (-1.0, -1.0)
    if not sep or not 0.0 <= values[0] < values[1] <= 1.0:
        raise ValueError(f"the reference range is START:END with 0 ≤ START < END ≤ 1, such as 0:1 or 0.2:0.8; "
                         f"got {text!r}")
    return values


@dataclass(frozen=True)
class LocateOptions(JobRequest):
    """How to find the subject and shape its mask (shared by insert and segment)."""

    points: tuple[Point, ...] = setting((), metavar="X,Y[,0|1]", help="a click in pixels: 1 (default) on "
                                        "the subject, 0 on what is not; repeatable")
    box: BoxF | None = setting(None, metavar="X0,Y0,X1,Y1", help="a box around the subject, pixels")
    mask: Path | None = setting(None, metavar="PNG", help="your own mask, scene-sized: white = subject, grey = "
                                 "blended in part (a soft brush), black = kept exactly")
    mask_mode: str = setting("replace", choices=MASK_MODES, label="Mask mode",
                             help="how your mask combines with the SAM mask when both are given")
    text: str | None = setting(None, metavar="WORD", help="what the detector looks for")
    instance: str = setting("best", metavar="best|all|N", label="Instance",
                            help="which detection to use when several are found: the best score, all of "
                                 "them, or the N-th best (0 = best)")
    # the models of this computer, never remembered with a workspace
    sam: str | None = setting(None, metavar="PTH|demo", label="SAM model", remember=False,
                              help="SAM checkpoint (default: the best in models/sam)")
    detector: str | None = setting(None, metavar="FOLDER|demo", label="Detector", remember=False,
                                   help="Grounding DINO folder (default: the first in models/detector)")
    box_threshold: float = setting(0.3, minimum=0.0, maximum=1.0, label="Box threshold",
                                   help="detector box score cut-off")
    text_threshold: float = setting(0.25, minimum=0.0, maximum=1.0, label="Text threshold",
                                    help="detector text score cut-off")
    grow: int = setting(0, minimum=-1024, maximum=1024, metavar="PX", label="Grow mask",
                        help="grow (or, below 0, shrink) the mask, pixels")
    feather: float = setting(0.0, minimum=0.0, maximum=1024.0, metavar="PX", label="Feather",
                             help="soft edge outside the grown mask, pixels")
    fill_holes: bool = setting(True, label="Fill holes", help="fill holes inside the mask")

    @property
    def has_prompts(self) -> bool:
        return bool(self.points) or self.box is not None

    @property
    def automatic(self) -> bool:
        """No points, box or mask: detect the class noun (or ``text``) with the detector."""
        return not self.has_prompts and self.mask is None

    def validate(self) -> None:
        super().validate()
        _check_prompts(self.points, self.box, self.instance)
        if self.mask is not None:
            _check(Path(self.mask).is_file(), f"mask file not found: {self.mask}")
        if self.text is not None:
            _check(bool(self.text.strip()), "the detector text is empty; give a word such as 'dog'")


@dataclass(frozen=True)
class SegmentRequest(JobRequest):
    """Segment one image to a mask PNG: ``python main.py segment IMG ... --out MASK.png``."""

    image: Path = setting(help="the image to segment", cli=False)
    out: Path = setting(help="where to write the mask PNG", cli=False)
    locate: LocateOptions = setting(default_factory=LocateOptions, help="how to find the subject")
    device: str | None = device_setting()

    def validate(self) -> None:
        super().validate()
        _check(Path(self.image).is_file(), f"image not found: {self.image}")
        _check(Path(self.out).suffix.lower() == ".png", f"the mask is written as PNG; use a .png name, "
                                                       f"not {Path(self.out).name}")
        _check(not self.locate.automatic or bool(self.locate.text),
               "say what to segment: --point X,Y, --box X0,Y0,X1,Y1, --text WORD or --mask FILE")


@dataclass(frozen=True)
class InsertRequest(JobRequest):
    """Put the project's trained subject into a scene (see the module docstring for masks)."""

    project: str = setting(help="project name, slug or folder", cli=False)
    out: Path | None = setting(None, cli=False, metavar="DIR",
                               help="folder for the finished images (they are also kept in the project's "
                                    "outputs/)")
    run: str | None = setting(None, label="Training run", remember=False,  # the newest LoRA is picked
                              help="training run id (default: the newest run with a LoRA)")
    lora: Path | None = setting(None, metavar="FILE", label="LoRA file",
                                help="a subject LoRA .safetensors file (SDXL; kohya, diffusers or PEFT "
                                     "layout) instead of the project's run")
    model: str | None = model_setting()
    inpaint_model: str | None = setting(None, metavar="FILE|demo", label="Insertion model",
                                        help="an SDXL inpainting model (9-channel UNet: a .safetensors file, a "
                                             "diffusers folder or 'demo') that repaints the mask instead of the "
                                             "base model, with the subject LoRA on it; scenes stay the base model's")
    device: str | None = device_setting()
    compile: str = setting("auto", choices=("auto", "on", "off"), label="Compile the UNet",
                           help="torch.compile the UNet: faster steps after a one-off compile per image size; "
                                "auto: on for NVIDIA GPUs, off on the CPU and Apple GPUs")
    # Scene: an image file, or generated by unmodified SDXL from a prompt naming the class noun.
    scene: Path | None = setting(None, cli=False, metavar="IMG", help="scene photo (any size)")
    scene_prompt: str | None = setting(None, cli=False, metavar="TEXT", label="Scene prompt",
                                       help="generate the scene with plain SDXL; name the class noun: "
                                            "'a dog on a beach'")
    scene_seed: int | None = setting(None, minimum=0, maximum=SEED_MAX, label="Scene seed",
                                     help="seed of the generated scene (default: the insertion seed)")
    scene_width: int = setting(1024, minimum=64, maximum=4096, multiple_of=64, cli=False, label="Scene width",
                               help="generated scene width, a multiple of 64 (SDXL: about 1 MP, e.g. 1216x832)")
    scene_height: int = setting(1024, minimum=64, maximum=4096, multiple_of=64, cli=False, label="Scene height",
                                help="generated scene height, a multiple of 64")
    scene_steps: int = setting(30, minimum=1, maximum=500, label="Scene steps",
                               help="steps for the generated scene")
    # Locate and shape the mask.
    locate: LocateOptions = setting(default_factory=lambda: LocateOptions(grow=8, feather=8.0),
                                    help="how to find the subject and shape its mask")
    # Masked img2img with the LoRA.
    prompt: str | None = setting(None, label="Prompt", remember=False,  # it belongs to a scene
                                 help="insertion prompt (default: the scene prompt with 'dog' → 'sks dog')")
    negative_prompt: str = setting(DEFAULT_NEGATIVE, label="Negative prompt", help="negative prompt")
    strength: float = setting(0.85, minimum=0.0, exclusive_minimum=True, maximum=1.0, label="Strength",
                              help="how much to repaint, (0, 1]")
    steps: int = setting(30, minimum=1, maximum=500, label="Steps", help="denoising steps")
    guidance: float = setting(7.0, minimum=0.0, maximum=30.0, label="Guidance (CFG)", help="CFG scale")
    sampler: str = sampler_setting()
    guidance_rescale: float | None = cfg_rescale_setting()
    prediction_type: str = prediction_type_setting()
    lora_scale: float = setting(1.0, minimum=-4.0, maximum=4.0, label="LoRA scale", help="LoRA weight")
    # An optional second LoRA (a style, from anywhere), stacked on the subject's at its own scale.
    style_lora: Path | None = setting(None, metavar="FILE", label="Style LoRA",
                                      help="a second SDXL LoRA (a style) stacked on the subject's")
    style_lora_scale: float = setting(0.8, minimum=-4.0, maximum=4.0, label="Style LoRA scale",
                                      help="style LoRA weight")
    seed: int | None = setting(None, minimum=0, maximum=SEED_MAX, label="Seed",
                               help="first seed; variations use seed+1, seed+2 … (default: random)")
    variations: int = setting(1, minimum=1, maximum=64, label="Variations", help="how many images")
    batch_size: str = setting("auto", choices=BATCH_SIZES, label="Batch size",
                              help="variations repainted in one pipeline call (the same images as one at a "
                                   "time, faster on a GPU); auto: as many as the GPU's free memory holds, "
                                   "1 on the CPU")
    blur: float = setting(0.0, minimum=0.0, maximum=256.0, metavar="PX", label="Blur first",
                          help="blur the masked region before repainting, as the paper does (0: off)")
    crop_to_mask: bool = setting(True, label="Crop to mask",
                                 help="repaint a box around the mask at about 1 MP (off: the whole frame)")
    crop_padding: float = setting(0.25, minimum=0.0, maximum=4.0, label="Crop padding",
                                  help="context around the mask box, as a fraction of its size")
    work_pixels: int = setting(1024 * 1024, minimum=64 * 64, maximum=4096 * 4096, cli=False,
                               label="Work size", help="SDXL works on about this many pixels")
    colour_match: bool = setting(False, label="Colour match",
                                 help="match the repainted region's colours to the scene")
    # Rank the variations by subject fidelity (evaluation/ranking.py); skipped with a note when the
    # evaluation models are missing.
    rank: bool = setting(False, label="Rank by fidelity",
                         help="score every variation (subject DINO on the inserted region, CLIP-T) and order "
                              "the outputs best first; skipped with a note when the evaluation models are missing")
    eval_models: str | None = eval_models_setting()
    # Reference guidance: an IP-Adapter steers the repaint with the subject's own photos (reference.py).
    ip_adapter: str | None = setting(None, metavar="FILE|demo|demo-plus", label="Reference adapter",
                                     help="an SDXL IP-Adapter .safetensors file: the subject's photos steer the "
                                          "repaint beside its LoRA (default: off)")
    ip_scale: float = setting(0.5, minimum=0.0, maximum=1.5, label="Reference strength",
                              help="how strongly the reference photos steer (0: off)")
    ip_range: str = setting("0:1", metavar="START:END", label="Reference range",
                            help="the part of the steps run that the references steer, as fractions")
    ip_mode: str = setting("full", choices=IP_MODES, label="Reference mode",
                           help="full: every cross-attention layer; style: only the style block; layout: only "
                                "the composition block (both found in the model's own layout)")
    ip_photos: str | None = setting(None, metavar="NAME,NAME", label="Reference photos",
                                    help="stored photo names, comma-separated (default: the photos with subject "
                                         "masks, at most 4)")
    ip_encoder: str | None = setting(None, metavar="FOLDER|FILE", label="CLIP vision encoder",
                                     help="the adapter's image encoder (default: found beside the adapter or in "
                                          "<data folder>/models/clip_vision)")
    ip_crop: bool = setting(True, label="Crop references to the subject",
                            help="show the adapter each photo cropped to its subject mask, background grey")
    ip_inside_mask: bool = setting(True, label="Reference inside the mask only",
                                   help="limit the references' attention to the repainted region")

    def validate(self) -> None:
        _check(bool(self.project and self.project.strip()), "name the project to insert from")
        super().validate()
        _check((self.scene is None) != (self.scene_prompt is None),
               "give exactly one scene: --scene IMAGE or --scene-prompt TEXT")
        if self.scene is not None:
            _check(Path(self.scene).is_file(), f"scene image not found: {self.scene}")
        if self.scene_prompt is not None:
            _check(bool(self.scene_prompt.strip()), "the scene prompt is empty; describe a scene with the "
                                                    "class noun, e.g. 'a dog on a beach'")
        _check(self.inpaint_model is None or bool(self.inpaint_model.strip()),
               "the insertion model is empty; name an SDXL inpainting file or folder, or leave it out")
        # the adapter goes on the base model's UNet; an inpainting model repaints with its own
        _check(self.inpaint_model is None or self.ip_adapter is None or self.ip_scale == 0,
               "reference guidance (IP-Adapter) does not work with an insertion model yet: leave out "
               "the insertion model, or turn reference guidance off")
        if self.lora is not None:
            _check(Path(self.lora).is_file(), f"LoRA file not found: {self.lora}")
        if self.style_lora is not None:
            _check(Path(self.style_lora).is_file(), f"style LoRA file not found: {self.style_lora}")
            _check(self.lora is None or Path(self.lora).resolve() != Path(self.style_lora).resolve(),
                   "the style LoRA is the subject LoRA itself; choose another file or leave it out")
        _check(int(self.steps * self.strength) >= 1,
               f"{self.steps} steps at strength {self.strength} leave no denoising step; raise either")
        try:
            parse_range(self.ip_range)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        if self.ip_adapter is not None and self.ip_adapter not in ("demo", "demo-plus"):
            _check(Path(self.ip_adapter).expanduser().exists(), f"IP-Adapter file not found: {self.ip_adapter}")

    def seeds(self, first: int) -> list[int]:
        """``first``, ``first + 1`` …, wrapping round within the one seed range."""
        return [(first + i) % (SEED_MAX + 1) for i in range(self.variations)]

    def with_seed(self, seed: int) -> InsertRequest:
        return dataclasses.replace(self, seed=seed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class SegmentResult:
    mask: Path
    bbox: tuple[int, int, int, int] | None  # None only for an empty mask, which build_mask refuses
    area_fraction: float
    score: float | None
    detections: tuple[dict, ...] = ()
    embedding_cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class InsertResult:
    outputs: tuple[Path, ...]
    project_outputs: tuple[Path, ...]
    mask: Path
    scene: Path
    seeds: tuple[int, ...]
    prompt: str
    lora: Path
    crop_box: tuple[int, int, int, int]
    work_size: tuple[int, int]
    detections: tuple[dict, ...] = ()
    notes: tuple[str, ...] = ()
    style_lora: Path | None = None
    scores: tuple[dict, ...] = ()  # with rank: one per output, same order (best first)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class SceneRequest(JobRequest):
    """Make a scene with unmodified SDXL (every LoRA off) into the project's ``scenes/``."""

    project: str = setting(help="project name, slug or folder", cli=False)
    prompt: str = setting(help="a prompt naming the class noun, e.g. 'a dog on a beach'", cli=False)
    negative_prompt: str = setting(DEFAULT_NEGATIVE, label="Negative prompt", help="negative prompt")
    model: str | None = model_setting()
    width: int = setting(1024, minimum=64, maximum=4096, multiple_of=64, cli=False, label="Width",
                         help="scene width, a multiple of 64 (SDXL: about 1 MP, e.g. 1216x832)")
    height: int = setting(1024, minimum=64, maximum=4096, multiple_of=64, cli=False, label="Height",
                          help="scene height, a multiple of 64")
    steps: int = setting(30, minimum=1, maximum=500, label="Steps", help="denoising steps")
    guidance: float = setting(7.0, minimum=0.0, maximum=30.0, label="Guidance (CFG)", help="CFG scale")
    sampler: str = sampler_setting()
    guidance_rescale: float | None = cfg_rescale_setting()
    prediction_type: str = prediction_type_setting()
    seed: int = setting(0, minimum=0, maximum=SEED_MAX, label="Seed", help="seed of the scene")
    device: str | None = device_setting()
    compile: str = setting("auto", choices=("auto", "on", "off"), label="Compile the UNet",
                           help="torch.compile the UNet: faster steps after a one-off compile per image size; "
                                "auto: on for NVIDIA GPUs, off on the CPU and Apple GPUs")

    def validate(self) -> None:
        _check(bool(self.project and self.project.strip()), "name the project to make the scene in")
        super().validate()
        _check(bool(self.prompt.strip()), "the scene prompt is empty; describe a scene with the class noun, "
                                          "e.g. 'a dog on a beach'")


@dataclass(frozen=True)
class SceneResult:
    path: Path
    image: Any  # PIL.Image.Image, the saved scene

    def to_dict(self) -> dict[str, Any]:
        return {"scene": str(self.path), "size": list(self.image.size)}
