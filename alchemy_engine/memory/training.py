"""Peak-memory estimate for a training request, and ``--fit``: the settings that fit free memory.

The estimate needs no weights. Parameter counts come from the UNet config. Activation memory is
measured, not guessed (``memory/trace.py``): the UNet is built on PyTorch's ``meta`` device (shapes
only, no storage) and run forward once at the training resolution under ``saved_tensors_hooks``,
which see every tensor autograd keeps for the backward pass; with the LoRA-targeted projections
marked trainable this is what a LoRA step keeps. Attention is counted as a fused (flash / memory-efficient) kernel
keeps it — q, k, v, output — as SDPA does on CUDA. With gradient checkpointing, each checkpointed
unit (ResNet block, transformer block) keeps only its inputs, plus one unit recomputed at a time.
On the CPU the resident memory also holds the step's freed temporaries, which the C allocator keeps
in its heap rather than returning (``allocator_retention``, measured as a share of the forward's
saved bytes: :data:`CPU_RETAINED_CHECKPOINTED`).

The request is read, not imported: any frozen dataclass with ``TrainRequest``'s memory fields
(resolution, batch_size, grad_accum, rank, optimizer, train_ff, prior_preservation,
gradient_checkpointing / ``checkpointing_on``, weight_dtype, text_encoder_lora, sample_every),
changed with ``dataclasses.replace``; this package sits below the training stage.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from alchemy_engine.errors import AlchemyError
from alchemy_engine.memory import phases as memory_phases
from alchemy_engine.memory.trace import activation_bytes, param_counts, unet_config
from alchemy_engine.models import half_weights
from alchemy_engine.models.device import bitsandbytes_usable, effective_optimizer, free_device_bytes

GIB = 1024 ** 3
OVERHEAD_FRACTION = 0.08  # allocator rounding and fragmentation
OVERHEAD_BYTES = 256 * 1024 ** 2  # cuBLAS / cuDNN workspaces
LOWER_HINT = ("lower resolution, batch_size or rank, turn on gradient_checkpointing, turn off "
              "train_ff / prior_preservation, or use --fit")
_OPTIMIZER_STATE_BYTES = {"adamw": 8, "adamw8bit": 2, "prodigy": 16}
_FIT_RESOLUTIONS = (896, 768, 640, 512)
AUTO_MARGIN = 0.15  # gradient_checkpointing auto: off only when the estimate + 15 % fits
# Freed step temporaries the C allocator (glibc) keeps in the heap during a CPU step, as a share of
# the bytes one forward saves for backward: measured peak RSS minus peak live malloc bytes
# (mallinfo2; bench/allocator_retention.py), demo:mid at 256²-1024² and full SDXL at 512² —
# 0.51-0.74 of it with checkpointing (the recomputed units churn as much), 0.92 without.
CPU_RETAINED_CHECKPOINTED = 0.7
CPU_RETAINED = 0.9


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    device: str
    parts: dict[str, int]  # bytes, by what uses them
    free_bytes: int | None
    request: Any  # training's TrainRequest, with the settings the estimate chose
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)  # field -> [before, after]
    # phase -> host_bytes / device_bytes (memory/phases.py); on the CPU the host figures include the
    # process itself, which is already resident when the estimate is made (``resident_bytes``)
    phases: dict[str, dict[str, int | None]] = dataclasses.field(default_factory=dict)
    resident_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        """The peak that must fit on the device: device memory on GPUs, RAM (all phases) on the CPU."""
        if self.phases and self.device == "cpu":
            return max(int(row["host_bytes"] or 0) for row in self.phases.values())
        train = sum(v for k, v in self.parts.items() if k != "encode_phase")
        return max(train, self.parts.get("encode_phase", 0))

    @property
    def need_bytes(self) -> int:
        """What the run needs beyond what the process already holds: compared with free memory."""
        return self.total_bytes - self.resident_bytes

    @property
    def fits(self) -> bool:
        return self.free_bytes is None or self.need_bytes <= self.free_bytes

    def summary(self) -> str:
        free = f" of {self.free_bytes / GIB:.1f} GiB free" if self.free_bytes is not None else ""
        changed = f" after --fit changed {', '.join(self.changes)}" if self.changes else ""
        return f"estimated peak {self.total_bytes / GIB:.2f} GiB on {self.device}{free}{changed}"

    def phase_summary(self) -> str:
        rows = []
        for name, row in self.phases.items():
            text = f"{name} {(row['host_bytes'] or 0) / GIB:.2f} GiB RAM"
            device_bytes = row.get("device_bytes")
            if device_bytes is not None:
                text += f" / {device_bytes / GIB:.2f} GiB {self.device}"
            rows.append(text)
        return "by phase: " + ", ".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "peak_bytes": self.total_bytes, "peak_gib": round(self.total_bytes / GIB, 3),
                "free_bytes": self.free_bytes, "fits": self.fits,
                "parts_gib": {k: round(v / GIB, 3) for k, v in self.parts.items()}, "changes": self.changes,
                "phases_gib": memory_phases.describe(self.phases), "resident_gib": round(self.resident_bytes / GIB, 3),
                "settings": {k: getattr(self.request, k) for k in ("resolution", "batch_size", "grad_accum",
                             "rank", "gradient_checkpointing", "optimizer", "train_ff", "weight_dtype")}}


def estimate(request: Any, source, policy, free_bytes: int | None = -1, plan=None) -> MemoryEstimate:
    """Peak bytes of training ``request`` on ``policy.device`` (``free_bytes=-1``: ask the device).

    ``plan``: which models the run loads first (``staged_models.LoadPlan``); by default the worst
    case, as if nothing were cached."""
    device = torch.device(policy.device)
    config = unet_config(source)
    dtype_bytes = torch.finfo(policy.dtype).bits // 8
    counts = param_counts(json.dumps(config, sort_keys=True), request.train_ff)
    lora_params = counts["lora_per_rank"] * request.rank
    opt = effective_optimizer(request.optimizer, device)
    side = request.resolution // 8
    batch = request.batch_size * (2 if request.prior_preservation else 1)
    if request.weight_dtype == "auto":  # decided first: cheaper than checkpointing
        request = dataclasses.replace(request, weight_dtype=choose_weight_dtype(request, source, policy, free_bytes)[0])
    if request.gradient_checkpointing == "auto":
        choice, _ = choose_checkpointing(request, source, policy, free_bytes)
        request = dataclasses.replace(request, gradient_checkpointing=choice)
    storage = half_weights.storage_dtype(request.weight_dtype, policy.dtype)
    acts = activation_bytes(json.dumps(config, sort_keys=True), batch, side, side, str(policy.dtype),
                            request.checkpointing_on, request.train_ff, str(storage) if storage else "")
    half_bytes = torch.finfo(storage).bits // 8 if storage else dtype_bytes
    parts = {"unet_weights": (counts["unet"] - counts["storable"]) * dtype_bytes + counts["storable"] * half_bytes,
             "lora_and_optimizer": lora_params * (4 + 4 + _OPTIMIZER_STATE_BYTES[opt]),
             "activations": acts["saved"], "backward_transient": acts["transient"],
             "encode_phase": _encode_phase_bytes(request, policy, device)}
    if storage:  # each half weight is upcast while its layer runs
        parts["weight_upcast"] = counts["largest_storable"] * dtype_bytes
    if request.text_encoder_lora:  # both CLIP encoders stay on the device, with their LoRA state
        parts["text_encoders"] = 817_000_000 * dtype_bytes
    if device.type == "cpu" and request.sample_every:
        parts["vae_for_previews"] = _vae_params(source) * dtype_bytes
    overhead = int(OVERHEAD_FRACTION * sum(v for k, v in parts.items() if k != "encode_phase"))
    parts["overhead"] = overhead + (OVERHEAD_BYTES if device.type == "cuda" else 0)
    if device.type == "cpu":
        share = CPU_RETAINED_CHECKPOINTED if request.checkpointing_on else CPU_RETAINED
        parts["allocator_retention"] = int(share * acts["forward"])
    free = free_device_bytes(device) if free_bytes == -1 else free_bytes
    process = memory_phases.process_bytes()
    phases = memory_phases.phases(parts, request, source, policy, counts["unet"], process, plan)
    return MemoryEstimate(device=str(device), parts=parts, free_bytes=free, request=request, phases=phases,
                          resident_bytes=process if device.type == "cpu" else 0)


def choose_checkpointing(request: Any, source, policy, free_bytes: int | None = -1) -> tuple[str, str]:
    """``"on"`` or ``"off"`` for ``gradient_checkpointing="auto"``, and why (a note for the user).

    Off (faster) only when the estimate without it, plus :data:`AUTO_MARGIN`, fits the free memory;
    on when it does not, or when the free memory cannot be known."""
    if request.gradient_checkpointing != "auto":
        return request.gradient_checkpointing, "as asked"
    device = torch.device(policy.device)
    free = free_device_bytes(device) if free_bytes == -1 else free_bytes
    off = estimate(dataclasses.replace(request, gradient_checkpointing="off"), source, policy, free)
    if free is None:
        return "on", f"the free memory of {device.type} cannot be measured, so memory is saved"
    if off.need_bytes * (1 + AUTO_MARGIN) <= free:
        return "off", (f"without it the run needs {off.need_bytes / GIB:.1f} GiB (+{AUTO_MARGIN:.0%} margin) "
                       f"of {free / GIB:.1f} GiB free: faster steps")
    return "on", (f"without it the run needs {off.need_bytes / GIB:.1f} GiB (+{AUTO_MARGIN:.0%} margin), "
                  f"more than the {free / GIB:.1f} GiB free")


def choose_weight_dtype(request: Any, source, policy, free_bytes: int | None = -1) -> tuple[str, str]:
    """The storage precision of the frozen UNet weights for ``weight_dtype="auto"``, and why.

    With fp16/bf16 compute: that precision (the weights are in it already). With fp32 compute:
    the half precision the model file stores its UNet weights in — lossless — but only when the
    estimate with fp32 weights (and without checkpointing, where that is auto), plus
    :data:`AUTO_MARGIN`, does not fit the free memory; otherwise fp32."""
    compute = half_weights.DTYPE_NAMES[policy.dtype]
    if request.weight_dtype != "auto":
        return request.weight_dtype, "as asked"
    if compute != "fp32":
        return compute, f"training computes in {compute}"
    stored, why = _stored_unet_dtype(source)
    if stored not in half_weights.HALF_DTYPES:
        return "fp32", f"{why}: storing them in half precision would round them"
    device = torch.device(policy.device)
    free = free_device_bytes(device) if free_bytes == -1 else free_bytes
    full = dataclasses.replace(request, weight_dtype="fp32", gradient_checkpointing="off"
                               if request.gradient_checkpointing == "auto" else request.gradient_checkpointing)
    need = estimate(full, source, policy, free).need_bytes
    if free is not None and need * (1 + AUTO_MARGIN) <= free:
        return "fp32", (f"with fp32 weights the run needs {need / GIB:.1f} GiB (+{AUTO_MARGIN:.0%} margin) "
                        f"of {free / GIB:.1f} GiB free")
    room = "the free memory cannot be measured" if free is None else f"more than the {free / GIB:.1f} GiB free"
    return stored, (f"{why}, so {stored} storage is lossless; with fp32 weights the run needs {need / GIB:.1f} GiB "
                    f"(+{AUTO_MARGIN:.0%} margin), {room}")


def fit(request: Any, source, policy, free_bytes: int | None = -1) -> MemoryEstimate:
    """The first of a ladder of cheaper settings whose estimate fits; quality-neutral changes first."""
    first = estimate(request, source, policy, free_bytes)
    if first.fits:
        return first
    request = first.request  # gradient_checkpointing "auto" decided
    current, result = request, first
    changes: dict[str, list[Any]] = {}
    for field, value in _ladder(request, torch.device(policy.device), _lossless_half(source, policy)):
        before = getattr(current, field)
        if before == value:
            continue
        updates = {field: value}
        if field == "batch_size":  # keep the effective batch size
            updates["grad_accum"] = current.grad_accum * current.batch_size
        current = dataclasses.replace(current, **updates)
        for key, new in updates.items():
            changes[key] = [changes.get(key, [getattr(request, key)])[0], new]
        result = estimate(current, source, policy, first.free_bytes)
        if result.fits:
            return dataclasses.replace(result, changes=changes)
    raise AlchemyError(f"no settings fit: even at resolution {current.resolution} the estimate is "
                       f"{result.total_bytes / GIB:.1f} GiB with {(first.free_bytes or 0) / GIB:.1f} GiB free; "
                       "close other programs that use the GPU, or train on a larger GPU")


def _lossless_half(source, policy) -> str | None:
    """The half precision the UNet weights can be stored in without rounding, with fp32 compute."""
    if policy.dtype != torch.float32:
        return None
    stored = _stored_unet_dtype(source)[0]
    return stored if stored in half_weights.HALF_DTYPES else None


def _stored_unet_dtype(source) -> tuple[str | None, str]:
    """The precision the model file stores its UNet weights in, and how that is known."""
    from alchemy_engine.models.sources import stored_unet_dtype

    if not getattr(source, "kind", ""):  # estimate-only sources have no file
        return None, "the precision of its UNet weights is unknown"
    return stored_unet_dtype(source)


def _ladder(request: Any, device: torch.device, lossless_half: str | None = None) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = [("weight_dtype", lossless_half)] if lossless_half else []
    steps.append(("gradient_checkpointing", "on"))
    if bitsandbytes_usable(device):
        steps.append(("optimizer", "adamw8bit"))
    steps += [("batch_size", 1), ("train_ff", False), ("prior_preservation", False)]
    steps += [("resolution", r) for r in _FIT_RESOLUTIONS if r < request.resolution]
    return steps


def out_of_memory_message(request: Any, estimate: MemoryEstimate | None) -> str:
    settings = (f"resolution {request.resolution}, batch_size {request.batch_size}, rank {request.rank}, "
                f"gradient_checkpointing {request.gradient_checkpointing}, "
                f"optimizer {request.optimizer}, train_ff {'on' if request.train_ff else 'off'}")
    guess = f" ({estimate.summary()})" if estimate is not None else ""
    return f"out of GPU memory while training with {settings}{guess}: {LOWER_HINT}"


def _encode_phase_bytes(request: Any, policy, device: torch.device) -> int:
    """VAE (≈84 M) and both text encoders (≈817 M) plus the VAE encoder's largest activations
    (128 channels at full resolution, about four alive at once); the UNet waits on the CPU on CUDA."""
    weights = (84_000_000 + 817_000_000) * (torch.finfo(policy.dtype).bits // 8)
    vae_bytes = torch.finfo(policy.vae_dtype).bits // 8
    activations = 4 * 128 * request.resolution * request.resolution * vae_bytes
    return weights + activations if device.type == "cuda" else 0


def _vae_params(source) -> int:
    from diffusers import AutoencoderKL

    folder = Path(source.path) / "vae"
    if not (folder / "config.json").is_file():
        return 84_000_000  # SDXL's VAE
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder))
    return sum(p.numel() for p in vae.parameters())
