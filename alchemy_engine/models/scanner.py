"""Scan model folders: every model file classified from its header only, cached by path + size + mtime.

:func:`scan_models` is a job (``run(request, progress, cancel)``): it walks the configured model
folders (:mod:`~alchemy_engine.models.folders`), reads the safetensors header of each new or
changed file (the probe of :mod:`~alchemy_engine.models.probe`; no weights are read and nothing is
unpickled), and keeps the verdicts in ``cache_root()/model_scan.json`` so the next scan of
thousands of unchanged files costs one ``stat`` each. SAM ``.pth`` files are recognised by Meta's
file names (opening one means unpickling it). A folder with a ``model_index.json`` is a diffusers
folder and is not descended into.

Each :class:`ScannedModel` has a ``use``: what the app can do with it — ``sdxl`` (an SDXL base or
fine-tune to train on and insert with), ``sdxl_refiner``, ``sdxl_inpaint``, ``lora`` (with
``lora_base`` saying for which model), ``sam``, or ``other`` (anything else, kept with the probe's
description so a picker can say why it is not offered).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.errors import ModelError
from alchemy_engine.fields import setting
from alchemy_engine.jobs import CancelToken, JobRequest, Progress, ProgressCallback, Stage, no_progress

log = logging.getLogger(__name__)

CACHE_FILE = "model_scan.json"
CACHE_VERSION = 1
USES = ("sdxl", "sdxl_refiner", "sdxl_inpaint", "lora", "sam", "other")
_FAMILY_USE = {"sdxl_base": "sdxl", "sdxl_refiner": "sdxl_refiner", "sdxl_inpaint": "sdxl_inpaint",
               "lora": "lora", "sam": "other"}  # a safetensors SAM is not what segment-anything reads
_SAM_NAMES = {"sam_vit_h": "vit_h", "sam_vit_l": "vit_l", "sam_vit_b": "vit_b"}
_SUFFIXES = (".safetensors", ".pth")
_SKIP_DIRS = {".git", ".cache", "__pycache__", "node_modules", ".locks", "blobs"}
_PROGRESS_EVERY = 50


@dataclass(frozen=True)
class ScannedModel:
    """One model file (or diffusers folder) found in a model folder."""

    path: str
    folder: str  # the model folder it was found under: pickers group by it
    use: str  # one of USES
    family: str  # the probe's family (sdxl_base, lora, pickle, diffusers_folder, ...)
    description: str
    size_bytes: int = 0
    lora_base: str = ""  # for LoRAs: sdxl, sd1, flux, ... (lora_files' ids)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}


@dataclass(frozen=True)
class ScanRequest(JobRequest):
    """Which folders to scan; empty means the configured model folders."""

    folders: tuple[str, ...] = setting((), cli=False, label="Folders",
                                       help="folders to scan (default: the model folders)")

    def validate(self) -> None:
        from alchemy_engine.errors import InvalidRequest

        super().validate()
        for folder in self.folders:
            if not str(folder).strip():
                raise InvalidRequest("an empty folder name was given; name a folder to scan")


@dataclass(frozen=True)
class ScanResult:
    models: tuple[ScannedModel, ...] = ()
    folders: tuple[str, ...] = setting((), cli=False, label="Folders",
                                       help="folders to scan (default: the model folders)")
    missing_folders: tuple[str, ...] = ()  # configured but absent (an unplugged drive)
    probed: int = 0  # files whose header was read this time
    reused: int = 0  # files answered from the cache
    extras: dict[str, Any] = field(default_factory=dict)

    def of_use(self, use: str) -> list[ScannedModel]:
        return [m for m in self.models if m.use == use]

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models], "folders": list(self.folders),
                "missing_folders": list(self.missing_folders), "probed": self.probed, "reused": self.reused}


# --- the cache ---------------------------------------------------------------------------------

def _cache_path() -> Path:
    return paths.cache_root() / CACHE_FILE


def _load_cache() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("the model scan cache is unreadable and is rebuilt: %s", exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _save_cache(entries: dict[str, dict[str, Any]]) -> None:
    atomic_write_json(_cache_path(), {"version": CACHE_VERSION, "entries": entries},
                      then="the next scan reads the headers again")


# --- classifying one file ----------------------------------------------------------------------

def _sam_variant_from_name(name: str) -> str | None:
    lowered = name.lower()
    return next((v for tag, v in _SAM_NAMES.items() if lowered.startswith(tag)), None)


def classify_file(path: Path) -> dict[str, Any]:
    """``use``, ``family``, ``description`` and ``lora_base`` of one file, from its header or name."""
    if path.suffix.lower() == ".pth":
        variant = _sam_variant_from_name(path.name)
        if variant:
            return {"use": "sam", "family": "sam", "description": f"Segment Anything {variant} (by its file name)",
                    "lora_base": ""}
        return {"use": "other", "family": "pickle", "lora_base": "",
                "description": "a PyTorch pickle file; only Meta's SAM .pth files are opened"}
    from alchemy_engine.models.probe import probe_checkpoint

    info = probe_checkpoint(path)
    use = _FAMILY_USE.get(info.family, "other")
    if use == "sdxl" and not info.has_vae:
        use = "other"
    lora_base = ""
    if use == "lora":
        from alchemy_engine.models.lora_files import inspect_lora

        try:
            lora_base = inspect_lora(path).base
        except ModelError as exc:
            return {"use": "other", "family": "lora", "description": str(exc), "lora_base": ""}
    return {"use": use, "family": info.family, "description": info.description, "lora_base": lora_base}


def _classify_folder(folder: Path) -> dict[str, Any]:
    from alchemy_engine.models.sources import sdxl_components_status

    _variant, problems = sdxl_components_status(folder)
    if problems:
        return {"use": "other", "family": "diffusers_folder", "lora_base": "",
                "description": f"a diffusers folder that is not a usable SDXL: {'; '.join(problems)}"}
    return {"use": "sdxl", "family": "diffusers_folder", "description": "an SDXL diffusers folder", "lora_base": ""}


# --- walking -----------------------------------------------------------------------------------

def _walk(root: Path, cancel: CancelToken) -> list[tuple[Path, bool]]:
    """``(path, is_diffusers_folder)`` under ``root``; symlinked files are followed (the HF cache
    links snapshots to blobs), symlinked folders are not (no loops)."""
    found: list[tuple[Path, bool]] = []
    stack = [root]
    while stack:
        cancel.raise_if_cancelled()
        folder = stack.pop()
        if (folder / "model_index.json").is_file():
            found.append((folder, True))
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS and not entry.name.startswith("."):
                    stack.append(Path(entry.path))
            elif entry.name.lower().endswith(_SUFFIXES) and entry.is_file():
                found.append((Path(entry.path), False))
    return found


def _stamp(path: Path, is_folder: bool) -> tuple[int, int]:
    target = path / "model_index.json" if is_folder else path
    st = target.stat()
    return st.st_size, st.st_mtime_ns


def scan_models(request: ScanRequest | None = None, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> ScanResult:
    """Classify every model file under the folders; headers are read only for new or changed files."""
    from alchemy_engine.models.folders import list_model_folders

    request = request or ScanRequest()
    request.validate()
    cancel = cancel or CancelToken()
    roots = [Path(f).expanduser() for f in request.folders] or list_model_folders()
    present = [r for r in roots if r.is_dir()]
    missing = tuple(str(r) for r in roots if not r.is_dir())
    cache = _load_cache()
    progress(Progress(Stage.WORK, message="listing the model folders"))
    items = [(root, path, is_folder) for root in present
             for path, is_folder in sorted(_walk(root, cancel), key=lambda found: str(found[0]).lower())]
    models: list[ScannedModel] = []
    probed = reused = 0
    for n, (root, path, is_folder) in enumerate(items, 1):
        cancel.raise_if_cancelled()
        try:
            size, mtime = _stamp(path, is_folder)
        except OSError as exc:  # removed while we scanned
            log.info("skipped %s: %s", path, exc)
            continue
        key = str(path)
        hit = cache.get(key)
        if hit and hit.get("size") == size and hit.get("mtime_ns") == mtime:
            verdict = hit
            reused += 1
        else:
            try:
                verdict = _classify_folder(path) if is_folder else classify_file(path)
            except (OSError, ModelError) as exc:
                verdict = {"use": "other", "family": "damaged", "description": str(exc), "lora_base": ""}
            verdict = {**verdict, "size": size, "mtime_ns": mtime}
            cache[key] = verdict
            probed += 1
        models.append(ScannedModel(key, str(root), verdict["use"], verdict["family"], verdict["description"],
                                   0 if is_folder else size, verdict.get("lora_base", "")))
        if n % _PROGRESS_EVERY == 0 or n == len(items):
            progress(Progress(Stage.WORK, step=n, total=len(items), message=f"{n} of {len(items)} files"))
    seen = {m.path for m in models}
    stale = [k for k in cache if k not in seen and any(k.startswith(str(r) + os.sep) for r in present)]
    for key in stale:
        del cache[key]
    if probed or stale:
        _save_cache(cache)
    return ScanResult(tuple(models), tuple(str(r) for r in present), missing, probed, reused)


def folder_models(use: str | None = None) -> list[ScannedModel]:
    """What the configured model folders hold (from the cache where nothing changed), optionally
    only one ``use``; what the inventory and the pickers list."""
    found = scan_models().models
    return [m for m in found if use is None or m.use == use]
