"""Checkpoints that make a resumed run bit-identical to one that was never interrupted.

A checkpoint is a folder ``runs/<id>/checkpoints/step-000040/`` holding the LoRA weights, the
optimizer, LR scheduler and grad-scaler states, every RNG state (python, numpy, torch CPU, CUDA and
the trainer's own noise generator) and ``state.json`` (optimizer step, micro-batch position in the
data order, smoothed loss). The folder is written under a temporary name, every file fsynced, then
renamed: after a crash, a kill -9 or a full disk, the newest complete checkpoint is still there.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alchemy_engine.atomic import fsync_dir
from alchemy_engine.errors import AlchemyError
from alchemy_engine.project import runs
from alchemy_engine.training import lora_io

log = logging.getLogger(__name__)

PREFIX = runs.CHECKPOINT_PREFIX
STATE_FILE = runs.CHECKPOINT_STATE_FILE


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / runs.CHECKPOINTS_DIR


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder only gets its final name once complete)."""
    folder = checkpoints_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_partial(run_dir: Path) -> None:
    """Delete temporary folders left by a run that died while saving."""
    folder = checkpoints_dir(run_dir)
    if folder.is_dir():
        for stale in folder.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)


def rng_states(noise_generator: torch.Generator) -> dict[str, Any]:
    np_state = cast(tuple, np.random.get_state())  # the legacy tuple form (the default)
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "noise": noise_generator.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], noise_generator: torch.Generator) -> None:
    random.setstate(_as_tuple(states["python"]))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    noise_generator.set_state(states["noise"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save(run_dir: Path, step: int, *, models: dict[str, torch.nn.Module], optimizer, scheduler, scaler,
         noise_generator: torch.Generator, state: dict[str, Any], keep_last: int) -> Path:
    """Write checkpoint ``step`` atomically, then drop all but the newest ``keep_last``."""
    folder = checkpoints_dir(run_dir)
    final = folder / f"{PREFIX}{step:06d}"
    if (final / STATE_FILE).is_file():
        return final
    staging = folder / f".tmp-{PREFIX}{step:06d}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in lora_io.trainable_tensors(models).items()},
                  str(staging / runs.LORA_FILE))
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        torch.save(scheduler.state_dict(), staging / "scheduler.pt")
        torch.save(scaler.state_dict() if scaler is not None else {}, staging / "scaler.pt")
        torch.save(rng_states(noise_generator), staging / "rng.pt")
        (staging / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2))
        for file in staging.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(staging, final)
        fsync_dir(folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        previous = latest_checkpoint(run_dir)
        kept = f"the checkpoint at step {_step_of(previous)} is intact" if previous else "no earlier checkpoint exists"
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
        raise AlchemyError(f"could not save the checkpoint at step {step}: {reason}. {kept}; free some "
                           f"space and continue with `train --resume {Path(run_dir).name}`.") from exc
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load(checkpoint: Path, *, models: dict[str, torch.nn.Module], optimizer, scheduler, scaler,
         noise_generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Restore everything :func:`save` wrote; returns ``state.json``'s content."""
    checkpoint = Path(checkpoint)
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text())
        lora_io.load_trainable_tensors(models, load_file(str(checkpoint / runs.LORA_FILE)))
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device, weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
        scaler_state = torch.load(checkpoint / "scaler.pt", weights_only=True)
        if scaler is not None and scaler_state:
            scaler.load_state_dict(scaler_state)
        restore_rng_states(torch.load(checkpoint / "rng.pt", weights_only=True), noise_generator)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise AlchemyError(f"checkpoint {checkpoint} cannot be read ({exc}); delete it to resume "
                           "from the one before") from exc
    return state


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name[len(PREFIX):]) if checkpoint else 0
