"""Checkpoints that make a resumed run bit-identical to one that was never interrupted.

A checkpoint is a folder ``runs/<id>/checkpoints/step-000040/`` holding the LoRA weights, the
optimizer, LR scheduler and grad-scaler states, every RNG state (python, numpy, torch CPU, CUDA and
the trainer's own noise generator) and ``state.json`` (optimizer step, micro-batch position in the
data order, smoothed loss). The folder is written under a temporary name, every file fsynced, then
renamed: after a crash, a kill -9 or a full disk, the newest complete checkpoint is still there.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from alchemy_engine.atomic import atomic_dir, remove_quietly, write_file
from alchemy_engine.errors import AlchemyError, ModelError
from alchemy_engine.project import runs
from alchemy_engine.safe_read import read_json, regular_file
from alchemy_engine.training import lora_io

log = logging.getLogger(__name__)

PREFIX = runs.CHECKPOINT_PREFIX
STATE_FILE = runs.CHECKPOINT_STATE_FILE
MAX_FILE_BYTES = 16 * 1024**3  # a text-encoder LoRA's optimizer state is far below this


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / runs.CHECKPOINTS_DIR


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder only gets its final name once complete)."""
    folder = checkpoints_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
             and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_partial(run_dir: Path) -> None:
    """Delete temporary folders left by a run that died while saving (call under the run lock)."""
    folder = checkpoints_dir(run_dir)
    stale = [*folder.glob(".tmp-*"), *Path(run_dir).glob(".export-*"), *Path(run_dir).glob(".*.tmp*")]
    for path in stale:
        remove_quietly(path)


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


