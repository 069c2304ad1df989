"""The hot path: one optimizer step of DreamBooth-LoRA on cached latents and embeddings.

Kept lean on purpose (the benchmark holds it to ≤ 1.15× a bare UNet forward + backward + AdamW
step): batches for an epoch are stacked once when the epoch starts, noise schedule and min-SNR
weights are lookup tables on the device, and nothing here reads a value back to the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from alchemy_engine.training import dataset, lora_io, optimizers, text_encoders
from alchemy_engine.training.latent_cache import PreparedData

if TYPE_CHECKING:
    from alchemy_engine.training.request import TrainRequest


@dataclasses.dataclass
class LoopState:
    unet: torch.nn.Module
    parts: dict  # unet, vae (CPU, for previews) and scheduler
    models: dict[str, torch.nn.Module]  # what carries LoRA: {"unet": unet}
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any  # a diffusers/torch LR scheduler
    scaler: Any | None  # torch.amp.GradScaler for fp16 on CUDA
    generator: torch.Generator
    data: PreparedData
    device: torch.device
    weight_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    tables: dict[str, torch.Tensor]  # sqrt_alpha, sqrt_sigma, snr_weight on the device
    instance: list[int]  # indices into data.examples
    classes: list[int]
    batches_per_epoch: int
    request: TrainRequest
    # Several processes (data_parallel.py): the plan is the global batch of batch_size × ranks; each
    # pass is cut to this rank's share; gradients are synchronised on a step's last backward only.
    ranks: tuple[int, int] = (0, 1)  # (rank, world size)
    grad_sync: Callable[[bool], Any] | None = None
    text_encoders: tuple[torch.nn.Module, torch.nn.Module] | None = None  # what forward_loss calls
    step: int = 0
    micro_step: int = 0
    resumed_from: int | None = None
    _epoch: int = -1
    _epoch_batches: list = dataclasses.field(default_factory=list)


def build_loop(run_setup, parts: dict, data: PreparedData) -> LoopState:
    """Attach LoRA, build optimizer, LR schedule and noise tables; seeded for reproducibility."""
    from diffusers.optimization import get_scheduler

    request, device = run_setup.request, run_setup.device
    unet = parts["unet"]
    torch.manual_seed(request.seed)  # LoRA init
    params = lora_io.add_unet_lora(unet, request.rank, request.lora_alpha, request.train_ff)
    groups = [{"params": params, "lr": request.learning_rate}]
    models = {"unet": unet}
    if request.text_encoder_lora:
        for name in ("text_encoder", "text_encoder_2"):
            models[name] = parts[name]
            te_params = lora_io.add_text_encoder_lora(parts[name], request.rank, request.lora_alpha)
            groups.append({"params": te_params, "lr": request.text_encoder_lr or request.learning_rate})
            params = params + te_params
    if request.checkpointing_on:  # "auto" is decided before the loop is built
        unet.enable_gradient_checkpointing()
    unet.train()
    optimizer = optimizers.create(request, groups, device)
    lr_scheduler = get_scheduler(request.lr_scheduler, optimizer, num_warmup_steps=request.lr_warmup_steps,
                                 num_training_steps=request.steps)
    use_scaler = run_setup.autocast_dtype == torch.float16 and device.type == "cuda"
    instance = [i for i, c in enumerate(data.is_class) if not c]
    weight_dtype = unet.dtype
    return LoopState(
        unet=unet, parts=parts, models=models, params=params, optimizer=optimizer,
        lr_scheduler=lr_scheduler, scaler=torch.amp.GradScaler("cuda") if use_scaler else None,
        generator=torch.Generator(device=device).manual_seed(request.seed),
        data=data.to(device, torch.float32), device=device, weight_dtype=weight_dtype,
        autocast_dtype=run_setup.autocast_dtype, tables=_noise_tables(parts["scheduler"], request, device),
        instance=instance, classes=[i for i, c in enumerate(data.is_class) if c],
        batches_per_epoch=dataset.batches_per_epoch([data.examples[i] for i in instance],
                                                    request.batch_size * run_setup.world.size),
        request=request, ranks=(run_setup.world.rank, run_setup.world.size),
        text_encoders=(parts["text_encoder"], parts["text_encoder_2"]) if request.text_encoder_lora else None)


def _noise_tables(scheduler, request, device: torch.device) -> dict[str, torch.Tensor]:
    """DDPM forward-process coefficients and min-SNR-γ loss weights, indexed by timestep."""
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config(scheduler.config)
    alphas = ddpm.alphas_cumprod.to(torch.float64)
    snr = alphas / (1 - alphas)
    v_pred = ddpm.config.prediction_type == "v_prediction"
    gamma = request.min_snr_gamma
    if gamma:  # min-SNR-γ (Hang et al.); its v form divides by SNR + 1, as diffusers' training scripts do
        # a zero-terminal-SNR schedule ends at SNR 0: there min(SNR, γ) / SNR is 1 in the limit
        weight = torch.clamp(snr, max=gamma) / (snr + 1) if v_pred else \
            torch.where(snr > 0, torch.clamp(snr, max=gamma) / snr.clamp(min=1e-30), torch.ones_like(snr))
    else:
        weight = torch.ones_like(snr)
    return {"sqrt_alpha": alphas.sqrt().float().to(device), "sqrt_sigma": (1 - alphas).sqrt().float().to(device),
            "snr_weight": weight.float().to(device), "v_pred": torch.tensor(v_pred)}


def _batch(state: LoopState, indices: list[int], is_class: bool) -> dict:
    data, request = state.data, state.request
    latents = torch.stack([data.latents[i] for i in indices])
    rows = torch.tensor([data.prompt_index[i] for i in indices], device=state.device)
    batch = {"latents": latents, "embeds": data.prompt_embeds[rows].to(state.weight_dtype),
             "pooled": data.pooled_embeds[rows].to(state.weight_dtype), "rows": rows,
             "time_ids": torch.stack([data.time_ids[i] for i in indices]).to(state.weight_dtype),
             "scale": torch.full((len(indices),), request.prior_weight if is_class else 1.0, device=state.device),
             "weights": None}
    if request.masked_loss:
        ones = torch.ones_like(latents[0, :1])
        maps = [dataset.loss_weights(mask, request.background_weight)
                if (mask := data.masks[i]) is not None and not is_class else ones for i in indices]
        weights = torch.stack(maps)
        batch["weights"] = weights / (weights.sum(dim=(1, 2, 3), keepdim=True) * latents.shape[1])
    return batch


def _merge(a: dict, b: dict) -> dict:
    """One forward pass for instance and class images of the same size."""
    merged: dict[str, torch.Tensor | None] = {k: torch.cat([a[k], b[k]]) for k in a if k != "weights"}
    merged["weights"] = None if a["weights"] is None else torch.cat([a["weights"], b["weights"]])
    return merged


def _epoch_plan(state: LoopState, epoch: int) -> list[list[dict]]:
    """Every micro-batch of ``epoch`` as 1 or 2 forward passes (instance [+ class images])."""
    request = state.request
    examples = [state.data.examples[i] for i in state.instance]
    global_batch = request.batch_size * state.ranks[1]
    plan = []
    for n, positions in enumerate(dataset.epoch_batches(examples, global_batch, request.seed, epoch,
                                                        request.flip)):
        batch = _batch(state, [state.instance[p] for p in positions], is_class=False)
        if not state.classes:
            plan.append([batch])
            continue
        first = (epoch * state.batches_per_epoch + n) * global_batch
        picks = [state.classes[(first + j) % len(state.classes)] for j in range(len(positions))]
        prior = _batch(state, picks, is_class=True)
        same = prior["latents"].shape == batch["latents"].shape
        plan.append([_merge(batch, prior)] if same else [batch, prior])
    if state.ranks[1] > 1:
        from alchemy_engine.training.batch_shares import rank_share

        plan = [[rank_share(batch, *state.ranks) for batch in passes] for passes in plan]
    return plan


def _micro_batch(state: LoopState) -> list[dict]:
    epoch, index = divmod(state.micro_step, state.batches_per_epoch)
    if epoch != state._epoch:
        state._epoch, state._epoch_batches = epoch, _epoch_plan(state, epoch)
    state.micro_step += 1
    return state._epoch_batches[index]


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None,
                   sample_weight: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``sample_weight`` × per-sample MSE; ``weights`` (normalised to sum 1
    per sample) make it a masked mean, so a zero weight ignores that latent pixel entirely."""
    err = (pred.float() - target.float()).square()
    per_sample = (err * weights).sum(dim=(1, 2, 3)) if weights is not None else err.mean(dim=(1, 2, 3))
    return (per_sample * sample_weight).mean()


