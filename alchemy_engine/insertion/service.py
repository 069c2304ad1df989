"""Stage 2 end to end: ``run(request, progress, cancel) -> InsertResult``.

scene (load or generate with LoRA off) → mask (detector + SAM, clicks, box, mask PNG) → fill
holes, grow, feather → crop plan around the mask at about one megapixel → masked img2img with
the LoRA for each seed, several seeds a call when memory allows (``batches.py``) → paste back
through the feathered alpha (exact outside) → PNGs with metadata in the project's ``outputs/``
and in ``request.out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.errors import ModelError
from alchemy_engine.fields import random_seed
from alchemy_engine.insertion import batches, composite, masks, metadata, reference
from alchemy_engine.insertion.inpaint import Sampling, blur_inside, insertion_prompt, pipeline_mask
from alchemy_engine.insertion.masks import save_mask
from alchemy_engine.insertion.request import InsertRequest, InsertResult
from alchemy_engine.insertion.scene import generate_scene, load_scene, names_class, save_scene
from alchemy_engine.insertion.segment import build_mask, with_models
from alchemy_engine.insertion.session import InsertionSession, default_session
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.models.prediction import cfg_rescale, prediction_notes
from alchemy_engine.project.locks import project_job
from alchemy_engine.project.runs import LORA_FILE, lora_runs


def find_lora(project: Any, run: str | None, explicit: Path | None) -> Path:
    """The LoRA to use: ``explicit``, else ``runs/<run>/lora.safetensors``, else the newest run's."""
    if explicit is not None:
        return Path(explicit)
    train_hint = f"train one first (the Train tab, or: python main.py train {project.name!r})"
    if run is not None:
        lora = project.runs_dir / run / LORA_FILE
        if not lora.is_file():
            runs = sorted(p.parent.name for p in lora_runs(project.runs_dir))
            raise ModelError(f"run {run!r} of project {project.name!r} has no trained LoRA ({lora}); "
                             f"runs with one: {', '.join(runs) or 'none'}. Pick one with --run, or {train_hint}")
        return lora
    found = lora_runs(project.runs_dir)
    if not found:
        raise ModelError(f"project {project.name!r} has no trained LoRA yet; {train_hint}")
    return found[0]


@dataclasses.dataclass
class _Context:
    request: InsertRequest
    project: Any
    session: InsertionSession
    progress: ProgressCallback
    cancel: CancelToken
    token: str = ""
    class_noun: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    guidance: Any = None  # reference.Guidance when an IP-Adapter steers the repaint


def _lora_subject(ctx: _Context, lora: Path, loaded: Any) -> None:
    """Token and class noun the LoRA was trained with (its metadata), else the project's; notes
    when the LoRA was trained on another base model or the project's words changed since."""
    from alchemy_engine.models.lora_files import read_metadata

    meta = read_metadata(lora)  # cleaned of control characters; still bounded here: it enters prompts
    ctx.token = _word(meta.get("token")) or ctx.project.token
    ctx.class_noun = _word(meta.get("class_noun")) or ctx.project.class_noun
    if not meta:
        ctx.notes.append(f"{lora.name} was not made by Image Alchemy (no token in its metadata); using the "
                         f"project's words '{ctx.token} {ctx.class_noun}': write the LoRA's own trigger "
                         "words into --prompt if it has some")
    if (ctx.token, ctx.class_noun) != (ctx.project.token, ctx.project.class_noun):
        ctx.notes.append(f"this LoRA was trained as '{ctx.token} {ctx.class_noun}', not the project's "
                         f"'{ctx.project.token} {ctx.project.class_noun}'; using the LoRA's words")
    base_hash = meta.get("base_model_hash")
    if base_hash and base_hash != loaded.fingerprint:
        ctx.notes.append(f"this LoRA was trained on {meta.get('base_model', 'another SDXL model')}, not "
                         f"{loaded.source.name}; it works across SDXL fine-tunes, but likeness may suffer")


def _word(value: str | None) -> str:
    """A token or class noun from LoRA metadata, or "" when it does not look like one."""
    return value if value and len(value) <= 64 and "<" not in value and ">" not in value else ""


def _loras(req: InsertRequest, lora: Path) -> list[tuple[Path, float]]:
    """The LoRAs to stack, each with its scale: the subject's, then the optional style LoRA."""
    loras = [(lora, req.lora_scale)]
    if req.style_lora is not None:
        if Path(req.style_lora).resolve() == Path(lora).resolve():
            raise ModelError("the style LoRA is the subject LoRA itself; choose another file or leave it out")
        loras.append((Path(req.style_lora), req.style_lora_scale))
    return loras


