"""Grounding DINO: find objects from a text prompt ("dog", "a red mug") as pixel boxes.

The real model (e.g. ``IDEA-Research/grounding-dino-tiny`` or ``-base`` saved as a folder) is loaded
from disk with transformers' Auto classes and ``local_files_only=True``; nothing is downloaded.
The demo detector (``models.demo.detector``) is a tiny random model of the same classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError

DETECTOR_HINT = (
    "put a Grounding DINO folder (config.json, model.safetensors, preprocessor_config.json and the "
    "tokenizer files, e.g. IDEA-Research/grounding-dino-tiny saved with save_pretrained) under "
    "models/detector/<name>/"
)

@dataclass(frozen=True)
class Detection:
    """One found object: ``box`` is (x0, y0, x1, y1) in pixels of the input image."""

    box: tuple[float, float, float, float]
    score: float
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": self.score, "label": self.label}


class TextDetector:
    """A loaded Grounding DINO model and its processor; ``detect`` is cheap to call repeatedly."""

    def __init__(self, model: Any, processor: Any, device: str = "cpu", name: str = "") -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.name = name

    def detect(self, image: Any, text: str, box_threshold: float = 0.35,
               text_threshold: float = 0.25) -> list[Detection]:
        """Boxes for ``text`` in ``image`` (a PIL image), best score first, clipped to the image.

        ``text`` is a phrase or several separated by "." ("dog. ball."); Grounding DINO expects
        lower case ending with a period, which is added here.
        """
        import torch

        prompt = _normalise_prompt(text)
        rgb = image.convert("RGB")
        inputs = self.processor(images=rgb, text=prompt, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=[(rgb.height, rgb.width)],
        )[0]
        # Predicted boxes may reach past the border; clip them so callers get pixels of the image.
        limits = torch.tensor([rgb.width, rgb.height, rgb.width, rgb.height], dtype=torch.float32)
        boxes = results["boxes"].float().cpu().clamp(min=0).minimum(limits)
        found = [
            Detection(box=_box(box.tolist()), score=float(score), label=str(label).strip())
            for box, score, label in zip(boxes, results["scores"], results["text_labels"])
        ]
        return sorted(found, key=lambda d: d.score, reverse=True)


def _normalise_prompt(text: str) -> str:
    prompt = " ".join(text.strip().lower().split())
    if not prompt:
        raise ValueError("the detector needs a text prompt, e.g. 'dog'")
    return prompt if prompt.endswith(".") else prompt + "."


def _box(values: list[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1


def detector_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a loadable Grounding DINO folder, or None when it looks usable
    (config and safetensors weights present; the weights themselves are checked when loading)."""
    config = folder / "config.json"
    if not config.is_file():
        return "no config.json: not a model folder saved by transformers"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        return f"config.json cannot be read ({exc.__class__.__name__})"
    if model_type != "grounding-dino":
        return f"config.json describes a {model_type!r} model, not 'grounding-dino'"
    if not any(folder.glob("*.safetensors")):
        has_bin = any(folder.glob("*.bin"))
        return "no .safetensors weights" + (" (only pickle .bin files, which the app never opens)"
                                            if has_bin else "")
    return None


def load_detector(folder: str | Path, device: str = "cpu") -> TextDetector:
    """Load a Grounding DINO folder from disk (resolve ``demo`` with the inventory first); never
    touches the network."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelError(f"detector folder not found: {folder}; {DETECTOR_HINT}")
    problem = detector_folder_problem(folder)
    if problem:
        raise ModelError(f"{folder} is not a usable Grounding DINO folder: {problem}; {DETECTOR_HINT}")
    from alchemy_engine.models.resident import building_models

    try:
        with building_models():
            processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            model = AutoModelForZeroShotObjectDetection.from_pretrained(
                folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the detector in {folder}: {exc}") from exc
    return TextDetector(model.to(device).eval(), processor, device=device, name=folder.name)
