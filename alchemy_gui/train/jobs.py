"""The Train area's jobs: plain functions ``job(request, progress, cancel)`` run by the job list
(off the UI thread), calling only the engine's surface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine import api
from alchemy_engine.api import TrainRequest
from alchemy_engine.errors import InvalidRequest


def find_models_job(request: None, progress, cancel) -> tuple[list[dict], str]:
    from alchemy_engine.api import find_models

    inventory = find_models().to_dict()
    return inventory["sdxl"], inventory["folders"]["sdxl"]


def run_settings_job(run_dir: Path, progress, cancel) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    """A run's saved settings and its loss curve so far (a resumed run's chart shows the whole run)."""
    return api.run_settings(run_dir), api.read_loss_curve(run_dir)


@dataclass(frozen=True)
class TriedCheckpoint:
    """The newest kept checkpoint of a run, exported as a LoRA to try on the Insert tab."""

    project_root: Path
    run_id: str
    step: int
    lora: Path


def try_checkpoint_job(run_dir: Path, progress, cancel) -> TriedCheckpoint:
    steps = api.kept_checkpoint_steps(run_dir)
    if not steps:
        raise InvalidRequest("No checkpoint has been kept yet: training saves one every few hundred steps "
                             "(Save checkpoint every). Try again after the next one.")
    lora, _kohya = api.export_checkpoint_lora(run_dir.parent.parent, run_dir.name, steps[-1])
    return TriedCheckpoint(run_dir.parent.parent, run_dir.name, steps[-1], lora)


def estimate_job(request: TrainRequest, progress, cancel) -> str:
    estimate = api.estimate_memory(request)
    verdict = ("fits" if estimate.fits else
               "may NOT fit — lower resolution, rank or batch size, or tick “Fit to memory”")
    return f"{estimate.summary()}: {verdict}"