def noised_and_target(tables: dict[str, torch.Tensor], latents: torch.Tensor, noise: torch.Tensor,
                      timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The noised latents (the scheduler's ``add_noise``) and what the UNet must predict: the noise,
    or for a v-prediction model the velocity ``√ᾱ·noise − √(1−ᾱ)·latents`` (``get_velocity``)."""
    n = latents.shape[0]
    a = tables["sqrt_alpha"][timesteps].view(n, 1, 1, 1)
    s = tables["sqrt_sigma"][timesteps].view(n, 1, 1, 1)
    return a * latents + s * noise, (a * noise - s * latents if bool(tables["v_pred"]) else noise)


def forward_loss(state: LoopState, batch: dict) -> torch.Tensor:
    latents, gen, tables = batch["latents"], state.generator, state.tables
    share = batch.get("share")  # (global count, this rank's rows): draw for the global batch, keep ours
    n = share[0] if share else latents.shape[0]
    noise = torch.randn((n, *latents.shape[1:]), generator=gen, device=state.device)
    if state.request.noise_offset:
        noise = noise + state.request.noise_offset * torch.randn((n, latents.shape[1], 1, 1), generator=gen,
                                                                 device=state.device)
    timesteps = torch.randint(0, tables["sqrt_alpha"].shape[0], (n,), generator=gen, device=state.device)
    if share:
        noise, timesteps = noise[share[1]], timesteps[share[1]]
    noisy, target = noised_and_target(tables, latents, noise, timesteps)
    noisy = noisy.to(state.weight_dtype)
    with torch.autocast(state.device.type, dtype=state.autocast_dtype, enabled=state.autocast_dtype is not None):
        embeds, pooled = batch["embeds"], batch["pooled"]
        if state.data.prompt_tokens is not None:  # text-encoder LoRA: encode with gradients
            tokens = state.data.prompt_tokens
            assert state.text_encoders is not None  # set with text_encoder_lora
            embeds, pooled = text_encoders.encode(*state.text_encoders,
                                                  tokens["tokenizer"][batch["rows"]], tokens["tokenizer_2"][batch["rows"]])
        pred = state.unet(noisy, timesteps, embeds, return_dict=False,
                          added_cond_kwargs={"text_embeds": pooled, "time_ids": batch["time_ids"]})[0]
    return diffusion_loss(pred, target, batch["weights"], tables["snr_weight"][timesteps] * batch["scale"])


def optimizer_step(state: LoopState) -> torch.Tensor:
    """``grad_accum`` micro-batches, clip, step; returns the mean loss as a device tensor."""
    request, scaler = state.request, state.scaler
    total: torch.Tensor | None = None
    for micro in range(request.grad_accum):
        passes = _micro_batch(state)
        for n, batch in enumerate(passes):
            last = micro == request.grad_accum - 1 and n == len(passes) - 1
            with state.grad_sync(last) if state.grad_sync else contextlib.nullcontext():
                loss = forward_loss(state, batch) / (request.grad_accum * len(passes))
                (scaler.scale(loss) if scaler is not None else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
    if scaler is not None:
        scaler.unscale_(state.optimizer)
    if request.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(state.params, request.max_grad_norm)
    if scaler is not None:
        scaler.step(state.optimizer)
        scaler.update()
    else:
        state.optimizer.step()
    state.lr_scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    assert total is not None  # grad_accum >= 1 (validated)
    return total


@torch.no_grad()
def sample_embeddings(state: LoopState, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A preview prompt's conditioning: cached, or through the LoRA'd text encoders when trained."""
    if state.data.extra_tokens is None:
        embeds, pooled = state.data.extra_embeds[name]
        return embeds, pooled
    tokens = state.data.extra_tokens[name]
    with torch.autocast(state.device.type, dtype=state.autocast_dtype, enabled=state.autocast_dtype is not None):
        embeds, pooled = text_encoders.encode(state.models["text_encoder"], state.models["text_encoder_2"],
                                              tokens["tokenizer"], tokens["tokenizer_2"])
    return embeds.float(), pooled.float()
