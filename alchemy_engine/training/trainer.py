"""Stage 1: teach SDXL the project's subject as a LoRA. Read :func:`run` top to bottom.

1. check the request, project, photos and model; estimate peak memory (``--fit`` adapts settings);
2. load SDXL once; make class images (prior preservation); encode photos and prompts, reusing the
   project cache; release the VAE and text encoders from the device;
3. attach LoRA to the UNet, build optimizer and LR schedule, restore a checkpoint when resuming;
4. loop: noise, timestep, UNet forward, weighted loss, backward, optimizer step; cancel is checked
   every step; losses are logged, checkpoints saved and previews drawn every N steps;
5. write ``lora.safetensors`` (diffusers) and ``lora_kohya.safetensors`` (A1111/ComfyUI).

All randomness of the loop comes from one ``torch.Generator`` (noise, timesteps) whose state is
checkpointed, and from a data order that depends only on ``(seed, epoch)``; so on a CPU with a
fixed seed a resumed run ends with the very same LoRA tensors as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import torch

from alchemy_engine import resident
from alchemy_engine.errors import AlchemyError, JobCancelled, ModelError
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, no_progress
from alchemy_engine.training import (
    cache,
    checkpoints,
    inputs,
    lora_io,
    memory,
    samples,
    setup,
)
from alchemy_engine.training.loop import (
    LoopState,
    build_loop,
    optimizer_step,
    sample_embeddings,
)
from alchemy_engine.training.metrics import LossLog, StepTimer
from alchemy_engine.training.request import TrainRequest, TrainResult
from alchemy_engine.training.runs import KOHYA_FILE, LORA_FILE, LOSS_FILE

log = logging.getLogger(__name__)

SAMPLE = "sample"


def run(request: TrainRequest, progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None) -> TrainResult:
    """Train (or resume) a LoRA for ``request.project``; see the module docstring for the stages."""
    cancel = cancel or CancelToken()
    started = time.monotonic()
    progress(Progress("preparing", message="checking photos and model"))
    run_setup = setup.prepare(request)
    resident.release_all()  # inference models kept loaded for the next click must make room
    estimate = _fit_memory(run_setup, progress)
    run_dir = setup.create_run_dir(run_setup)
    log.info("training run %s (%s)", run_dir, run_setup.request.to_dict())
    pipe = state = None
    try:
        pipe = _load_pipeline(run_setup, progress)
        data, cache_stats = _prepare_data(run_setup, pipe, progress, cancel)
        parts = _release_encoders(run_setup, pipe)
        pipe = None
        state = build_loop(run_setup, parts, data)
        del parts, data
        out = _train(run_setup, state, progress, cancel)
    except torch.cuda.OutOfMemoryError as exc:
        raise AlchemyError(memory.out_of_memory_message(run_setup.request, estimate)) from exc
    finally:
        pipe = state = None  # every model reference of this job, then the device's cache
        resident.free_device_memory()
    return TrainResult(run_dir=run_dir, lora=out["lora"], lora_kohya=out["kohya"],
                       steps=out["steps"], final_loss=out["final_loss"],
                       resumed_from=out["resumed_from"], memory_estimate=estimate.to_dict(),
                       settings_changed=estimate.changes, cache=dataclasses.asdict(cache_stats),
                       samples=tuple(out["samples"]), warnings=tuple(run_setup.warnings),
                       seconds=round(time.monotonic() - started, 2), scores_csv=out["scores_csv"],
                       best_step=out["best_step"])


def _fit_memory(run_setup: setup.RunSetup, progress: ProgressCallback) -> memory.MemoryEstimate:
    request = run_setup.request
    estimate = memory.estimate(request, run_setup.source, run_setup.policy)
    if request.fit_memory and not request.resume_run:
        estimate = memory.fit(request, run_setup.source, run_setup.policy)
        run_setup.request = estimate.request
    progress(Progress("memory", message=estimate.summary()))
    if estimate.free_bytes is not None and not estimate.fits:
        run_setup.warnings.append(estimate.summary() + " — training may run out of memory; " + memory.LOWER_HINT)
    return estimate


def _load_pipeline(run_setup: setup.RunSetup, progress: ProgressCallback):
    from alchemy_engine.sdxl_loading import load_sdxl_pipeline

    progress(Progress("loading", message=f"loading {run_setup.source.name}"))
    pipe = load_sdxl_pipeline(run_setup.source, run_setup.policy)
    config = pipe.unet.config
    if config.get("addition_embed_type") != "text_time" or pipe.text_encoder_2 is None:
        raise ModelError(f"{run_setup.source.name} is not an SDXL base model (its UNet lacks SDXL's "
                         "size conditioning); choose an SDXL checkpoint")
    return pipe


def _prepare_data(run_setup: setup.RunSetup, pipe, progress, cancel) -> tuple[cache.PreparedData, cache.CacheStats]:
    """Class images (if asked), then latents and embeddings; the UNet waits on the CPU meanwhile."""
    from alchemy_engine.photos import load_rgb

    request, project = run_setup.request, run_setup.project
    images = list(run_setup.images)
    if request.prior_preservation:
        prompt = inputs.class_prompt(request, project.class_noun)
        folder = inputs.class_images_dir(project, run_setup.fingerprint, prompt, request.resolution,
                                         request.sample_steps)
        images += inputs.class_images(pipe, folder, prompt=prompt, count=request.class_images,
                                      resolution=request.resolution, steps=request.sample_steps,
                                      seed=request.seed, progress=progress, cancel=cancel)
    if run_setup.device.type == "cuda":
        pipe.unet.to("cpu")
        torch.cuda.empty_cache()
    store = cache.TensorCache(project.cache_dir / "training", run_setup.fingerprint)
    extra = {SAMPLE: samples.sample_prompt(request, project)} if request.sample_every else {}
    extra.update(_eval_prompts(request, project))
    data = cache.prepare(images, pipe, store, resolution=request.resolution, flip=request.flip,
                         extra_prompts=extra, progress=progress, cancel=cancel, load_image=load_rgb,
                         keep_tokens=request.text_encoder_lora)
    return data, store.stats


def _release_encoders(run_setup: setup.RunSetup, pipe) -> dict:
    """Drop the text encoders (kept for text-encoder LoRA); park the VAE on the CPU (only previews
    need it); UNet to the device."""
    request = run_setup.request
    keep_vae = request.sample_every or request.eval_every
    parts = {"unet": pipe.unet, "vae": pipe.vae.to("cpu") if keep_vae else None,
             "scheduler": pipe.scheduler}
    if request.text_encoder_lora:
        parts.update(text_encoder=pipe.text_encoder, text_encoder_2=pipe.text_encoder_2)
    for name in ("text_encoder", "text_encoder_2", "vae"):
        setattr(pipe, name, None)
    resident.free_device_memory()
    parts["unet"].to(run_setup.device)
    return parts


def _train(run_setup: setup.RunSetup, state: LoopState, progress, cancel) -> dict:
    request = run_setup.request
    run_dir = run_setup.run_dir
    loss_log = LossLog(run_dir / LOSS_FILE)
    if run_setup.checkpoint is not None:
        saved = checkpoints.load(run_setup.checkpoint, models=state.models, optimizer=state.optimizer,
                                 scheduler=state.lr_scheduler, scaler=state.scaler,
                                 noise_generator=state.generator, device=state.device)
        state.step, state.micro_step, state.resumed_from = saved["step"], saved["micro_step"], saved["step"]
        loss_log.restore(saved["loss_log"], saved["step"])
        progress(Progress("resuming", step=state.step, total=request.steps, message=run_setup.checkpoint.name))
    sample_paths = []
    scores = _checkpoint_scores(run_setup, state)
    timer = StepTimer(request.steps, state.step)
    while state.step < request.steps:
        if cancel.cancelled:
            _checkpoint(run_setup, state, loss_log, progress)
            raise JobCancelled(f"training stopped at step {state.step}; continue it with "
                               f"`train {run_setup.project.slug} --resume {run_dir.name}`")
        loss = optimizer_step(state)
        state.step += 1
        loss_log.add(state.step, loss, state.lr_scheduler.get_last_lr()[0])
        timer.tick(state.step)
        sample_paths += _every_n(run_setup, state, loss_log, progress, scores)
        _report(progress, state, loss_log, timer, request.steps)
    loss_log.flush()
    paths = _export(run_setup, state, loss_log)
    return {**paths, "samples": sample_paths, "final_loss": loss_log.last[1] if loss_log.last else None,
            "steps": state.step, "resumed_from": state.resumed_from,
            "scores_csv": scores.csv_path if scores else None, "best_step": scores.best_step if scores else None}


def _every_n(run_setup: setup.RunSetup, state: LoopState, loss_log: LossLog, progress, scores=None) -> list:
    request, step = run_setup.request, state.step
    if loss_log.due():
        loss_log.flush()
    if request.save_every and (step % request.save_every == 0 or step == request.steps):
        _checkpoint(run_setup, state, loss_log, progress)
    if scores is not None and (step % request.eval_every == 0 or step == request.steps):
        scores.evaluate(step, request.steps, lambda name: _render(run_setup, state, name), progress)
    if request.sample_every and (step % request.sample_every == 0 or step == request.steps):
        return [_sample(run_setup, state, progress)]
    return []


def _report(progress, state: LoopState, loss_log: LossLog, timer: StepTimer, total: int) -> None:
    last = loss_log.last
    progress(Progress("training", step=state.step, total=total,
                      loss=None if last is None else last[1], loss_smoothed=None if last is None else last[2],
                      learning_rate=state.lr_scheduler.get_last_lr()[0], it_per_s=timer.it_per_s,
                      eta_s=timer.eta(state.step)))


def _checkpoint(run_setup: setup.RunSetup, state: LoopState, loss_log: LossLog, progress) -> None:
    if state.step == 0 or state.step == state.resumed_from:
        return
    loss_log.flush()
    folder = checkpoints.save(run_setup.run_dir, state.step, models=state.models, optimizer=state.optimizer,
                              scheduler=state.lr_scheduler, scaler=state.scaler,
                              noise_generator=state.generator,
                              state={"micro_step": state.micro_step, "loss_log": loss_log.state()},
                              keep_last=run_setup.request.keep_last)
    progress(Progress("checkpoint", step=state.step, total=run_setup.request.steps, message=str(folder)))


def _render(run_setup: setup.RunSetup, state: LoopState, prompt_name: str):
    """The preview image of a cached prompt: same size, steps and seed every time."""
    request = run_setup.request
    embeds = sample_embeddings(state, prompt_name)
    negative = (torch.zeros_like(embeds[0]), torch.zeros_like(embeds[1]))  # SDXL: zeros for an empty prompt
    return samples.render(state.parts, embeds, negative, size=(request.resolution, request.resolution),
                          steps=request.sample_steps, seed=request.sample_seed, device=state.device,
                          autocast_dtype=run_setup.autocast_dtype)


def _eval_prompts(request: TrainRequest, project) -> dict[str, str]:
    if not request.eval_every:
        return {}
    from alchemy_engine.evaluation.checkpoint_scores import eval_prompt_names

    return eval_prompt_names(request.eval_prompts, project.token, project.class_noun)


def _checkpoint_scores(run_setup: setup.RunSetup, state: LoopState):
    """Fidelity scores per checkpoint (``eval_every``), or None (off, or no evaluation models)."""
    request = run_setup.request
    if not request.eval_every:
        return None
    from alchemy_engine.evaluation.checkpoint_scores import CheckpointScores

    return CheckpointScores.create(run_setup.run_dir, run_setup.project, _eval_prompts(request, run_setup.project),
                                   source=request.eval_models, device=str(state.device),
                                   resumed_from=state.resumed_from, warnings=run_setup.warnings)


def _sample(run_setup: setup.RunSetup, state: LoopState, progress):
    request = run_setup.request
    image = _render(run_setup, state, SAMPLE)
    path = samples.save_sample(image, run_setup.run_dir / "samples", state.step)
    progress(Progress("sample", step=state.step, total=request.steps, preview=image, preview_path=path))
    return path


def _export(run_setup: setup.RunSetup, state: LoopState, loss_log: LossLog) -> dict:
    request, project = run_setup.request, run_setup.project
    info = {"token": project.token, "class_noun": project.class_noun, "trigger": f"{project.token} {project.class_noun}",
            "base_model": run_setup.source.name, "base_model_hash": run_setup.fingerprint,
            "rank": request.rank, "alpha": request.lora_alpha, "steps": state.step,
            "learning_rate": request.learning_rate, "resolution": request.resolution, "seed": request.seed,
            "train_ff": request.train_ff, "text_encoder_lora": request.text_encoder_lora}
    lora_path, kohya_path = run_setup.run_dir / LORA_FILE, run_setup.run_dir / KOHYA_FILE
    try:
        lora_io.save_diffusers(lora_path, state.models, info)
        lora_io.save_kohya(kohya_path, lora_path, request.lora_alpha, info)
    except OSError as exc:
        raise AlchemyError(f"could not write the LoRA files into {run_setup.run_dir} ({exc}); the last "
                           f"checkpoint is intact: free some space and run `train --resume "
                           f"{run_setup.run_dir.name}`") from exc
    return {"lora": lora_path, "kohya": kohya_path}
