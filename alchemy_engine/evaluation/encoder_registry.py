"""The four evaluation encoders by folder name: repo id, model family and what each score is for.
Both the loader (``evaluation.encoders``) and the demo builder (``evaluation.demo_encoders``) read it."""

from __future__ import annotations

from dataclasses import dataclass

DINO = "dino-vits16"
CLIP_L = "clip-vit-large-patch14"
CLIP_B = "clip-vit-base-patch32"
DINOV2 = "dinov2-base"
CLIP_CHOICES = (CLIP_L, CLIP_B)
DEMO_SOURCES = ("demo", "demo:tiny", "demo:mid")


@dataclass(frozen=True)
class EvalModelSpec:
    name: str  # the folder name under models/eval/
    repo_id: str
    family: str  # "vit" | "clip" | "dinov2"
    use: str


EVAL_MODELS = {spec.name: spec for spec in (
    EvalModelSpec(DINO, "facebook/dino-vits16", "vit", "DINO subject similarity, PRES, DIV"),
    EvalModelSpec(CLIP_L, "openai/clip-vit-large-patch14", "clip", "CLIP-I and CLIP-T (default)"),
    EvalModelSpec(CLIP_B, "openai/clip-vit-base-patch32", "clip", "CLIP-I and CLIP-T (--clip-model)"),
    EvalModelSpec(DINOV2, "facebook/dinov2-base", "dinov2", "optional DINOv2 subject similarity"),
)}
