"""From a project to training pictures: checked reference photos, prompts, and class images.

Class images for prior preservation are made by the untouched base model from the class prompt
("a photo of a dog"), stored under ``<project cache>/training/class_images/<key>/`` where the key
is the model fingerprint, prompt, resolution and sampler steps; a later run with more images only
makes the missing ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import ImageImportError, InvalidRequest
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage
from alchemy_engine.models.prediction import cfg_rescale
from alchemy_engine.training.dataset import TrainImage

log = logging.getLogger(__name__)

MAX_PHOTOS = 50
FEW_PHOTOS = 3


def instance_prompt(template: str, token: str, class_noun: str, caption: str | None) -> str:
    """The photo's caption if it has one (the subject phrase added when missing), else the template."""
    subject = f"{token} {class_noun}"
    if caption and caption.strip():
        caption = caption.strip().replace("{token}", token).replace("{class_noun}", class_noun)
        return caption if token in caption.split() else f"a photo of {subject}, {caption}"
    return template.format(token=token, class_noun=class_noun)


def class_prompt(request, class_noun: str) -> str:
    return request.class_prompt or f"a photo of a {class_noun}"


def reference_images(project, request, load_image) -> tuple[list[TrainImage], list[str]]:
    """The project's photos as TrainImages, each decoded once to prove it is readable."""
    photos = project.reference_photos()
    warnings: list[str] = []
    if not photos:
        raise InvalidRequest(f"project {project.name!r} has no photos yet: import 3–5 photos of the "
                             f"{project.class_noun} first")
    if len(photos) > MAX_PHOTOS:
        raise InvalidRequest(f"project {project.name!r} has {len(photos)} photos; training uses at most "
                             f"{MAX_PHOTOS}. Remove some.")
    if len(photos) < FEW_PHOTOS:
        warnings.append(f"only {len(photos)} photo(s): 3–5 photos from different angles give a more "
                        "faithful subject")
    images = []
    for photo in photos:
        if not Path(photo.path).is_file():
            raise ImageImportError(f"{photo.path}: the photo file is missing; re-import it or remove it")
        load_image(photo.path).close()
        mask = photo.mask_path if request.masked_loss else None
        prompt = instance_prompt(request.prompt_template, project.token, project.class_noun, photo.caption)
        images.append(TrainImage(path=Path(photo.path), prompt=prompt, mask_path=mask))
    if request.masked_loss:
        unmasked = [p.path.name for p in photos if p.mask_path is None]
        if len(unmasked) == len(photos):
            raise InvalidRequest("masked loss needs subject masks, and no photo has one: find the subject "
                                 "(SAM) or draw its mask first, or turn masked loss off")
        if unmasked:
            warnings.append(f"no subject mask for {', '.join(unmasked)}: the whole photo is used")
    return images, warnings


def class_images_dir(project, fingerprint: str, prompt: str, resolution: int, steps: int) -> Path:
    key = json.dumps({"model": fingerprint, "prompt": prompt, "resolution": resolution, "steps": steps},
                     sort_keys=True)
    return Path(project.cache_dir) / "training" / "class_images" / hashlib.sha256(key.encode()).hexdigest()[:16]


def class_image_files(folder: Path, count: int) -> list[Path]:
    return [folder / f"{i:04d}.png" for i in range(count)]


def class_images(pipe, folder: Path, *, prompt: str, count: int, resolution: int, steps: int, seed: int,
                 progress: ProgressCallback, cancel: CancelToken) -> list[TrainImage]:
    """Make (or reuse) ``count`` class images with the base model; cancel is checked every step.
    ``pipe`` is a callable giving the whole pipeline, called only if an image is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    files = class_image_files(folder, count)
    missing = [f for f in files if not f.exists()]

    def on_step(_pipe, _step, _t, kwargs):
        cancel.raise_if_cancelled()
        return kwargs

    for done, file in enumerate(missing):
        cancel.raise_if_cancelled()
        progress(Progress(Stage.CLASS_IMAGES, step=done, total=len(missing), message=prompt))
        generator = torch.Generator("cpu").manual_seed(seed * 100_003 + int(file.stem))
        whole = pipe()
        image = whole(prompt, width=resolution, height=resolution, num_inference_steps=steps, generator=generator,
                      guidance_rescale=cfg_rescale(None, whole.scheduler.config),  # 0.7 for a zero-SNR model
                      callback_on_step_end=on_step).images[0]
        with atomic_path(file) as tmp:
            image.save(tmp, format="PNG")
    if missing:
        progress(Progress(Stage.CLASS_IMAGES, step=len(missing), total=len(missing), message=prompt))
    return [TrainImage(path=f, prompt=prompt, is_class=True) for f in files]
