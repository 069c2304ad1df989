"""Grounding DINO: find objects from a text prompt ("dog", "a red mug") as pixel boxes.

The real model (e.g. ``IDEA-Research/grounding-dino-tiny`` or ``-base`` saved as a folder) is loaded
from disk with transformers' Auto classes and ``local_files_only=True``; nothing is downloaded.
``save_tiny_grounding_dino`` writes a random-weight model of the same architecture, with a small
hand-written WordPiece vocabulary, for the demo and the tests: it goes through exactly the same
processor and post-processing code as the real one.
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

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "a an the of on in at with and or to from by near under over behind next its his her their "
    "dog dogs cat cats person people man woman child boy girl baby face head hand hair eye "
    "mug cup bottle glass bowl plate chair table sofa couch bed car bike bicycle bus truck "
    "boat plane bird horse cow sheep bear toy ball teddy shoe bag hat shirt dress book phone "
    "laptop lamp vase plant flower tree grass sky cloud sun sea water beach sand rock mountain "
    "snow road street city house room kitchen garden park field forest wall floor window door "
    "red green blue yellow black white brown gray grey orange pink purple small big large old "
    "young sitting standing lying running photo picture object thing subject animal"
).split()
_CHARS = list(".,!?;:'\"-()[]/&+*#@$%0123456789abcdefghijklmnopqrstuvwxyz")


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
            Detection(box=tuple(float(v) for v in box.tolist()), score=float(score), label=str(label).strip())
            for box, score, label in zip(boxes, results["scores"], results["text_labels"])
        ]
        return sorted(found, key=lambda d: d.score, reverse=True)


def _normalise_prompt(text: str) -> str:
    prompt = " ".join(text.strip().lower().split())
    if not prompt:
        raise ValueError("the detector needs a text prompt, e.g. 'dog'")
    return prompt if prompt.endswith(".") else prompt + "."


def is_detector_folder(folder: Path) -> bool:
    """True when ``folder`` holds a Grounding DINO config (weights are checked when loading)."""
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return False
    return model_type == "grounding-dino"


def load_detector(path_or_demo: str | Path, device: str = "cpu") -> TextDetector:
    """Load a Grounding DINO folder from disk (or ``"demo"``); never touches the network."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    if str(path_or_demo) == "demo":
        from alchemy_engine.demo_models import demo_detector_dir

        folder = demo_detector_dir()
    else:
        folder = Path(path_or_demo).expanduser()
    if not folder.is_dir():
        raise ModelError(f"detector folder not found: {folder}; {DETECTOR_HINT}")
    if not is_detector_folder(folder):
        raise ModelError(f"{folder} is not a Grounding DINO folder (no config.json with model_type "
                         f"'grounding-dino'); {DETECTOR_HINT}")
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder} has no .safetensors weights; {DETECTOR_HINT}")
    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(
            folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the detector in {folder}: {exc}") from exc
    return TextDetector(model.to(device).eval(), processor, device=device, name=folder.name)


def _tiny_config() -> Any:
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(_vocabulary()), hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, num_queries=16, d_model=32,
        encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
        decoder_n_points=2, max_text_len=64, num_feature_levels=4, fusion_droppath=0.0,
    )


def _vocabulary() -> list[str]:
    seen: dict[str, None] = {}
    for token in _SPECIAL + _WORDS + _CHARS + [f"##{c}" for c in _CHARS if c.isalnum()]:
        seen.setdefault(token, None)
    return list(seen)


def save_tiny_grounding_dino(folder: Path, seed: int = 0) -> None:
    """Write a tiny random Grounding DINO (model + processor, about 1 MB) into ``folder``, offline."""
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(_tiny_config()).eval()
    vocab = {token: index for index, token in enumerate(_vocabulary())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder, safe_serialization=True)