def resume_hint(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    return f"resume with `train {run_dir.parent.parent.name} --resume {run_dir.name}`"


def save(run_dir: Path, step: int, *, models: dict[str, torch.nn.Module], optimizer, scheduler, scaler,
         noise_generator: torch.Generator, state: dict[str, Any], keep_last: int, rng: Any = None) -> Path:
    """Write checkpoint ``step`` atomically, then drop all but the newest ``keep_last``.

    ``rng`` is what ``rng.pt`` holds when several processes train (every rank's states, see
    ``data_parallel.rng_to_save``); by default this process's own states."""
    folder = checkpoints_dir(run_dir)
    final = folder / f"{PREFIX}{step:06d}"
    if (final / STATE_FILE).is_file():
        return final
    if final.exists():  # a folder of an older version without its state: not a checkpoint
        _discard(final)
    previous = latest_checkpoint(run_dir)
    kept = f"the checkpoint at step {_step_of(previous)} is intact" if previous else "no earlier checkpoint exists"
    then = f"{resume_hint(run_dir)} ({kept})"
    files: dict[str, Callable[[Path], Any]] = {
        runs.LORA_FILE: lambda p: save_file({k: v.contiguous() for k, v in
                                             lora_io.trainable_tensors(models).items()}, str(p)),
        "optimizer.pt": lambda p: torch.save(optimizer.state_dict(), p),
        "scheduler.pt": lambda p: torch.save(scheduler.state_dict(), p),
        "scaler.pt": lambda p: torch.save(scaler.state_dict() if scaler is not None else {}, p),
        "rng.pt": lambda p: torch.save(rng_states(noise_generator) if rng is None else rng, p),
        STATE_FILE: lambda p: p.write_text(json.dumps({"step": step, **state}, indent=2)),
    }
    with atomic_dir(final, then) as staging:
        for name, writer in files.items():
            write_file(staging / name, writer, shown_as=final / name, then=then)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        _discard(old)
    return final


def _discard(checkpoint: Path) -> None:
    """Hide the folder first (one rename), so a crash mid-delete never leaves half a checkpoint
    under its final name."""
    hidden = checkpoint.with_name(f".tmp-old-{checkpoint.name}-{uuid.uuid4().hex[:6]}")
    try:
        os.replace(checkpoint, hidden)
    except OSError as exc:
        log.warning("could not remove the old checkpoint %s: %s", checkpoint, exc)
        return
    remove_quietly(hidden)


class DamagedCheckpoint(AlchemyError):
    pass


# What torch.load (weights_only) and safetensors raise for missing, truncated, random or pickled bytes.
_BAD_BYTES = (OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError, AttributeError, IndexError,
              pickle.UnpicklingError, zipfile.BadZipFile, SafetensorError)


def load_newest(run_dir: Path, **parts) -> tuple[dict[str, Any], Path, list[str]]:
    """Restore the newest checkpoint that reads back whole, falling back to older ones.

    Returns ``(state.json content, checkpoint folder, notes)``; each note says which checkpoint was
    damaged and where training resumes instead. ``parts`` are :func:`load`'s keyword arguments.
    """
    damaged: list[tuple[Path, str]] = []
    for checkpoint in reversed(list_checkpoints(run_dir)):
        try:
            state = load(checkpoint, **parts)
        except DamagedCheckpoint as exc:
            damaged.append((checkpoint, str(exc)))
            continue
        notes = [f"checkpoint step {_step_of(bad)} is damaged ({why}); resuming from step {state['step']}"
                 for bad, why in damaged]
        return state, checkpoint, notes
    detail = "; ".join(f"step {_step_of(bad)}: {why}" for bad, why in damaged) or "there is none"
    raise AlchemyError(f"no checkpoint of run {Path(run_dir).name} can be read ({detail}); the run cannot "
                       "be resumed. Start a new run.")


def load(checkpoint: Path, *, models: dict[str, torch.nn.Module], optimizer, scheduler, scaler,
         noise_generator: torch.Generator, device: torch.device, rank: int = 0) -> dict[str, Any]:
    """Restore everything :func:`save` wrote; returns ``state.json``'s content. Every file is read
    and checked before anything is restored; a problem raises :class:`DamagedCheckpoint`."""
    checkpoint = Path(checkpoint)
    state = _read_state(checkpoint)
    tensors = _read(checkpoint, runs.LORA_FILE, lambda p: load_file(str(p)))
    loaded = {name: _read(checkpoint, name, lambda p: torch.load(p, map_location=device, weights_only=True))
              for name in ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng.pt")}
    try:
        lora_io.load_trainable_tensors(models, tensors)
        optimizer.load_state_dict(loaded["optimizer.pt"])
        scheduler.load_state_dict(loaded["scheduler.pt"])
        if scaler is not None and loaded["scaler.pt"]:
            scaler.load_state_dict(loaded["scaler.pt"])
        rng = loaded["rng.pt"]
        restore_rng_states(rng["ranks"][rank] if "ranks" in rng else rng, noise_generator)
    except (ModelError, ValueError, RuntimeError, KeyError, TypeError, IndexError, AttributeError) as exc:
        log.debug("checkpoint %s does not fit this run: %r", checkpoint, exc)
        raise DamagedCheckpoint("its contents do not fit this run") from exc
    return state


def read_lora_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's LoRA parameters, ``<component>/<parameter name>``; raises DamagedCheckpoint."""
    return _read(Path(checkpoint), runs.LORA_FILE, lambda p: load_file(str(p)))


def _read(checkpoint: Path, name: str, reader: Callable[[Path], Any]) -> Any:
    path = checkpoint / name
    try:
        regular_file(path, max_bytes=MAX_FILE_BYTES, what="checkpoint file", error=DamagedCheckpoint)
        return reader(path)
    except DamagedCheckpoint as exc:
        raise DamagedCheckpoint(f"{name} is missing or not a file" if "not found" in str(exc) else str(exc)) from exc
    except _BAD_BYTES as exc:
        # The raw text may quote PyTorch's advice to load with weights_only=False: never show it.
        log.debug("checkpoint file %s cannot be read: %r", path, exc)
        raise DamagedCheckpoint(f"{name} is truncated or not written by Image Alchemy") from exc


def _read_state(checkpoint: Path) -> dict[str, Any]:
    state = read_json(checkpoint / STATE_FILE, what="checkpoint state", error=DamagedCheckpoint,
                      damaged=lambda detail: DamagedCheckpoint(f"{STATE_FILE} is damaged ({detail})"))
    log_state = state.get("loss_log") if isinstance(state, dict) else None
    fine = (isinstance(log_state, dict) and _is_int(state.get("step")) and _is_int(state.get("micro_step"))
            and state["step"] == _step_of(checkpoint) and state["micro_step"] >= 0
            and all(isinstance(log_state.get(k), (int, float)) for k in ("ema", "ema_weight"))
            and (log_state.get("last") is None or (isinstance(log_state["last"], list) and len(log_state["last"]) == 3
                                                   and all(isinstance(v, (int, float)) for v in log_state["last"]))))
    if not fine:
        raise DamagedCheckpoint(f"{STATE_FILE} lacks a field or holds a wrong value")
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name[len(PREFIX):]) if checkpoint else 0
