"""What an ``evaluate`` job is asked to do, and what it hands back."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.evaluation.encoders import CLIP_CHOICES, CLIP_L
from alchemy_engine.evaluation.prompts import SETS
from alchemy_engine.fields import SEED_MAX, device_setting, eval_models_setting, model_setting, setting
from alchemy_engine.jobs import JobRequest
from alchemy_engine.models.prediction import (
    cfg_rescale_setting,
    prediction_type_setting,
)
from alchemy_engine.models.samplers import (
    sampler_setting,
)

DEFAULT_NEGATIVE = "blurry, lowres, deformed, disfigured, watermark, text"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidRequest(message)


@dataclasses.dataclass(frozen=True)
class EvaluateRequest(JobRequest):
    """Evaluate a run's LoRA the DreamBench way: ``per_prompt`` images for each prompt of the set,
    DINO / CLIP-I / CLIP-T against the reference photos, PRES and DIV next to the base model's.

    ``prompts``: ``auto`` (live subjects get the live set), ``live``, ``object`` or a text file.
    ``max_prompts=0`` uses every prompt of the set. ``class_images=0`` skips PRES. ``baseline``
    also generates with the LoRA off (PRES and DIV of the base model; doubles the time).
    ``insert_into``: a folder of scene images to insert the subject into instead (subject-crop
    scores; a ``<scene>.mask.png`` beside a scene is its mask, else the detector finds the class).
    ``eval_models``: None (installed models), ``demo``/``demo:mid`` or a folder of model folders.
    """

    project: str = setting(help="project name, slug or folder", cli=False)
    out: Path = setting(help="folder for the results", cli=False)
    run: str | None = setting(None, label="Training run", help="training run id (default: the newest run with a LoRA)")
    lora: Path | None = setting(None, metavar="FILE", label="LoRA file",
                                help="a LoRA .safetensors file instead of the project's run")
    model: str | None = model_setting()
    device: str | None = device_setting()
    prompts: str = setting("auto", label="Prompt set",
                           help="auto (live set for pets and people, else object), live, object, or a text file "
                                "(one prompt a line; {token} and {class_noun} are filled in)")
    max_prompts: int = setting(0, minimum=0, maximum=1000, label="Prompts used",
                               help="use only the first N prompts of the set (0: all 25)")
    per_prompt: int = setting(4, minimum=1, maximum=64, label="Images per prompt",
                              help="images per prompt, seeds SEED, SEED+1, …")
    resolution: int = setting(1024, minimum=64, maximum=2048, multiple_of=64, label="Resolution",
                              help="image size in pixels, square, a multiple of 64 (SDXL: 1024)")
    steps: int = setting(30, minimum=1, maximum=500, label="Steps", help="denoising steps")
    guidance: float = setting(7.5, minimum=0.0, maximum=30.0, label="Guidance (CFG)", help="CFG scale")
    negative_prompt: str = setting(DEFAULT_NEGATIVE, label="Negative prompt", help="negative prompt")
    sampler: str = sampler_setting()
    guidance_rescale: float | None = cfg_rescale_setting()
    prediction_type: str = prediction_type_setting()
    seed: int = setting(0, minimum=0, maximum=SEED_MAX, label="Seed", help="first seed")
    lora_scale: float = setting(1.0, minimum=-4.0, maximum=4.0, label="LoRA scale", help="LoRA weight")
    class_images: int = setting(8, minimum=0, maximum=256, label="Class images",
                                help="images of the plain class prompt for PRES (0 skips PRES)")
    baseline: bool = setting(True, label="Base-model baseline",
                             help="also generate with the LoRA off, for the base model's PRES and DIV (doubles "
                                  "the time)")
    insert_into: Path | None = setting(None, metavar="SCENES_DIR", label="Insert into",
                                       help="a folder of scenes: insert the subject into each (a SCENE.mask.png "
                                            "beside a scene is its mask) and score the subject crop")
    sam: str | None = setting(None, metavar="PTH|demo", label="SAM model", remember=False,
                              help="SAM checkpoint for --insert-into (default: the best in models/sam)")
    detector: str | None = setting(None, metavar="FOLDER|demo", label="Detector", remember=False,
                                   help="Grounding DINO folder for --insert-into (default: the first in "
                                        "models/detector)")
    eval_models: str | None = eval_models_setting()
    clip_model: str = setting(CLIP_L, choices=CLIP_CHOICES, label="CLIP model",
                              help="the CLIP model of CLIP-I and CLIP-T")
    dinov2: bool = setting(False, label="DINOv2", help="also score with DINOv2 (facebook/dinov2-base)")
    # Reference guidance in --insert-into (studies/reference_ab.py)
    ip_adapter: str | None = setting(None, metavar="FILE|demo|demo-plus", label="Reference adapter",
                                     help="insert with reference guidance from this IP-Adapter (with --insert-into)")
    ip_scale: float = setting(0.5, minimum=0.0, maximum=1.5, label="Reference strength",
                              help="reference guidance strength")
    ip_ab: bool = setting(False, label="Reference A/B",
                          help="insert every scene twice with the same seeds, guidance off and on, and report "
                               "the paired differences with 95 % intervals")
    ip_holdout: float = setting(0.5, minimum=0.1, maximum=0.9, label="Held-out photos",
                                help="share of the photos guidance never sees; the A/B scores against them only")

    def validate(self) -> None:
        _check(bool(self.project and str(self.project).strip()), "name the project to evaluate")
        super().validate()
        _check(self.prompts in SETS or Path(self.prompts).is_file(),
               f"prompts must be {', '.join(SETS)} or a text file of prompts; got {self.prompts!r}")
        if self.lora is not None:
            _check(Path(self.lora).is_file(), f"LoRA file not found: {self.lora}")
        if self.insert_into is not None:
            _check(Path(self.insert_into).is_dir(), f"--insert-into must be a folder of scene images; "
                                                    f"{self.insert_into} is not a folder")
        out = Path(self.out)
        _check(not out.exists() or out.is_dir(), f"--out must be a folder; {out} is a file")
        _check(self.ip_adapter is None or self.insert_into is not None,
               "--ip-adapter guides insertions: use it with --insert-into SCENES_DIR")
        _check(not self.ip_ab or self.ip_adapter is not None, "--ip-ab compares guidance off and on: name the "
                                                               "adapter with --ip-adapter FILE|demo")


@dataclasses.dataclass(frozen=True)
class EvaluateResult:
    out_dir: Path
    summary_path: Path
    scores_csv: Path
    contact_sheet: Path
    summary: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "summary": str(self.summary_path), "scores_csv": str(self.scores_csv),
                "contact_sheet": str(self.contact_sheet), "scores": self.summary.get("mean", {}),
                "pres": self.summary.get("pres"), "div": self.summary.get("div"),
                "models": self.summary.get("models"), "notes": list(self.notes)}
