"""What a training job is asked to do (:class:`TrainRequest`) and what it hands back (:class:`TrainResult`).

Both the CLI (`python main.py train`) and the GUI's training panel build a :class:`TrainRequest`
and call :func:`alchemy_engine.training.run`. ``validate()`` rejects bad settings before any model
is loaded, one specific message per problem, in the style of diffusers' ``check_inputs``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.jobs import JobRequest

OPTIMIZERS = ("adamw", "adamw8bit", "prodigy")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
MAX_RESOLUTION = 2048


@dataclasses.dataclass(frozen=True)
class TrainRequest(JobRequest):
    """One DreamBooth-LoRA training run of a project's subject on an SDXL base model.

    ``alpha=None`` means alpha = rank (LoRA scale 1). ``min_snr_gamma=None`` or ``0`` turns min-SNR
    weighting off. ``sample_every=0`` / ``save_every=0`` turn previews / checkpoints off.
    ``resume_run`` (a run id or a run folder) continues that run with the settings saved in it.
    """

    project: str
    model: str | None = None
    # schedule
    steps: int = 500
    learning_rate: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    batch_size: int = 1
    grad_accum: int = 1
    seed: int = 0
    # LoRA
    rank: int = 16
    alpha: float | None = None
    train_ff: bool = False
    text_encoder_lora: bool = False
    text_encoder_lr: float | None = None
    # data
    resolution: int = 1024
    flip: bool = False
    prompt_template: str = "a photo of {token} {class_noun}"
    # quality
    min_snr_gamma: float | None = 5.0
    noise_offset: float = 0.0
    prior_preservation: bool = False
    class_images: int = 100
    prior_weight: float = 1.0
    class_prompt: str | None = None
    masked_loss: bool = False
    background_weight: float = 0.1
    # memory / speed
    gradient_checkpointing: bool = True
    optimizer: str = "adamw"
    mixed_precision: str = "auto"
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    fit_memory: bool = False
    device: str | None = None
    # outputs and control
    save_every: int = 100
    keep_last: int = 2
    sample_every: int = 0
    sample_prompt: str | None = None
    sample_steps: int = 20
    sample_seed: int = 1234
    resume_run: str | None = None
    # fidelity scores per checkpoint (evaluation/checkpoint_scores.py): 0 = off
    eval_every: int = 0
    eval_prompts: int = 4
    eval_models: str | None = None

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def lora_scale(self) -> float:
        """alpha / rank: the factor the LoRA update is multiplied by (in training and at load)."""
        return self.lora_alpha / self.rank

    def validate(self) -> None:
        _require(bool(self.project and str(self.project).strip()), "project: name a project to train")
        self._validate_schedule()
        self._validate_lora()
        self._validate_data()
        self._validate_quality()
        self._validate_memory_and_outputs()

    def _validate_schedule(self) -> None:
        _require(_is_int(self.steps) and self.steps >= 1, f"steps must be a whole number ≥ 1 (got {self.steps!r})")
        if self.optimizer == "prodigy":  # Prodigy's learning_rate is a multiplier of its own estimate
            _require(_positive(self.learning_rate) and self.learning_rate <= 10.0,
                     f"learning_rate for Prodigy must be between 0 and 10, typically 1.0 (got {self.learning_rate!r})")
        else:
            _require(_positive(self.learning_rate) and self.learning_rate < 1.0,
                     f"learning_rate must be between 0 and 1, typically 1e-4 (got {self.learning_rate!r})")
        _require(self.lr_scheduler in LR_SCHEDULERS,
                 f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)} (got {self.lr_scheduler!r})")
        _require(_is_int(self.lr_warmup_steps) and 0 <= self.lr_warmup_steps <= self.steps,
                 f"lr_warmup_steps must be between 0 and steps ({self.steps}) (got {self.lr_warmup_steps!r})")
        _require(_is_int(self.batch_size) and 1 <= self.batch_size <= 64,
                 f"batch_size must be between 1 and 64 (got {self.batch_size!r})")
        _require(_is_int(self.grad_accum) and 1 <= self.grad_accum <= 256,
                 f"grad_accum must be between 1 and 256 (got {self.grad_accum!r})")
        _require(_is_int(self.seed) and 0 <= self.seed < 2**63, f"seed must be a whole number ≥ 0 (got {self.seed!r})")

    def _validate_lora(self) -> None:
        _require(_is_int(self.rank) and 1 <= self.rank <= 1024, f"rank must be between 1 and 1024 (got {self.rank!r})")
        _require(self.alpha is None or _positive(self.alpha),
                 f"alpha must be a positive number, or left out to equal rank (got {self.alpha!r})")
        _require(self.text_encoder_lr is None or _positive(self.text_encoder_lr),
                 f"text_encoder_lr must be a positive number (got {self.text_encoder_lr!r})")
        _require(self.text_encoder_lr is None or self.text_encoder_lora,
                 "text_encoder_lr is set but text_encoder_lora is off: turn on text_encoder_lora")

    def _validate_data(self) -> None:
        _require(_is_int(self.resolution) and 64 <= self.resolution <= MAX_RESOLUTION and self.resolution % 32 == 0,
                 f"resolution must be a multiple of 32 between 64 and {MAX_RESOLUTION}, "
                 f"1024 for SDXL (got {self.resolution!r})")
        _require("{token}" in self.prompt_template,
                 f"prompt_template must contain {{token}} so the subject is learnt (got {self.prompt_template!r})")

    def _validate_quality(self) -> None:
        _require(self.min_snr_gamma is None or (_finite(self.min_snr_gamma) and self.min_snr_gamma >= 0),
                 f"min_snr_gamma must be ≥ 0 (0 turns it off; 5 is usual) (got {self.min_snr_gamma!r})")
        _require(_finite(self.noise_offset) and 0 <= self.noise_offset <= 1,
                 f"noise_offset must be between 0 and 1, typically 0.0357 (got {self.noise_offset!r})")
        if self.prior_preservation:
            _require(_is_int(self.class_images) and 1 <= self.class_images <= 1000,
                     f"class_images must be between 1 and 1000 (got {self.class_images!r})")
            _require(_finite(self.prior_weight) and self.prior_weight > 0,
                     f"prior_weight must be > 0 (got {self.prior_weight!r})")
        _require(_finite(self.background_weight) and 0 <= self.background_weight <= 1,
                 f"background_weight must be between 0 and 1 (got {self.background_weight!r})")

    def _validate_memory_and_outputs(self) -> None:
        _require(self.optimizer in OPTIMIZERS,
                 f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        _require(self.mixed_precision in MIXED_PRECISION,
                 f"mixed_precision must be one of {', '.join(MIXED_PRECISION)} (got {self.mixed_precision!r})")
        _require(_finite(self.weight_decay) and 0 <= self.weight_decay < 1,
                 f"weight_decay must be between 0 and 1 (got {self.weight_decay!r})")
        _require(_finite(self.max_grad_norm) and self.max_grad_norm >= 0,
                 f"max_grad_norm must be ≥ 0 (0 turns clipping off) (got {self.max_grad_norm!r})")
        for name in ("save_every", "sample_every"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 0, f"{name} must be a whole number ≥ 0 (0 = off) (got {value!r})")
        _require(_is_int(self.keep_last) and self.keep_last >= 1, f"keep_last must be ≥ 1 (got {self.keep_last!r})")
        _require(_is_int(self.sample_steps) and 1 <= self.sample_steps <= 200,
                 f"sample_steps must be between 1 and 200 (got {self.sample_steps!r})")
        _require(_is_int(self.eval_every) and self.eval_every >= 0,
                 f"eval_every must be a whole number ≥ 0 (0 = off) (got {self.eval_every!r})")
        _require(_is_int(self.eval_prompts) and 1 <= self.eval_prompts <= 8,
                 f"eval_prompts must be between 1 and 8 (got {self.eval_prompts!r})")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished run produced. ``to_dict()`` is the CLI's last JSON line."""

    run_dir: Path
    lora: Path
    lora_kohya: Path
    steps: int
    final_loss: float | None
    resumed_from: int | None = None
    memory_estimate: dict[str, Any] = dataclasses.field(default_factory=dict)
    settings_changed: dict[str, Any] = dataclasses.field(default_factory=dict)
    cache: dict[str, int] = dataclasses.field(default_factory=dict)
    samples: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    scores_csv: Path | None = None  # runs/<id>/scores.csv with eval_every
    best_step: int | None = None  # the evaluated step with the highest DINO + CLIP-T

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("run_dir", "lora", "lora_kohya"):
            out[key] = str(out[key])
        out["scores_csv"] = str(self.scores_csv) if self.scores_csv else None
        out["samples"] = [str(p) for p in self.samples]
        out["warnings"] = list(self.warnings)
        return out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidRequest(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0
