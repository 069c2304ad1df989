"""What an ``evaluate`` job is asked to do, and what it hands back."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.evaluation.prompts import SETS
from alchemy_engine.jobs import JobRequest
from alchemy_engine.models.eval import CLIP_CHOICES, CLIP_L

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

    project: str
    out: Path
    run: str | None = None
    lora: Path | None = None
    model: str | None = None
    device: str | None = None
    prompts: str = "auto"
    max_prompts: int = 0
    per_prompt: int = 4
    resolution: int = 1024
    steps: int = 30
    guidance: float = 7.5
    negative_prompt: str = DEFAULT_NEGATIVE
    seed: int = 0
    lora_scale: float = 1.0
    class_images: int = 8
    baseline: bool = True
    insert_into: Path | None = None
    sam: str | None = None
    detector: str | None = None
    eval_models: str | None = None
    clip_model: str = CLIP_L
    dinov2: bool = False

    def validate(self) -> None:
        _check(bool(self.project and str(self.project).strip()), "name the project to evaluate")
        _check(self.prompts in SETS or Path(self.prompts).is_file(),
               f"prompts must be {', '.join(SETS)} or a text file of prompts; got {self.prompts!r}")
        _check(0 <= self.max_prompts <= 1000, "max_prompts must be between 0 (all) and 1000")
        _check(1 <= self.per_prompt <= 64, "per_prompt (images per prompt) must be between 1 and 64")
        _check(64 <= self.resolution <= 2048 and self.resolution % 64 == 0,
               "resolution must be a multiple of 64 between 64 and 2048 (SDXL: 1024)")
        _check(1 <= self.steps <= 500, "steps must be between 1 and 500")
        _check(0.0 <= self.guidance <= 30.0, "guidance (CFG) must be between 0 and 30")
        _check(0 <= self.seed < 2**63, "seed must be a non-negative integer")
        _check(-4.0 <= self.lora_scale <= 4.0, "LoRA scale must be between -4 and 4")
        _check(0 <= self.class_images <= 256, "class_images must be between 0 (no PRES) and 256")
        _check(self.clip_model in CLIP_CHOICES, f"clip_model must be one of {', '.join(CLIP_CHOICES)}")
        if self.lora is not None:
            _check(Path(self.lora).is_file(), f"LoRA file not found: {self.lora}")
        if self.insert_into is not None:
            _check(Path(self.insert_into).is_dir(), f"--insert-into must be a folder of scene images; "
                                                    f"{self.insert_into} is not a folder")
        out = Path(self.out)
        _check(not out.exists() or out.is_dir(), f"--out must be a folder; {out} is a file")


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
