"""The scene: a photo from disk (upright, alpha flattened) or one made by unmodified SDXL.

Generated scenes come from the base model with every LoRA turned off, from a prompt that names
the class noun ("a dog on a beach"), so the composition is SDXL's and the detector can find the
class; they are saved in the project's ``scenes/`` with their own metadata.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion import metadata
from alchemy_engine.insertion.inpaint import Sampling, speed_events, step_callback, text_to_image
from alchemy_engine.insertion.request import SceneRequest, SceneResult
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.models.prediction import cfg_rescale
from alchemy_engine.models.samplers import DEFAULT_SAMPLER

MIN_SCENE_SIDE = 16


def load_scene(path: Path) -> Image.Image:
    """Any size and format the photo importer reads: EXIF orientation applied, alpha on white."""
    from alchemy_engine.image_files import load_rgb

    image = load_rgb(path)
    if min(image.size) < MIN_SCENE_SIDE:
        raise InvalidRequest(f"the scene {Path(path).name} is only {image.width}x{image.height} px; use an "
                             f"image at least {MIN_SCENE_SIDE} px on each side (small scenes are upscaled "
                             "for SDXL automatically, but there is too little here to work with)")
    return image


def names_class(prompt: str, class_noun: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(class_noun)}(?:e?s)?(?![\w-])", prompt, re.IGNORECASE) is not None


def generate_scene(session: Any, loaded: Any, prompt: str, negative_prompt: str, size: tuple[int, int],
                   steps: int, guidance: float, seed: int, progress: ProgressCallback,
                   cancel: CancelToken, sampler: str = DEFAULT_SAMPLER,
                   guidance_rescale: float | None = None) -> tuple[Image.Image, metadata.GenerationInfo]:
    """Text-to-image with LoRAs off; returns the image and what to write in its metadata.
    ``guidance_rescale`` None: the model's default (``prediction.cfg_rescale``)."""
    session.lora_off(loaded)
    rescale = cfg_rescale(guidance_rescale, loaded.base.scheduler.config)
    sampling = Sampling(prompt, negative_prompt, steps, guidance, seed, sampler=sampler, guidance_rescale=rescale)
    callback = step_callback(progress, cancel, Stage.SCENE, 0, steps)
    speed_events(progress, loaded, size)
    image = text_to_image(loaded.base, size, sampling, callback)
    speed_events(progress, loaded, size)
    info = metadata.GenerationInfo(
        prompt=prompt, negative_prompt=negative_prompt, steps=steps, sampler=sampler, guidance=guidance,
        seed=seed, size=size, model=loaded.source.name, model_hash=loaded.fingerprint[:10], guidance_rescale=rescale)
    return image, info


def save_scene(folder: Path, image: Image.Image, info: metadata.GenerationInfo, request_json: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return metadata.save_new_png(image, Path(folder), f"scene-{stamp}-{info.seed}", info, request_json)


def make_scene(request: SceneRequest, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
               session: Any = None) -> SceneResult:
    """The job: generate a scene alone (the GUI's *Generate scene*), saved with its metadata."""
    from alchemy_engine.insertion.session import default_session
    from alchemy_engine.project import open_project
    from alchemy_engine.project.locks import project_job

    request.validate()
    cancel = cancel or CancelToken()
    project = open_project(request.project)
    session = session or default_session()
    with project_job(project.root, "a scene being made"), session.lock:  # no rename or delete meanwhile
        progress(Progress(stage=Stage.LOAD, message="loading SDXL"))
        loaded = session.sdxl(request.model, request.device, request.compile, request.prediction_type)
        image, info = generate_scene(session, loaded, request.prompt, request.negative_prompt,
                                     (request.width, request.height), request.steps, request.guidance,
                                     request.seed, progress, cancel, request.sampler, request.guidance_rescale)
    return SceneResult(save_scene(project.scenes_dir, image, info, request.to_json()).resolve(), image)
