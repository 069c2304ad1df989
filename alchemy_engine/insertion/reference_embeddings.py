"""CLIP embeddings of the subject's reference photos, for reference guidance, cached per project.

Each photo is cropped to its subject mask (a square around the mask, the background greyed) so
the adapter sees the subject and not the room it was photographed in. One cache file per photo
under ``cache/reference_embeddings/`` (safetensors, written atomically) holds both outputs an
adapter may read (the projected embedding for plain adapters, the penultimate hidden states for
Plus); its name is a hash of the photo's pixels, its mask file, the crop and background settings
and the encoder's fingerprint, so a second insertion never loads the encoder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.errors import ModelError

MAX_PHOTOS = 4
GREY = (128, 128, 128)
CACHE_FOLDER = "reference_embeddings"
_VERSION = "1"


@dataclass(frozen=True)
class ReferenceEmbeddings:
    """Positive and negative embeddings for the pipeline: plain ``[1, N, D]``; Plus ``[1, N, T, H]``."""

    positive: Any
    negative: Any
    photos: tuple[str, ...]
    encoder_loaded: bool  # False when every photo came from the cache

    def for_pipeline(self, classifier_free: bool) -> Any:
        """``cat([negative, positive])`` with CFG (the pipeline splits it in two), else ``positive``."""
        import torch

        return torch.cat([self.negative, self.positive]) if classifier_free else self.positive


def choose_photos(project: Any, names: str | None, notes: list[str]) -> list[Any]:
    """The photos guidance sees: ``names`` (comma-separated stored names), else those with subject
    masks, at most :data:`MAX_PHOTOS`; without any mask, the first photos with a note."""
    photos = project.reference_photos()
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        by_name = {p.name: p for p in photos}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise ModelError(f"project {project.name!r} has no photo {', '.join(map(repr, missing))}; its photos: "
                             f"{', '.join(sorted(by_name)) or 'none'}")
        return [by_name[n] for n in wanted]
    if not photos:
        raise ModelError(f"project {project.name!r} has no reference photos for reference guidance; import some")
    masked = [p for p in photos if p.mask_path is not None]
    if not masked:
        notes.append("no reference photo has a subject mask: reference guidance sees whole photos, background "
                     "included (make masks in the Photos tab, or: project mask --auto)")
        return photos[:MAX_PHOTOS]
    return masked[:MAX_PHOTOS]


def reference_crop(photo: Any, crop: bool) -> Image.Image:
    """The picture the encoder sees: a square around the subject mask, background grey (when
    ``crop`` and the photo has a mask), else the whole photo."""
    from alchemy_engine.image_files import load_rgb
    from alchemy_engine.insertion.masks import bbox, read_mask

    image = load_rgb(photo.path)
    if not crop or photo.mask_path is None:
        return image
    mask = read_mask(photo.mask_path, image.size)
    box = bbox(mask)
    if box is None:
        return image
    grey = Image.new("RGB", image.size, GREY)
    image = Image.composite(image, grey, Image.fromarray((mask * 255).astype(np.uint8), "L"))
    x0, y0, x1, y1 = box
    side = int(max(x1 - x0, y1 - y0) * 1.1) + 1
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    square = Image.new("RGB", (side, side), GREY)
    square.paste(image.crop((cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)))
    return square


def _key(photo: Any, crop: bool, fingerprint: str) -> str:
    mask = hashlib.sha256(photo.mask_path.read_bytes()).hexdigest() if crop and photo.mask_path else "none"
    text = f"{_VERSION}|{photo.sha256}|{mask}|crop={crop}|background=grey|{fingerprint}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def embed_references(project: Any, photos: list[Any], encoder_source: Any, plus: bool, crop: bool,
                     device: Any, dtype: Any) -> ReferenceEmbeddings:
    """Embeddings of ``photos`` (cache first; the encoder is loaded only for misses, then released)."""
    import torch
    from safetensors.torch import load_file

    folder = Path(project.cache_dir) / CACHE_FOLDER
    fingerprint = f"{encoder_source.fingerprint()}-{str(dtype).removeprefix('torch.')}"
    files = [folder / f"{_key(p, crop, fingerprint)}.safetensors" for p in photos]
    negative_file = folder / f"negative-{fingerprint}.safetensors"
    missing = [i for i, f in enumerate(files) if not f.is_file()]
    need_encoder = bool(missing) or not negative_file.is_file()
    if need_encoder:
        _encode(encoder_source, [photos[i] for i in missing], [files[i] for i in missing], negative_file, crop,
                device, dtype)
    loaded = [load_file(str(f)) for f in files]
    part = "hidden" if plus else "image_embeds"
    positive = torch.stack([entry[part] for entry in loaded])[None]
    if plus:
        negative = load_file(str(negative_file))["hidden"].expand_as(positive[0])[None].clone()
    else:
        negative = torch.zeros_like(positive)
    return ReferenceEmbeddings(positive.to(dtype), negative.to(dtype), tuple(p.name for p in photos),
                               encoder_loaded=need_encoder)


def _encode(source: Any, photos: list[Any], files: list[Path], negative_file: Path, crop: bool, device: Any,
            dtype: Any) -> None:
    """Encode in the pipeline's precision (fp16/bf16 on a GPU: bigG is 7.4 GB in fp32); stored as fp32."""
    import torch
    from safetensors.torch import save_file

    from alchemy_engine.atomic import atomic_path
    from alchemy_engine.models.clip_vision import image_processor, load_encoder
    from alchemy_engine.models.resident import free_device_memory

    encoder = load_encoder(source, device, dtype)
    try:
        processor = image_processor(source)
        with torch.no_grad():
            for photo, file in zip(photos, files):
                pixels = processor(images=[reference_crop(photo, crop)], return_tensors="pt").pixel_values
                out = encoder(pixels.to(device=device, dtype=dtype), output_hidden_states=True)
                tensors = {"image_embeds": out.image_embeds[0], "hidden": out.hidden_states[-2][0]}
                with atomic_path(file, then="free some disk space, or delete the project's cache folder") as tmp:
                    save_file({k: v.float().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
            if not negative_file.is_file():
                size = int(source.config.get("image_size", 224))
                zeros = torch.zeros(1, 3, size, size, device=device, dtype=dtype)  # an all-zero *normalised* image
                hidden = encoder(zeros, output_hidden_states=True).hidden_states[-2][0]
                with atomic_path(negative_file) as tmp:
                    save_file({"hidden": hidden.float().cpu().contiguous()}, str(tmp))
    finally:
        del encoder
        free_device_memory()