def _scene(ctx: _Context, loaded: Any) -> tuple[Image.Image, Path, str | None]:
    """The scene image, where it is on disk, and the prompt that describes it (if any)."""
    req = ctx.request
    if req.scene is not None:
        image = load_scene(req.scene)
        if min(image.size) * 2 < 1024 and req.work_pixels >= 512 * 512:
            ctx.notes.append(f"the scene is small ({image.width}x{image.height}); the work region is "
                             "upscaled for SDXL")
        return image, Path(req.scene).resolve(), None
    scene_prompt, first_seed = req.scene_prompt, req.seed
    assert scene_prompt is not None and first_seed is not None  # validate(); run() picked the seed
    if not names_class(scene_prompt, ctx.class_noun):
        ctx.notes.append(f"the scene prompt does not name '{ctx.class_noun}'; the subject may "
                         "have no place to go")
    seed = req.scene_seed if req.scene_seed is not None else first_seed
    image, info = generate_scene(ctx.session, loaded, scene_prompt, req.negative_prompt,
                                 (req.scene_width, req.scene_height), req.scene_steps, req.guidance,
                                 seed, ctx.progress, ctx.cancel, req.sampler, req.guidance_rescale)
    path = save_scene(ctx.project.scenes_dir, image, info, req.to_json())
    return image, path, scene_prompt


def _plan(req: InsertRequest, alpha: np.ndarray, size: tuple[int, int]) -> masks.CropPlan:
    region = masks.bbox(alpha > 0)
    if req.crop_to_mask and region is not None:
        return masks.plan_crop(region, size, padding=req.crop_padding, target_pixels=req.work_pixels)
    return masks.full_frame_plan(size, req.work_pixels)


def _work_inputs(req: InsertRequest, scene: Image.Image, alpha: np.ndarray,
                 plan: masks.CropPlan) -> tuple[Image.Image, Image.Image]:
    """The crop SDXL repaints (at work size, blurred inside the mask) and the mask it repaints."""
    x0, y0, x1, y1 = plan.box
    work = scene.crop(plan.box).resize(plan.work_size, Image.Resampling.LANCZOS)
    repaint = pipeline_mask(alpha[y0:y1, x0:x1], plan.work_size)
    return blur_inside(work, repaint, req.blur), repaint


def _save_outputs(ctx: _Context, image: Image.Image, info: metadata.GenerationInfo, stem: str,
                  extra: dict) -> tuple[Path, Path | None]:
    req = ctx.request
    request_json = req.with_seed(info.seed).to_json()
    target = metadata.save_new_png(image, ctx.project.outputs_dir, stem, info, request_json, extra)
    copy = None
    if req.out is not None:
        copy = metadata.copy_new(target, Path(req.out).resolve(), stem)
    return target, copy


def run(request: InsertRequest, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
        session: InsertionSession | None = None) -> InsertResult:
    """Insert the project's subject into the scene; see the module docstring for the steps."""
    from alchemy_engine.project import open_project

    request.validate()
    cancel = cancel or CancelToken()
    project = open_project(request.project)
    lora = find_lora(project, request.run, request.lora)
    request = dataclasses.replace(request, locate=with_models(request.locate))
    session = session or default_session()
    if request.seed is None:
        request = request.with_seed(random_seed())
    ctx = _Context(request, project, session, progress, cancel)
    with project_job(project.root, "an insertion"), session.lock:
        progress(Progress(stage=Stage.LOAD, message="loading models"))
        loaded = session.sdxl(request.model, request.device, request.compile, request.prediction_type)
        session.use_loras(loaded, _loras(request, lora))  # check the LoRAs before any long work
        _lora_subject(ctx, lora, loaded)
        ctx.notes.extend([loaded.memory_note] if loaded.memory_note else [])
        ctx.notes.extend(prediction_notes(loaded, request.prediction_type, request.guidance_rescale))
        ctx.guidance = reference.prepare(request, project, loaded, progress, ctx.notes)
        return _run_loaded(ctx, loaded, lora)


