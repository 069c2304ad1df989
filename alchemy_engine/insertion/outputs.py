"""A project's insertion outputs: the finished images in ``outputs/``, what made each one, the
trash they go to, and the scene and mask the Insert workspace was editing.

Everything here reads the PNG files' own text chunks (see :mod:`alchemy_engine.insertion.metadata`),
so an output copied elsewhere and dropped back still says how it was made. Deleting moves a file to
``<project>/trash/outputs/`` (never destroyed); the current scene and its mask live in
``<project>/scenes/current.json`` and ``scenes/masks/`` and are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from alchemy_engine.atomic import atomic_write_json, make_dirs, move
from alchemy_engine.errors import AlchemyError, InvalidRequest
from alchemy_engine.fields import SEED_MAX
from alchemy_engine.insertion import metadata
from alchemy_engine.insertion.coverage import read_coverage, to_coverage
from alchemy_engine.insertion.masks import save_mask

log = logging.getLogger(__name__)

MASK_SUFFIX = "-mask"
SCORES_KEY = "scores"  # a dict name → number, added to the PNG text chunks by the fidelity scorer
TRASH_DIR = "trash"
CURRENT_FILE = "current.json"


@dataclass(frozen=True)
class OutputInfo:
    """One finished image of a project, as the results strip shows it."""

    path: Path
    modified: float  # seconds since the epoch
    seed: int | None = None
    prompt: str = ""
    scene: Path | None = None  # the scene it was made from (None: unknown)
    scores: dict[str, float] = field(default_factory=dict)


def _project_root(project: Any) -> Path:
    """A Project's folder, or the folder itself (a Path has a ``root`` attribute too: "/")."""
    return Path(project) if isinstance(project, (str, os.PathLike)) else Path(project.root)


def list_outputs(project: Any) -> list[OutputInfo]:
    """Every insertion output of ``project`` (a Project or its folder), newest first; masks and
    files that are not PNG are left out, an unreadable file is listed without its details."""
    folder = _project_root(project) / "outputs"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png"
             and not p.stem.endswith(MASK_SUFFIX)]
    infos = [_output_info(p) for p in found]
    return sorted(infos, key=lambda i: (i.modified, i.path.name), reverse=True)


def _output_info(path: Path) -> OutputInfo:
    modified = path.stat().st_mtime
    try:
        params = read_output_parameters(path)
    except InvalidRequest as exc:
        log.warning("output %s: %s", path.name, exc)
        return OutputInfo(path, modified)
    scene = params.get("scene")
    return OutputInfo(path, modified, params.get("seed"), params.get("prompt") or "",
                      Path(scene) if scene else None, params.get(SCORES_KEY, {}))


def _scores(raw: str | None) -> dict[str, float]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def read_output_parameters(path: str | Path) -> dict[str, Any]:
    """What made an output, read back from its own PNG text chunks.

    Returns the fields of the InsertRequest that made it (``alchemy_request``), or the A1111
    ``parameters`` chunk mapped onto InsertRequest names (prompt, negative_prompt, steps, guidance,
    seed, strength, lora_scale) for a PNG from another tool; plus ``scene`` (the scene it came from),
    ``scores`` (``{}`` without any) and ``source`` ("alchemy" or "parameters"). Raises
    InvalidRequest when the file holds neither.
    """
    path = Path(path)
    try:
        chunks = metadata.read_png_text(path)
    except (OSError, ValueError, AlchemyError) as exc:
        raise InvalidRequest(f"{path.name} cannot be read as an image: {exc}") from exc
    out: dict[str, Any]
    raw = chunks.get(metadata.REQUEST_KEY)
    request = None
    if raw:
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
    if isinstance(request, dict):
        out = dict(request)
        out["source"] = "alchemy"
    elif metadata.PARAMETERS_KEY in chunks:
        out = _from_parameters(metadata.parse_parameters(chunks[metadata.PARAMETERS_KEY]))
        out["source"] = "parameters"
    else:
        raise InvalidRequest(f"{path.name} holds no generation parameters (no 'parameters' or "
                             f"'{metadata.REQUEST_KEY}' text); it was not made by Image Alchemy or A1111")
    try:
        extra = json.loads(chunks.get(metadata.RESULT_KEY) or "{}")
    except ValueError:
        extra = {}
    scene = extra.get("scene") if isinstance(extra, dict) else None
    out["scene"] = scene or out.get("scene")
    out[SCORES_KEY] = _scores(chunks.get(SCORES_KEY))
    seed = out.get("seed")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed <= SEED_MAX):
        # Older versions drew random seeds up to 2**32, and other tools use 64-bit seeds: such a
        # seed cannot be set again, so it is reported (seed_out_of_range) rather than passed on.
        out["seed"], out["seed_out_of_range"] = None, seed
    return out


