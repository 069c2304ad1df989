"""What a model predicts (noise or velocity) and its noise schedule, read from the model itself.

SDXL base predicts the noise (``epsilon``). Many fine-tunes (NoobAI-XL V-Pred and its merges)
predict the velocity ``v`` and were trained on a zero-terminal-SNR schedule (Lin et al., "Common
Diffusion Noise Schedules and Sample Steps are Flawed"): loaded with SDXL's bundled scheduler they
train on the wrong target and sample washed-out images, silently. Where it is read:

* single ``.safetensors`` files: the community marker tensors ``v_pred`` and ``ztsnr`` (empty
  tensors at the top level, read exactly as ComfyUI's ``supported_models.SDXL.model_type`` does:
  ``ztsnr`` counts only beside ``v_pred``), else the ``modelspec.prediction_type`` metadata
  (``v`` / ``v_prediction`` / ``epsilon``) with kohya's ``ss_zero_terminal_snr`` for zero-SNR;
* diffusers folders: ``scheduler/scheduler_config.json`` (``prediction_type``,
  ``rescale_betas_zero_snr``, ``timestep_spacing``).

A file that says nothing is ``epsilon``; the ``prediction_type`` request field (``auto`` /
``epsilon`` / ``v``) overrides that for files that carry no marker. The result is applied to the
pipeline's scheduler config when loading (:func:`configure`), so every user of the scheduler
(training's noise tables, previews, scenes, insertion, the samplers built from it) follows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError
from alchemy_engine.fields import setting
from alchemy_engine.models.noise_schedule import NoiseSchedule, from_header

__all__ = ["CFG_RESCALE_HELP", "PREDICTION_CHOICES", "PREDICTION_HELP", "NoiseSchedule", "cfg_rescale",
           "cfg_rescale_setting", "prediction_type_setting",
           "configure", "conflict_note", "detect", "from_folder", "from_header", "prediction_notes", "resolve",
           "schedule_of"]

PREDICTION_CHOICES = ("auto", "epsilon", "v")
PREDICTION_HELP = ("what the model predicts: auto reads the file's markers (v_pred / ztsnr keys, modelspec "
                   "metadata, a folder's scheduler config) and means epsilon when there are none; v for a "
                   "v-prediction fine-tune whose file carries no marker")
ZERO_SNR_CFG_RESCALE = 0.7  # Lin et al. §3.4: φ = 0.7 for zero-terminal-SNR models
CFG_RESCALE_HELP = ("CFG rescale φ (0–1) against over-exposure with strong guidance; empty: "
                    f"{ZERO_SNR_CFG_RESCALE:g} for zero-terminal-SNR models, 0 for others")


def prediction_type_setting() -> Any:
    """The ``prediction_type`` field of every job that loads SDXL."""
    return setting("auto", choices=PREDICTION_CHOICES, label="Prediction type", help=PREDICTION_HELP)


def cfg_rescale_setting() -> Any:
    """The ``guidance_rescale`` field of every job that samples with CFG."""
    return setting(None, minimum=0.0, maximum=1.0, label="CFG rescale", help=CFG_RESCALE_HELP)
def from_folder(folder: Path) -> NoiseSchedule | None:
    """The schedule a diffusers folder's ``scheduler/scheduler_config.json`` states; None without one."""
    config_file = Path(folder) / "scheduler" / "scheduler_config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {config_file}: {exc}; repair or re-download the model folder") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{config_file} is not a JSON object; repair or re-download the model folder")
    prediction = str(config.get("prediction_type") or "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise ModelError(f"{config_file} asks for prediction_type {prediction!r}; the app trains and samples "
                         "epsilon and v_prediction models only")
    return NoiseSchedule(prediction, bool(config.get("rescale_betas_zero_snr")),
                         config.get("timestep_spacing") == "trailing", "the folder's scheduler config")


def detect(source: Any) -> NoiseSchedule:
    """What ``source`` (a :class:`~alchemy_engine.models.sources.SdxlSource`) says about itself."""
    from alchemy_engine.models.probe import HeaderError, read_safetensors_header

    if source.kind == "single_file":
        try:
            header = read_safetensors_header(Path(source.path))
        except (HeaderError, OSError) as exc:
            raise ModelError(f"{Path(source.path).name} is not a readable .safetensors file: {exc}") from exc
        found = from_header(header.tensors, header.metadata)
    else:
        found = from_folder(Path(source.path))
    return found or NoiseSchedule()


def resolve(source: Any, asked: str = "auto") -> NoiseSchedule:
    """The schedule to load ``source`` with: its own (``auto``), or the one asked for."""
    if asked not in PREDICTION_CHOICES:
        raise ModelError(f"prediction type must be one of {', '.join(PREDICTION_CHOICES)} (got {asked!r})")
    found = detect(source)
    if asked == "auto":
        return found
    wanted = "v_prediction" if asked == "v" else "epsilon"
    if wanted == found.prediction_type:
        return found
    return NoiseSchedule(wanted, found_in=f"--prediction-type {asked}")


def conflict_note(source: Any, asked: str) -> str:
    """A note when ``asked`` overrides what the model says of itself ("" when it agrees or is auto)."""
    if asked == "auto":
        return ""
    found = detect(source)
    used = resolve(source, asked)
    if found.found_in == NoiseSchedule().found_in or used.prediction_type == found.prediction_type:
        return ""
    return (f"prediction type {asked} overrides {found.describe()}; results will be wrong if the model "
            "really is what its file says")


def configure(scheduler: Any, schedule: NoiseSchedule) -> Any:
    """A scheduler of ``scheduler``'s class with ``schedule`` applied to its config."""
    return type(scheduler).from_config(scheduler.config, **schedule.scheduler_overrides())


def schedule_of(scheduler_config: Any) -> NoiseSchedule:
    """What a loaded pipeline's scheduler config holds (after :func:`configure`)."""
    return NoiseSchedule(str(scheduler_config.get("prediction_type", "epsilon")),
                         bool(scheduler_config.get("rescale_betas_zero_snr", False)),
                         scheduler_config.get("timestep_spacing") == "trailing", "the loaded scheduler")


def cfg_rescale(asked: float | None, scheduler_config: Any) -> float:
    """CFG rescale φ for a call: as asked, else 0.7 for a zero-terminal-SNR schedule and 0 otherwise."""
    if asked is not None:
        return float(asked)
    return ZERO_SNR_CFG_RESCALE if scheduler_config.get("rescale_betas_zero_snr", False) else 0.0


def prediction_notes(loaded: Any, asked: str, guidance_rescale: float | None) -> list[str]:
    """What a job says about the loaded model's prediction (nothing for a plain epsilon model)."""
    notes = [conflict_note(loaded.source, asked)] if asked != "auto" else []
    config = loaded.base.scheduler.config
    schedule = schedule_of(config)
    if schedule.is_v or schedule.zero_terminal_snr:
        found = resolve(loaded.source, asked).describe()
        notes.append(f"{loaded.source.name} predicts {found}; CFG rescale {cfg_rescale(guidance_rescale, config):g}")
    return [note for note in notes if note]
