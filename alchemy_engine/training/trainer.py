"""Stage 1: teach SDXL the project's subject as a LoRA. Read :func:`run` top to bottom.

1. check the request, project, photos and model; estimate peak memory (``--fit`` adapts settings);
2. load the VAE and text encoders only for what the project cache lacks (``staged_models.py``);
   make class images (prior preservation); encode photos and prompts, reusing the project cache;
   release the encoders, then load the UNet;
3. attach LoRA to the UNet, build optimizer and LR schedule, restore a checkpoint when resuming;
4. loop: noise, timestep, UNet forward, weighted loss, backward, optimizer step; cancel is checked
   every step; losses are logged, checkpoints saved and previews drawn every N steps;
5. write ``lora.safetensors`` (diffusers) and ``lora_kohya.safetensors`` (A1111/ComfyUI).

All randomness of the loop comes from one ``torch.Generator`` (noise, timesteps) whose state is
checkpointed, and from a data order that depends only on ``(seed, epoch)``; so on a CPU with a
fixed seed a resumed run ends with the very same LoRA tensors as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid

import torch

from alchemy_engine.atomic import move, remove_quietly, write_failed
from alchemy_engine.errors import AlchemyError, JobCancelled, ModelError, WriteFailed
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.memory import peak_report
from alchemy_engine.memory import training as memory
from alchemy_engine.memory.peaks import PhasePeaks
from alchemy_engine.models import resident, torch_compile
from alchemy_engine.project.locks import project_job, run_lock
from alchemy_engine.project.runs import KOHYA_FILE, LORA_FILE, LOSS_FILE
from alchemy_engine.training import (
    checkpoints,
    compiled_unet,
    data_parallel,
    inputs,
    latent_cache,
    lora_export,
    previews,
    samples,
    setup,
    shared_cache,
    staged_models,
    world,
)
from alchemy_engine.training.loop import (
    LoopState,
    build_loop,
    optimizer_step,
)
from alchemy_engine.training.loss_log import LossLog, StepTimer
from alchemy_engine.training.request import TrainRequest, TrainResult

log = logging.getLogger(__name__)



def run(request: TrainRequest, progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None) -> TrainResult:
    """Train (or resume) a LoRA for ``request.project``; see the module docstring for the stages.

    The job is registered on the project (a rename or delete is refused meanwhile) and holds its
    run folder's lock (a second resume of the same run is refused).
    """
    cancel = cancel or CancelToken()
    started = time.monotonic()
    ranks = world.from_environment()  # under torchrun: this process's rank; else one process
    progress = progress if ranks.is_main else no_progress
    progress(Progress(Stage.PREPARING, message="checking photos and model"))
    run_setup = setup.prepare(request, ranks)
    data_parallel.match_world(run_setup, ranks)
    # only now: transformers saves on rank 0 alone once a group exists (the demo model is built whole)
    world.join(run_setup.request.device)
    resident.release_all()  # inference models kept loaded for the next click must make room
    estimate, load_plan = _fit_memory(run_setup, progress)
    resuming = run_setup.run_dir is not None
    what = f"training run {run_setup.folder.name}" if resuming else "training a new run"
    with contextlib.ExitStack() as held:
        job = held.enter_context(project_job(run_setup.project.root, what)) if ranks.is_main else None
        if resuming and ranks.is_main:
            held.enter_context(run_lock(run_setup.folder, what))
            checkpoints.remove_partial(run_setup.folder)
        out, cache_stats, peaks, notes = _run_held(run_setup, estimate, load_plan, progress, cancel,
                                                   lambda: _hold_new_run(run_setup, job, held, progress))
        if ranks.is_main:
            notes.append(peak_report.record(run_setup.folder, peaks, estimate, progress))
    return TrainResult(run_dir=run_setup.folder, lora=out["lora"], lora_kohya=out["kohya"],
                       steps=out["steps"], final_loss=out["final_loss"],
                       resumed_from=out["resumed_from"], memory_estimate=estimate.to_dict(),
                       settings_changed={c.field: [c.asked, c.used] for c in run_setup.changes
                                         if c.field in estimate.changes or c.asked != "auto"},
                       cache=dataclasses.asdict(cache_stats), samples=tuple(out["samples"]),
                       notes=tuple(c.note() for c in run_setup.changes) + tuple(notes),
                       memory_peaks=peaks.to_dict(), warnings=tuple(run_setup.warnings),
                       seconds=round(time.monotonic() - started, 2), scores_csv=out["scores_csv"],
                       best_step=out["best_step"], world_size=ranks.size)


def _hold_new_run(run_setup: setup.RunSetup, job, held: contextlib.ExitStack, progress: ProgressCallback) -> None:
    """Create the run folder (only now, after the model loaded: a Ctrl+C during loading leaves
    none) and lock it; rank 0 does, and tells the others where it is."""
    if not run_setup.world.is_main:
        run_setup.run_dir = run_setup.world.broadcast(None)
        return
    if not run_setup.request.resume_run:
        run_dir = setup.create_run_dir(run_setup)
        job.describe(f"training run {run_dir.name}")
        held.enter_context(run_lock(run_dir, f"training run {run_dir.name}"))
    run_dir = run_setup.world.broadcast(run_setup.folder)
    progress(Progress(Stage.PREPARING, message=f"run {run_dir.name}", run_id=run_dir.name, path=run_dir))
    for change in run_setup.changes:
        progress(Progress(Stage.NOTE, message=change.note(), run_id=run_dir.name))


def _run_held(run_setup: setup.RunSetup, estimate, load_plan: staged_models.LoadPlan, progress, cancel,
              make_run_dir) -> tuple[dict, latent_cache.CacheStats, PhasePeaks, list[str]]:
    models = state = None
    peaks, notes = PhasePeaks(run_setup.device), []
    try:
        models = staged_models.StagedModels(run_setup, load_plan, progress)
        with peaks.phase("loading"):
            models.load_first()
        cancel.raise_if_cancelled()  # Ctrl+C during the load: stop before any run folder exists
        with peaks.phase("caching"):
            data, cache_stats = _prepare_data(run_setup, models, progress, cancel)
            parts = models.release_encoders()
            resident.free_device_memory()
        with peaks.phase("training"):
            parts = models.add_unet(parts)
            cancel.raise_if_cancelled()  # stopped while encoding or loading: still no run folder
            make_run_dir()
            log.info("training run %s (%s)", run_setup.run_dir, run_setup.request.to_dict())
            state = build_loop(run_setup, parts, data)
            if run_setup.world.distributed:
                data_parallel.wrap(state, run_setup.world)
            del parts, data
            notes += _compile(run_setup, state, progress)
            out = _train(run_setup, state, progress, cancel, notes)
        return out, cache_stats, peaks, notes
    except torch.cuda.OutOfMemoryError as exc:
        raise AlchemyError(memory.out_of_memory_message(run_setup.request, estimate)) from exc
    finally:
        models = state = None  # every model reference of this job, then the device's cache
        resident.free_device_memory()


def _fit_memory(run_setup: setup.RunSetup,
                progress: ProgressCallback) -> tuple[memory.MemoryEstimate, staged_models.LoadPlan]:
    free = data_parallel.smallest_free_bytes(run_setup)  # -1: this device's, asked when needed
    _speed_choices(run_setup, free)
    _require_sdxl_unet(run_setup)
    request = run_setup.request
    changes = {}
    if request.fit_memory and not request.resume_run:  # as if nothing were cached: the worst case
        fitted = memory.fit(request, run_setup.source, run_setup.policy, free)
        run_setup.request, changes = fitted.request, fitted.changes
        run_setup.changes += [setup.SettingChange(name, before, after, "--fit: lowered until the memory "
                                                  "estimate fits") for name, (before, after) in changes.items()]
    # every rank trains with rank 0's settings
    run_setup.request, run_setup.changes = run_setup.world.broadcast((run_setup.request, run_setup.changes))
    load_plan = _plan_loading(run_setup)
    estimate = dataclasses.replace(memory.estimate(run_setup.request, run_setup.source, run_setup.policy,
                                                   free, plan=load_plan), changes=changes)
    progress(Progress(Stage.MEMORY, message=f"{estimate.summary()}; {estimate.phase_summary()}"))
    if estimate.free_bytes is not None and not estimate.fits:
        run_setup.warnings.append(estimate.summary() + " — training may run out of memory; " + memory.LOWER_HINT)
    return estimate, load_plan


def _speed_choices(run_setup: setup.RunSetup, free: int | None = -1) -> None:
    """``auto`` weight storage and gradient checkpointing (by the memory estimate; half weights first,
    they cost less speed) and compile (by device), never silent."""
    if run_setup.request.weight_dtype == "auto" and run_setup.policy.dtype == torch.float32:
        run_setup.change("weight_dtype", *memory.choose_weight_dtype(run_setup.request, run_setup.source,
                                                                     run_setup.policy, free))
    request = run_setup.request
    if request.gradient_checkpointing == "auto":
        choice, why = memory.choose_checkpointing(request, run_setup.source, run_setup.policy, free)
        run_setup.change("gradient_checkpointing", choice, why)
    if request.compile == "auto" or (run_setup.world.distributed and request.compile == "on"):
        on, why = (False, "off with several processes (not measured to pay under DDP)") \
            if run_setup.world.distributed else torch_compile.decide("auto", run_setup.device)
        run_setup.change("compile", "on" if on else "off", why)


def _compile(run_setup: setup.RunSetup, state: LoopState, progress: ProgressCallback) -> list[str]:
    """Compile the UNet for every bucket before the first step (its own stage); eager if that fails."""
    if run_setup.request.compile != "on":
        return []
    note = compiled_unet.warm_up(state, progress)
    if torch_compile.is_compiled(state.unet):
        progress(Progress(Stage.NOTE, message=f"compile: {note}", run_id=run_setup.folder.name))
        return [f"compile: {note}"]
    run_setup.changes.append(setup.SettingChange("compile", "on", "off", note))
    run_setup.record_changes()
    progress(Progress(Stage.NOTE, message=run_setup.changes[-1].note(), run_id=run_setup.folder.name))
    return []


def _require_sdxl_unet(run_setup: setup.RunSetup) -> None:
    """Refuse a non-SDXL folder from its UNet config, before anything is loaded or encoded."""
    if memory.unet_config(run_setup.source).get("addition_embed_type") != "text_time":
        raise ModelError(f"{run_setup.source.name} is not an SDXL base model (its UNet lacks SDXL's "
                         "size conditioning); choose an SDXL checkpoint")


def _class_images_folder(run_setup: setup.RunSetup):
    request, project = run_setup.request, run_setup.project
    prompt = inputs.class_prompt(request, project.class_noun)
    return prompt, inputs.class_images_dir(project, run_setup.fingerprint, prompt, request.resolution,
                                           request.sample_steps)


def _extra_prompts(run_setup: setup.RunSetup) -> dict[str, str]:
    request, project = run_setup.request, run_setup.project
    extra = {previews.SAMPLE: samples.sample_prompt(request, project)} if request.sample_every else {}
    extra.update(previews.eval_prompts(request, project))
    return extra


def _plan_loading(run_setup: setup.RunSetup) -> staged_models.LoadPlan:
    """What the first load needs, from what the project cache and class-image folder already hold."""
    from alchemy_engine.training.dataset import TrainImage

    request = run_setup.request
    images = list(run_setup.images)
    class_images_missing = False
    if request.prior_preservation:
        prompt, folder = _class_images_folder(run_setup)
        files = inputs.class_image_files(folder, request.class_images)
        class_images_missing = not all(f.exists() for f in files)
        images += [TrainImage(path=f, prompt=prompt, is_class=True) for f in files if f.exists()]
    cached = latent_cache.fully_cached(images, _tensor_cache(run_setup), resolution=request.resolution, flip=request.flip,
                                extra_prompts=_extra_prompts(run_setup), policy=run_setup.policy)
    return staged_models.plan(request, class_images_missing=class_images_missing, cached=cached)


def _tensor_cache(run_setup: setup.RunSetup) -> latent_cache.TensorCache:
    return latent_cache.TensorCache(run_setup.project.cache_dir / "training", run_setup.fingerprint)


def _prepare_data(run_setup: setup.RunSetup, models: staged_models.StagedModels, progress,
                  cancel) -> tuple[latent_cache.PreparedData, latent_cache.CacheStats]:
    """Class images (if asked), then latents and embeddings; the UNet waits on the CPU meanwhile."""
    from alchemy_engine.image_files import load_rgb

    request = run_setup.request
    images = list(run_setup.images)
    if request.prior_preservation:
        prompt, folder = _class_images_folder(run_setup)
        if not run_setup.world.is_main:  # rank 0 makes the missing class images
            run_setup.world.barrier()
        images += inputs.class_images(models.whole_pipeline, folder, prompt=prompt, count=request.class_images,
                                      resolution=request.resolution, steps=request.sample_steps,
                                      seed=request.seed, progress=progress, cancel=cancel)
        if run_setup.world.is_main:
            run_setup.world.barrier()
        if run_setup.device.type == "cuda" and models.pipe is not None and models.pipe.unet is not None:
            models.pipe.unet.to("cpu")
            torch.cuda.empty_cache()
    store = _tensor_cache(run_setup)
    shared = None if not run_setup.world.distributed else shared_cache.fill(
        run_setup.world, images, models.encoders, store, policy=run_setup.policy, resolution=request.resolution,
        flip=request.flip, extra_prompts=_extra_prompts(run_setup), cancel=cancel, load_image=load_rgb)
    data = latent_cache.prepare(images, models.encoders, store, policy=run_setup.policy,
                         resolution=request.resolution, flip=request.flip, extra_prompts=_extra_prompts(run_setup),
                         progress=progress, cancel=cancel, load_image=load_rgb, keep_tokens=request.text_encoder_lora)
    return data, shared or store.stats


def _train(run_setup: setup.RunSetup, state: LoopState, progress, cancel, notes: list[str]) -> dict:
    request = run_setup.request
    run_dir, ranks = run_setup.folder, run_setup.world
    loss_log = (LossLog if ranks.is_main else data_parallel.SilentLossLog)(run_dir / LOSS_FILE,
                                                                          then=checkpoints.resume_hint(run_dir))
    if request.resume_run:
        saved, checkpoint, damage = checkpoints.load_newest(
            run_dir, models=state.models, optimizer=state.optimizer, scheduler=state.lr_scheduler,
            scaler=state.scaler, noise_generator=state.generator, device=state.device, rank=ranks.rank)
        for note in damage:
            log.warning("%s", note)
            run_setup.warnings.append(note)
            progress(Progress(Stage.RESUMING, message=note))
        state.step, state.micro_step, state.resumed_from = saved["step"], saved["micro_step"], saved["step"]
        loss_log.restore(saved["loss_log"], saved["step"])
        progress(Progress(Stage.RESUMING, step=state.step, total=request.steps, message=checkpoint.name))
    sample_paths = []
    scores = previews.checkpoint_scores(run_setup, state) if ranks.is_main else None
    timer = StepTimer(request.steps, state.step)
    step = data_parallel.step(ranks, optimizer_step) if ranks.distributed else optimizer_step
    while state.step < request.steps:
        if ranks.any(cancel.cancelled):  # every rank stops at the same step
            _checkpoint(run_setup, state, loss_log, progress)
            raise JobCancelled(f"training stopped at step {state.step}; continue it with "
                               f"`train {run_setup.project.slug} --resume {run_dir.name}`")
        loss = compiled_unet.guarded_step(state, step, notes)
        state.step += 1
        loss_log.add(state.step, loss, state.lr_scheduler.get_last_lr()[0])
        timer.tick(state.step)
        sample_paths += _every_n(run_setup, state, loss_log, progress, scores)
        _report(progress, state, loss_log, timer, request.steps)
    loss_log.flush()
    if not request.save_every:  # a failed export must still leave something to resume from
        _checkpoint(run_setup, state, loss_log, progress)
    if not ranks.is_main:
        return {"lora": run_dir / LORA_FILE, "kohya": run_dir / KOHYA_FILE, "samples": [], "final_loss": None,
                "steps": state.step, "resumed_from": state.resumed_from, "scores_csv": None, "best_step": None}
    paths = _export(run_setup, state)
    if not request.save_every and state.step != state.resumed_from:
        remove_quietly(checkpoints.checkpoints_dir(run_dir) / f"{checkpoints.PREFIX}{state.step:06d}")
    return {**paths, "samples": sample_paths, "final_loss": loss_log.last[1] if loss_log.last else None,
            "steps": state.step, "resumed_from": state.resumed_from,
            "scores_csv": scores.csv_path if scores else None, "best_step": scores.best_step if scores else None}


def _every_n(run_setup: setup.RunSetup, state: LoopState, loss_log: LossLog, progress, scores=None) -> list:
    request, step = run_setup.request, state.step
    if loss_log.write_due(step):
        loss_log.flush()
    elif loss_log.due():
        loss_log.read()
    if request.save_every and (step % request.save_every == 0 or step == request.steps):
        _checkpoint(run_setup, state, loss_log, progress)
    if scores is not None and (step % request.eval_every == 0 or step == request.steps):
        scores.evaluate(step, request.steps, lambda name: previews.render(run_setup, state, name), progress)
    if request.sample_every and (step % request.sample_every == 0 or step == request.steps) and run_setup.world.is_main:
        return [previews.sample(run_setup, state, progress)]
    return []


def _report(progress, state: LoopState, loss_log: LossLog, timer: StepTimer, total: int) -> None:
    last = loss_log.last
    progress(Progress(Stage.TRAINING, step=state.step, total=total,
                      loss=None if last is None else last[1], loss_smoothed=None if last is None else last[2],
                      learning_rate=state.lr_scheduler.get_last_lr()[0], it_per_s=timer.it_per_s,
                      eta_s=timer.eta(state.step)))


def _checkpoint(run_setup: setup.RunSetup, state: LoopState, loss_log: LossLog, progress) -> None:
    if state.step == 0 or state.step == state.resumed_from:
        return
    loss_log.flush()
    data_parallel.require_same_lora(state, run_setup.world)
    rng = data_parallel.rng_to_save(run_setup.world, state.generator)
    if not run_setup.world.is_main:
        return
    folder = checkpoints.save(run_setup.folder, state.step, models=state.models, optimizer=state.optimizer,
                              scheduler=state.lr_scheduler, scaler=state.scaler,
                              noise_generator=state.generator, rng=rng,
                              state={"micro_step": state.micro_step, "loss_log": loss_log.state()},
                              keep_last=run_setup.request.keep_last)
    progress(Progress(Stage.CHECKPOINT, step=state.step, total=run_setup.request.steps, message=folder.name,
                      run_id=run_setup.folder.name, path=folder))


def _export(run_setup: setup.RunSetup, state: LoopState) -> dict:
    """``lora_kohya.safetensors``, then ``lora.safetensors`` (the mark of a finished run) by one
    rename; a failure leaves the run resumable from its final checkpoint."""
    request, project, run_dir = run_setup.request, run_setup.project, run_setup.folder
    info = {"token": project.token, "class_noun": project.class_noun, "trigger": f"{project.token} {project.class_noun}",
            "base_model": run_setup.source.name, "base_model_hash": run_setup.fingerprint,
            "rank": request.rank, "alpha": request.lora_alpha, "steps": state.step,
            "learning_rate": request.learning_rate, "resolution": request.resolution, "seed": request.seed,
            "train_ff": request.train_ff, "text_encoder_lora": request.text_encoder_lora,
            "text_encoder_lr": request.text_encoder_lr or request.learning_rate,
            "photos": len(run_setup.images), "output_name": f"{project.slug}-{run_dir.name}",
            "prediction_type": run_setup.schedule.prediction_type,
            "zero_terminal_snr": run_setup.schedule.zero_terminal_snr}
    lora_path, kohya_path = run_dir / LORA_FILE, run_dir / KOHYA_FILE
    staging = run_dir / f".export-{uuid.uuid4().hex[:8]}.safetensors"
    then = f"{checkpoints.resume_hint(run_dir)} (the checkpoint at step {state.step} is intact)"
    writing = lora_path
    try:
        lora_export.save_diffusers(staging, state.models, info)
        writing = kohya_path
        lora_export.save_kohya(kohya_path, state.models, info)
        writing = lora_path
        move(staging, lora_path)
    except WriteFailed as exc:
        raise write_failed(writing, exc.__cause__ or exc, then) from exc
    finally:
        if staging.exists():
            remove_quietly(staging)
    return {"lora": lora_path, "kohya": kohya_path}
