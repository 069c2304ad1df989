"""The samplers artists know by name (A1111 / ComfyUI / Invoke spelling), as diffusers schedulers.

Each name maps to one scheduler class and the options that make it that sampler (the table of
diffusers' "schedulers" guide: Karras sigmas, the SDE variant of DPM++, the final step to σ = 0).
A sampler is built per call from the model's own scheduler config, keeping only the noise
schedule (betas, training steps, prediction type, zero-terminal SNR, timestep spacing), so
nothing of one sampler's options leaks into the next, and the pipeline's scheduler is put back
afterwards (:func:`sampler_in_use`). The name written into a PNG's parameters is the name used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import setting

DEFAULT_SAMPLER = "Euler"
_DPM_2M = {"algorithm_type": "dpmsolver++", "solver_order": 2, "final_sigmas_type": "zero"}
# name -> (diffusers class, options); the names are A1111's
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {**_DPM_2M, "use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {**_DPM_2M, "use_karras_sigmas": True}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler",
                            {**_DPM_2M, "algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {"set_alpha_to_one": False, "clip_sample": False}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}
SAMPLER_NAMES = tuple(SAMPLERS)
SAMPLER_HELP = ("the sampler, by the name A1111 and ComfyUI use: " + ", ".join(SAMPLER_NAMES)
                + "; LCM needs an LCM model or LoRA (4–8 steps, CFG 1–2)")
# what a sampler keeps of the model's scheduler config: the noise schedule, not the sampling method
_SCHEDULE_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                  "prediction_type", "rescale_betas_zero_snr", "timestep_spacing", "steps_offset")
_NO_ZERO_SNR = {"DPMSolverSDEScheduler"}  # diffusers cannot rescale its betas to zero terminal SNR


def sampler_setting() -> Any:
    """The ``sampler`` field of every job that samples."""
    return setting(DEFAULT_SAMPLER, choices=SAMPLER_NAMES, label="Sampler", help=SAMPLER_HELP)


def check_sampler(name: str) -> None:
    """InvalidRequest for a name that is not one of :data:`SAMPLER_NAMES` (case-insensitive match hinted)."""
    if name in SAMPLERS:
        return
    close = [known for known in SAMPLER_NAMES if known.lower() == str(name).strip().lower()]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InvalidRequest(f"sampler {name!r} is not one of {', '.join(SAMPLER_NAMES)}{hint}")


def build_scheduler(name: str, model_config: Any) -> Any:
    """A fresh scheduler for sampler ``name`` on the noise schedule of ``model_config``."""
    import diffusers

    check_sampler(name)
    class_name, options = SAMPLERS[name]
    schedule = {key: model_config[key] for key in _SCHEDULE_KEYS if key in model_config}
    if class_name in _NO_ZERO_SNR and schedule.pop("rescale_betas_zero_snr", False):
        raise InvalidRequest(f"{name} cannot sample a zero-terminal-SNR model (diffusers' {class_name} has no "
                             "rescaled schedule); choose DPM++ 2M SDE Karras, Euler a or another sampler")
    if class_name == "DPMSolverSDEScheduler":
        _require_torchsde(name)
    return getattr(diffusers, class_name).from_config({**schedule, **options})


def _require_torchsde(name: str) -> None:
    try:
        import torchsde  # noqa: F401  (diffusers' DPMSolverSDEScheduler draws its noise with it)
    except ImportError as exc:
        raise InvalidRequest(f"{name} needs the torchsde package (pip install torchsde); or choose "
                             "DPM++ 2M SDE Karras, which needs nothing more") from exc


def sampler_name_of(scheduler: Any) -> str:
    """The A1111 name of a scheduler built by :func:`build_scheduler` (or its class name)."""
    config = scheduler.config
    for name, (class_name, options) in SAMPLERS.items():
        if type(scheduler).__name__ == class_name and all(config.get(k) == v for k, v in options.items()):
            return name
    return type(scheduler).__name__


@contextlib.contextmanager
def sampler_in_use(pipe: Any, name: str) -> Iterator[Any]:
    """``pipe`` samples with ``name`` inside the block; its own scheduler is back afterwards."""
    own = pipe.scheduler
    pipe.scheduler = build_scheduler(name, own.config)
    try:
        yield pipe.scheduler
    finally:
        pipe.scheduler = own