_NUMBERS = {"Steps": ("steps", int), "CFG scale": ("guidance", float), "Seed": ("seed", int),
            "Denoising strength": ("strength", float), "Lora weight": ("lora_scale", float),
            "CFG Rescale": ("guidance_rescale", float)}


def _from_parameters(fields: dict[str, str]) -> dict[str, Any]:
    prompt = fields.get("prompt", "")
    cut = prompt.find(" <lora:")
    out: dict[str, Any] = {"prompt": prompt[:cut] if cut >= 0 else prompt,
                           "negative_prompt": fields.get("negative_prompt", "")}
    for key, (name, kind) in _NUMBERS.items():
        try:
            out[name] = kind(fields[key])
        except (KeyError, ValueError):
            continue
    sampler = _sampler(fields.get("Sampler", ""), fields.get("Schedule type", ""))
    if sampler:
        out["sampler"] = sampler
    return out


def _sampler(name: str, schedule: str) -> str | None:
    """A1111's sampler as one of ours: "DPM++ 2M Karras", or newer A1111's "DPM++ 2M" with
    "Schedule type: Karras"; None for one we do not offer."""
    from alchemy_engine.models.samplers import SAMPLER_NAMES

    combined = f"{name} {schedule}" if schedule and schedule.lower() not in ("automatic", "") else name
    return next((known for known in (combined, name) if known in SAMPLER_NAMES), None)


def trash_output(project: Any, path: str | Path) -> Path:
    """Move an output (and its ``-mask.png``, if it has one of the same stem) to
    ``<project>/trash/outputs/``; returns where the image went. Refuses files outside outputs/."""
    root = _project_root(project)
    path = Path(path)
    outputs = (root / "outputs").resolve()
    if path.resolve().parent != outputs or not path.is_file():
        raise InvalidRequest(f"{path.name} is not an output of this project ({outputs})")
    trash = make_dirs(root / TRASH_DIR / "outputs")
    target = trash / path.name
    if target.exists():
        target = trash / f"{path.stem}-{datetime.now().strftime('%Y%m%d-%H%M%S%f')}{path.suffix}"
    move(path, target)
    return target


# --- the scene being edited -------------------------------------------------------------------------

def _mask_file(root: Path, scene: Path) -> Path:
    digest = hashlib.sha256(str(Path(scene).resolve()).encode("utf-8")).hexdigest()[:16]
    return root / "scenes" / "masks" / f"{Path(scene).stem}-{digest}.png"


def save_scene_mask(project: Any, scene: str | Path, mask: np.ndarray | None) -> Path:
    """Remember ``scene`` as the project's current scene and ``mask`` (scene-sized, bool or uint8
    grey levels of a soft brush; None or empty: no mask) as its mask, an 8-bit greyscale PNG; each
    written atomically. Returns ``scenes/current.json``."""
    root = _project_root(project)
    scene = Path(scene).resolve()
    mask_path = _mask_file(root, scene)
    has_mask = mask is not None and bool(np.asarray(mask).any())
    if has_mask:
        make_dirs(mask_path.parent)
        save_mask(to_coverage(mask), mask_path)
    current = root / "scenes" / CURRENT_FILE
    make_dirs(current.parent)
    atomic_write_json(current, {"scene": str(scene), "mask": str(mask_path) if has_mask else None})
    return current


@dataclass(frozen=True)
class SavedScene:
    scene: Path
    mask: np.ndarray | None  # uint8 (H, W), 0-255 (older binary masks read as 0/255); None when none


def load_scene_mask(project: Any, scene: str | Path | None = None) -> SavedScene | None:
    """The saved mask of ``scene``, or (scene None) the project's current scene and its mask; None
    when there is none or the scene file is gone."""
    root = _project_root(project)
    mask_path: Path | None
    if scene is None:
        try:
            data = json.loads((root / "scenes" / CURRENT_FILE).read_text(encoding="utf-8"))
            scene, mask_path = Path(data["scene"]), Path(data["mask"]) if data.get("mask") else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
    else:
        scene = Path(scene).resolve()
        mask_path = _mask_file(root, scene)
    if not Path(scene).is_file():
        return None
    mask = None
    if mask_path is not None and mask_path.is_file():
        try:
            mask = read_coverage(mask_path)
        except (OSError, ValueError, AlchemyError) as exc:
            log.warning("saved mask %s cannot be read: %s", mask_path, exc)
    return SavedScene(Path(scene), mask)


__all__ = ["OutputInfo", "SavedScene", "list_outputs", "load_scene_mask", "read_output_parameters",
           "save_scene_mask", "trash_output"]
