"""What a training job is asked to do (:class:`TrainRequest`) and what it hands back (:class:`TrainResult`).

Both the CLI (`python main.py train`) and the GUI's training panel build a :class:`TrainRequest`
and call :func:`alchemy_engine.training.run`. ``validate()`` rejects bad settings before any model
is loaded, one specific message per problem, in the style of diffusers' ``check_inputs``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import SEED_MAX, device_setting, eval_models_setting, model_setting, setting
from alchemy_engine.jobs import JobRequest
from alchemy_engine.models.prediction import prediction_type_setting

OPTIMIZERS = ("adamw", "adamw8bit", "prodigy")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
WEIGHT_DTYPES = ("auto", "fp32", "fp16", "bf16")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
ON_OFF_AUTO = ("auto", "on", "off")
MAX_RESOLUTION = 2048


@dataclasses.dataclass(frozen=True)
class TrainRequest(JobRequest):
    """One DreamBooth-LoRA training run of a project's subject on an SDXL base model.

    ``alpha=None`` means alpha = rank (LoRA scale 1). ``min_snr_gamma=None`` or ``0`` turns min-SNR
    weighting off. ``sample_every=0`` / ``save_every=0`` turn previews / checkpoints off.
    ``resume_run`` (a run id or a run folder) continues that run with the settings saved in it.
    """

    project: str = setting(help="project name, slug or folder", cli=False)
    model: str | None = model_setting()
    # schedule
    steps: int = setting(500, minimum=1, label="Steps",
                         help="optimizer steps; 400–800 for 3–5 photos is usual")
    learning_rate: float = setting(1e-4, minimum=0.0, exclusive_minimum=True, maximum=10.0, label="Learning rate",
                                   help="how big each update is; 1e-4 is usual (1.0 for Prodigy); below 1 "
                                        "unless the optimizer is Prodigy")
    lr_scheduler: str = setting("constant", choices=LR_SCHEDULERS, label="LR schedule",
                                help="how the learning rate changes over the run")
    lr_warmup_steps: int = setting(0, minimum=0, label="Warm-up steps",
                                   help="steps over which the learning rate rises from 0")
    batch_size: int = setting(1, minimum=1, maximum=64, label="Batch size",
                              help="photos per step; more needs more memory")
    grad_accum: int = setting(1, minimum=1, maximum=256, label="Gradient accumulation",
                              help="steps whose gradients are summed before one update")
    seed: int = setting(0, minimum=0, maximum=SEED_MAX, label="Seed", help="same seed and settings give the same LoRA")
    # LoRA
    rank: int = setting(16, minimum=1, maximum=1024, label="LoRA rank",
                        help="capacity of the LoRA: 16–32 keeps a subject; more means bigger files")
    alpha: float | None = setting(None, minimum=0.0, exclusive_minimum=True, label="LoRA alpha",
                                  help="LoRA alpha; scale = alpha / rank (empty: alpha = rank, scale 1)")
    train_ff: bool = setting(False, label="Train feed-forward layers",
                             help="also put LoRA on the feed-forward layers: more detail, bigger file")
    text_encoder_lora: bool = setting(False, label="Text-encoder LoRA",
                                      help="also train LoRA on both text encoders (slower, more memory; "
                                           "embeddings are then not cached)")
    text_encoder_lr: float | None = setting(None, minimum=0.0, exclusive_minimum=True,
                                            label="Text-encoder learning rate",
                                            help="learning rate of the text-encoder LoRA (empty: the same "
                                                 "as the UNet's)")
    # data
    resolution: int = setting(1024, minimum=64, maximum=MAX_RESOLUTION, multiple_of=32, label="Resolution",
                              help="training size in pixels, a multiple of 32; photos are bucketed by "
                                   "aspect ratio around it; SDXL is made for 1024")
    flip: bool = setting(False, label="Random horizontal flips",
                         help="random horizontal flips (off by default: many subjects are not symmetric)")
    prompt_template: str = setting("a photo of {token} {class_noun}", label="Prompt template",
                                   help="the training prompt; {token} and {class_noun} are filled in")
    # quality
    min_snr_gamma: float | None = setting(5.0, minimum=0.0, maximum=100.0, label="Min-SNR γ",
                                          help="loss weighting that steadies training; 5 is usual, 0 turns "
                                               "it off")
    prediction_type: str = prediction_type_setting()
    noise_offset: float = setting(0.0, minimum=0.0, maximum=1.0, label="Noise offset",
                                  help="e.g. 0.0357 for deeper darks and brighter lights")
    prior_preservation: bool = setting(False, label="Prior preservation",
                                       help="also learn from images of the plain class (made by the base "
                                            "model) so the class word keeps its meaning")
    class_images: int = setting(100, minimum=1, maximum=1000, label="Class images",
                                help="how many class images to make and use for prior preservation")
    prior_weight: float = setting(1.0, minimum=0.0, exclusive_minimum=True, maximum=100.0, label="Class-image weight",
                                  help="weight of the class-image loss")
    class_prompt: str | None = setting(None, label="Class prompt",
                                       help="prompt of the class images (empty: 'a photo of a <class noun>')")
    masked_loss: bool = setting(False, label="Masked loss",
                                help="learn only from the subject (uses the photos' subject masks)")
    background_weight: float = setting(0.1, minimum=0.0, maximum=1.0, label="Background weight",
                                       help="loss weight outside the subject mask with masked loss")
    # memory / speed
    gradient_checkpointing: str = setting("auto", choices=ON_OFF_AUTO, label="Gradient checkpointing",
                                          help="recompute activations in the backward pass: much less memory, "
                                               "25–40% slower; auto turns it on only when training would not "
                                               "fit the free memory without it")
    compile: str = setting("auto", choices=ON_OFF_AUTO, label="Compile the UNet",
                           help="torch.compile the UNet: faster steps after a one-off compile; auto: on for "
                                "NVIDIA GPUs, off on the CPU and Apple GPUs (compiling takes minutes there)")
    optimizer: str = setting("adamw", choices=OPTIMIZERS, label="Optimizer",
                             help="adamw; adamw8bit needs bitsandbytes and an NVIDIA GPU; prodigy finds its "
                                  "own learning rate (set the learning rate to 1.0)")
    mixed_precision: str = setting("auto", choices=MIXED_PRECISION, label="Mixed precision", remember=False,
                                   help="auto: bf16/fp16 on GPUs, fp32 on the CPU")
    weight_dtype: str = setting("auto", choices=WEIGHT_DTYPES, label="Base weight precision",
                                help="precision the frozen UNet weights are stored in while training computes in "
                                     "fp32 (the CPU): fp16/bf16 halve the UNet's memory, losslessly when the model "
                                     "file holds fp16/bf16 weights (SDXL's do); auto: half only then, and only when "
                                     "fp32 weights would not fit the free memory; with fp16/bf16 mixed precision the "
                                     "weights are in that precision already")
    weight_decay: float = setting(1e-4, minimum=0.0, maximum=1.0, label="Weight decay",
                                  help="AdamW weight decay of the LoRA weights")
    max_grad_norm: float = setting(1.0, minimum=0.0, label="Gradient clipping",
                                   help="clip the gradient norm to this (0 turns clipping off)")
    fit_memory: bool = setting(False, cli=False, label="Fit to memory",
                               help="lower settings until the memory estimate fits the free memory")
    device: str | None = device_setting()
    gpus: int = setting(1, minimum=1, maximum=64, label="GPUs",
                        help="train on this many GPUs of this computer at once (data-parallel: each takes a share "
                             "of every batch, so the batch per step is batch size × GPUs); with device cpu, "
                             "that many CPU processes (for trials)")
    # outputs and control
    save_every: int = setting(100, minimum=0, label="Save checkpoint every",
                              help="steps between resumable checkpoints (0 = only when stopped)")
    keep_last: int = setting(2, minimum=1, maximum=1000, label="Keep last checkpoints",
                             help="keep this many newest checkpoints; older ones are deleted")
    sample_every: int = setting(0, minimum=0, label="Sample every",
                                help="steps between preview images (0 = none)")
    sample_prompt: str | None = setting(None, label="Sample prompt",
                                        help="prompt of the preview images (empty: the training prompt)")
    sample_steps: int = setting(20, minimum=1, maximum=200, label="Sample steps",
                                help="denoising steps of each preview image")
    sample_seed: int = setting(1234, minimum=0, maximum=SEED_MAX, label="Sample seed", help="seed of the preview images")
    resume_run: str | None = setting(None, cli=False, label="Resume run",
                                     help="continue this run (its id or folder) from its newest checkpoint, "
                                          "with its own settings")

    # fidelity scores per checkpoint (evaluation/checkpoint_scores.py): 0 = off
    eval_every: int = setting(0, minimum=0, label="Score every",
                              help="render the fixed preview prompts every N steps and score them against the "
                                   "photos (DINO, CLIP-T) into runs/<id>/scores.csv (0 = off)")
    eval_prompts: int = setting(4, minimum=1, maximum=8, label="Scored prompts",
                                help="how many of the DreamBench prompts to render at each scored step")
    eval_models: str | None = eval_models_setting()

    def __post_init__(self) -> None:
        # train_request.json files saved before "auto" existed hold a bool
        if isinstance(self.gradient_checkpointing, bool):
            object.__setattr__(self, "gradient_checkpointing", "on" if self.gradient_checkpointing else "off")

    @property
    def checkpointing_on(self) -> bool:
        """Gradient checkpointing as it will run (``auto`` is decided before training starts)."""
        return self.gradient_checkpointing == "on"

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def lora_scale(self) -> float:
        """alpha / rank: the factor the LoRA update is multiplied by (in training and at load)."""
        return self.lora_alpha / self.rank

    def validate(self) -> None:
        """Each field's type and range are its declaration's (``JobRequest.validate``); here only the
        rules that tie fields together."""
        _require(bool(self.project and str(self.project).strip()), "project: name a project to train")
        super().validate()
        if self.optimizer != "prodigy":  # Prodigy's learning_rate is a multiplier of its own estimate (≤ 10)
            _require(self.learning_rate < 1.0, f"learning_rate must be below 1 for {self.optimizer}, typically "
                                               f"1e-4 (up to 10 only with the prodigy optimizer) "
                                               f"(got {self.learning_rate!r})")
        _require(self.lr_warmup_steps <= self.steps,
                 f"lr_warmup_steps must be at most steps ({self.steps}) (got {self.lr_warmup_steps!r})")
        _require(self.text_encoder_lr is None or self.text_encoder_lora,
                 "text_encoder_lr is set but text_encoder_lora is off: turn on text_encoder_lora")
        _require("{token}" in self.prompt_template,
                 f"prompt_template must contain {{token}} so the subject is learnt (got {self.prompt_template!r})")
        explicit = self.mixed_precision in ("fp16", "bf16")  # auto: checked once the device is known (setup.py)
        conflict = weight_dtype_conflict(self.weight_dtype, self.mixed_precision) if explicit else ""
        _require(not conflict, conflict)


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
    memory_peaks: dict[str, Any] = dataclasses.field(default_factory=dict)  # phase -> host/device MiB
    settings_changed: dict[str, Any] = dataclasses.field(default_factory=dict)
    cache: dict[str, int] = dataclasses.field(default_factory=dict)
    samples: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()  # settings the engine chose or changed, and why
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    scores_csv: Path | None = None  # runs/<id>/scores.csv with eval_every
    best_step: int | None = None  # the evaluated step with the highest DINO + CLIP-T
    world_size: int = 1  # training processes (gpus)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("run_dir", "lora", "lora_kohya"):
            out[key] = str(out[key])
        out["scores_csv"] = str(self.scores_csv) if self.scores_csv else None
        out["samples"] = [str(p) for p in self.samples]
        out["warnings"] = list(self.warnings)
        out["notes"] = list(self.notes)
        return out


def weight_dtype_conflict(weight_dtype: str, compute: str) -> str:
    """Why ``weight_dtype`` cannot run with training computing in ``compute`` ("fp32", "fp16",
    "bf16"), or "" when it can: a stored precision other than the compute one needs fp32 compute."""
    if compute == "fp32" or weight_dtype in ("auto", compute):
        return ""
    return (f"weight_dtype {weight_dtype} needs training to compute in fp32, but this run computes in {compute} "
            f"(mixed precision), where the UNet weights are stored in {compute} already: use weight_dtype auto, "
            "or mixed_precision no for fp32 compute")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidRequest(message)

