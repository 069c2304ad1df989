"""PNG text chunks: an A1111-style ``parameters`` chunk plus the full request as JSON.

``parameters`` follows the AUTOMATIC1111 layout that other tools parse::

    a photo of sks dog on a beach <lora:run-1:0.8>
    Negative prompt: blurry, lowres
    Steps: 30, Sampler: Euler, CFG scale: 7.0, Seed: 42, Size: 1024x1024, Model: sdxl-base, ...

``alchemy_request`` holds ``InsertRequest.to_json()`` (with the seed actually used) and
``alchemy_result`` what the run decided (crop box, work size, LoRA path), so an output can be
reproduced from its own file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from alchemy_engine.atomic import atomic_copy, atomic_path, write_new

PARAMETERS_KEY = "parameters"
REQUEST_KEY = "alchemy_request"
RESULT_KEY = "alchemy_result"


@dataclass(frozen=True)
class GenerationInfo:
    """What a reader of the image needs to know to reproduce it."""

    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    guidance: float
    seed: int
    size: tuple[int, int]
    model: str
    model_hash: str = ""
    lora_name: str = ""
    lora_hash: str = ""
    lora_scale: float = 1.0
    strength: float | None = None
    extra_loras: tuple[tuple[str, str, float], ...] = ()  # (name, hash, scale): a style LoRA
    guidance_rescale: float = 0.0  # CFG rescale φ; written only when used

    def _loras(self) -> list[tuple[str, str, float]]:
        first = [(self.lora_name, self.lora_hash, self.lora_scale)] if self.lora_name else []
        return first + list(self.extra_loras)

    def parameters(self) -> str:
        prompt = " ".join([self.prompt] + [f"<lora:{name}:{scale:g}>" for name, _, scale in self._loras()])
        fields: list[tuple[str, Any]] = [
            ("Steps", self.steps), ("Sampler", self.sampler), ("CFG scale", f"{self.guidance:g}"),
            ("Seed", self.seed), ("Size", f"{self.size[0]}x{self.size[1]}"),
        ]
        if self.guidance_rescale:
            fields.append(("CFG Rescale", f"{self.guidance_rescale:g}"))
        if self.model_hash:
            fields.append(("Model hash", self.model_hash))
        fields.append(("Model", self.model))
        if self.strength is not None:
            fields.append(("Denoising strength", f"{self.strength:g}"))
        if self._loras():
            hashes = ", ".join(f"{name}: {digest}" for name, digest, _ in self._loras())
            fields.append(("Lora hashes", f'"{hashes}"'))
        if self.lora_name:
            fields.append(("Lora weight", f"{self.lora_scale:g}"))
        fields.append(("Version", "Image Alchemy"))
        line = ", ".join(f"{key}: {value}" for key, value in fields)
        return f"{prompt}\nNegative prompt: {self.negative_prompt}\n{line}"


def save_png(image: Image.Image, target: Path, info: GenerationInfo | None = None,
             request_json: str | None = None, extra: dict[str, Any] | None = None, *,
             exclusive: bool = False) -> Path:
    """Write ``image`` atomically as PNG with the text chunks; returns ``target``."""
    chunks = PngImagePlugin.PngInfo()
    if info is not None:
        chunks.add_text(PARAMETERS_KEY, info.parameters())
    if request_json is not None:
        chunks.add_text(REQUEST_KEY, request_json)
    if extra:
        chunks.add_text(RESULT_KEY, json.dumps(extra, sort_keys=True, default=str))
    with atomic_path(target, exclusive=exclusive) as tmp:
        image.save(tmp, format="PNG", pnginfo=chunks)
    return target


def save_new_png(image: Image.Image, folder: Path, stem: str, info: GenerationInfo | None = None,
                 request_json: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Like :func:`save_png` into a new ``folder/stem.png`` (``stem-2.png`` … if taken): an output
    never replaces another, even one written by another process at the same moment."""
    return write_new(folder, stem, ".png",
                     lambda target: save_png(image, target, info, request_json, extra, exclusive=True))


def copy_new(source: Path, folder: Path, stem: str) -> Path:
    """Copy ``source`` to a new ``folder/stem.png`` atomically (``--out``)."""
    return write_new(folder, stem, ".png", lambda target: atomic_copy(source, target, exclusive=True))


def read_png_text(path: Path) -> dict[str, str]:
    """All text chunks of a PNG (tEXt, zTXt and iTXt)."""
    from alchemy_engine.image_files import open_image

    with open_image(path) as image:
        return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}


def parse_parameters(text: str) -> dict[str, str]:
    """Split an A1111 ``parameters`` chunk into prompt, negative prompt and the key: value fields."""
    lines = text.split("\n")
    out: dict[str, str] = {"prompt": lines[0] if lines else ""}
    for line in lines[1:]:
        if line.startswith("Negative prompt: "):
            out["negative_prompt"] = line[len("Negative prompt: "):]
            continue
        for key, value in _split_fields(line):
            out[key] = value
    return out


def _split_fields(line: str) -> list[tuple[str, str]]:
    """``A: 1, B: "x, y", C: 3`` into pairs, honouring double quotes."""
    parts, current, quoted = [], "", False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    pairs = []
    for part in parts:
        key, sep, value = part.strip().partition(": ")
        if sep:
            pairs.append((key, value.strip().strip('"')))
    return pairs


def unique_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """``folder/stem.png``, or ``stem-2.png``, ``stem-3.png`` … so nothing is ever overwritten."""
    candidate = folder / f"{stem}{suffix}"
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def short_hash(path: Path) -> str:
    """SHA-256 of a file, first 10 hex digits (what A1111 shows as a model's or LoRA's short hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]