def _run_loaded(ctx: _Context, loaded: Any, lora: Path) -> InsertResult:
    req, project = ctx.request, ctx.project
    scene, scene_path, scene_prompt = _scene(ctx, loaded)
    ctx.cancel.raise_if_cancelled()
    outcome = build_mask(req.locate, scene, ctx.session, loaded.policy.device, ctx.class_noun,
                         ctx.progress, ctx.cancel)
    alpha = outcome.alpha(req.locate.feather)
    plan = _plan(req, alpha, scene.size)
    prompt = req.prompt or insertion_prompt(scene_prompt, ctx.token, ctx.class_noun)
    lora_name = lora.parent.name if lora.name == LORA_FILE else lora.stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    mask_path = metadata.unique_path(project.outputs_dir, f"insert-{stamp}-mask")
    extra = {"scene": str(scene_path), "mask": str(mask_path), "lora": str(lora), "crop_box": plan.box,
             "work_size": plan.work_size, "detections": outcome.detections,
             "style_lora": str(req.style_lora) if req.style_lora is not None else None,
             "reference": ctx.guidance.metadata() if ctx.guidance is not None else None,
             "inpaint_model": req.inpaint_model}
    lora_hash = metadata.short_hash(lora)
    style = (() if req.style_lora is None else
             ((Path(req.style_lora).stem, metadata.short_hash(Path(req.style_lora)), req.style_lora_scale),))
    outputs, copies, scores = [], [], []
    ranker = _ranker(ctx, loaded) if req.rank else None
    names = ctx.session.use_loras(loaded, _loras(req, lora))  # scene generation may have turned them off
    pipe = _inpaint_pipe(ctx, loaded, _loras(req, lora), names)
    seeds = req.seeds(req.seed if req.seed is not None else 0)  # run() has picked a seed by now
    work, repaint = _work_inputs(req, scene, alpha, plan)
    sampling = Sampling(prompt, req.negative_prompt, req.steps, req.guidance, seeds[0], req.strength, req.sampler,
                        cfg_rescale(req.guidance_rescale, loaded.base.scheduler.config))
    runner = batches.BatchRunner(loaded, work, repaint, sampling, ctx.progress, ctx.cancel, ctx.notes, pipe=pipe)

    def finish(index: int, generated: Image.Image) -> None:
        seed = seeds[index]
        image = composite.paste(scene, generated, plan.box, alpha, match_colour=req.colour_match,
                                inside=outcome.mask)
        info = metadata.GenerationInfo(
            prompt=prompt, negative_prompt=req.negative_prompt, steps=req.steps,
            sampler=sampling.sampler, guidance=req.guidance, seed=seed, size=scene.size,
            model=loaded.source.name, model_hash=loaded.fingerprint[:10], lora_name=lora_name,
            lora_hash=lora_hash, lora_scale=req.lora_scale, strength=req.strength, extra_loras=style,
            guidance_rescale=sampling.guidance_rescale)
        if ranker is not None:
            scores.append(ranker.score(image, outcome.mask, prompt))
        target, copy = _save_outputs(ctx, image, info, f"insert-{stamp}-{seed}",
                                     {**extra, "scores": scores[-1]} if ranker else extra)
        outputs.append(target)
        copies.append(copy)
        ctx.progress(Progress(stage=Stage.OUTPUT, step=index + 1, total=req.variations,
                              message=f"saved {target.name}", preview=image, preview_path=target))

    # scene generation ran detached: while attached, a UNet call without reference embeddings fails
    with ctx.guidance.attached(loaded, repaint) if ctx.guidance else contextlib.nullcontext() as hook:
        runner.guidance = hook
        # measured with the adapter on the device, so auto batches leave room for its weights
        choice = batches.choose(req.batch_size, len(seeds), loaded, plan.work_size, req.guidance)
        batches.run_batches(runner, seeds, choice, finish)
    mask_path = save_mask(alpha, mask_path, exclusive=True)
    if req.out is not None:
        metadata.copy_new(mask_path, Path(req.out).resolve(), mask_path.stem)
    if ranker is not None:  # best first
        from alchemy_engine.evaluation.ranking import rank_order

        order = rank_order(scores)
        outputs, copies = [outputs[i] for i in order], [copies[i] for i in order]
        seeds, scores = [seeds[i] for i in order], [scores[i] for i in order]
    return InsertResult(
        outputs=tuple(c for c in copies if c is not None) or tuple(outputs), project_outputs=tuple(outputs),
        mask=mask_path, scene=scene_path, seeds=tuple(seeds), prompt=prompt, lora=lora,
        crop_box=plan.box, work_size=plan.work_size, detections=tuple(outcome.detections),
        notes=tuple(ctx.notes), style_lora=req.style_lora, scores=tuple(scores))


def _inpaint_pipe(ctx: _Context, loaded: Any, loras: list[tuple[Path, float]], names: list[str]) -> Any:
    """The pipeline that repaints: the inpainting model's (with the LoRAs on it), or None for the base's."""
    if ctx.request.inpaint_model is None:
        return None
    from alchemy_engine.insertion import inpaint_model

    ctx.progress(Progress(stage=Stage.LOAD, message="loading the inpainting model"))
    model = ctx.session.inpaint_model(loaded, ctx.request.inpaint_model)
    note = inpaint_model.use_loras(model, loaded.base.unet, loras, names)
    ctx.notes.append(note)
    ctx.progress(Progress(stage=Stage.NOTE, message=note))
    return model.pipe


def _ranker(ctx: _Context, loaded: Any) -> Any:
    """Scores for ``--rank``, or None (with a note saying why) when the evaluation models are missing."""
    from alchemy_engine.evaluation.ranking import insertion_ranker

    ctx.progress(Progress(stage=Stage.LOAD, message="loading the evaluation models"))
    return insertion_ranker(ctx.project, ctx.token, ctx.request.eval_models, loaded.policy.device, ctx.notes)

