"""Export the LoRA of any kept checkpoint: ``runs/<id>/exports/step-N/lora.safetensors`` and
``lora_kohya.safetensors``, the same two files a finished run writes.

No model is loaded: a checkpoint's ``lora.safetensors`` holds every trainable LoRA parameter
(``<component>/<peft parameter name>``, see :mod:`alchemy_engine.training.checkpoints`) and the
run's ``train_request.json`` holds the rank, alpha and target layers, which is all
:mod:`alchemy_engine.training.lora_export` needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from alchemy_engine.errors import AlchemyError, InvalidRequest, ModelError
from alchemy_engine.models.lora_files import unet_lora_targets
from alchemy_engine.project import runs
from alchemy_engine.training import checkpoints, lora_export, lora_io, setup

EXPORTS_DIR = "exports"


class SavedLora(torch.nn.Module):
    """One component's LoRA tensors (peft state-dict names) with its peft config, shaped the way
    :mod:`~alchemy_engine.training.lora_export` reads a module that carries LoRA."""

    def __init__(self, state: dict[str, torch.Tensor], config: Any) -> None:
        super().__init__()
        self.saved_peft_state = state
        self.peft_config = {lora_io.ADAPTER: config}


def checkpoint_folder(run_dir: Path, step: int) -> Path:
    folder = checkpoints.checkpoints_dir(run_dir) / f"{checkpoints.PREFIX}{int(step):06d}"
    if not (folder / checkpoints.STATE_FILE).is_file():
        kept = [int(p.name[len(checkpoints.PREFIX):]) for p in checkpoints.list_checkpoints(run_dir)]
        raise InvalidRequest(f"run {run_dir.name} has no checkpoint at step {step} "
                             f"(kept: {', '.join(map(str, kept)) or 'none'})")
    return folder


def saved_models(tensors: dict[str, torch.Tensor], request) -> dict[str, torch.nn.Module]:
    """``{"unet": SavedLora, ...}`` from a checkpoint's ``<component>/<parameter>`` tensors."""
    marker = f".{lora_io.ADAPTER}."
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        component, _, name = key.partition("/")
        if marker not in name or ".lora_" not in name:
            raise ModelError(f"the checkpoint holds a tensor that is not a LoRA layer: {key}")
        states.setdefault(component, {})[name.replace(marker, ".")] = tensor.to("cpu", torch.float32)
    if "unet" not in states:
        raise ModelError("the checkpoint holds no UNet LoRA layers")
    targets = {"unet": unet_lora_targets(request.train_ff), "text_encoder": lora_io.TEXT_ENCODER_ATTENTION,
               "text_encoder_2": lora_io.TEXT_ENCODER_ATTENTION}
    unknown = sorted(set(states) - set(targets))
    if unknown:
        raise ModelError(f"the checkpoint holds LoRA layers of an unknown component: {unknown[0]}")
    return {component: SavedLora(state, lora_io.lora_config(request.rank, request.lora_alpha, targets[component]))
            for component, state in states.items()}


def _base_model(model: str | None) -> dict[str, str]:
    """The base model's name and hash for the metadata, as the finished run writes them; only the
    name when the model is not where it was (or was not named: "the first found" may have changed)."""
    from alchemy_engine.models.inventory import resolve_sdxl

    if model is None:
        return {"base_model": ""}
    try:
        source = resolve_sdxl(model)
        return {"base_model": source.name, "base_model_hash": source.fingerprint()}
    except AlchemyError:  # moved or deleted since training: the LoRA is still good
        return {"base_model": str(model)}


def export_checkpoint_lora(project: Any, run_id: str, step: int) -> tuple[Path, Path]:
    """Write ``runs/<id>/exports/step-N/lora.safetensors`` and ``lora_kohya.safetensors`` from the
    kept checkpoint at ``step``; returns both paths. ``project`` is a Project, a name or a folder."""
    from alchemy_engine.project import open_project

    if not hasattr(project, "runs_dir"):
        project = open_project(project if isinstance(project, Path) else str(project))
    run_dir = setup.find_run(project, run_id)
    request = setup.saved_request(run_dir)
    folder = checkpoint_folder(run_dir, step)
    tensors = checkpoints.read_lora_tensors(folder)
    models = saved_models(tensors, request)
    info = {"token": project.token, "class_noun": project.class_noun,
            "trigger": f"{project.token} {project.class_noun}", **_base_model(request.model),
            "rank": request.rank, "alpha": request.lora_alpha, "steps": int(step),
            "learning_rate": request.learning_rate, "resolution": request.resolution, "seed": request.seed,
            "train_ff": request.train_ff, "text_encoder_lora": request.text_encoder_lora,
            "text_encoder_lr": request.text_encoder_lr or request.learning_rate,
            "photos": len(project.reference_photos()),
            "output_name": f"{project.slug}-{run_dir.name}-step{int(step)}", "checkpoint_step": int(step)}
    out = run_dir / EXPORTS_DIR / f"step-{int(step)}"
    out.mkdir(parents=True, exist_ok=True)
    lora_path, kohya_path = out / runs.LORA_FILE, out / runs.KOHYA_FILE
    lora_export.save_kohya(kohya_path, models, info)
    lora_export.save_diffusers(lora_path, models, info)
    return lora_path, kohya_path
